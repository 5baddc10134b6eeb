"""A video the generation follows (`--reference-mode follow`): its frames on the model's timeline.

The mechanism of InfiniteTalk's video-to-video mode (generate_infinitetalk.py, wan/multitalk.py):
- every window's reference frame, the CLIP image tokens and the I2V condition's first frame, is the
  source frame at the window's start. The release reads frame `audio_start_idx` of the video at its
  native rate (so a 30 fps source drifts ahead of a 25 fps generation); here the source frame shown
  at the window's start *time* is used, so any frame rate stays in sync;
- the motion frames still come from what was generated, so windows chain without seams, and the
  colour reference stays frame 0.
In addition (the product's spec; the release imposes no source latents) the source frames of every
window are VAE-encoded and the latents at sparse keyframe positions (every `KEYFRAME_SPACING`
frames) are imposed as known latents noised to the current timestep, which holds the shot's camera,
background and body on the source while the audio moves the face in between.

A source shorter than the audio loops by ping-pong or freezes on its last frame (the timeline of
edit-lipsync, `timeline.plan_timeline`); frames past the padded end of the last window mirror
back, as its audio does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skyaudio_cli.conditioning.vae import TEMPORAL_STRIDE
from skyaudio_cli.errors import InputError
from skyaudio_cli.long_video.source_frames import WindowReader, frames_in_order
from skyaudio_cli.long_video.timeline import plan_timeline
from skyaudio_cli.media.frame_rate import output_frame_count, resample_frame_indices
from skyaudio_cli.media.image import resize_center_crop_array
from skyaudio_cli.media.retime import resized
from skyaudio_cli.modes import LoopMode

# Frames between two source keyframes held as known latents: every 5th latent (0.8 s at 25 fps), so
# an 81-frame window holds 4 of its 21 latents and the speech moves the face between them.
KEYFRAME_SPACING = 20
assert KEYFRAME_SPACING % TEMPORAL_STRIDE == 0  # keyframes sit on latent frames


@dataclass(frozen=True, eq=False)  # frames in memory are an array: compared by identity
class ReferenceVideo:
    """The frames a generation follows: a video file (read at the constant rate `fps`) or uint8
    frames [n, H, W, 3] in memory, looped by `loop` when shorter than the audio.

    `crop`: frames are cover-resized and centre-cropped to the model's size, as a portrait is; or
    plain-resized, for generated frames that are resized back onto the source (edit-lipsync
    full-frame), so the picture keeps its geometry through the round trip.
    """

    source: Path | np.ndarray
    fps: float
    num_frames: int
    loop: LoopMode = LoopMode.pingpong
    crop: bool = True

    @classmethod
    def open(cls, path: str | Path, *, loop: str = LoopMode.pingpong) -> ReferenceVideo:
        from skyaudio_cli.media.video import probe_video

        info = probe_video(path)
        return cls(info.path, info.fps, info.num_frames, LoopMode(loop))

    @classmethod
    def from_frames(
        cls, frames: np.ndarray | Sequence, fps: float = 25.0, *, loop: str = LoopMode.pingpong
    ) -> ReferenceVideo:
        """Frames as a uint8 array [n, H, W, 3] or a sequence of PIL images / HxWx3 arrays."""
        array = np.stack([np.asarray(frame) for frame in frames]) if len(frames) else np.zeros(0)
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise InputError(f"reference_video: expected uint8 RGB frames [n, H, W, 3], got {array.shape}")
        if not fps > 0:
            raise InputError(f"reference_video: fps must be positive, got {fps}")
        return cls(array, float(fps), len(array), LoopMode(loop))

    def first_frame(self) -> np.ndarray:
        return next(self.frames([0]))

    def fit(self, frame: np.ndarray, width: int, height: int) -> np.ndarray:
        """A source frame (uint8 [H, W, 3]) at the model's size, by `crop`."""
        if self.crop:
            return resize_center_crop_array(frame, width, height)
        return next(resized([frame], width, height))

    def model_frame_sources(self, num_frames: int, model_fps: float, seconds: float) -> list[int]:
        """The source frame shown at each of `num_frames` model frames (at `model_fps`) of a video
        lasting `seconds`: the one covering the same instant, on the looped source timeline."""
        timeline = plan_timeline(self.num_frames, output_frame_count(seconds, self.fps), loop=self.loop)
        at = resample_frame_indices(timeline.edited_frames, self.fps, model_fps, seconds)
        return [timeline.source_indices[at[min(k, len(at) - 1)]] for k in range(num_frames)]

    def frames(self, indices: list[int]) -> Iterator[np.ndarray]:
        """Source frame `i` for each i in `indices` (past the end: the last frame)."""
        if isinstance(self.source, np.ndarray):
            return (self.source[min(i, self.num_frames - 1)] for i in indices)
        return frames_in_order(self.source, indices, fps=self.fps)


class FollowedFrames:
    """A reference video's frames per model frame, fitted to the model's size by `fit`, for the windows
    (read once, in order; `keep` frames buffered)."""

    def __init__(
        self,
        video: ReferenceVideo,
        sources: list[int],
        fit: Callable[[np.ndarray], np.ndarray],
        keep: int,
    ) -> None:
        self.sources = sources
        self._reader = WindowReader((fit(frame) for frame in video.frames(sources)), len(sources), keep)

    def window(self, start: int, length: int) -> np.ndarray:
        """uint8 [length, H, W, 3]: model frames start..start+length-1 (mirrored past the end)."""
        return np.stack(self._reader.window(max(start, 0), length))

    def frame(self, index: int) -> np.ndarray:
        return self.window(index, 1)[0]


def keyframe_latents(num_latents: int) -> list[int]:
    """The latent frames of a window held to the source: every KEYFRAME_SPACING frames after its
    first latent (which the condition frame and the motion frames already pin)."""
    step = KEYFRAME_SPACING // TEMPORAL_STRIDE
    return list(range(step, num_latents, step))
