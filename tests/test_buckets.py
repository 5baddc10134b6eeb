"""Output sizes: the releases' bucket tables and their closest-nominal-ratio rule."""

import pytest

from skyaudio_cli.errors import InputError
from skyaudio_cli.pipeline.buckets import BUCKETS, pick_size


def test_bucket_sizes_are_multiples_of_16():
    for table, resolutions in BUCKETS.items():
        for resolution, buckets in resolutions.items():
            assert all(h % 16 == 0 and w % 16 == 0 for _, h, w in buckets), (table, resolution)


def release_choice(table: dict[str, list[int]], width: int, height: int) -> tuple[int, int]:
    """The releases' rule, written out: sort the nominal h/w keys by distance (stable), take the first."""
    ratio = height / width
    key = sorted(table, key=lambda k: abs(float(k) - ratio))[0]
    h, w = table[key]
    return w, h


# The releases' tables as they write them: nominal h/w key -> [h, w], in their order.
INFINITETALK_480P = {
    "0.26": [320, 1216], "0.38": [384, 1024], "0.50": [448, 896], "0.67": [512, 768], "0.82": [576, 704],
    "1.00": [640, 640], "1.22": [704, 576], "1.50": [768, 512], "1.86": [832, 448], "2.00": [896, 448],
    "2.50": [960, 384], "2.83": [1088, 384], "3.60": [1152, 320], "3.80": [1216, 320], "4.00": [1280, 320],
}  # fmt: skip
SKYREELS_720P = {
    "0.22": [448, 2048], "0.29": [512, 1792], "0.36": [576, 1600], "0.45": [640, 1408], "0.55": [704, 1280],
    "0.56": [720, 1280], "0.63": [768, 1216], "0.76": [832, 1088], "0.88": [896, 1024], "1.00": [960, 960],
    "1.14": [1024, 896], "1.31": [1088, 832], "1.50": [1152, 768], "1.58": [1216, 768], "1.82": [1280, 704],
    "1.78": [1280, 720], "1.91": [1344, 704], "2.20": [1408, 640], "2.30": [1472, 640], "2.67": [1536, 576],
    "2.89": [1664, 576], "3.62": [1856, 512], "3.75": [1920, 512],
}  # fmt: skip


@pytest.mark.parametrize(
    ("table", "resolution", "width", "height", "expected"),
    [
        ("skyreels", "480p", 512, 512, (640, 640)),
        ("skyreels", "720p", 1920, 1080, (1280, 720)),  # SkyReels-V3 lists 1280x720 ...
        ("infinitetalk", "720p", 1920, 1080, (1280, 704)),  # ... InfiniteTalk only 1280x704
        ("infinitetalk", "480p", 1080, 1920, (448, 832)),
        ("skyreels", "480p", 1080, 1920, (480, 832)),
        ("humo", "720p", 512, 512, (1024, 1024)),
        ("humo", "720p", 16, 9, (1280, 720)),
        ("humo", "480p", 9, 16, (480, 832)),
        ("skyreels", "64x96", 3, 1, (64, 96)),
    ],
)
def test_pick_size(table, resolution, width, height, expected):
    assert pick_size(resolution, width, height, table) == expected


@pytest.mark.parametrize("height", [100, 299, 360, 480, 512, 577, 640, 700, 833, 1000, 1400, 2000, 4000])
def test_pick_size_is_the_release_rule_on_its_tables(height):
    width = 1000
    assert pick_size("480p", width, height, "infinitetalk") == release_choice(
        INFINITETALK_480P, width, height
    )
    assert pick_size("720p", width, height, "skyreels") == release_choice(SKYREELS_720P, width, height)


@pytest.mark.parametrize("bad", ["1080p", "65x64", "0x0", "big"])
def test_bad_resolution_names_the_option(bad):
    with pytest.raises(InputError, match="--resolution"):
        pick_size(bad, 1, 1)
