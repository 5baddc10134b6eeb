"""Latent fusion, held latents and chunked audio features: exact numerics on small tensors."""

import numpy as np
import pytest
import torch

from skyaudio_cli.conditioning.audio_stream import ChunkedFeatureStream
from skyaudio_cli.long_video.fusion import fused_sample, ramp_weights
from skyaudio_cli.long_video.known_latents import KnownLatents
from skyaudio_cli.long_video.windows import plan_latent_windows
from skyaudio_cli.sampling.flow_euler import add_noise, sample_euler, shifted_timesteps

TIMESTEPS = shifted_timesteps(4, 5.0)


def fuse(velocity, noise, windows):
    chunks = list(fused_sample(velocity, lambda a, b: noise[:, :, a:b].clone(), windows, TIMESTEPS))
    assert [start for start, _ in chunks] == sorted(start for start, _ in chunks)
    return torch.cat([chunk for _, chunk in chunks], dim=2)


@pytest.mark.parametrize(
    ("num_latents", "window", "overlap"), [(7, 7, 2), (30, 8, 3), (61, 21, 5), (9, 4, 0)]
)
def test_ramps_sum_to_one_everywhere(num_latents, window, overlap):
    windows = plan_latent_windows(num_latents, window=window, overlap=overlap)
    total = torch.zeros(num_latents)
    for w, weight in zip(windows, ramp_weights(windows), strict=True):
        total[w.start : w.stop] += weight
    torch.testing.assert_close(total, torch.ones(num_latents))


@pytest.mark.parametrize(("num_latents", "window", "overlap"), [(30, 8, 3), (61, 21, 5), (5, 21, 5)])
def test_fusion_equals_one_pass_when_windows_agree(num_latents, window, overlap):
    """A velocity that depends only on the latents themselves is the same in every window, so
    blending changes nothing: fused sampling equals sampling the whole sequence at once."""
    noise = torch.randn(1, 2, num_latents, 3, 3, generator=torch.Generator().manual_seed(0))
    windows = plan_latent_windows(num_latents, window=window, overlap=overlap)
    whole = sample_euler(lambda x, t: 0.5 * x - t / 1000.0, noise.clone(), TIMESTEPS)
    fused = fuse(lambda x, t, k: 0.5 * x - t / 1000.0, noise, windows)
    torch.testing.assert_close(fused, whole, rtol=1e-6, atol=1e-6)
    constant = fuse(lambda x, t, k: torch.ones_like(x), noise, windows)
    torch.testing.assert_close(
        constant, sample_euler(lambda x, t: torch.ones_like(x), noise.clone(), TIMESTEPS)
    )


def test_overlaps_blend_the_two_windows_with_ramps():
    windows = plan_latent_windows(10, window=6, overlap=2)  # [0, 6) and [4, 10)
    noise = torch.zeros(1, 1, 10, 1, 1)
    fused = fuse(lambda x, t, k: torch.full_like(x, float(k)), noise, windows).flatten()
    # Total Euler time is 1 (from t=1000 to 0), so each latent ends at -(its blended velocity).
    expected = -torch.tensor([0, 0, 0, 0, 1 / 3, 2 / 3, 1, 1, 1, 1])
    torch.testing.assert_close(fused, expected)


def test_fusion_keeps_only_a_band_of_latents_in_flight():
    windows = plan_latent_windows(400, window=8, overlap=2)
    drawn, handed_out, in_flight = [0], [0], []

    def initial(a, b):
        drawn[0] = b
        return torch.zeros(1, 1, b - a, 1, 1)

    for start, chunk in fused_sample(lambda x, t, k: x, initial, windows, TIMESTEPS):
        in_flight.append(drawn[0] - start)
        handed_out[0] = start + chunk.shape[2]
    assert handed_out[0] == 400
    assert max(in_flight) <= 8 * 2 * len(TIMESTEPS)  # bounded by steps, not by the video's length


def test_held_latents_noised_to_t_inside_the_mask_only():
    clean = torch.randn(1, 4, 2, 3, 3)
    held = KnownLatents.leading_frames(clean, 5, noised=True, generator=torch.Generator().manual_seed(1))
    latents = torch.randn(1, 4, 5, 3, 3)
    out = held.impose(latents, 300.0)
    noise = torch.randn(1, 4, 5, 3, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out[:, :, :2], add_noise(clean, noise[:, :, :2], 300.0))
    torch.testing.assert_close(out[:, :, 2:], latents[:, :, 2:], rtol=0, atol=0)
    torch.testing.assert_close(held.impose(latents, 0.0)[:, :, :2], clean)


class CountingEncoder:
    """Features = the mean of each frame's samples, so chunking is visible exactly."""

    num_layers, channels = 1, 1

    def __init__(self):
        self.calls = []

    def encode(self, wave, num_frames):
        self.calls.append(num_frames)
        frames = torch.from_numpy(wave[: num_frames * 640].reshape(num_frames, 640).mean(1))
        return frames.view(num_frames, 1, 1) + len(self.calls) * 1000.0  # which call made it


def test_audio_up_to_one_chunk_is_encoded_once_whole():
    encoder = CountingEncoder()
    stream = ChunkedFeatureStream(
        encoder, np.arange(20 * 640, dtype=np.float32), 20, 25.0, chunk_frames=20, crossfade_frames=3
    )
    rows = stream.rows(list(range(20)))
    assert encoder.calls == [20]
    torch.testing.assert_close(rows.flatten(), torch.arange(20) * 640 + 319.5 + 1000.0)


def test_chunks_crossfade_over_their_shared_frames():
    encoder = CountingEncoder()
    wave = np.arange(50 * 640, dtype=np.float32)
    stream = ChunkedFeatureStream(encoder, wave, 50, 25.0, chunk_frames=20, crossfade_frames=3)
    rows = stream.rows(list(range(50))).flatten()
    assert encoder.calls == [20, 23, 13]  # chunk 1 starts 3 frames early; chunk 2 holds frames 37..49
    content = torch.arange(50) * 640 + 319.5
    torch.testing.assert_close(rows[:17], content[:17] + 1000.0)  # chunk 0 only
    weights = torch.tensor([1, 2, 3]) / 4  # frames 17, 18, 19 fade into chunk 1
    torch.testing.assert_close(rows[17:20], content[17:20] + 1000.0 * (1 - weights) + 2000.0 * weights)
    torch.testing.assert_close(rows[20:37], content[20:37] + 2000.0)
