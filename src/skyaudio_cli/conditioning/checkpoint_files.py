"""Checks and safe loading shared by the conditioning models' two weight routes.

Each model loads either from a Hugging Face folder (config.json + safetensors, possibly sharded) or
from the original release's single `.pth` file. Both routes report a missing or unreadable file as a
WeightsError naming it, so a half-downloaded folder fails with one line instead of a traceback deep
inside transformers/diffusers.
"""

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError, safe_open

from skyaudio_cli.errors import WeightsError

Loaded = TypeVar("Loaded")
# What transformers/diffusers raise for a file they cannot use (a tensor of the wrong shape, a
# config they cannot parse, ...), each time with a different message.
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError, SafetensorError)


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise WeightsError(f"{path}: missing weights file")
    return path


def read_config_json(path: Path) -> dict:
    """A folder's config.json / preprocessor_config.json; absent or malformed -> WeightsError."""
    try:
        config = json.loads(require_file(path).read_text())
    except (OSError, ValueError) as error:
        raise WeightsError(f"{path}: unreadable JSON ({error})") from error
    if not isinstance(config, dict):
        raise WeightsError(f"{path}: expected a JSON object")
    return config


def require_weights_folder(folder: Path, weights_name: str) -> list[Path]:
    """Fail early unless `folder` holds config.json and `weights_name` (single or sharded safetensors);
    returns the weight files.

    Sharded checkpoints list their shards in `<weights_name stem>.safetensors.index.json`; every
    listed shard must be present, since a missing one would otherwise surface as "missing keys".
    """
    if not folder.is_dir():
        raise WeightsError(f"{folder}: weights folder not found")
    require_file(folder / "config.json")
    single = folder / weights_name
    index = folder / f"{weights_name}.index.json"
    if single.is_file():
        return [single]
    if not index.is_file():
        raise WeightsError(f"{single}: missing weights file (no {index.name} either)")
    try:
        shard_names = set(json.loads(index.read_text())["weight_map"].values())
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as error:
        raise WeightsError(f"{index}: unreadable shard index ({error})") from error
    return [require_file(folder / shard_name) for shard_name in sorted(shard_names)]


def load_pretrained_folder(
    folder: Path, weights_name: str, meta_model: Callable[[], torch.nn.Module], load: Callable[[], Loaded]
) -> Loaded:
    """`load()` a Hugging Face folder after checking its files, so that a damaged one is a WeightsError
    naming it instead of a traceback from deep inside transformers/diffusers.

    config.json must parse, every safetensors header must be intact and cover its file (a truncated
    download does not), and each stored tensor must have the shape `meta_model()` (the model the
    config describes, built on the meta device: no memory) expects.
    """
    files = require_weights_folder(folder, weights_name)
    config = folder / "config.json"
    read_config_json(config)
    try:
        with torch.device("meta"):
            expected = meta_model().state_dict()
    except _LOAD_ERRORS as error:
        raise WeightsError(f"{config}: does not describe this model ({first_line(error)})") from error
    for path in files:
        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                shapes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}  # noqa: SIM118
        except (SafetensorError, OSError) as error:
            raise WeightsError(f"{path}: not a readable safetensors file ({error})") from error
        for key, shape in shapes.items():
            if key in expected and list(expected[key].shape) != list(shape):
                raise WeightsError(
                    f"{path}: tensor {key!r} has shape {list(shape)}, the model expects "
                    f"{list(expected[key].shape)}"
                )
    try:
        return load()
    except _LOAD_ERRORS as error:
        raise WeightsError(f"{folder / weights_name}: cannot be loaded ({first_line(error)})") from error


def first_line(error: BaseException) -> str:
    """The first line of a library's message; a bare KeyError ('added_tokens') says what it means."""
    if isinstance(error, KeyError) and error.args:
        return f"missing key {error.args[0]!r}"
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


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


def require_matching_tensors(
    path: Path, expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]
) -> None:
    """Strict key and shape check before `load_state_dict(assign=True)`, which would take a tensor of
    any shape: a renamed, truncated or wrong-sized checkpoint must not load silently."""
    missing, unexpected = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    if missing or unexpected:
        raise WeightsError(
            f"{path}: state dict does not match the model "
            f"(missing {len(missing)}: {missing[:3]}, unexpected {len(unexpected)}: {unexpected[:3]})"
        )
    for key, tensor in expected.items():
        if found[key].shape != tensor.shape:
            raise WeightsError(
                f"{path}: tensor {key!r} has shape {list(found[key].shape)}, the model expects "
                f"{list(tensor.shape)}"
            )
