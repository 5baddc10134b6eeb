"""Speech -> one audio feature row per video frame: the interface both audio encoders implement.

The DiT families take per-frame features from one of two encoders (README: Weights):
chinese-wav2vec2-base (12 hidden layers x 768) or Whisper large-v3 (5 layer groups x 1280). Both
produce features at 50 Hz and stretch them onto the video frame grid; callers only see
`encode(wave, num_frames) -> [num_frames, num_layers, channels]`.
"""

import math
from abc import ABC, abstractmethod
from fractions import Fraction
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from skyaudio_cli.errors import InputError
from skyaudio_cli.media.audio import DEFAULT_SAMPLE_RATE

# The encoders take speech at the rate media.audio decodes it to.
SAMPLE_RATE = DEFAULT_SAMPLE_RATE
# How a release turns the audio's duration into its feature frame count: SkyReels-V3 takes
# ceil(duration x fps), InfiniteTalk int(duration x fps).
FrameRounding = Literal["ceil", "floor"]
FRAME_ROUNDINGS: tuple[FrameRounding, ...] = ("ceil", "floor")


class AudioFeatureEncoder(ABC):
    """A loaded speech encoder. Input: 16 kHz mono float32, already loudness-normalised."""

    kind: str
    num_layers: int
    channels: int

    @abstractmethod
    def encode(self, wave: np.ndarray, num_frames: int) -> torch.Tensor:
        """Features for `num_frames` video frames: float32 [num_frames, num_layers, channels] on the CPU.

        The result stays on the CPU because minutes of audio make a large tensor; the pipeline moves
        one window at a time to the accelerator.
        """


def num_video_frames(
    num_samples: int,
    sample_rate: int = SAMPLE_RATE,
    fps: float | Fraction = 25.0,
    rounding: FrameRounding = "ceil",
) -> int:
    """ceil (or floor) of duration * fps in exact rational arithmetic, so 2.0 s at 25 fps is 50
    frames, never 51.

    A float fps such as 29.97002997 (30000/1001 as ffmpeg reports it) is snapped to the nearest
    fraction with a denominator up to 10^6 first, so it rounds as the rational rate it stands for.
    """
    rate = Fraction(fps).limit_denominator(1_000_000)
    frames = Fraction(num_samples) * rate / sample_rate
    return math.ceil(frames) if rounding == "ceil" else math.floor(frames)


def require_mono(wave):
    """`wave` (an array or a media.audio.AudioFile), once checked to be 1-D and non-empty.

    Its samples are not read: a file-backed wave is checked for finiteness chunk by chunk, by
    `require_speech`, as the encoders read it.
    """
    if wave.ndim != 1 or wave.size == 0:
        raise InputError(f"audio: expected non-empty mono samples, got shape {wave.shape}")
    return wave


def require_speech(wave: np.ndarray) -> np.ndarray:
    """The encoders' input as float32, once checked to be non-empty, finite and 1-D."""
    wave = require_mono(np.asarray(wave, dtype=np.float32))
    if not np.isfinite(wave).all():
        raise InputError("audio: contains NaN or infinite samples")
    return wave


def stretch_to_frames(features: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Resample [T, ...] features to [num_frames, ...] along time, as both references do.

    Linear with align_corners=True over the whole sequence: first and last rows map onto the first
    and last frames (InfiniteTalk/SkyReels-V3 `linear_interpolation`, HuMo `linear_interpolation_fps`).
    """
    if num_frames < 1:
        raise InputError(f"audio: cannot encode onto {num_frames} video frames")
    rows = features.reshape(features.shape[0], -1).T.unsqueeze(0)
    stretched = F.interpolate(rows, size=num_frames, mode="linear", align_corners=True)
    return stretched[0].T.reshape(num_frames, *features.shape[1:])
