"""Synthetic inputs for the window-loop tests."""

import numpy as np

SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps


def tone(num_frames: int) -> np.ndarray:
    """A steady tone exactly `num_frames` video frames long at 25 fps."""
    return (0.2 * np.sin(np.arange(num_frames * SAMPLES_PER_FRAME) / 7.0)).astype(np.float32)
