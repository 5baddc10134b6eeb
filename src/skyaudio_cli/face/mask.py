"""Lower-face masks (mouth, jaw, chin; never the eyes) as uint8 images, 255 = regenerate.

Masks are uint8 so that "outside the mask" is exact: a 0 pixel composites to the source pixel
bit for bit (see composite.py), whereas a float feather never quite reaches zero.
"""

from __future__ import annotations

import cv2
import numpy as np

from skyaudio_cli.conditioning.vae import SPATIAL_STRIDE, TEMPORAL_STRIDE
from skyaudio_cli.face.geometry import Box

# The lower-face ellipse in face-box units (Haar box: brows at ~0.25, eyes at ~0.4, mouth at ~0.78,
# chin at ~1.15 of its height). It spans from the nose (0.56) to below the chin (1.20) and the
# width of the jaw; with its feather it stays clear of the eyes.
ELLIPSE_CENTRE = (0.5, 0.88)
ELLIPSE_SEMI_AXES = (0.36, 0.32)
# Growth and soft edge, in units of the ellipse's own radius: fully regenerated up to 1 + DILATE,
# fading to nothing at 1 + DILATE + FEATHER (the top edge fades out by ~0.45 box heights).
DILATE = 0.10
FEATHER = 0.25
# A user mask (video frame or --face-box) is grown, then faded out, over these fractions of the
# frame's short side.
USER_MASK_DILATE = 0.005
USER_MASK_FEATHER = 0.015


def lower_face_mask(face: Box, width: int, height: int) -> np.ndarray:
    """The feathered lower-face mask of `face` over a width x height image (same coordinates)."""
    cx = face.x + ELLIPSE_CENTRE[0] * face.w
    cy = face.y + ELLIPSE_CENTRE[1] * face.h
    ax, ay = ELLIPSE_SEMI_AXES[0] * face.w, ELLIPSE_SEMI_AXES[1] * face.h
    xs = (np.arange(width, dtype=np.float32) + 0.5 - cx) / ax
    ys = (np.arange(height, dtype=np.float32) + 0.5 - cy) / ay
    radius = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    return _soft_edge(radius - (1.0 + DILATE), FEATHER)


def soften_user_mask(mask: np.ndarray) -> np.ndarray:
    """Grow and feather a user's grey/binary mask frame (HxW or HxWx3 uint8, bright = edit).

    Everything the user marked stays fully regenerated; the fade lies outside it.
    """
    grey = mask if mask.ndim == 2 else mask.max(axis=2)
    outside = (grey < 128).astype(np.uint8)
    if outside.all():
        return np.zeros_like(outside)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    short_side = min(outside.shape)
    grow = max(1.0, USER_MASK_DILATE * short_side)
    return _soft_edge(distance - grow, max(1.0, USER_MASK_FEATHER * short_side))


def _soft_edge(beyond: np.ndarray, feather: float) -> np.ndarray:
    """255 where `beyond` <= 0, 0 where it is >= feather, a smoothstep fade between."""
    ramp = np.clip(1.0 - beyond / feather, 0.0, 1.0)
    smooth = ramp * ramp * (3.0 - 2.0 * ramp)  # no visible seam where the fade starts or ends
    return np.round(smooth * 255).astype(np.uint8)


def mask_bounding_box(mask: np.ndarray) -> Box | None:
    """The box around a mask's nonzero pixels, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return Box(
        float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)
    )


def latent_mask(pixel_masks: np.ndarray) -> np.ndarray:
    """Which latents to regenerate: bool [latent_frames, H/8, W/8] from uint8 [1 + 4k, H, W] masks.

    A latent is regenerated if any pixel it encodes is (any of its frames, any pixel of its 8x8
    cell), then grown by one cell, so the decoder's receptive field around the mask edge comes from
    regenerated latents too and the feathered composite has nothing stale to blend in.
    """
    frames, height, width = pixel_masks.shape
    if (frames - 1) % TEMPORAL_STRIDE or height % SPATIAL_STRIDE or width % SPATIAL_STRIDE:
        raise ValueError(f"masks must be [1 + 4k, 8m, 8n], got {pixel_masks.shape}")
    active = pixel_masks > 0
    groups = np.concatenate([np.repeat(active[:1], TEMPORAL_STRIDE, axis=0), active[1:]])
    groups = groups.reshape(
        -1, TEMPORAL_STRIDE, height // SPATIAL_STRIDE, SPATIAL_STRIDE, width // SPATIAL_STRIDE, SPATIAL_STRIDE
    )
    cells = groups.any(axis=(1, 3, 5)).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    return np.stack([cv2.dilate(frame, kernel) for frame in cells]).astype(bool)
