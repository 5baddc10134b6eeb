"""Turn what the user passed as `--model` (a family name or a folder) into local component paths."""

from __future__ import annotations

import os
from pathlib import Path

from skyaudio_cli.errors import InputError, WeightsError
from skyaudio_cli.weights import hub
from skyaudio_cli.weights.local_folder import ResolvedModel, read_local_model
from skyaudio_cli.weights.manifest import Manifest, ModelSpec, get_manifest, human_size, total_size


def resolve_model(
    name_or_path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    manifest: Manifest | None = None,
) -> ResolvedModel:
    """Local paths of every component of a model family (from the HF cache) or of a model folder.

    A folder is used as is, with no manifest or cache look-up. For a family name, missing files
    raise WeightsError naming the command that fetches them (weights.fetch downloads).
    """
    manifest = get_manifest(manifest)
    folder = as_model_folder(name_or_path)
    if folder is not None:
        return read_local_model(folder, manifest)
    spec = hub_model(manifest, str(name_or_path))
    return resolve_cached(spec, Path(cache_dir) if cache_dir is not None else None)


def as_model_folder(name_or_path: str | os.PathLike[str]) -> Path | None:
    """The folder meant by `name_or_path`, or None when it is a family name."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise InputError(f"model {text} is a file; pass a model folder or a family name")
    # Family names never contain a path separator, so such a string is a folder that is not there.
    if isinstance(name_or_path, os.PathLike) or text.startswith((".", "~")) or "/" in text or os.sep in text:
        raise InputError(f"model folder {text} does not exist")
    return None


def hub_model(manifest: Manifest, name: str) -> ModelSpec:
    """The spec of a family whose weights come from the Hub (not one generated locally)."""
    spec = manifest.get(name)
    if spec.generated:
        raise WeightsError(
            f"'{name}' has no downloadable weights; create a folder with `skyaudio weights make-tiny DIR` "
            "and pass that folder instead"
        )
    return spec


def resolve_cached(spec: ModelSpec, cache_dir: Path | None) -> ResolvedModel:
    """Components of `spec` from the HF cache; WeightsError with the fetch command if any is missing."""
    located = {}
    missing = []
    for component in spec.components.values():
        snapshot, complete = hub.find_snapshot(component, cache_dir)
        if snapshot is None or not complete:
            missing.append(component)
        else:
            located[component.name] = hub.component_location(snapshot, component)
    if missing:
        label = "component" if len(missing) == 1 else "components"
        names = ", ".join(component.name for component in missing)
        size = human_size(total_size(missing))
        raise WeightsError(
            f"weights for '{spec.name}' are not downloaded ({label} {names}, ~{size}); "
            f"run: skyaudio weights fetch {spec.name}"
        )
    return ResolvedModel(family=spec.name, audio_encoder=spec.audio_encoder, root=None, components=located)


def is_downloaded(spec: ModelSpec, cache_dir: Path | None = None) -> bool:
    """Whether every component of a Hub family is complete in the HF cache."""
    return all(hub.find_snapshot(component, cache_dir)[1] for component in spec.components.values())
