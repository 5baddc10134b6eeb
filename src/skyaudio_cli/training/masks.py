"""Face and lip masks of a clip, at pixel and at latent resolution, for the facial-mask loss.

The face mask is the tracked face box; the lip mask an ellipse around the mouth in face-box units
(the Haar box puts the mouth at ~0.78 of its height, see face/mask.py). At latent resolution a
latent's value is the fraction of the pixels it encodes that lie in the mask (its 8x8 cell over its
frames: 1 for the first latent, 4 for the others, as the Wan VAE groups them), so the weight map is
an area-true, soft version of the pixel mask.
"""

import numpy as np

from skyaudio_cli.conditioning.vae import SPATIAL_STRIDE, TEMPORAL_STRIDE
from skyaudio_cli.face.geometry import Box

LIP_CENTRE = (0.5, 0.78)
LIP_SEMI_AXES = (0.24, 0.12)


def face_mask(face: Box, width: int, height: int) -> np.ndarray:
    """float32 [height, width]: 1 inside the face box."""
    left, top, right, bottom = face.pixel_bounds()
    mask = np.zeros((height, width), np.float32)
    mask[max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)] = 1.0
    return mask


def lip_mask(face: Box, width: int, height: int) -> np.ndarray:
    """float32 [height, width]: 1 inside the mouth ellipse of the face box."""
    cx, cy = face.x + LIP_CENTRE[0] * face.w, face.y + LIP_CENTRE[1] * face.h
    ax, ay = LIP_SEMI_AXES[0] * face.w, LIP_SEMI_AXES[1] * face.h
    xs = (np.arange(width, dtype=np.float32) + 0.5 - cx) / ax
    ys = (np.arange(height, dtype=np.float32) + 0.5 - cy) / ay
    return (ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0).astype(np.float32)


def latent_coverage(masks: np.ndarray) -> np.ndarray:
    """float32 [1 + 4k, 8m, 8n] pixel masks in [0, 1] -> [1 + k, m, n]: the mean over each latent's pixels."""
    frames, height, width = masks.shape
    if (frames - 1) % TEMPORAL_STRIDE or height % SPATIAL_STRIDE or width % SPATIAL_STRIDE:
        raise ValueError(f"masks must be [1 + 4k, 8m, 8n], got {masks.shape}")
    cells = masks.reshape(
        frames, height // SPATIAL_STRIDE, SPATIAL_STRIDE, width // SPATIAL_STRIDE, SPATIAL_STRIDE
    )
    cells = cells.mean(axis=(2, 4))
    rest = cells[1:].reshape(-1, TEMPORAL_STRIDE, *cells.shape[1:]).mean(axis=1)
    return np.concatenate([cells[:1], rest]).astype(np.float32)
