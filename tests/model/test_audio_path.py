"""Audio grouping to latent frames, flatten order, per-frame attention isolation, norm placement."""

import torch
from diffusers.hooks._helpers import TransformerBlockRegistry
from diffusers.models.attention_dispatch import AttentionBackendName

from skyaudio_cli.model.audio_attention import AudioCrossAttention, frame_grouped_attention
from skyaudio_cli.model.audio_projection import group_audio_windows
from skyaudio_cli.model.transformer import AudioWanTransformerBlock

from .conftest import make_inputs

LAYERS, CHANNELS = 2, 3


def _index_encoded_windows(video_frames: int, window: int = 5) -> torch.Tensor:
    """Value = frame*1000 + window*100 + layer*10 + channel: every gathered value names its source."""
    frame = torch.arange(video_frames).view(-1, 1, 1, 1)
    slot = torch.arange(window).view(1, -1, 1, 1)
    layer = torch.arange(LAYERS).view(1, 1, -1, 1)
    channel = torch.arange(CHANNELS).view(1, 1, 1, -1)
    return (frame * 1000 + slot * 100 + layer * 10 + channel).float()[None]


def _expected_vector(sources: list[tuple[int, int]]) -> torch.Tensor:
    """(frame, window slot) sources flattened in (window, layer, channel) order."""
    values = [
        f * 1000 + w * 100 + layer * 10 + c
        for f, w in sources
        for layer in range(LAYERS)
        for c in range(CHANNELS)
    ]
    return torch.tensor(values, dtype=torch.float32)


def test_latent_zero_takes_the_full_window_of_video_frame_zero():
    first, _ = group_audio_windows(_index_encoded_windows(9), vae_scale=4)
    assert first.shape == (1, 1, 5 * LAYERS * CHANNELS)
    torch.testing.assert_close(first[0, 0], _expected_vector([(0, w) for w in range(5)]))


def test_later_latents_gather_eight_vectors_from_their_four_video_frames():
    _, later = group_audio_windows(_index_encoded_windows(13), vae_scale=4)
    assert later.shape == (1, 3, 8 * LAYERS * CHANNELS)
    for k in (1, 2, 3):
        a, b, c, d = 4 * k - 3, 4 * k - 2, 4 * k - 1, 4 * k
        sources = [(a, 0), (a, 1), (a, 2), (b, 2), (c, 2), (d, 2), (d, 3), (d, 4)]
        torch.testing.assert_close(later[0, k - 1], _expected_vector(sources))


def test_video_frame_count_must_fit_the_vae_stride():
    try:
        group_audio_windows(_index_encoded_windows(8), vae_scale=4)
    except ValueError as error:
        assert "1 + 4*k" in str(error)
    else:
        raise AssertionError("8 video frames cannot map to latent frames")


def _attention(dim: int = 16, heads: int = 2, token_dim: int = 8) -> AudioCrossAttention:
    torch.manual_seed(0)
    return AudioCrossAttention(dim, heads, token_dim)


@torch.no_grad()
def test_each_latent_frame_attends_only_to_its_own_audio_tokens():
    attn = _attention()
    frames, per_frame = 3, 6
    hidden = torch.randn(1, frames * per_frame, 16)
    audio = torch.randn(1, frames, 4, 8)
    base = attn(hidden, audio, per_frame)
    changed_audio = audio.clone()
    changed_audio[:, 1] += 1.0
    changed = attn(hidden, changed_audio, per_frame)
    moved = (changed - base).abs().amax(dim=-1)[0].view(frames, per_frame)
    assert torch.all(moved[1] > 1e-4)
    assert torch.all(moved[0] == 0) and torch.all(moved[2] == 0)


@torch.no_grad()
def test_sequence_slices_at_any_offset_reassemble_the_full_result():
    """What a context-parallel rank computes for its token slice equals that slice of the full result."""
    attn = _attention()
    frames, per_frame = 4, 6
    hidden = torch.randn(2, frames * per_frame, 16)
    audio = torch.randn(2, frames, 4, 8)
    full = frame_grouped_attention(attn, hidden, audio, per_frame)
    bounds = [0, 5, 13, 14, 24]  # slices start and end mid-frame
    parts = [
        frame_grouped_attention(attn, hidden[:, start:end], audio, per_frame, token_offset=start)
        for start, end in zip(bounds, bounds[1:], strict=False)
    ]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=0, atol=1e-6)


def test_set_attention_backend_reaches_the_audio_processor(tiny_sources):
    from skyaudio_cli.model.checkpoint import load_transformer

    model = load_transformer(tiny_sources, dtype=torch.float32)
    model.set_attention_backend("native")
    processor = model.blocks[1].audio_cross_attn.processor
    assert processor._attention_backend == AttentionBackendName.NATIVE
    assert model.blocks[1].audio_cross_attn.is_cross_attention


@torch.no_grad()
def test_audio_attention_reads_the_affine_layer_norm_of_the_residual_stream(tiny_model):
    """norm_x (weight, bias, eps 1e-6) sits between the text/image cross-attention and the audio attention."""
    block = tiny_model.blocks[0]
    captured = {}
    hooks = [
        block.attn2.register_forward_hook(
            lambda m, args, out: captured.update(cross_in=args[0], cross_out=out)
        ),
        block.audio_cross_attn.register_forward_pre_hook(lambda m, args: captured.update(audio_in=args[0])),
        block.norm2.register_forward_hook(lambda m, args, out: captured.update(residual=args[0])),
    ]
    try:
        tiny_model(**make_inputs(batch=1))
    finally:
        for hook in hooks:
            hook.remove()
    after_cross_attention = captured["residual"] + captured["cross_out"]
    expected = torch.nn.functional.layer_norm(
        after_cross_attention,
        (after_cross_attention.shape[-1],),
        block.norm_x.weight,
        block.norm_x.bias,
        1e-6,
    )
    torch.testing.assert_close(captured["audio_in"], expected, rtol=0, atol=1e-5)


def test_block_class_is_registered_for_cache_hooks():
    metadata = TransformerBlockRegistry.get(AudioWanTransformerBlock)
    assert metadata.return_hidden_states_index == 0
    assert metadata.return_encoder_hidden_states_index is None


@torch.no_grad()
def test_first_block_cache_runs_on_the_audio_model(tiny_sources):
    from diffusers.hooks import FirstBlockCacheConfig

    from skyaudio_cli.model.checkpoint import load_transformer

    model = load_transformer(tiny_sources, dtype=torch.float32)
    inputs = make_inputs(batch=1)
    reference = model(**inputs).sample
    model.enable_cache(FirstBlockCacheConfig(threshold=0.05))
    with model.cache_context("cond"):
        first = model(**inputs).sample  # nothing cached yet: computed in full
        second = model(**inputs).sample  # identical input: the tail blocks are skipped, residual reused
    torch.testing.assert_close(first, reference, rtol=0, atol=1e-6)
    torch.testing.assert_close(second, reference, rtol=0, atol=1e-5)
