"""Checks and safe loading shared by the conditioning models' two weight routes.

Each model loads either from a Hugging Face folder (config.json + safetensors, possibly sharded) or
from the original release's single `.pth` file. Both routes report a missing or unreadable file as a
WeightsError naming it, so a half-downloaded folder fails with one line instead of a traceback deep
inside transformers/diffusers.
"""

import json
from collections.abc import Iterable
from pathlib import Path

import torch

from skyaudio_cli.errors import WeightsError


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise WeightsError(f"{path}: missing weights file")
    return path


def require_weights_folder(folder: Path, weights_name: str) -> None:
    """Fail early unless `folder` holds config.json and `weights_name` (single or sharded safetensors).

    Sharded checkpoints list their shards in `<weights_name stem>.safetensors.index.json`; every
    listed shard must be present, since a missing one would otherwise surface as "missing keys".
    """
    if not folder.is_dir():
        raise WeightsError(f"{folder}: weights folder not found")
    require_file(folder / "config.json")
    single = folder / weights_name
    index = folder / f"{weights_name}.index.json"
    if single.is_file():
        return
    if not index.is_file():
        raise WeightsError(f"{single}: missing weights file (no {index.name} either)")
    try:
        shard_names = set(json.loads(index.read_text())["weight_map"].values())
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise WeightsError(f"{index}: unreadable shard index ({error})") from error
    for shard_name in sorted(shard_names):
        require_file(folder / shard_name)


def load_pth_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load an original `.pth` checkpoint without executing pickled code, memory-mapped (tens of GB)."""
    require_file(path)
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises many types for corrupt/unsafe pickles; all mean "bad file"
        raise WeightsError(f"{path}: not a loadable weights-only checkpoint ({error})") from error
    if not isinstance(state_dict, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state_dict).__name__}")
    return state_dict


def require_exact_keys(path: Path, expected: Iterable[str], found: Iterable[str]) -> None:
    """Strict key check: a renamed or truncated checkpoint must not load silently half-random."""
    expected, found = set(expected), set(found)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise WeightsError(
            f"{path}: state dict does not match the model "
            f"(missing {len(missing)}: {missing[:3]}, unexpected {len(unexpected)}: {unexpected[:3]})"
        )
