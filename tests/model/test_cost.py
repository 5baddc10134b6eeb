"""Analytic parameter and FLOP counts against the real (tiny) model and PyTorch's FLOP counter."""

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from skyaudio_cli.model.cost import RELEASE_DIMS, forward_flops, parameter_count, weight_bytes

from .conftest import LATENT_SHAPE, VIDEO_FRAMES, make_inputs

# The tiny writer's defaults, in cost's vocabulary.
TINY_DIMS = {
    "dim": 64,
    "layers": 2,
    "ffn": 128,
    "freq_dim": 32,
    "text_dim": 32,
    "image_dim": 32,
    "in_channels": 36,
    "audio_feature_dim": 2 * 32,
    "audio_hidden": 32,
    "audio_tokens": 4,
    "audio_token_dim": 32,
}
BLOCK_PARTS = (
    "self_attn_proj",
    "self_attn_scores",
    "cross_attn_proj",
    "cross_attn_scores",
    "audio_attn_proj",
    "audio_attn_scores",
    "ffn",
)


def test_parameter_count_matches_the_built_model(tiny_model):
    assert parameter_count(TINY_DIMS) == sum(p.numel() for p in tiny_model.parameters())


def test_release_size_is_the_19b_model():
    assert 18.5e9 < parameter_count(RELEASE_DIMS) < 19.5e9
    sizes = weight_bytes()
    assert sizes.fp8 < 0.55 * sizes.bf16
    assert sizes.offload_gpu + sizes.offload_host > sizes.bf16


def test_block_flops_match_pytorchs_counter(tiny_model):
    _, latent_frames, latent_h, latent_w = LATENT_SHAPE
    analytic = forward_flops(latent_w * 8, latent_h * 8, VIDEO_FRAMES, TINY_DIMS, batch=2)
    counter = FlopCounterMode(display=False)
    # The math kernel spells attention as matmuls the counter sees (the fused CPU kernel is not counted).
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        tiny_model(**make_inputs(batch=2))
    by_module = counter.get_flop_counts()
    counted_blocks = sum(sum(by_module[f"AudioWanTransformer3DModel.blocks.{n}"].values()) for n in range(2))
    assert counted_blocks == sum(analytic[part] for part in BLOCK_PARTS)
    assert sum(by_module["AudioWanTransformer3DModel.patch_embedding"].values()) == analytic["patch_embed"]
    assert sum(by_module["AudioWanTransformer3DModel.proj_out"].values()) == analytic["head"]
