"""Device, dtype and attention-backend choices, made explicitly.

diffusers raises when a requested attention backend's package is missing and never falls back,
so the choice is made here, once, from what is actually importable. The same choices are checked
before torch is imported by pipeline/preflight.py; these checks stay for the Python API and for
what only torch can tell (a GPU node present but no usable driver).
"""

import torch

from skyaudio_cli.errors import InputError
from skyaudio_cli.model.parallel import local_cuda_device
from skyaudio_cli.pipeline.preflight import (
    FP16_ON_CPU,
    NEEDS_CUDA,
    NO_CUDA,
    importable,
    require_attention_package,
)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return local_cuda_device() if torch.cuda.is_available() else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError(f"{NO_CUDA} to PyTorch (check drivers / CUDA_VISIBLE_DEVICES)")
    return local_cuda_device() if name == "cuda" else torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name not in DTYPES:
        raise InputError(f"--dtype {name}: use one of {', '.join(DTYPES)}")
    if device.type == "cpu" and name == "fp16":
        raise InputError(f"--dtype fp16: {FP16_ON_CPU}")
    return DTYPES[name]


def resolve_attention_backend(name: str, device: torch.device) -> str:
    """diffusers attention backend name for the user's `--attention` choice."""
    if name == "auto":
        return "xformers" if device.type == "cuda" and importable("xformers") else "native"
    if name == "sdpa":
        return "native"
    require_attention_package(name)
    if device.type != "cuda":
        raise InputError(f"--attention {name}: {NEEDS_CUDA}")
    return name
