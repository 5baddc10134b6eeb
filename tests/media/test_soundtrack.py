"""Soundtracks assembled by ffmpeg from files: every segment lands on its exact samples."""

import numpy as np
import pytest

from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.media.ffmpeg import run_ffmpeg
from skyaudio_cli.media.soundtrack import Segment, Soundtrack

RATE = 8000


def render(track: Soundtrack, total_samples: int) -> np.ndarray:
    """The track as ffmpeg assembles it for the video writer, as raw float samples (no codec)."""
    inputs, graph = track.ffmpeg_arguments(0, RATE, total_samples)
    done = run_ffmpeg(
        [*inputs, "-filter_complex", graph, "-map", "[track]", "-f", "f32le", "pipe:1"], what="render"
    )
    return np.frombuffer(done.stdout, "<f4")


@pytest.fixture(scope="module")
def files(tmp_path_factory, make_wav):
    folder = tmp_path_factory.mktemp("soundtrack")
    rng = np.random.default_rng(0)
    first = make_wav(folder / "first.wav", 0.5 * rng.uniform(-1, 1, RATE // 2), sample_rate=RATE)  # 0.5 s
    second = make_wav(folder / "second.wav", 0.5 * rng.uniform(-1, 1, RATE), sample_rate=RATE)  # 1 s
    return first, second


def test_segments_play_in_order_from_their_offsets(files):
    first, second = (load_audio(path, RATE) for path in files)
    track = Soundtrack((Segment(files[0], 0.25), Segment(files[1], 0.5, start=0.3)))
    expected = np.concatenate([first[:2000], second[2400:6400]])
    np.testing.assert_array_equal(render(track, 6000), expected)


def test_short_segments_are_padded_and_the_track_fitted_to_the_video(files):
    first, second = (load_audio(path, RATE) for path in files)
    track = Soundtrack((Segment(None, 0.1), Segment(files[0], 0.75), Segment(files[1], start=0.875)))
    expected = np.concatenate([np.zeros(800), first, np.zeros(2000), second[7000:], np.zeros(500)])
    np.testing.assert_array_equal(render(track, expected.size), expected.astype(np.float32))
    np.testing.assert_array_equal(render(track, 3000), expected[:3000].astype(np.float32))


def test_only_a_last_file_segment_may_run_to_the_end_of_its_file(files):
    with pytest.raises(ValueError):
        Soundtrack((Segment(files[0]), Segment(files[1]))).ffmpeg_arguments(0, RATE, 100)
