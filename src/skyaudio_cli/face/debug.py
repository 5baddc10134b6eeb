"""`--debug-mask`: the source frames with the edit mask tinted on them and the crop outlined."""

from __future__ import annotations

import cv2
import numpy as np

from skyaudio_cli.face.geometry import Box

TINT = np.array([255, 0, 64], np.float32)  # magenta-red: visible on skin, hair and backgrounds
OUTLINE = (0, 255, 0)


def overlay_mask(frame: np.ndarray, crop: Box, mask: np.ndarray, has_face: bool) -> np.ndarray:
    """A copy of `frame` with `mask` (crop-sized uint8) tinted at half strength; crop box in green
    where there is a face (frames passing through untouched show no box)."""
    preview = frame.copy()
    left, top, right, bottom = crop.pixel_bounds()
    region = preview[top:bottom, left:right].astype(np.float32)
    alpha = mask.astype(np.float32)[..., None] / 255 * 0.5
    preview[top:bottom, left:right] = np.round(region * (1 - alpha) + TINT * alpha).astype(np.uint8)
    if has_face:
        thickness = max(1, round(min(frame.shape[:2]) / 240))
        cv2.rectangle(preview, (left, top), (right - 1, bottom - 1), OUTLINE, thickness)
    return preview
