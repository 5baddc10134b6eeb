"""`skyaudio doctor`: what this machine would run with, before any model is loaded.

Versions, GPUs and their free memory, the attention backend / dtype / device `generate` would pick
(in the CLI's own names), host memory, ffmpeg, whether the default weights are downloaded, and which
memory modes fit the first GPU. Every probe reports its own failure instead of stopping the others.
torch is imported only where a GPU may be present (its import costs seconds and tells nothing new
on a machine without one).
"""

import platform
from collections.abc import Callable
from typing import Any

from skyaudio_cli import __version__, console
from skyaudio_cli.cli.options import JsonOpt
from skyaudio_cli.pipeline.preflight import cuda_unavailable_reason

GIB = 1024**3


def doctor(json_output: JsonOpt = False) -> None:
    """Show versions, GPUs, memory and the attention backend/dtype/device generate would use."""
    report = {
        "versions": _probe(_versions),
        "gpus": _probe(_gpus),
        "runtime": _probe(_runtime),
        "host_memory": _probe(_host_memory),
        "ffmpeg": _probe(_ffmpeg),
        "default_weights": _probe(_default_weights),
        "memory_modes": _probe(_memory_modes),
    }
    if json_output:
        console.emit_json({"status": "ok", **report})
        return
    _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)  # stdout: the report is the command's result
    for section, values in report.items():
        console.print(f"[bold]{section}[/]")
        rows = values if isinstance(values, list) else [values]
        for row in rows or [{"none": "-"}]:
            # Values hold paths and environment variables: printed as they are, not as markup.
            console.print("  " + ", ".join(f"{key}: {value}" for key, value in row.items()), markup=False)


def _probe(collect: Callable[[], Any]) -> Any:
    try:
        return collect()
    except Exception as failure:  # a doctor reports what is broken instead of crashing on it
        return {"error": f"{type(failure).__name__}: {failure}"}


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


def _versions() -> dict[str, Any]:
    return {
        "skyaudio": __version__,
        "python": platform.python_version(),
        "torch": _version("torch"),
        "cuda": _torch_cuda(),
        "diffusers": _version("diffusers"),
        "transformers": _version("transformers"),
        "xformers": _version("xformers"),
        "flash_attn": _version("flash-attn"),
    }


def _torch_cuda() -> str | None:
    """The CUDA version torch was built for; None, without importing torch, where no GPU can be used."""
    if cuda_unavailable_reason():
        return None
    import torch

    return torch.version.cuda


def _gpus() -> list[dict[str, Any]]:
    if cuda_unavailable_reason():
        return []
    import torch

    gpus = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        properties = torch.cuda.get_device_properties(index)
        gpus.append({
            "index": index,
            "name": properties.name,
            "compute_capability": f"{properties.major}.{properties.minor}",
            "total_gib": round(total / GIB, 1),
            "free_gib": round(free / GIB, 1),
        })  # fmt: skip
    return gpus


def _runtime() -> dict[str, Any]:
    """What `generate` with default options would run with, named as its options name them."""
    from skyaudio_cli.tasks.jobs import Settings

    settings = Settings()
    no_gpu = cuda_unavailable_reason()
    if no_gpu:
        return {"device": "cpu", "dtype": settings.dtype, "attention": "sdpa", "note": _cpu_only(no_gpu)}
    from skyaudio_cli.pipeline.device import resolve_attention_backend, resolve_device, resolve_dtype

    device = resolve_device(settings.device)
    resolve_dtype(settings.dtype, device)
    backend = resolve_attention_backend(settings.attention, device)
    runtime = {
        "device": str(device),
        "dtype": settings.dtype,
        "attention": "sdpa" if backend == "native" else backend,  # diffusers calls SDPA "native"
    }
    if device.type == "cpu":  # a GPU device is there, but torch cannot use it
        runtime["note"] = _cpu_only("PyTorch sees none: check the driver")
    return runtime


def _cpu_only(reason: str) -> str:
    return (
        f"no CUDA GPU ({reason}): the real models need an NVIDIA GPU; on this machine only the tiny "
        "test models (skyaudio weights make-tiny) run"
    )


def _host_memory() -> dict[str, float]:
    fields = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0]) * 1024
    return {
        "total_gib": round(fields["MemTotal"] / GIB, 1),
        "available_gib": round(fields["MemAvailable"] / GIB, 1),
    }


def _ffmpeg() -> dict[str, str]:
    from skyaudio_cli.media.ffmpeg import ffmpeg_exe

    return {"path": ffmpeg_exe()}


def _default_weights() -> dict[str, Any]:
    from skyaudio_cli.tasks.jobs import DEFAULT_MODEL
    from skyaudio_cli.weights import get_model
    from skyaudio_cli.weights.resolve import is_downloaded

    return {"model": DEFAULT_MODEL, "downloaded": is_downloaded(get_model(DEFAULT_MODEL))}


def _memory_modes() -> list[dict[str, Any]]:
    """Transformer weight memory of the default 19B model per mode, and whether it fits GPU 0's free
    memory now (activations and the other components need several GB more)."""
    from skyaudio_cli.model.cost import weight_bytes

    weights = weight_bytes()
    free = None
    if not cuda_unavailable_reason():
        import torch

        free = torch.cuda.mem_get_info(0)[0] if torch.cuda.is_available() else None
    modes = {"bf16": weights.bf16, "fp8": weights.fp8, "offload": weights.offload_gpu}
    return [
        {
            "mode": mode,
            "gpu_weights_gib": round(size / GIB, 1),
            "fits_gpu0": None if free is None else size < free,
        }
        for mode, size in modes.items()
    ]
