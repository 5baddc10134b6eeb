"""The named modes a job chooses between, torch-free so the CLI declares its options from them."""

from enum import StrEnum


class LongVideoMode(StrEnum):
    """How windows are chained past one window (README: Long video)."""

    auto = "auto"
    skyreels = "skyreels"
    infinitetalk = "infinitetalk"
    fusion = "fusion"


class CacheMode(StrEnum):
    """Which transformer block cache skips work between steps (README: GPU notes)."""

    none = "none"
    first_block = "first-block"
    mag = "mag"
