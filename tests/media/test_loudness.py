"""The bounded-memory loudness meter gives pyloudnorm's numbers exactly, across chunk boundaries."""

import numpy as np
import pyloudnorm
import pytest

from skyaudio_cli.media import loudness


@pytest.mark.parametrize(
    "num_samples", [6400, 6401, 48017, 2 * loudness.CHUNK_SAMPLES, 3 * loudness.CHUNK_SAMPLES + 12345]
)
def test_streaming_meter_equals_pyloudnorm(num_samples):
    rng = np.random.default_rng(num_samples)
    wave = (rng.standard_normal(num_samples) * np.linspace(0.001, 0.3, num_samples)).astype(np.float32)
    expected = pyloudnorm.Meter(16000).integrated_loudness(wave.astype(np.float64))
    assert loudness.integrated_loudness_streaming(wave, 16000) == expected


def test_silence_is_minus_infinity():
    assert loudness.integrated_loudness_streaming(np.zeros(20000, np.float32), 16000) == float("-inf")
