"""Portrait images in: decode, orient upright, flatten to RGB, fit to the model's frame size."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skyaudio_cli.errors import InputError
from skyaudio_cli.media.paths import require_input_file

# Transparent areas become white: a cut-out portrait on white looks like a studio backdrop, while
# dropping alpha would expose whatever colour the editor left under it (often black or noise).
ALPHA_BACKGROUND = (255, 255, 255)


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Decode any still image Pillow reads (PNG, JPEG, WebP, ...) to an upright RGB image.

    The EXIF orientation is applied (phone photos are stored sideways and tagged), transparency is
    composited on white, and for animated files the first frame is used. Raises InputError naming
    the file when it is missing, not an image, truncated/corrupt, or too large to decode safely.
    """
    path = require_input_file(path, "image")
    with _decoding(path) as opened:
        opened.load()
        upright = ImageOps.exif_transpose(opened)
    return _flatten_to_rgb(upright)


def check_image_file(path: str | os.PathLike[str]) -> None:
    """Refuse a file Pillow cannot identify as an image, reading its header only (no decoding).

    Validation runs this before any model code is imported; `load_image` decodes and checks it all.
    """
    with _decoding(require_input_file(path, "image")):
        pass


@contextmanager
def _decoding(path: Path) -> Iterator[Image.Image]:
    """The opened image, with Pillow's errors turned into InputErrors naming `path`."""
    try:
        with Image.open(path) as opened:
            yield opened
    except UnidentifiedImageError as error:
        raise InputError(f"not an image file Pillow can read: {path}") from error
    except Image.DecompressionBombError as error:
        raise InputError(f"image is too large to decode safely: {path}") from error
    except (OSError, SyntaxError, ValueError) as error:
        # Pillow reports truncated and malformed data as OSError/SyntaxError/ValueError.
        raise InputError(f"image file is corrupt or truncated: {path} ({error})") from error


def _flatten_to_rgb(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def resize_center_crop(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale `image` to cover width x height, then crop the centre: exact output size, no bars.

    As the SkyReels-V3 and InfiniteTalk releases size their portraits (`resize_and_centercrop`):
    one uniform scale = max(height / h, width / w), the scaled size rounded up, Pillow's bilinear
    filter, then torchvision's centre crop (offsets round((excess) / 2), halves to even).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    scale = max(height / image.height, width / image.width)
    cover_width, cover_height = math.ceil(scale * image.width), math.ceil(scale * image.height)
    covered = image.resize((cover_width, cover_height), resample=Image.Resampling.BILINEAR)
    left, top = round((cover_width - width) / 2.0), round((cover_height - height) / 2.0)
    return covered.crop((left, top, left + width, top + height))


def resize_center_crop_array(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """`resize_center_crop` for an HxWx3 uint8 RGB frame (video frames), returning the same layout."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 frame, got {frame.shape} {frame.dtype}")
    return np.asarray(resize_center_crop(Image.fromarray(frame), width, height))
