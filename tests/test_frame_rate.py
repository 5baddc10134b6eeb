import pytest

from skyaudio_cli.media.frame_rate import output_frame_count, resample_frame_indices


@pytest.mark.parametrize(
    ("duration", "fps", "frames"), [(2.0, 25, 50), (2.01, 25, 51), (0.01, 25, 1), (3.24, 25, 81)]
)
def test_output_frame_count_covers_duration_within_one_frame(duration, fps, frames):
    assert output_frame_count(duration, fps) == frames
    assert 0 <= frames / fps - duration < 1 / fps


def test_same_rate_is_identity():
    assert resample_frame_indices(50, 25, 25, 2.0) == list(range(50))


def test_higher_rate_repeats_frames_in_time_order():
    indices = resample_frame_indices(50, 25, 30, 2.0)
    assert len(indices) == 60
    assert indices == sorted(indices) and indices[0] == 0 and indices[-1] == 49
    # Output frame i starts at i/30 s and must show the model frame covering that instant.
    assert all(idx / 25 <= i / 30 < (idx + 1) / 25 for i, idx in enumerate(indices))
