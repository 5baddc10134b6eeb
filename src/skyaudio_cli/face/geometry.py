"""Axis-aligned boxes in pixel coordinates, and the crop around a face that the model sees."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The crop is this many face-box widths wide: enough context (hair, neck, background) for the model
# to keep the head coherent, while the mouth still gets a useful share of the model's pixels.
CROP_FACE_WIDTHS = 2.0
# Haar face boxes end around the lips; the chin sits ~0.2 box heights below, so the crop is centred
# lower than the box to keep mouth and chin well inside it.
CROP_CENTRE_DROP = 0.15


@dataclass(frozen=True)
class Box:
    """x, y: top-left corner; w, h: size. Floats, so smoothed tracks keep sub-pixel motion."""

    x: float
    y: float
    w: float
    h: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def as_array(self) -> np.ndarray:
        return np.array([self.x, self.y, self.w, self.h], dtype=np.float64)

    @classmethod
    def from_array(cls, values) -> Box:
        x, y, w, h = (float(v) for v in values)
        return cls(x, y, w, h)

    def scaled(self, factor: float) -> Box:
        """The same box in an image `factor` times larger (detections on a downscaled frame)."""
        return Box(self.x * factor, self.y * factor, self.w * factor, self.h * factor)

    def pixel_bounds(self) -> tuple[int, int, int, int]:
        """Integer (left, top, right, bottom) covering the box, for slicing arrays."""
        left, top = int(np.floor(self.x + 1e-6)), int(np.floor(self.y + 1e-6))
        right, bottom = int(np.ceil(self.x + self.w - 1e-6)), int(np.ceil(self.y + self.h - 1e-6))
        return left, top, right, bottom


def crop_box_around(
    box: Box,
    frame_width: int,
    frame_height: int,
    aspect_ratio: float,
    *,
    widths: float = CROP_FACE_WIDTHS,
    drop: float = CROP_CENTRE_DROP,
) -> Box:
    """The whole-pixel crop (width/height = aspect_ratio) around `box`, inside the frame.

    The crop is `widths` box widths wide (or high enough for the box's height) and centred `drop`
    box heights below the box's centre. Near a frame edge it slides inward rather than shrinking,
    so the face keeps its scale in the model's view; only a box too large for the frame gets a
    smaller crop.
    """
    centre_x, centre_y = box.centre
    centre_y += drop * box.h
    width = widths * max(box.w, box.h * aspect_ratio)
    height = width / aspect_ratio
    scale = min(1.0, frame_width / width, frame_height / height)
    width, height = max(2, round(width * scale)), max(2, round(height * scale))
    left = min(max(round(centre_x - width / 2), 0), frame_width - width)
    top = min(max(round(centre_y - height / 2), 0), frame_height - height)
    return Box(left, top, width, height)
