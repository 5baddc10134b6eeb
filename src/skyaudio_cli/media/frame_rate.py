"""Output frame rates other than the model's: pick the model frame shown at each output instant."""

import math


def output_frame_count(duration: float, fps: float) -> int:
    """Frames needed so the video is at least `duration` long (and less than one frame longer)."""
    return max(1, math.ceil(round(duration * fps, 6)))


def resample_frame_indices(
    num_frames: int, source_fps: float, target_fps: float, duration: float
) -> list[int]:
    """Indices into `num_frames` model frames for a `target_fps` video lasting `duration` seconds.

    Each output frame shows the model frame whose time span contains the output frame's start, so
    lips stay in sync whatever the rate; at equal rates this is the identity.
    """
    count = output_frame_count(duration, target_fps)
    return [min(num_frames - 1, math.floor(i * source_fps / target_fps + 1e-9)) for i in range(count)]
