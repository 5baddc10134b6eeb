"""Training checkpoints: `checkpoint-NNNNNNN/` folders written whole or not at all, no pickles.

A checkpoint holds the trained values exactly (`trainable.safetensors`, fp32 as trained), the
`--lora` file of that moment (`adapter.safetensors`), the optimizer's tensors in safetensors with
its plain-data rest in JSON, the scheduler's state, and every process's random generator state. It
is assembled in a temporary folder next to the destination and renamed into place once complete,
so an interrupted save never leaves a checkpoint `--resume` would pick up.
"""

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from skyaudio_cli.errors import InputError

PREFIX = "checkpoint-"
STATE = "state.json"
TRAINABLE = "trainable.safetensors"
ADAPTER = "adapter.safetensors"
OPTIMIZER_TENSORS = "optimizer.safetensors"


def checkpoint_dir(output: Path, step: int) -> Path:
    return output / f"{PREFIX}{step:07d}"


def partial_dir(output: Path, step: int) -> Path:
    return output / f".{PREFIX}{step:07d}.partial"


def rng_file(folder: Path, rank: int) -> Path:
    return folder / f"rng-rank{rank}.safetensors"


def remove_partials(output: Path) -> None:
    """Delete checkpoint folders a killed run left half-assembled (never picked up by --resume)."""
    for folder in output.glob(f".{PREFIX}*.partial"):
        shutil.rmtree(folder, ignore_errors=True)


def latest_checkpoint(output: Path) -> Path | None:
    found = sorted(p for p in output.glob(f"{PREFIX}*") if p.is_dir() and (p / STATE).is_file())
    return found[-1] if found else None


def split_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state_dict -> (its tensors by flat name, the rest as JSON-ready data).

    Per-parameter entries may nest dicts (bitsandbytes keeps its 8-bit moments, quantisation maps and
    block maxima under one key): their tensors are named `index.key.subkey`."""
    tensors: dict[str, torch.Tensor] = {}

    def plain_part(prefix: str, entries: dict[str, Any]) -> dict[str, Any]:
        plain = {}
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                # A copy: bitsandbytes shares one quantisation map between parameters (safetensors
                # refuses tensors that share memory).
                tensors[f"{prefix}.{key}"] = value.detach().to(
                    "cpu", copy=True, memory_format=torch.contiguous_format
                )
            elif isinstance(value, dict):
                plain[key] = plain_part(f"{prefix}.{key}", value)
            else:
                plain[key] = value
        return plain

    per_parameter = {str(index): plain_part(str(index), entries) for index, entries in state["state"].items()}
    return tensors, {"param_groups": state["param_groups"], "plain": per_parameter}


def join_optimizer_state(tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(index): dict(plain) for index, plain in data["plain"].items()}
    for flat, value in tensors.items():
        index, *path = flat.split(".")
        entries = state.setdefault(int(index), {})
        for key in path[:-1]:
            entries = entries.setdefault(key, {})
        entries[path[-1]] = value
    return {"state": state, "param_groups": data["param_groups"]}


def write_main_files(folder: Path, files: dict[str, dict[str, torch.Tensor]], state: dict[str, Any]) -> None:
    for name, tensors in files.items():
        save_file(tensors, str(folder / name))
    (folder / STATE).write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")


def finish(output: Path, step: int) -> Path:
    """Rename the assembled temporary folder into `checkpoint-NNNNNNN` (replacing an older one)."""
    final = checkpoint_dir(output, step)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial_dir(output, step), final)
    return final


def read_state(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / STATE).read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{folder}: unreadable checkpoint state ({error})") from error


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own error types
        raise InputError(f"{path}: unreadable checkpoint file ({error})") from error
