"""Video in: probe a file and stream its frames as upright RGB arrays with constant memory.

ffmpeg rotates frames by the container's display matrix when decoding (phone videos are stored
sideways), so every size reported here is the upright, displayed size, and frames come out upright.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO

import numpy as np

from skyaudio_cli.errors import InputError
from skyaudio_cli.media.ffmpeg import (
    FfmpegResult,
    StreamInfo,
    execute_ffmpeg,
    failure_reason,
    ffmpeg_command,
    ffmpeg_file_url,
    read_log_file,
)
from skyaudio_cli.media.paths import check_output_path, require_input_file
from skyaudio_cli.media.video_writer import VideoWriter

# The video API in one place for callers; writing lives in video_writer.py, path checks in paths.py.
__all__ = [
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "VideoWriter",
    "check_output_path",
    "check_video_file",
    "iter_frames",
    "probe_video",
    "read_last_frames",
]

# A portrait with one of these suffixes is a video (its first frame is used), otherwise an image.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"})

# File names taken for videos where an option accepts an image or a video (generate --portrait).
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"})
# read_last_frames seeks this much before the frames it wants: the container duration can exceed
# the video stream's (longer audio), and seeking lands on timestamps, not frame indices.
SEEK_MARGIN_SECONDS = 2.0

_SIZE = re.compile(r"[ ,](\d+)x(\d+)(?=[ ,\[]|$)")
_RATE = re.compile(r"(\d+(?:\.\d+)?)(k?) (fps|tbr)\b")
_ROTATION = re.compile(r"Display Matrix: rotation of (-?\d+(?:\.\d+)?) degrees")
_PROGRESS_FRAME = re.compile(rb"^frame=(\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about an input video.

    width/height are the upright (displayed) size, the size of the frames `iter_frames` yields.
    rotation is the clockwise rotation, in degrees (0, 90, 180, 270), that players apply to the
    stored frames, the meaning of the legacy `rotate` tag phones write. num_frames is counted by
    decoding, so it is exact; duration is num_frames / fps.
    """

    path: Path
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    has_audio: bool
    rotation: int


@dataclass(frozen=True)
class _VideoHeader:
    width: int
    height: int
    fps: float
    rotation: int
    has_audio: bool
    container_duration: float | None


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe the first video stream of `path`, decoding it once to count frames exactly.

    The full decode also catches corrupt and truncated files before any heavy work starts.
    Raises InputError naming the file when it is missing, not a media file, has no video stream
    (cover art in an audio file does not count), is corrupt, or has no frames.
    """
    path = require_input_file(path, "video")
    result = execute_ffmpeg(
        [
            "-noautorotate",  # counting does not need upright frames
            "-i",
            ffmpeg_file_url(path),
            "-map",
            "0:V:0?",
            "-fps_mode",
            "passthrough",
            "-f",
            "null",
            "-",
            "-progress",
            "pipe:1",
        ]
    )
    header = _parse_header(result, path)
    if result.returncode != 0:
        raise InputError(f"cannot decode video file {path}: {result.failure_reason()}")
    if result.damage:
        raise InputError(f"video file {path} is corrupt or truncated: {result.damage[-1].rstrip('.')}")
    counts = _PROGRESS_FRAME.findall(result.stdout)
    num_frames = int(counts[-1]) if counts else 0
    if num_frames == 0:
        raise InputError(f"video file has no frames: {path}")
    return VideoInfo(
        path=path,
        width=header.width,
        height=header.height,
        fps=header.fps,
        num_frames=num_frames,
        duration=num_frames / header.fps,
        has_audio=header.has_audio,
        rotation=header.rotation,
    )


def check_video_file(path: str | os.PathLike[str]) -> None:
    """Refuse a file with no video stream from its stream listing alone (milliseconds, no decoding).

    Validation runs this before any model code is imported; `probe_video` decodes and checks it all.
    """
    _read_header(require_input_file(path, "video"))


def iter_frames(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield the frames of `path` as upright HxWx3 uint8 RGB arrays, one at a time.

    size=(width, height) scales each frame to cover that size and centre-crops it (as
    `resize_center_crop` does for images). fps resamples to a constant rate by dropping or
    repeating frames (ffmpeg's fps filter), for inputs that are not at the model's rate.
    max_frames stops early. The file is checked before this returns; the ffmpeg process is
    killed when the iterator is closed or garbage-collected before the end.
    """
    path = require_input_file(path, "video")
    header = _read_header(path)
    return _decode_frames(path, header, size=size, fps=fps, max_frames=max_frames, seek_seconds=0.0)


