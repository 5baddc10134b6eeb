"""Opt-in speed and memory modes of the DiT, and the order they must be applied in.

Every mode is a diffusers feature applied to our model class:

- FP8 weight storage (layerwise casting): the big Linear weights are stored as float8_e4m3fn and
  upcast layer by layer to the compute dtype. It is declared on the still-empty (meta) model, so the
  loader reads each tensor straight into FP8 and the bf16 model never exists whole anywhere.
- Block group offloading: weights live in host RAM, each block is moved to the GPU just before it
  runs (prefetched on a side stream on CUDA). The model is therefore loaded to the CPU.
- Regional torch.compile of the repeated block class (``_repeated_blocks``).
- Block caches (First-Block Cache, MagCache): skip the remaining blocks when the first block's
  residual barely changed since the previous step. They trade quality for speed.
- Ulysses sequence parallel when launched by torchrun (see ``pipeline.parallel``).
"""

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.hooks.layerwise_casting import DEFAULT_SKIP_MODULES_PATTERN

from skyaudio_cli.errors import InputError
from skyaudio_cli.model import parallel
from skyaudio_cli.model.checkpoint import TransformerLayout, load_transformer
from skyaudio_cli.model.transformer import AudioWanTransformer3DModel
from skyaudio_cli.modes import CacheMode

FP8_STORAGE = torch.float8_e4m3fn
CACHE_MODES = tuple(CacheMode)
# One block per group: ~1 GB of bf16 weights on the GPU at a time for the 19B model, and the next
# one is prefetched while the current one runs.
OFFLOAD_BLOCKS_PER_GROUP = 1


@dataclass(frozen=True)
class Acceleration:
    """Which optional modes to apply to the transformer (all off by default).

    ``cache_threshold`` None means diffusers' default for the chosen cache; ``mag_ratios`` are the
    per-step magnitude ratios MagCache needs, calibrated for one checkpoint and step count.
    """

    fp8: bool = False
    offload: bool = False
    compile: bool = False
    cache: str = "none"
    cache_threshold: float | None = None
    mag_ratios: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.cache not in CACHE_MODES:
            raise InputError(f"--cache {self.cache}: use one of {', '.join(CACHE_MODES)}")
        if self.cache == CacheMode.mag and self.mag_ratios is None:
            raise InputError("cache 'mag': pass mag_ratios calibrated for this checkpoint and step count")


def load_accelerated_transformer(
    files: Sequence[Path],
    *,
    device: torch.device,
    dtype: torch.dtype,
    attention: str,
    acceleration: Acceleration,
    num_steps: int,
    adapters: Sequence[tuple[Path, float]] = (),
    layout: TransformerLayout | None = None,
) -> AudioWanTransformer3DModel:
    """Load the DiT and apply the attention backend and every requested mode, in a working order.

    Order matters: FP8 is declared before weights are read; the attention backend before sequence
    parallel (which checks it) and before compiling; offloading hooks before compiling, so the
    compiled blocks see their weights already on the device. LoRA ``adapters`` are fused while the
    weights are read, before FP8 quantisation and before the weights are offloaded. ``layout``: the
    family's transformer layout, which the checkpoint must have.
    """
    before_weights = fp8_storage(dtype) if acceleration.fp8 else None
    load_device = torch.device("cpu") if acceleration.offload else device
    transformer = load_transformer(
        files, device=load_device, dtype=dtype, before_weights=before_weights, adapters=adapters,
        layout=layout,
    )  # fmt: skip
    transformer.set_attention_backend(attention)
    if parallel.launched_by_torchrun():
        parallel.enable_sequence_parallel(transformer)
    if acceleration.offload:
        enable_block_offload(transformer, device)
    if acceleration.cache != "none":
        enable_block_cache(transformer, acceleration, num_steps)
    if acceleration.compile:
        transformer.compile_repeated_blocks()
    return transformer


def fp8_storage(compute_dtype: torch.dtype, *, keep: tuple[str, ...] = ()):
    """`load_transformer`'s `before_weights` that stores the big Linear weights in FP8, cast to
    `compute_dtype` as each layer runs; `keep`: more module-name patterns left unquantised (training
    keeps the layers it trains in full)."""

    def declare(model: AudioWanTransformer3DModel) -> None:
        # Skips the norms, embeddings, modulation/head and the audio projection (the model's
        # _keep_in_fp32_modules and _skip_layerwise_casting_patterns): small and precision-critical.
        skip = (*DEFAULT_SKIP_MODULES_PATTERN, *keep) if keep else None
        model.enable_layerwise_casting(
            storage_dtype=FP8_STORAGE, compute_dtype=compute_dtype, skip_modules_pattern=skip
        )

    return declare


def enable_block_offload(transformer: AudioWanTransformer3DModel, device: torch.device) -> None:
    """Keep weights in host RAM and move one block group at a time to ``device`` as it runs."""
    on_cuda = device.type == "cuda"
    transformer.enable_group_offload(
        onload_device=device,
        offload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=OFFLOAD_BLOCKS_PER_GROUP,
        use_stream=on_cuda,  # overlap the next block's transfer with the current block's compute
        non_blocking=on_cuda,
    )


def enable_block_cache(
    transformer: AudioWanTransformer3DModel, acceleration: Acceleration, num_steps: int
) -> None:
    from diffusers.hooks import FirstBlockCacheConfig, MagCacheConfig

    threshold = {} if acceleration.cache_threshold is None else {"threshold": acceleration.cache_threshold}
    if acceleration.cache == CacheMode.first_block:
        transformer.enable_cache(FirstBlockCacheConfig(**threshold))
    else:
        ratios = list(acceleration.mag_ratios)
        transformer.enable_cache(
            MagCacheConfig(**threshold, num_inference_steps=num_steps, mag_ratios=ratios)
        )


@contextmanager
def denoising_session(transformer: AudioWanTransformer3DModel, *, per_window: bool = False) -> Iterator[None]:
    """Wrap one sampling loop: block caches start from a clean state and know which call they are in.

    All guidance passes run as one batch, so one cache context covers them. `per_window`: a fused
    loop steps several windows in turn, and each call enters its own window's context
    (`window_cache`) instead of one shared one.
    """
    if not transformer.is_cache_enabled:
        yield
        return
    # Residuals cached from the previous video (or window) must not leak into this one.
    transformer._reset_stateful_cache()
    if per_window:
        yield
        return
    with transformer.cache_context("denoise"):
        yield


def window_cache(transformer: AudioWanTransformer3DModel, window: int) -> AbstractContextManager:
    """One fused window's call: its own block-cache state (diffusers keeps one per context name), so
    a skip decision never compares a window with the residuals of its neighbour."""
    if not transformer.is_cache_enabled:
        return nullcontext()
    return transformer.cache_context(f"window-{window}")
