"""Self-describing model folders: `skyaudio_model.json` next to the component files.

`weights fetch --dir` and `weights make-tiny` write such a folder; passing its path wherever a model
name is accepted then needs no manifest or cache lookup, so a folder can be copied to an offline
machine as is. Schema (version 1):

    {
      "format_version": 1,
      "family": "skyreels-v3-a2v",          # decides the architecture (manifest name or "tiny-random")
      "audio_encoder": "wav2vec2",          # "wav2vec2" | "whisper"
      "components": {                       # slot -> path relative to the folder (file or folder)
        "transformer": "Skywork--SkyReels-V3-A2V-19B",
        "transformer_adapter": "MeiGen-AI--InfiniteTalk/single/infinitetalk.safetensors",
        ...
      },
      "files": {"Skywork--SkyReels-V3-A2V-19B/config.json": 1234, ...}   # optional: expected sizes
    }

"audio_encoder" may be left out for families the manifest knows. "files" lets `weights verify`
spot missing or truncated files without the network.

A folder without the json is accepted when it has the standard component sub-folders
(transformer/, vae/, ...); it is then taken to be the default family's layout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from skyaudio_cli.errors import WeightsError
from skyaudio_cli.media.atomic import atomic_write_path
from skyaudio_cli.weights.manifest import AUDIO_ENCODERS, COMPONENT_NAMES, Manifest

LOCAL_MODEL_FILE = "skyaudio_model.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ResolvedModel:
    """Where every component of a model lives on this machine.

    `root` is the model folder for local folders and None for models assembled from the Hugging
    Face cache (their components live in several repos' snapshots).
    """

    family: str
    audio_encoder: str
    root: Path | None
    components: Mapping[str, Path]
    expected_sizes: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "family": self.family,
            "audio_encoder": self.audio_encoder,
            "root": str(self.root) if self.root is not None else None,
            "components": {name: str(path) for name, path in self.components.items()},
        }


def write_local_model(
    folder: Path,
    *,
    family: str,
    audio_encoder: str,
    components: Mapping[str, str],
    files: Mapping[str, int] | None = None,
) -> Path:
    """Write `folder/skyaudio_model.json` atomically; component paths are relative to `folder`."""
    description = {
        "format_version": FORMAT_VERSION,
        "family": family,
        "audio_encoder": audio_encoder,
        "components": dict(components),
    }
    if files is not None:
        description["files"] = dict(files)
    target = folder / LOCAL_MODEL_FILE
    with atomic_write_path(target) as partial:
        partial.write_text(json.dumps(description, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def read_local_model(folder: Path, manifest: Manifest) -> ResolvedModel:
    """Resolve a model folder (with or without skyaudio_model.json); WeightsError if it is not one."""
    folder = folder.resolve()
    description_path = folder / LOCAL_MODEL_FILE
    if description_path.is_file():
        return _from_description(folder, description_path, manifest)
    present = {name: folder / name for name in COMPONENT_NAMES if (folder / name).exists()}
    if not present:
        raise WeightsError(
            f"{folder} is not a model folder: it has no {LOCAL_MODEL_FILE} and no component "
            f"sub-folders ({', '.join(COMPONENT_NAMES)})"
        )
    family = manifest.get(manifest.default)
    return ResolvedModel(
        family=family.name, audio_encoder=family.audio_encoder, root=folder, components=present
    )


def _from_description(folder: Path, description_path: Path, manifest: Manifest) -> ResolvedModel:
    try:
        description = json.loads(description_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightsError(f"cannot read {description_path}: {error}") from None
    if not isinstance(description, dict):
        raise WeightsError(f"{description_path} must hold a JSON object")
    family = description.get("family")
    if not isinstance(family, str) or not family:
        raise WeightsError(f"{description_path}: 'family' must be a non-empty string")
    audio_encoder = description.get("audio_encoder")
    if audio_encoder is None and family in manifest.models:
        audio_encoder = manifest.models[family].audio_encoder
    if audio_encoder not in AUDIO_ENCODERS:
        raise WeightsError(f"{description_path}: 'audio_encoder' must be one of {AUDIO_ENCODERS}")
    return ResolvedModel(
        family=family,
        audio_encoder=audio_encoder,
        root=folder,
        components=_component_paths(folder, description_path, description.get("components")),
        expected_sizes=_expected_sizes(folder, description_path, description.get("files", {})),
    )


def _component_paths(folder: Path, description_path: Path, raw: object) -> dict[str, Path]:
    if not isinstance(raw, dict) or not raw:
        raise WeightsError(f"{description_path}: 'components' must map component names to paths")
    components = {}
    for name, relative in raw.items():
        if name not in COMPONENT_NAMES:
            raise WeightsError(
                f"{description_path}: unknown component '{name}' (known: {', '.join(COMPONENT_NAMES)})"
            )
        path = _inside(folder, description_path, relative)
        if not path.exists():
            raise WeightsError(f"{description_path}: component '{name}' is missing: {path}")
        components[name] = path
    return components


def _expected_sizes(folder: Path, description_path: Path, raw: object) -> dict[str, int]:
    if not isinstance(raw, dict) or not all(isinstance(size, int) and size >= 0 for size in raw.values()):
        raise WeightsError(f"{description_path}: 'files' must map relative paths to sizes in bytes")
    for relative in raw:
        _inside(folder, description_path, relative)
    return dict(raw)


def _inside(folder: Path, description_path: Path, relative: object) -> Path:
    # A copied or hand-edited json must not make us read files outside the model folder (checked
    # lexically: symlinks the user placed inside the folder stay allowed).
    if not isinstance(relative, str) or not relative or os.path.isabs(relative):
        raise WeightsError(f"{description_path}: paths must be relative to the folder, got {relative!r}")
    path = Path(os.path.normpath(folder / relative))
    if not path.is_relative_to(folder):
        raise WeightsError(f"{description_path}: path {relative!r} points outside {folder}")
    return path
