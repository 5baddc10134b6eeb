"""Between full-resolution source frames and the model's view of the face.

`crop_for_model` cuts the face crop out of a source frame and resizes it to the model's size;
`paste_back` resizes a generated crop back and blends it into the untouched source frame through
a uint8 mask, in integer arithmetic, so where the mask is 0 the output is the source bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np

from skyaudio_cli.face.geometry import Box


def crop_for_model(frame: np.ndarray, crop: Box, width: int, height: int) -> np.ndarray:
    """The crop of an HxWx3 frame resized to width x height (area filter down, cubic up)."""
    left, top, right, bottom = crop.pixel_bounds()
    return _resize(frame[top:bottom, left:right], width, height)


def paste_back(frame: np.ndarray, generated: np.ndarray, crop: Box, mask: np.ndarray) -> np.ndarray:
    """A copy of `frame` with `generated` (the model-size crop) blended in where `mask` (crop-size) > 0."""
    left, top, right, bottom = crop.pixel_bounds()
    if mask.shape != (bottom - top, right - left):
        raise ValueError(f"mask {mask.shape} does not match crop {crop}")
    result = frame.copy()
    region = result[top:bottom, left:right]
    rows, cols = np.nonzero(mask)  # only masked pixels are touched: the rest is the source as is
    if rows.size == 0:
        return result
    new = _resize(generated, right - left, bottom - top)[rows, cols].astype(np.uint32)
    old = region[rows, cols].astype(np.uint32)
    weight = mask[rows, cols].astype(np.uint32)[:, None]
    region[rows, cols] = ((new * weight + old * (255 - weight) + 127) // 255).astype(np.uint8)
    return result


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image.copy()
    shrinking = width < image.shape[1] or height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
