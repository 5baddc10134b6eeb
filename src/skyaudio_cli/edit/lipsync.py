"""Re-lip-sync a video to new audio: only the lower face is regenerated (README: edit-lipsync).

1. Regions: every source frame gets a crop around the face and a feathered lower-face mask
   (face/regions.py); only boxes are kept in memory.
2. Timelines: the output follows the new audio at the source's frame rate (long_video/timeline.py); the
   model runs at its own 25 fps over the same duration. Model frame k shows the output frame whose
   time span contains k/25 s, and output frame i shows the model frame containing i/fps s, so the
   mouth stays in sync at any source rate (the mapping of frame_rate.resample_frame_indices).
3. Generation: `pipe.stream` runs its windowed loop over the model timeline on the face crops,
   with each window holding the VAE latents of the source crops outside the (latent) mask, noised
   to the current timestep after every step (`known_for_window`); the first source crop is the
   reference portrait.
4. Composite: each generated crop takes the colours of its own source crop around the mask (Lab
   mean/std over the pixels outside it: the pipeline matched windows to the first crop, which
   would tint the new mouth wherever the video's light changes), is resized back to the crop's
   size in the source and blended into the untouched full-resolution source frame through the
   feathered mask (face/composite.py), so every pixel outside the mask is the source's, bit for
   bit. Frames without a face get an empty mask and pass through as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from skyaudio_cli.conditioning.frames import frames_to_tensor, to_signed, to_uint8
from skyaudio_cli.conditioning.vae import VideoVAE
from skyaudio_cli.face.composite import crop_for_model, paste_back
from skyaudio_cli.face.geometry import Box
from skyaudio_cli.face.mask import latent_mask
from skyaudio_cli.face.regions import TrackedFaces, UserMasks
from skyaudio_cli.long_video.colour import LabStats, transfer_colours
from skyaudio_cli.long_video.known_latents import KnownLatents
from skyaudio_cli.long_video.loop import KnownForWindow
from skyaudio_cli.long_video.source_frames import WindowReader, frames_in_order
from skyaudio_cli.long_video.timeline import EditTimeline
from skyaudio_cli.long_video.windows import Window
from skyaudio_cli.media.frame_rate import resample_frame_indices

Regions = TrackedFaces | UserMasks
# Long side of the copies the colour statistics of a crop are measured on (a mean and a spread
# need no more pixels than this).
COLOUR_STATS_SIDE = 128


@dataclass(frozen=True)
class EditPlan:
    """Where every output and model frame comes from."""

    video: Path
    fps: float  # the source's (constant, after resampling) frame rate, kept by the output
    timeline: EditTimeline  # output frame -> source frame
    model_to_output: list[int]  # model frame (25 fps) -> output frame it is generated from
    output_to_model: list[int]  # edited output frame -> model frame it shows

    @classmethod
    def build(
        cls, video: Path, fps: float, timeline: EditTimeline, model_fps: float, seconds: float
    ) -> EditPlan:
        edited = timeline.edited_frames
        model_to_output = resample_frame_indices(edited, fps, model_fps, seconds)
        return cls(
            video=video,
            fps=fps,
            timeline=timeline,
            model_to_output=model_to_output,
            output_to_model=resample_frame_indices(len(model_to_output), model_fps, fps, seconds)[:edited],
        )

    @property
    def model_frames(self) -> int:
        return len(self.model_to_output)

    def source_of_model_frame(self, k: int) -> int:
        return self.timeline.source_indices[self.model_to_output[k]]


class SourceCrops:
    """The source's face crops and masks at the model's size, per model frame, for the windows."""

    def __init__(self, plan: EditPlan, regions: Regions, width: int, height: int, keep: int) -> None:
        self.plan, self.regions = plan, regions
        self.width, self.height = width, height
        sources = [plan.source_of_model_frame(k) for k in range(plan.model_frames)]
        frames = frames_in_order(plan.video, sources, fps=plan.fps)
        pairs = (
            self._for_model(frame, mask, regions.crops[source])
            for frame, mask, source in zip(frames, regions.masks(sources), sources, strict=False)
        )
        self._reader = WindowReader(pairs, plan.model_frames, keep)

    def first_crop(self) -> np.ndarray:
        return self.window(0, 1)[0][0]

    def window(self, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Crops uint8 [length, H, W, 3] and masks uint8 [length, H, W] of model frames
        start..start+length-1; frames past the end mirror back into the video."""
        pairs = self._reader.window(start, length)
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def _for_model(self, frame: np.ndarray, mask: np.ndarray, crop: Box) -> tuple[np.ndarray, np.ndarray]:
        model_mask = cv2.resize(mask, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return crop_for_model(frame, crop, self.width, self.height), model_mask


def known_outside_mask(vae: VideoVAE, crops: SourceCrops, seed: int) -> KnownForWindow:
    """The `known_for_window` hook: hold the source crop latents (encoded by `vae`, the pipeline's)
    outside each window's mask."""

    def known(window: Window) -> KnownLatents:
        start = max(window.start, 0)
        pixels, masks = crops.window(start, window.length)
        video = to_signed(torch.from_numpy(pixels).permute(3, 0, 1, 2)[None])
        clean = vae.encode(video)
        regenerate = torch.from_numpy(latent_mask(masks))[None, None]
        keep = (~regenerate).to(clean.device, clean.dtype)
        # Own generator per window: the held latents' noise repeats with the seed, window by window.
        generator = torch.Generator("cpu").manual_seed(seed * 1_000_003 + window.index + 1)
        return KnownLatents(clean=clean, mask=keep, noised=True, generator=generator)

    return known


def composite_frames(
    plan: EditPlan,
    regions: Regions,
    generated: Iterator[np.ndarray] | None,
    stats: dict,
    *,
    whole_frame: bool = False,
) -> Iterator[tuple[np.ndarray, Box, np.ndarray]]:
    """Output frames in order, as (frame, crop, mask); `generated` yields model frames in order
    (None when no frame has a face): face crops pasted into the source through the mask, or with
    `whole_frame` source-size frames shown as they are. stats["faceless"] counts edited frames that
    passed through."""
    sources = plan.timeline.source_indices
    frames = frames_in_order(plan.video, sources, fps=plan.fps)
    masks = regions.masks(sources)
    current, shown = None, -1
    for i, (frame, mask) in enumerate(zip(frames, masks, strict=True)):
        crop = regions.crops[sources[i]]
        if i >= plan.timeline.edited_frames:  # past the new audio: the original, untouched
            yield frame, crop, np.zeros_like(mask)
            continue
        if not regions.has_face[sources[i]]:
            stats["faceless"] += 1
            yield frame, crop, mask
            continue
        while shown < plan.output_to_model[i]:
            current, shown = next(generated), shown + 1
        if whole_frame:
            yield current, crop, mask
        else:
            yield paste_back(frame, in_source_light(current, frame, crop, mask), crop, mask), crop, mask


def in_source_light(generated: np.ndarray, frame: np.ndarray, crop: Box, mask: np.ndarray) -> np.ndarray:
    """The model-size `generated` crop moved in Lab so its mean/std outside `mask` (crop-size)
    equal the source crop's there, i.e. lit like this very frame of the source.

    The statistics come from small copies; only the pixels `paste_back` will read (the mask's box
    plus a margin for its resampling) are converted, so this costs a few ms per frame.
    """
    height, width = generated.shape[:2]
    scale = min(1.0, COLOUR_STATS_SIDE / max(height, width))
    small = (max(1, round(width * scale)), max(1, round(height * scale)))
    outside = torch.from_numpy(cv2.resize(mask, small, interpolation=cv2.INTER_AREA) == 0)
    if not outside.any():
        return generated
    measured = LabStats.of(_signed(cv2.resize(generated, small, interpolation=cv2.INTER_AREA)), outside)
    target = LabStats.of(_signed(crop_for_model(frame, crop, *small)), outside)
    rows, cols = np.nonzero(cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA))
    if rows.size == 0:
        return generated
    top, left = max(rows.min() - 3, 0), max(cols.min() - 3, 0)
    bottom, right = rows.max() + 4, cols.max() + 4
    result = generated.copy()
    region = _signed(generated[top:bottom, left:right])
    result[top:bottom, left:right] = to_uint8(transfer_colours(region, measured, target)[None])[0]
    return result


def _signed(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> [3, H, W] in [-1, 1], by the pipeline's own conversion."""
    return frames_to_tensor(image[None], image.shape[1], image.shape[0])[0]


def single_frames(batches: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """The pipeline's frame batches [n, H, W, 3] as single frames."""
    for batch in batches:
        yield from batch
