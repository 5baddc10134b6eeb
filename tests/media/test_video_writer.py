from __future__ import annotations

import os
import re
import resource
import signal
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from skyaudio_cli.errors import InputError, RuntimeFailure
from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.media.paths import check_output_path
from skyaudio_cli.media.video import iter_frames, probe_video
from skyaudio_cli.media.video_writer import VideoWriter

FPS = 25
WIDTH, HEIGHT = 160, 128
NUM_FRAMES = 50


def smooth_frames(count: int = NUM_FRAMES, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Drifting colour waves: smooth enough for H.264 at crf 18 to keep well above 30 dB."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = [
        np.stack(
            [
                128 + 90 * np.sin(x / 11 + i / 6),
                128 + 90 * np.cos(y / 9 - i / 8),
                128 + 70 * np.sin((x + y) / 15 + i / 5),
            ],
            axis=-1,
        )
        for i in range(count)
    ]
    return np.round(frames).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def top_level_boxes(path: Path) -> list[str]:
    """Types of the top-level MP4 boxes in file order (ISO/IEC 14496-12 box headers)."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:  # 64-bit size follows the type
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size == 0:
            break
        offset += size
    return boxes


@pytest.fixture(scope="module")
def speech_2s(media_speech_wav) -> np.ndarray:
    return load_audio(media_speech_wav)[: 2 * 16000]


def test_round_trip_with_audio(tmp_path, speech_2s, ffmpeg_listing):
    frames = smooth_frames()
    out = tmp_path / "talk.mp4"

    with VideoWriter(out, fps=FPS, width=WIDTH, height=HEIGHT, audio=speech_2s) as writer:
        writer.write(frames[:20])  # a batch
        for frame in frames[20:]:  # and single frames
            writer.write(frame)

    assert sorted(os.listdir(tmp_path)) == ["talk.mp4"]
    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.num_frames) == (WIDTH, HEIGHT, FPS, NUM_FRAMES)
    assert info.duration == pytest.approx(2.0, abs=1 / FPS)
    assert info.has_audio and info.rotation == 0

    listing = ffmpeg_listing(out)
    assert re.search(r"Video: h264 .*yuv420p", listing)
    assert re.search(r"Audio: aac", listing)
    assert re.search(r"Duration: 00:00:0(1\.9[6-9]|2\.0[0-4])", listing)

    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat"), f"no faststart: {boxes}"

    decoded = np.stack(list(iter_frames(out)))
    assert decoded.shape == frames.shape
    assert psnr(decoded, frames) > 30.0

    soundtrack = load_audio(out)
    assert abs(len(soundtrack) / 16000 - 2.0) < 1 / FPS
    length = min(len(soundtrack), len(speech_2s))
    assert np.corrcoef(soundtrack[:length], speech_2s[:length])[0, 1] > 0.95


def test_colours_survive_the_yuv_round_trip(tmp_path):
    # A wrong colour matrix on either side (BT.601 vs BT.709) shifts saturated colours by 10+ levels.
    colours = np.array([(200, 50, 50), (30, 180, 60), (40, 60, 220), (235, 235, 235)], np.uint8)
    frames = np.repeat(colours[:, None, None, :], 64, axis=1).repeat(64, axis=2)
    out = tmp_path / "colours.mp4"
    with VideoWriter(out, fps=FPS, width=64, height=64) as writer:
        writer.write(frames)
    decoded = np.stack(list(iter_frames(out))).astype(np.int16)
    assert np.abs(decoded.mean(axis=(1, 2)) - colours).max() < 3


def test_audio_longer_than_video_is_cut_shorter_is_padded(tmp_path, speech_2s):
    frames = smooth_frames(count=25)
    for name, audio in [("long.mp4", speech_2s), ("short.mp4", speech_2s[:8000])]:
        out = tmp_path / name
        with VideoWriter(out, fps=FPS, width=WIDTH, height=HEIGHT, audio=audio) as writer:
            writer.write(frames)
        assert abs(len(load_audio(out)) / 16000 - 1.0) < 1 / FPS, name
        assert probe_video(out).num_frames == 25


def test_odd_size_is_cropped_to_even(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, fps=30000 / 1001, width=33, height=21) as writer:
        writer.write(np.zeros((3, 21, 33, 3), np.uint8))
    info = probe_video(out)
    assert (info.width, info.height, info.num_frames) == (32, 20, 3)
    assert info.fps == 30000 / 1001


@pytest.mark.parametrize("exception", [KeyError, KeyboardInterrupt])
def test_exception_in_block_kills_ffmpeg_and_leaves_folder_as_it_was(tmp_path, exception):
    (tmp_path / "unrelated.txt").write_text("keep me")
    before = sorted(os.listdir(tmp_path))
    with (
        pytest.raises(exception),
        VideoWriter(tmp_path / "out.mp4", fps=FPS, width=WIDTH, height=HEIGHT) as writer,
    ):
        writer.write(smooth_frames(count=10))
        ffmpeg_pid = writer._process.pid
        raise exception("stop")
    assert sorted(os.listdir(tmp_path)) == before
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(ffmpeg_pid, 0)


def test_ffmpeg_write_failure_is_runtime_failure_without_partial_file(tmp_path, monkeypatch):
    # Stand-in for a full disk: the child may not write files over 20 kB (EFBIG instead of ENOSPC).
    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    real_popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: real_popen(*a, preexec_fn=limit_file_size, **k))
    noise = np.random.default_rng(0).integers(0, 256, (NUM_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)

    with (
        pytest.raises(RuntimeFailure, match=r"writing video .*out\.mp4 failed: .*(File too large|Error)"),
        VideoWriter(tmp_path / "out.mp4", fps=FPS, width=WIDTH, height=HEIGHT) as writer,
    ):
        writer.write(noise)

    assert os.listdir(tmp_path) == []


def test_no_frames_is_a_failure_and_writes_nothing(tmp_path):
    with (
        pytest.raises(RuntimeFailure, match="no frames"),
        VideoWriter(tmp_path / "out.mp4", fps=FPS, width=64, height=64),
    ):
        pass
    assert os.listdir(tmp_path) == []


def test_wrong_frames_are_rejected(tmp_path):
    with VideoWriter(tmp_path / "out.mp4", fps=FPS, width=64, height=64) as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8))
        for bad in [
            np.zeros((64, 32, 3), np.uint8),
            np.zeros((64, 64, 3), np.float32),
            np.zeros((64, 64), np.uint8),
        ]:
            with pytest.raises(ValueError):
                writer.write(bad)
    assert probe_video(tmp_path / "out.mp4").num_frames == 1


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(InputError, match=r"already exists.*out\.mp4"):
        VideoWriter(out, fps=FPS, width=64, height=64)
    assert out.read_bytes() == b"previous result"

    with VideoWriter(out, fps=FPS, width=64, height=64, overwrite=True) as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8))
    assert probe_video(out).num_frames == 1


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("a_file.txt/out.mp4", "not a directory"),
        (
            "a_file.txt/new/out.mp4",
            r"cannot create output folder .*/a_file.txt/new: .*a_file.txt is not a directory",
        ),
        ("a_folder.mp4", "is a directory"),
        ("out.avi", r"must be a \.mp4 file"),
    ],
)
def test_bad_output_paths(tmp_path, relative, expected):
    (tmp_path / "a_file.txt").write_text("x")
    (tmp_path / "a_folder.mp4").mkdir()
    with pytest.raises(InputError, match=expected):
        check_output_path(tmp_path / relative, overwrite=True)


def test_missing_output_folders_are_created_when_the_video_is_written(tmp_path):
    out = tmp_path / "new" / "deeper" / "out.mp4"
    assert check_output_path(out, overwrite=False) == out
    assert list(tmp_path.iterdir()) == []  # checking creates nothing
    with VideoWriter(out, fps=FPS, width=64, height=64) as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8))
    assert probe_video(out).num_frames == 1 and os.listdir(out.parent) == ["out.mp4"]


def test_output_folder_that_cannot_be_created_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(
            InputError, match=r"cannot create output folder .*locked/new: .*locked is not writable"
        ):
            check_output_path(locked / "new" / "out.mp4", overwrite=False)
    finally:
        locked.chmod(0o700)


def test_output_path_accepts_new_file_and_uppercase_suffix(tmp_path):
    assert check_output_path(tmp_path / "OUT.MP4", overwrite=False) == tmp_path / "OUT.MP4"
