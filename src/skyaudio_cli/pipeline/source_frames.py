"""Source frames in the order an edit's timeline asks for them, with bounded memory.

A timeline that only moves forward (trimmed, frozen tail) is served straight from the decoder.
A ping-pong loop walks backwards, which a decoder cannot: the source is then decoded once into an
uncompressed temporary file (frames x height x width x 3 bytes, in the system temp folder) and
read back through a memory map, so RAM stays flat whatever the length.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from skyaudio_cli.media.video import iter_frames


def frames_in_order(
    path: Path, indices: list[int], *, fps: float, size: tuple[int, int] | None = None
) -> Iterator[np.ndarray]:
    """Yield frame `i` of `path` (resampled to constant `fps`) for each i in `indices`."""
    if all(b >= a for a, b in zip(indices, indices[1:], strict=False)):
        yield from _forward(iter_frames(path, fps=fps, size=size), indices)
        return
    with tempfile.TemporaryFile(prefix="skyaudio-frames-") as spill:
        frames = _spill(iter_frames(path, fps=fps, size=size), spill, max(indices) + 1)
        for index in indices:
            yield np.array(frames[min(index, len(frames) - 1)])


def _forward(frames: Iterator[np.ndarray], indices: Iterable[int]) -> Iterator[np.ndarray]:
    """Serve non-decreasing indices from a forward stream; past its end, repeat its last frame."""
    position, current = -1, None
    try:
        for index in indices:
            while position < index:
                following = next(frames, None)
                if following is None:
                    break
                position, current = position + 1, following
            yield current
    finally:
        frames.close()


def _spill(frames: Iterator[np.ndarray], file, count: int) -> np.ndarray:
    """Write up to `count` frames to `file` and map them back read-only as [N, H, W, 3]."""
    written, shape = 0, None
    try:
        for frame in frames:
            shape = frame.shape
            file.write(np.ascontiguousarray(frame).data)
            written += 1
            if written == count:
                break
    finally:
        frames.close()
    file.flush()
    return np.memmap(file, dtype=np.uint8, mode="r", shape=(written, *shape))
