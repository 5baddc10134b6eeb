"""The named choices a job makes, torch-free: the job fields (tasks/jobs.py), the CLI options and the
batch manifest's checks all take their values from these enums."""

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


class Device(StrEnum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


class DType(StrEnum):
    bf16 = "bf16"
    fp16 = "fp16"
    fp32 = "fp32"


class Attention(StrEnum):
    auto = "auto"
    sdpa = "sdpa"
    xformers = "xformers"
    flash = "flash"


class LoopMode(StrEnum):
    """A source video shorter than the audio: played back and forth, or held on its last frame."""

    pingpong = "pingpong"
    freeze = "freeze"


class ReferenceMode(StrEnum):
    """What a video portrait conditions `generate` on (reference_video.py)."""

    first_frame = "first-frame"  # its first frame, for every window (as an image portrait)
    follow = "follow"  # every window follows the video at its own time


class EditMode(StrEnum):
    """What `edit-lipsync` regenerates."""

    mask = "mask"  # the lower face only; every pixel outside the feathered mask is the source's
    full_frame = "full-frame"  # the whole frame, following the source video (ReferenceMode.follow)


# extend continues from motion frames, which latent fusion and HuMo do not have (the tasks layer
# refuses both before loading; the pipelines, for Python callers).
FUSION_CANNOT_EXTEND = (
    "--long-video-mode fusion cannot continue a video (it has no motion frames); use skyreels or infinitetalk"
)
HUMO_CANNOT_EXTEND = (
    "HuMo models cannot continue a video (they have no motion frames); use skyreels-v3-a2v or infinitetalk"
)
