"""Frames as they are generated, re-timed and resized on the way to the writer, one at a time.

Model frames arrive in batches from a `VideoStream`; each output frame shows the model frame whose
time span contains it (`frame_rate.resample_frame_indices`), so any output rate keeps lips in sync.
"""

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image


def retime(batches: Iterable[np.ndarray], indices: Sequence[int]) -> Iterator[np.ndarray]:
    """Frame `indices[i]` of the concatenated batches for every i (indices non-decreasing)."""
    wanted = iter(indices)
    target = next(wanted, None)
    position = 0
    for batch in batches:
        for frame in batch:
            while target == position:
                yield frame
                target = next(wanted, None)
            position += 1
            if target is None:
                return


def resized(frames: Iterable[np.ndarray], width: int, height: int) -> Iterator[np.ndarray]:
    """Frames plain-resized to width x height (no-op when they already have that size)."""
    for frame in frames:
        if frame.shape[:2] != (height, width):
            frame = np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS))
        yield frame
