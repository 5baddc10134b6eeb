"""Output resolutions: named buckets by aspect ratio, or an explicit WIDTHxHEIGHT.

Sizes are multiples of 16 (VAE stride 8 x patch 2). Each named resolution offers a family of
sizes of roughly equal area; the portrait's aspect ratio picks the closest one, so a portrait
photo is not squashed into a landscape frame.
"""

import re

from skyaudio_cli.errors import InputError

# (width, height) pairs, each list covering tall to wide.
BUCKETS: dict[str, tuple[tuple[int, int], ...]] = {
    "480p": (
        (448, 896), (480, 832), (512, 768), (576, 704), (640, 640),
        (704, 576), (768, 512), (832, 480), (896, 448),
    ),
    "720p": (
        (704, 1280), (768, 1152), (832, 1088), (960, 960), (1088, 832), (1152, 768), (1280, 704),
    ),
}  # fmt: skip

_EXPLICIT = re.compile(r"^(\d+)x(\d+)$")


def pick_size(resolution: str, aspect_ratio: float) -> tuple[int, int]:
    """(width, height) for `resolution` ('480p', '720p' or 'WxH') and a width/height ratio."""
    match = _EXPLICIT.match(resolution)
    if match:
        width, height = int(match[1]), int(match[2])
        if width % 16 or height % 16 or width < 16 or height < 16:
            raise InputError(f"--resolution {resolution}: width and height must be positive multiples of 16")
        return width, height
    if resolution not in BUCKETS:
        raise InputError(f"--resolution {resolution!r}: use one of {', '.join(BUCKETS)} or WIDTHxHEIGHT")
    return min(BUCKETS[resolution], key=lambda size: abs(size[0] / size[1] - aspect_ratio))


def validate_resolution(resolution: str) -> None:
    pick_size(resolution, 1.0)
