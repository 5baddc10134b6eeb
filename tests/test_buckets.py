import pytest

from skyaudio_cli.errors import InputError
from skyaudio_cli.pipeline.buckets import BUCKETS, pick_size


def test_buckets_are_valid_sizes_of_similar_area():
    for name, sizes in BUCKETS.items():
        areas = [w * h for w, h in sizes]
        assert all(w % 16 == 0 and h % 16 == 0 for w, h in sizes), name
        assert max(areas) / min(areas) < 1.15, name


@pytest.mark.parametrize(
    ("resolution", "ratio", "expected"),
    [("480p", 1.0, (640, 640)), ("480p", 512 / 512 * 0.5, (448, 896)), ("480p", 16 / 9, (832, 480)),
     ("720p", 9 / 16, (704, 1280)), ("64x96", 3.0, (64, 96))],
)  # fmt: skip
def test_pick_size(resolution, ratio, expected):
    assert pick_size(resolution, ratio) == expected


@pytest.mark.parametrize("bad", ["1080p", "65x64", "0x0", "big"])
def test_bad_resolution_names_the_option(bad):
    with pytest.raises(InputError, match="--resolution"):
        pick_size(bad, 1.0)