def read_last_frames(
    path: str | os.PathLike[str], count: int, *, size: tuple[int, int] | None = None
) -> np.ndarray:
    """The last `count` frames of `path` (fewer if the video is shorter) as an NxHxWx3 uint8 array.

    Seeks near the end rather than decoding the whole video; if the seek turns out to have started
    too late to see `count` frames, it decodes from the start instead, so the result is exact.
    """
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    path = require_input_file(path, "video")
    header = _read_header(path)
    seek = 0.0
    if header.container_duration is not None:
        seek = max(0.0, header.container_duration - count / header.fps - SEEK_MARGIN_SECONDS)
    frames = deque(_decode_frames(path, header, size=size, seek_seconds=seek), count)
    if len(frames) < count and seek > 0.0:
        frames = deque(_decode_frames(path, header, size=size, seek_seconds=0.0), count)
    if not frames:
        raise InputError(f"video file has no frames: {path}")
    return np.stack(frames)


def _read_header(path: Path) -> _VideoHeader:
    """Stream listing only (`ffmpeg -i` with no output): milliseconds, no decoding."""
    return _parse_header(execute_ffmpeg(["-i", ffmpeg_file_url(path)]), path)


def _parse_header(result: FfmpegResult, path: Path) -> _VideoHeader:
    if not result.opened_input:
        raise InputError(f"not a video file ffmpeg can read: {path} ({result.failure_reason()})")
    streams = result.streams
    video = next((s for s in streams if s.kind == "Video" and "(attached pic)" not in s.spec), None)
    if video is None:
        raise InputError(f"file has no video stream: {path}")
    size = _SIZE.search(video.spec)
    rate = _RATE.search(video.spec)
    if size is None or rate is None:
        raise InputError(f"cannot read the frame size and rate of video file {path}: {video.spec}")
    width, height = int(size[1]), int(size[2])
    rotation = _rotation_clockwise(video)
    if rotation in (90, 270):
        width, height = height, width
    return _VideoHeader(
        width=width,
        height=height,
        fps=_frame_rate(rate[1], rate[2]),
        rotation=rotation,
        has_audio=any(s.kind == "Audio" for s in streams),
        container_duration=result.declared_duration,
    )


def _frame_rate(number: str, kilo: str) -> float:
    """ffmpeg prints rates rounded (29.97, 23.98); restore the exact NTSC rates k*1000/1001."""
    rate = float(number) * (1000 if kilo else 1)
    ntsc = round(rate * 1.001) * 1000 / 1001
    if rate != round(rate) and abs(ntsc - rate) < 0.006:
        return ntsc
    return rate


def _rotation_clockwise(video: StreamInfo) -> int:
    """ffmpeg reports the display matrix counter-clockwise; phones' `rotate` tag is clockwise."""
    for detail in video.details:
        match = _ROTATION.search(detail)
        if match:
            return round(-float(match[1])) % 360
    return 0


def _decode_frames(
    path: Path,
    header: _VideoHeader,
    *,
    size: tuple[int, int] | None,
    seek_seconds: float,
    fps: float | None = None,
    max_frames: int | None = None,
) -> Iterator[np.ndarray]:
    width, height = size or (header.width, header.height)
    filters = []
    if fps is not None:
        filters.append(f"fps={Fraction(fps).limit_denominator(1001)}")
    if size is not None:
        filters.append(f"scale={width}:{height}:force_original_aspect_ratio=increase:flags=lanczos")
        filters.append(f"crop={width}:{height}")
    args = ["-ss", f"{seek_seconds:.6f}"] if seek_seconds > 0.0 else []
    args += ["-i", ffmpeg_file_url(path), "-map", "0:V:0", "-fps_mode", "passthrough"]
    if filters:
        args += ["-vf", ",".join(filters)]
    if max_frames is not None:
        args += ["-frames:v", str(max_frames)]
    args += ["-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"]

    with tempfile.TemporaryFile() as log_file:
        process = subprocess.Popen(
            ffmpeg_command(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file
        )
        try:
            while True:
                frame = np.empty((height, width, 3), dtype=np.uint8)
                filled = _read_into(process.stdout, memoryview(frame).cast("B"))
                if filled == 0:
                    break
                if filled < frame.nbytes:
                    raise InputError(f"video file {path} ended in the middle of a frame")
                yield frame
            if process.wait() != 0:
                reason = failure_reason(read_log_file(log_file), process.returncode)
                raise InputError(f"cannot decode video file {path}: {reason}")
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()
            process.wait()


def _read_into(stream: IO[bytes], buffer: memoryview) -> int:
    """Fill `buffer` from a pipe, which may hand over less than asked per read; return bytes read."""
    filled = 0
    while filled < len(buffer):
        got = stream.readinto(buffer[filled:])
        if not got:
            break
        filled += got
    return filled
