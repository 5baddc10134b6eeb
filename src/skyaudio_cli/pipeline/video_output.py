"""Frames as they are generated -> an mp4: re-timed, resized, written without holding the video.

Model frames arrive in batches from a `VideoStream`; each output frame shows the model frame whose
time span contains it (`resample_frame_indices`), so any output rate keeps lips in sync. Under
torchrun every rank generates (the DiT is split across them) but only rank 0 writes.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from skyaudio_cli.errors import RuntimeFailure
from skyaudio_cli.media.soundtrack import Soundtrack
from skyaudio_cli.media.video import VideoWriter
from skyaudio_cli.pipeline import parallel


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


class _Discard:
    frames_written = 0

    def write(self, frames: np.ndarray) -> None:
        self.frames_written += 1 if frames.ndim == 3 else len(frames)


@contextmanager
def video_sink(
    path: Path,
    *,
    fps: float,
    width: int,
    height: int,
    audio: np.ndarray | Soundtrack,
    audio_sample_rate: int,
    overwrite: bool,
) -> Iterator[VideoWriter | _Discard]:
    """A VideoWriter on the main process, a counter elsewhere; I/O errors become RuntimeFailure."""
    if not parallel.is_main_process():
        yield _Discard()
        return
    try:
        with VideoWriter(
            path, fps=fps, width=width, height=height, audio=audio,
            audio_sample_rate=audio_sample_rate, overwrite=overwrite,
        ) as writer:  # fmt: skip
            yield writer
    except OSError as failure:
        raise RuntimeFailure(f"{path}: could not write video ({failure.strerror or failure})") from failure
