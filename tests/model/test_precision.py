"""RoPE split and float64 tables, float64 time sinusoid, and the fp32 modules kept under bf16."""

import torch
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

from skyaudio_cli.model.checkpoint import load_transformer
from skyaudio_cli.model.transformer import Float64SinusoidalTimesteps

from .reference_wan import apply_rope, rope_factors, rope_part_sizes, sinusoid


def test_rope_split_for_head_dim_128_gives_t_the_remainder():
    rope = WanRotaryPosEmbed(128, (1, 2, 2), 1024)
    assert (rope.t_dim, rope.h_dim, rope.w_dim) == (44, 42, 42)
    assert rope_part_sizes(128) == (44, 42, 42)


def test_rope_tables_are_float64_angles_stored_as_float32():
    """diffusers computes angles/cos/sin in fp64 and stores fp32 tables (the original keeps complex fp64);
    the difference is ~1e-8, far below bf16 resolution, and avoids fp64 activations on the GPU."""
    rope = WanRotaryPosEmbed(128, (1, 2, 2), 1024)
    assert rope.freqs_cos.dtype == torch.float32
    expected = torch.cat(
        [
            rope_factors(128, (1024, 1, 1))[:, :22],
            rope_factors(128, (1, 1024, 1))[:, 22:43],
            rope_factors(128, (1, 1, 1024))[:, 43:],
        ],
        dim=1,
    )
    torch.testing.assert_close(rope.freqs_cos[:, 0::2].double(), expected.real, rtol=0, atol=1e-7)
    torch.testing.assert_close(rope.freqs_sin[:, 1::2].double(), expected.imag, rtol=0, atol=1e-7)


def test_rope_rotation_matches_complex_float64_formula():
    heads, head_dim, grid = 2, 128, (3, 4, 5)
    rope = WanRotaryPosEmbed(head_dim, (1, 2, 2), 1024)
    cos, sin = rope(torch.zeros(1, 16, grid[0], 2 * grid[1], 2 * grid[2]))
    x = torch.randn(1, grid[0] * grid[1] * grid[2], heads, head_dim, dtype=torch.float64)
    pairs = x.unflatten(-1, (-1, 2))
    ours = torch.stack(
        [
            pairs[..., 0] * cos[..., 0::2] - pairs[..., 1] * sin[..., 1::2],
            pairs[..., 0] * sin[..., 1::2] + pairs[..., 1] * cos[..., 0::2],
        ],
        dim=-1,
    ).flatten(-2)
    expected = apply_rope(x[0].flatten(1), rope_factors(head_dim, grid), heads)
    torch.testing.assert_close(ours[0].flatten(1), expected, rtol=0, atol=1e-6)


def test_time_sinusoid_is_computed_in_float64():
    t = torch.tensor([999.0, 937.25, 1.0])
    ours = Float64SinusoidalTimesteps(256)(t)
    expected = sinusoid(256, t)
    assert ours.dtype == torch.float32
    # Only the final cast to fp32 may differ (a float32 computation is off by ~1e-4 at t~1000).
    torch.testing.assert_close(ours.double(), expected, rtol=0, atol=1e-7)


def test_bf16_load_casts_once_and_keeps_fp32_modules(tiny_sources):
    model = load_transformer(tiny_sources, dtype=torch.bfloat16)
    fp32_names = {name for name, p in model.named_parameters() if p.dtype == torch.float32}
    other = {p.dtype for name, p in model.named_parameters() if name not in fp32_names}
    assert other == {torch.bfloat16}
    for name in (
        "blocks.0.norm_x.weight",
        "blocks.1.scale_shift_table",
        "blocks.0.norm2.bias",
        "proj_out.weight",
    ):
        assert name in fp32_names
    for name in ("condition_embedder.time_embedder.linear_1.weight", "condition_embedder.time_proj.weight"):
        assert name in fp32_names
    assert "blocks.0.audio_cross_attn.kv_linear.weight" not in fp32_names
    assert "audio_proj.proj1.weight" not in fp32_names
    assert model.rope.freqs_cos.device.type == "cpu"
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
