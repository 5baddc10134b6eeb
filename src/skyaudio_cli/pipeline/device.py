"""Device, dtype and attention-backend choices, made explicitly.

diffusers raises when a requested attention backend's package is missing and never falls back,
so the choice is made here, once, from what is actually importable.
"""

import importlib.util

import torch

from skyaudio_cli.errors import InputError
from skyaudio_cli.pipeline.parallel import local_cuda_device

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return local_cuda_device() if torch.cuda.is_available() else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "--device cuda: no CUDA GPU is visible to PyTorch (check drivers / CUDA_VISIBLE_DEVICES)"
        )
    return local_cuda_device() if name == "cuda" else torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name not in DTYPES:
        raise InputError(f"--dtype {name}: use one of {', '.join(DTYPES)}")
    if device.type == "cpu" and name == "fp16":
        raise InputError("--dtype fp16: float16 is not supported on CPU; use bf16 or fp32")
    return DTYPES[name]


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_attention_backend(name: str, device: torch.device) -> str:
    """diffusers attention backend name for the user's `--attention` choice."""
    if name == "auto":
        return "xformers" if device.type == "cuda" and _importable("xformers") else "native"
    if name == "sdpa":
        return "native"
    package = {"xformers": "xformers", "flash": "flash_attn"}[name]
    if not _importable(package):
        raise InputError(
            f"--attention {name}: the {package} package is not installed (pip install 'skyaudio[cuda]')"
        )
    if device.type != "cuda":
        raise InputError(f"--attention {name}: needs a CUDA device; use --attention sdpa on {device.type}")
    return name
