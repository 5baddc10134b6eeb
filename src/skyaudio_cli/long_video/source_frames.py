"""Source frames in the order an edit's timeline asks for them, with bounded memory.

A timeline that only moves forward (trimmed, frozen tail) is served straight from the decoder.
A ping-pong loop walks backwards, which a decoder cannot: the source is then decoded once into an
uncompressed temporary file (frames x height x width x 3 bytes, in the system temp folder) and
read back through a memory map, so RAM stays flat whatever the length.
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from skyaudio_cli.long_video.windows import mirrored_index
from skyaudio_cli.media.video import iter_frames

Item = TypeVar("Item")


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


class WindowReader(Generic[Item]):
    """The items of a `total`-frame model timeline (one per frame, read once, in order) served
    window by window.

    Windows ask for overlapping, forward-moving frame ranges (and the last one for a mirrored tail
    past the end, as the audio is), so only the last `keep` items are buffered.
    """

    def __init__(self, items: Iterator[Item], total: int, keep: int) -> None:
        self._items, self._total = items, total
        self._buffer: deque[Item] = deque(maxlen=keep)
        self._read = 0  # items read so far

    def window(self, start: int, length: int) -> list[Item]:
        """Items of frames start..start+length-1; frames past the end mirror back into the timeline."""
        indices = [mirrored_index(k, self._total) for k in range(start, start + length)]
        while self._read <= max(indices):
            self._buffer.append(next(self._items))
            self._read += 1
        first_buffered = self._read - len(self._buffer)
        if min(indices) < first_buffered:
            raise RuntimeError(f"model frame {min(indices)} left the buffer (first kept: {first_buffered})")
        return [self._buffer[k - first_buffered] for k in indices]
