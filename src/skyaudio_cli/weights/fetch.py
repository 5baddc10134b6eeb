"""Download a model family's components from the Hugging Face Hub."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from skyaudio_cli.errors import InputError, WeightsError
from skyaudio_cli.weights import hub
from skyaudio_cli.weights.local_folder import ResolvedModel, read_local_model, write_local_model
from skyaudio_cli.weights.manifest import ComponentSpec, Manifest, ModelSpec, get_manifest, human_size
from skyaudio_cli.weights.resolve import hub_model, resolve_cached


def fetch_model(
    name: str,
    *,
    local_dir: str | os.PathLike[str] | None = None,
    token: str | None = None,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    manifest: Manifest | None = None,
) -> ResolvedModel:
    """Download every component of family `name`; files already present are not fetched again.

    Without `local_dir` the files go to the Hugging Face cache (HF_HOME / HF_HUB_CACHE, or
    `cache_dir`). With it, each repo gets a sub-folder of `local_dir` and a skyaudio_model.json is
    written, so the folder can be passed as a model path (and copied to offline machines).
    `token` defaults to HF_TOKEN / the saved login; `endpoint` to HF_ENDPOINT (a Hub mirror).
    Progress goes to stderr.
    """
    manifest = get_manifest(manifest)
    spec = hub_model(manifest, name)
    if hub.is_offline():
        raise WeightsError(
            f"cannot download '{name}': HF_HUB_OFFLINE is set; unset it, or pass a model folder copied "
            "from a machine with network access"
        )
    cache = Path(cache_dir) if cache_dir is not None else None
    if local_dir is None:
        for component in spec.components.values():
            _announce(component, progress)
            hub.download_component(
                component,
                model=name,
                cache_dir=cache,
                local_dir=None,
                token=token,
                endpoint=endpoint,
                progress=progress,
            )
        return resolve_cached(spec, cache)
    folder = Path(local_dir).expanduser().resolve()
    _fetch_into_folder(spec, folder, cache, token, endpoint, progress)
    return read_local_model(folder, manifest)


def _fetch_into_folder(
    spec: ModelSpec,
    folder: Path,
    cache_dir: Path | None,
    token: str | None,
    endpoint: str | None,
    progress: bool,
) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create --dir {folder}: {error.strerror or error}") from None
    components: dict[str, str] = {}
    files: dict[str, int] = {}
    for component in spec.components.values():
        _announce(component, progress)
        repo_folder = folder / hub.local_repo_folder(component.repo)
        hub.download_component(
            component,
            model=spec.name,
            cache_dir=cache_dir,
            local_dir=repo_folder,
            token=token,
            endpoint=endpoint,
            progress=progress,
        )
        components[component.name] = (
            hub.component_location(repo_folder, component).relative_to(folder).as_posix()
        )
        listing = hub.expected_files(component, cache_dir=cache_dir, local_dir=repo_folder) or {}
        files.update({f"{repo_folder.name}/{path}": size for path, size in listing.items()})
    write_local_model(
        folder, family=spec.name, audio_encoder=spec.audio_encoder, components=components, files=files
    )


def _announce(component: ComponentSpec, progress: bool) -> None:
    if progress:
        print(
            f"fetching {component.name} from {component.repo} (~{human_size(component.size_bytes)})",
            file=sys.stderr,
            flush=True,
        )
