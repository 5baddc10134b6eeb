from __future__ import annotations

import subprocess

import numpy as np
import pytest

from skyaudio_cli.errors import InputError
from skyaudio_cli.media.video import iter_frames, probe_video, read_last_frames

# Red 40x30 box in the top-left corner of a black 160x120 frame, so orientation is visible.
MARKED = "color=c=black:s=160x120:r=25,drawbox=x=0:y=0:w=40:h=30:color=red:t=fill"


@pytest.fixture(scope="module")
def counted_video(tmp_path_factory, ffmpeg_cli):
    """37 frames of ffmpeg's moving test pattern at 25 fps, with a sine soundtrack."""
    path = tmp_path_factory.mktemp("video") / "pattern.mp4"
    ffmpeg_cli(
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=f=440:r=16000",
        "-frames:v", "37", "-t", "1.48", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path),
    )  # fmt: skip
    return path


def test_probe_counts_frames_exactly(counted_video):
    info = probe_video(counted_video)
    assert (info.width, info.height, info.fps, info.num_frames) == (160, 120, 25.0, 37)
    assert info.duration == pytest.approx(37 / 25)
    assert info.has_audio and info.rotation == 0
    assert info.path == counted_video


def test_ntsc_rate_is_exact(tmp_path, ffmpeg_cli):
    path = tmp_path / "ntsc.mp4"
    ffmpeg_cli(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=30000/1001",
        "-frames:v",
        "10",
        "-c:v",
        "libx264",
        str(path),
    )
    info = probe_video(path)
    assert info.fps == 30000 / 1001 and not info.has_audio


def test_iter_frames_yields_every_frame_as_rgb(counted_video):
    frames = list(iter_frames(counted_video))
    assert len(frames) == 37
    assert all(f.shape == (120, 160, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[1])  # the pattern moves
    frames[0][0, 0] = 7  # callers may edit frames in place


def test_iter_frames_size_fps_and_limit(counted_video):
    assert {f.shape for f in iter_frames(counted_video, size=(64, 96))} == {(96, 64, 3)}
    assert len(list(iter_frames(counted_video, fps=50))) == 74
    assert len(list(iter_frames(counted_video, max_frames=5))) == 5


def test_read_last_frames_matches_full_decode(counted_video):
    everything = np.stack(list(iter_frames(counted_video)))
    np.testing.assert_array_equal(read_last_frames(counted_video, 5), everything[-5:])
    np.testing.assert_array_equal(read_last_frames(counted_video, 100), everything)


def test_closing_early_stops_ffmpeg(counted_video, monkeypatch):
    started = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    frames = iter_frames(counted_video)
    next(frames)
    frames.close()
    reader = started[-1]  # after the quick header read
    assert reader.returncode is not None and reader.returncode != 0  # killed, and reaped


@pytest.mark.parametrize(
    ("display_rotation", "clockwise", "upright"),
    [
        (-90, 90, lambda stored: np.rot90(stored, k=-1)),  # what a phone held upright records
        (90, 270, lambda stored: np.rot90(stored, k=1)),
        (180, 180, lambda stored: np.rot90(stored, k=2)),
    ],
)
def test_rotated_video_is_reported_and_read_upright(
    tmp_path, ffmpeg_cli, display_rotation, clockwise, upright
):
    stored = tmp_path / "stored.mp4"
    ffmpeg_cli(
        "-f", "lavfi", "-i", MARKED, "-frames:v", "3", "-c:v", "libx264", "-pix_fmt", "yuv444p", str(stored)
    )
    rotated = tmp_path / "rotated.mp4"
    ffmpeg_cli("-display_rotation", str(display_rotation), "-i", str(stored), "-c", "copy", str(rotated))
    stored_frame = next(iter_frames(stored))
    assert stored_frame[:30, :40, 0].mean() > 200  # red box top-left as stored

    info = probe_video(rotated)
    frame = next(iter_frames(rotated))

    assert info.rotation == clockwise
    assert frame.shape[1::-1] == (info.width, info.height)
    assert np.abs(frame.astype(np.int16) - upright(stored_frame)).max() < 8


def _bad_videos(tmp_path, ffmpeg_cli, counted_video) -> dict:
    text = tmp_path / "clip.mp4"
    text.write_text("not a video\n")
    audio_only = tmp_path / "voice.m4a"
    ffmpeg_cli("-f", "lavfi", "-i", "sine=f=440:r=16000", "-t", "0.5", str(audio_only))
    no_frames = tmp_path / "no_frames.mp4"
    ffmpeg_cli(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-frames:v",
        "0",
        "-c:v",
        "libx264",
        str(no_frames),
    )
    # Index first (faststart), so the cut loses frame data the index still promises.
    indexed_first = tmp_path / "indexed_first.mp4"
    ffmpeg_cli("-i", str(counted_video), "-c", "copy", "-movflags", "+faststart", str(indexed_first))
    truncated = tmp_path / "truncated.mp4"
    data = indexed_first.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    return {
        "missing": tmp_path / "gone.mp4",
        "text": text,
        "audio_only": audio_only,
        "no_frames": no_frames,
        "truncated": truncated,
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "not found"),
        ("text", "not a video file"),
        ("audio_only", "no video stream"),
        ("no_frames", "no video stream"),
        ("truncated", "corrupt or truncated"),
    ],
)
def test_bad_videos_raise_input_error_naming_the_file(tmp_path, ffmpeg_cli, counted_video, case, expected):
    path = _bad_videos(tmp_path, ffmpeg_cli, counted_video)[case]
    with pytest.raises(InputError, match=expected) as raised:
        probe_video(path)
    assert path.name in str(raised.value)
    if case in ("missing", "text", "audio_only"):  # the reader checks before returning, not on first frame
        with pytest.raises(InputError, match=expected):
            iter_frames(path)
