"""The audio encoder interface: frame counts, the 50 Hz -> video-frame stretch, input checks, factory."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from skyaudio_cli.conditioning.audio_encoders import load_audio_encoder
from skyaudio_cli.conditioning.audio_features import (
    num_video_frames,
    require_speech,
    stretch_to_frames,
)
from skyaudio_cli.conditioning.checkpoint_files import read_config_json
from skyaudio_cli.errors import InputError, WeightsError


@pytest.mark.parametrize(
    ("num_samples", "expected"),
    [(32000, 50), (32001, 51), (31999, 50), (640, 1), (641, 2), (1, 1), (0, 0), (16000 * 65, 1625)],
)
def test_num_video_frames_is_ceil_of_duration_times_fps(num_samples, expected):
    assert num_video_frames(num_samples) == expected


@given(st.integers(0, 10**9), st.sampled_from([8000, 16000, 44100, 48000]), st.integers(1, 120))
def test_num_video_frames_matches_integer_ceil(num_samples, sample_rate, fps):
    assert num_video_frames(num_samples, sample_rate, fps) == -(-num_samples * fps // sample_rate)


def test_ntsc_float_rate_rounds_as_its_fraction():
    # 1001 s at 30000/1001 fps is exactly 30000 frames; the float's binary error must not add one.
    assert num_video_frames(16000 * 1001, 16000, 30000 / 1001) == 30000
    assert num_video_frames(16000 * 1001, 16000, Fraction(30000, 1001)) == 30000
    assert num_video_frames(16000 * 1001 + 1, 16000, 30000 / 1001) == 30001


def lerp_align_corners(rows: np.ndarray, num_frames: int) -> np.ndarray:
    """Output j samples input position j*(T-1)/(num_frames-1), linearly between neighbours."""
    length = rows.shape[0]
    out = np.empty((num_frames, *rows.shape[1:]), dtype=np.float64)
    for j in range(num_frames):
        position = j * (length - 1) / (num_frames - 1) if num_frames > 1 else 0.0
        low = math.floor(position)
        high = min(low + 1, length - 1)
        weight = position - low
        out[j] = (1 - weight) * rows[low] + weight * rows[high]
    return out


@pytest.mark.parametrize(("length", "num_frames"), [(100, 50), (99, 50), (7, 7), (5, 13), (1, 4), (6, 1)])
def test_stretch_to_frames_is_linear_with_aligned_corners(length, num_frames):
    rows = torch.randn(length, 3, 4, generator=torch.Generator().manual_seed(length))
    stretched = stretch_to_frames(rows, num_frames)
    assert stretched.shape == (num_frames, 3, 4)
    # torch computes sampling positions in float32: ~1e-5 off the float64 formula, far below the
    # 0.1-1 sample shift that align_corners=False or another mode would give.
    expected = lerp_align_corners(rows.double().numpy(), num_frames)
    np.testing.assert_allclose(stretched.numpy(), expected, atol=1e-4)


def test_stretch_keeps_first_and_last_rows():
    rows = torch.arange(20.0).reshape(10, 2)
    stretched = stretch_to_frames(rows, 4)
    assert torch.equal(stretched[0], rows[0]) and torch.equal(stretched[-1], rows[-1])


@pytest.mark.parametrize(
    "wave", [np.zeros(0, np.float32), np.zeros((2, 100), np.float32), np.array([0.0, np.nan], np.float32)]
)
def test_require_speech_rejects_bad_input(wave):
    with pytest.raises(InputError, match="audio: "):
        require_speech(wave)


def test_zero_frames_is_an_input_error():
    with pytest.raises(InputError, match="0 video frames"):
        stretch_to_frames(torch.zeros(5, 2), 0)


def test_unreadable_config_is_a_weights_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(WeightsError, match="config.json: unreadable JSON"):
        read_config_json(tmp_path / "config.json")
    with pytest.raises(WeightsError, match="missing"):
        read_config_json(tmp_path / "absent.json")


def test_unknown_encoder_kind_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="hubert"):
        load_audio_encoder(tmp_path, "hubert")
