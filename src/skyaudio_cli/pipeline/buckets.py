"""Output resolutions: named buckets by aspect ratio, or an explicit WIDTHxHEIGHT.

Each family sizes its frames from its release's own table (weights.toml `size_buckets`):

- "skyreels" and "infinitetalk": the releases' ASPECT_RATIO_627 (480p) and ASPECT_RATIO_960
  (720p) tables, which name each size by a nominal height/width ratio; the portrait takes the
  size whose nominal ratio is closest to its own height/width, the first listed on a tie (the
  releases sort the keys stably). SkyReels-V3 adds 480x832, 832x480, 720x1280 and 1280x720 to
  InfiniteTalk's lists.
- "humo": the fixed sizes HuMo's generate.py accepts (1280x720, 720x1280, 1024x1024 at 720p;
  832x480, 480x832 at 480p); the release takes one from its config, we take the one closest to
  the portrait's aspect ratio the same way.

Sizes are multiples of 16 (VAE stride 8 x patch 2).
"""

import re

from skyaudio_cli.errors import InputError

# (nominal height/width, height, width), in the releases' order.
Bucket = tuple[float, int, int]

# fmt: off
_INFINITETALK_480P: tuple[Bucket, ...] = (
    (0.26, 320, 1216), (0.38, 384, 1024), (0.50, 448, 896), (0.67, 512, 768), (0.82, 576, 704),
    (1.00, 640, 640), (1.22, 704, 576), (1.50, 768, 512), (1.86, 832, 448), (2.00, 896, 448),
    (2.50, 960, 384), (2.83, 1088, 384), (3.60, 1152, 320), (3.80, 1216, 320), (4.00, 1280, 320),
)
_INFINITETALK_720P: tuple[Bucket, ...] = (
    (0.22, 448, 2048), (0.29, 512, 1792), (0.36, 576, 1600), (0.45, 640, 1408), (0.55, 704, 1280),
    (0.63, 768, 1216), (0.76, 832, 1088), (0.88, 896, 1024), (1.00, 960, 960), (1.14, 1024, 896),
    (1.31, 1088, 832), (1.50, 1152, 768), (1.58, 1216, 768), (1.82, 1280, 704), (1.91, 1344, 704),
    (2.20, 1408, 640), (2.30, 1472, 640), (2.67, 1536, 576), (2.89, 1664, 576), (3.62, 1856, 512),
    (3.75, 1920, 512),
)
# fmt: on


def _with(table: tuple[Bucket, ...], after: dict[float, Bucket]) -> tuple[Bucket, ...]:
    """`table` with each extra bucket inserted right after the entry of the given nominal ratio."""
    out = []
    for bucket in table:
        out.append(bucket)
        if bucket[0] in after:
            out.append(after[bucket[0]])
    return tuple(out)


BUCKETS: dict[str, dict[str, tuple[Bucket, ...]]] = {
    "infinitetalk": {"480p": _INFINITETALK_480P, "720p": _INFINITETALK_720P},
    "skyreels": {
        "480p": _with(_INFINITETALK_480P, {0.50: (0.577, 480, 832), 1.86: (1.73, 832, 480)}),
        "720p": _with(_INFINITETALK_720P, {0.55: (0.56, 720, 1280), 1.82: (1.78, 1280, 720)}),
    },
    "humo": {
        "480p": ((0.577, 480, 832), (1.73, 832, 480)),
        "720p": ((0.5625, 720, 1280), (1.00, 1024, 1024), (1.78, 1280, 720)),
    },
}  # fmt: skip

_EXPLICIT = re.compile(r"^(\d+)x(\d+)$")


def pick_size(resolution: str, width: int, height: int, table: str = "skyreels") -> tuple[int, int]:
    """(width, height) for `resolution` ('480p', '720p' or 'WxH') and a width x height source."""
    match = _EXPLICIT.match(resolution)
    if match:
        out_width, out_height = int(match[1]), int(match[2])
        if out_width % 16 or out_height % 16 or out_width < 16 or out_height < 16:
            raise InputError(f"--resolution {resolution}: width and height must be positive multiples of 16")
        return out_width, out_height
    buckets = BUCKETS[table]
    if resolution not in buckets:
        raise InputError(f"--resolution {resolution!r}: use one of {', '.join(buckets)} or WIDTHxHEIGHT")
    ratio = height / width
    _, out_height, out_width = min(buckets[resolution], key=lambda bucket: abs(bucket[0] - ratio))
    return out_width, out_height


def validate_resolution(resolution: str) -> None:
    pick_size(resolution, 1, 1)
