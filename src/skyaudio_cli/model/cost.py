"""Analytic size and compute of the audio-conditioned DiT: parameters and bytes per memory mode, and
FLOPs per forward (for model FLOP utilisation in the benchmark).

Counts come from the release's tensor shapes (``original_key_shapes``, no torch needed) and from the
matmuls of one forward; element-wise ops, norms and softmax are left out, as is usual for MFU.
"""

import math
from dataclasses import dataclass

from .key_shapes import PATCH, original_key_shapes

# The 19B release (skyreels-v3-a2v / Wan2.1-I2V-14B + InfiniteTalk audio layers).
RELEASE_DIMS = {
    "dim": 5120,
    "layers": 40,
    "ffn": 13824,
    "freq_dim": 256,
    "text_dim": 4096,
    "image_dim": 1280,
    "in_channels": 36,
    "audio_feature_dim": 12 * 768,
    "audio_hidden": 512,
    "audio_tokens": 32,
    "audio_token_dim": 768,
}
RELEASE_HEADS = 40
TEXT_TOKENS = 512
IMAGE_TOKENS = 257
GB = 1e9


@dataclass(frozen=True)
class WeightBytes:
    """Weight memory of one model in each mode (bytes)."""

    bf16: int  # everything bf16 except the fp32 norms/modulation/head kept by the loader
    fp8: int  # block Linear weights stored as float8 (layerwise casting), the rest as in bf16
    offload_gpu: int  # group offloading: the non-block weights plus two blocks (running + prefetched)
    offload_host: int  # ... while host RAM holds all block weights


def parameter_shapes(dims: dict[str, int] = RELEASE_DIMS) -> dict[str, tuple[int, ...]]:
    return original_key_shapes(**dims)


def parameter_count(dims: dict[str, int] = RELEASE_DIMS) -> int:
    return sum(math.prod(shape) for shape in parameter_shapes(dims).values())


def _is_block_linear_weight(key: str, shape: tuple[int, ...]) -> bool:
    # Matrices inside blocks are the Linear weights layerwise casting stores in FP8; the per-block
    # modulation table is [1, 6, dim] and stays high precision.
    return key.startswith("blocks.") and len(shape) == 2


def _kept_fp32(key: str) -> bool:
    # Original names of the modules the loader keeps in fp32: norms, modulation, time path and head.
    return any(part in key for part in ("norm", "modulation", "time_embedding", "time_projection", "head."))


def weight_bytes(dims: dict[str, int] = RELEASE_DIMS) -> WeightBytes:
    shapes = parameter_shapes(dims)
    bf16 = fp8 = block_bf16 = block_fp8 = 0
    for key, shape in shapes.items():
        size = math.prod(shape)
        high = size * (4 if _kept_fp32(key) else 2)
        low = size if _is_block_linear_weight(key, shape) else high
        bf16 += high
        fp8 += low
        if key.startswith("blocks."):
            block_bf16 += high
            block_fp8 += low
    per_block = block_bf16 // dims["layers"]
    return WeightBytes(
        bf16=bf16, fp8=fp8, offload_gpu=bf16 - block_bf16 + 2 * per_block, offload_host=block_bf16
    )


def video_tokens(width: int, height: int, frames: int) -> tuple[int, int]:
    """(latent frames, tokens per latent frame) of a ``frames``-frame video at ``width`` x ``height``."""
    latent_frames = 1 + (frames - 1) // 4
    return latent_frames, (height // 8 // PATCH[1]) * (width // 8 // PATCH[2])


def forward_flops(
    width: int, height: int, frames: int, dims: dict[str, int] = RELEASE_DIMS, batch: int = 1
) -> dict[str, float]:
    """Matmul FLOPs (2 per multiply-add) of one transformer forward, by part."""
    latent_frames, per_frame = video_tokens(width, height, frames)
    tokens = latent_frames * per_frame
    d, layers, ffn = dims["dim"], dims["layers"], dims["ffn"]
    in_patch = dims["in_channels"] * math.prod(PATCH)
    audio_tokens, audio_dim = dims["audio_tokens"], dims["audio_token_dim"]
    context = TEXT_TOKENS + IMAGE_TOKENS
    parts = {
        "patch_embed": 2 * tokens * in_patch * d,
        "self_attn_proj": layers * 2 * tokens * 4 * d * d,
        "self_attn_scores": layers * 2 * 2 * tokens * tokens * d,  # QK^T and the weighted sum of V
        # q and output projections of the video tokens, k/v of the text and image tokens
        "cross_attn_proj": layers * (2 * tokens * 2 * d * d + 2 * context * 2 * d * d),
        "cross_attn_scores": layers * 2 * 2 * tokens * context * d,
        "audio_attn_proj": layers
        * (2 * tokens * 2 * d * d + 2 * latent_frames * audio_tokens * audio_dim * 2 * d),
        "audio_attn_scores": layers * 2 * 2 * tokens * audio_tokens * d,
        "ffn": layers * 2 * tokens * 2 * d * ffn,
        "head": 2 * tokens * d * dims.get("out_channels", 16) * math.prod(PATCH),
    }
    return {name: batch * float(value) for name, value in parts.items()}
