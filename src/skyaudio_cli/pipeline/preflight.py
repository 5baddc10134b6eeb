"""Device, dtype and attention choices checked without importing torch, so mistakes fail at once.

Importing torch costs seconds and hundreds of MB; a `--device cuda` on a laptop without a GPU
should not pay that to be told so. What can be known cheaply is known here: whether any GPU can be
visible at all (device nodes, CUDA_VISIBLE_DEVICES, a CPU-only torch build) and whether an
attention package is installed. When a GPU may be there, torch decides later (pipeline/device.py).
"""

import glob
import importlib.util
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from skyaudio_cli.errors import InputError

# Device nodes a GPU PyTorch can use shows up as: NVIDIA, NVIDIA Jetson, AMD ROCm, WSL2.
GPU_DEVICE_NODES = ("/dev/nvidia[0-9]*", "/dev/nvhost-ctrl-gpu", "/dev/kfd", "/dev/dxg")
# `--attention` choice -> (the package it needs, how to install it).
ATTENTION_PACKAGES = {
    "xformers": ("xformers", "make install-cuda, or pip install 'skyaudio[cuda]'"),
    "flash": ("flash_attn", "pip install flash-attn"),
}
# Messages shared with pipeline/device.py, which makes the same checks with torch once it is loaded.
NO_CUDA = "--device cuda: no CUDA GPU is visible"
FP16_ON_CPU = "float16 is not supported on CPU; use bf16 or fp32"
NEEDS_CUDA = "needs a CUDA device; use --attention sdpa on the CPU"


def importable(module: str) -> bool:
    """Whether `module` is installed, found without importing it."""
    return importlib.util.find_spec(module) is not None


def cuda_unavailable_reason() -> str | None:
    """Why PyTorch cannot see a GPU here, told without importing it; None when it may see one."""
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU"
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        return "PyTorch is not installed"
    if torch_version.endswith("+cpu"):
        return f"the installed PyTorch {torch_version} is a CPU-only build"
    # Only Linux has the device nodes to look for; elsewhere torch decides.
    if sys.platform == "linux" and not any(glob.glob(pattern) for pattern in GPU_DEVICE_NODES):
        return "this machine has no GPU device (no /dev/nvidia*)"
    return None


def check_runtime(device: str, dtype: str, attention: str) -> None:
    """Raise InputError for a device/dtype/attention choice that cannot run on this machine."""
    no_gpu = None if device == "cpu" else cuda_unavailable_reason()
    if device == "cuda" and no_gpu is not None:
        raise InputError(f"{NO_CUDA} ({no_gpu}); use --device cpu (tiny test models only) or a GPU machine")
    on_cpu = device == "cpu" or no_gpu is not None
    if dtype == "fp16" and on_cpu:
        raise InputError(f"--dtype fp16: {FP16_ON_CPU}")
    if attention in ATTENTION_PACKAGES:
        require_attention_package(attention)
        if on_cpu:
            raise InputError(f"--attention {attention}: {NEEDS_CUDA}")


def require_attention_package(attention: str) -> None:
    """InputError saying how to install the package `--attention xformers / flash` needs, if missing."""
    package, install = ATTENTION_PACKAGES[attention]
    if not importable(package):
        raise InputError(f"--attention {attention}: the {package} package is not installed ({install})")
