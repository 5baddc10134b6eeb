"""Runs a resolved `edit-lipsync` job: analyse faces, generate, composite, write (render.py).

`--mode mask` regenerates the lower face of square face crops and pastes it back through the mask;
`--mode full-frame` generates whole frames that follow the source video (`reference_video.py`: each
window's reference frame and sparse keyframe latents come from the source at its own time) and
resizes them back to the source size. Faceless frames pass through unchanged in both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from skyaudio_cli import console
from skyaudio_cli.conditioning.audio_features import SAMPLE_RATE
from skyaudio_cli.edit.lipsync import (
    EditPlan,
    Regions,
    SourceCrops,
    composite_frames,
    known_outside_mask,
    single_frames,
)
from skyaudio_cli.errors import InputError, RuntimeFailure
from skyaudio_cli.face.debug import overlay_mask
from skyaudio_cli.face.geometry import Box
from skyaudio_cli.face.regions import detect_faces, face_box_regions, user_mask_regions
from skyaudio_cli.long_video.reference_video import ReferenceVideo
from skyaudio_cli.long_video.source_frames import frames_in_order
from skyaudio_cli.long_video.timeline import plan_timeline
from skyaudio_cli.media.audio import Wave, audio_duration
from skyaudio_cli.media.frame_rate import output_frame_count
from skyaudio_cli.media.retime import resized
from skyaudio_cli.media.soundtrack import Segment, Soundtrack
from skyaudio_cli.media.video import VideoInfo, iter_frames, probe_video
from skyaudio_cli.media.video_writer import OUTPUT_AUDIO_SAMPLE_RATE
from skyaudio_cli.modes import EditMode, LoopMode
from skyaudio_cli.pipeline.base import VideoStream
from skyaudio_cli.pipeline.buckets import pick_size
from skyaudio_cli.tasks.generate import start_stream
from skyaudio_cli.tasks.jobs import EditLipsyncJob, parse_face_box
from skyaudio_cli.tasks.render import (
    Render,
    Sink,
    family_result,
    job_speech,
    load_pipeline,
    render,
    written_size,
)
from skyaudio_cli.tasks.resolve import ResolvedJob

# Face crops are square: faces are roughly square, and a square crop gives the mouth the most of
# the model's pixels for any head pose.
CROP_ASPECT = 1.0  # square face crops: the model's size comes from a 1 x 1 source


@dataclass
class EditRun:
    """An edit ready to stream: `frames` yields (output frame, crop, mask) in order, lazily."""

    plan: EditPlan
    regions: Regions
    stream: VideoStream | None  # the model's face crops; None when no frame has a face
    frames: Iterator[tuple[np.ndarray, Box, np.ndarray]]
    soundtrack: Soundtrack
    summary: dict
    stats: dict  # "faceless": edited frames that passed through for lack of a face (final once streamed)


def run_edit_lipsync(resolved: ResolvedJob, pipelines=None) -> dict:
    """Run one job; pass a shared `pipelines` cache to reuse loaded models across jobs."""
    job = resolved.job
    edit = prepare_edit(resolved, pipelines)
    summary = edit.summary
    sinks = [
        Sink(job.output, summary["fps"], summary["source_width"], summary["source_height"], edit.soundtrack)
    ]
    frames = ((frame,) for frame, _, _ in edit.frames)
    if job.debug_mask is not None:
        sinks.append(replace(sinks[0], path=job.debug_mask))
        frames = ((frame, overlay_mask(frame, crop, mask, mask.any())) for frame, crop, mask in edit.frames)
    render(Render(edit.stream, tuple(sinks), frames, job.overwrite))
    return {**summary, "faceless_frames": edit.stats["faceless"]}


def prepare_edit(resolved: ResolvedJob, pipelines=None) -> EditRun:
    """Analyse the video and set up generation; nothing is generated until `frames` is iterated."""
    job, family = resolved.job, resolved.family
    # The inputs first: a broken video or audio is reported before any face is looked for.
    info = probe_video(job.video)
    speech = job_speech(resolved)
    seconds = audio_duration(speech, SAMPLE_RATE)

    with console.stderr.status("finding the face in every frame..."):
        regions, mask_source = _regions(job, info)
    if not any(regions.has_face) and not job.allow_no_face:
        raise InputError(
            f"--video {job.video}: no face found in any frame; give the region with --face-box or "
            "--mask-video, or pass --allow-no-face to keep the video as it is with the new audio"
        )
    timeline = plan_timeline(
        len(regions.crops), output_frame_count(seconds, info.fps),
        loop=LoopMode(job.loop_mode), keep_original_audio=job.keep_original_audio,
    )  # fmt: skip
    plan = EditPlan.build(job.video, info.fps, timeline, family.fps, seconds)
    stream = None
    if any(regions.has_face):
        stream = _generate(resolved, plan, regions, speech, pipelines)
    whole_frame = EditMode(job.mode) == EditMode.full_frame
    generated = single_frames(stream.frames) if stream is not None else None
    if generated is not None and whole_frame:
        generated = resized(generated, info.width, info.height)
    summary = {
        "output": str(job.output),
        **family_result(resolved),
        "mode": str(EditMode(job.mode)),
        "mask_source": mask_source,
        "frames": timeline.num_frames,
        "edited_frames": timeline.edited_frames,
        "source_frames": len(regions.crops),
        "looped": timeline.num_frames > len(regions.crops),
        "fps": info.fps,
        **written_size(info),
        "duration_s": timeline.num_frames / info.fps,
        "audio_duration_s": seconds,
    }
    stats = {"faceless": 0}
    frames = composite_frames(plan, regions, generated, stats, whole_frame=whole_frame)
    return EditRun(plan, regions, stream, frames, _soundtrack(job, info, plan), summary, stats)


def _regions(job: EditLipsyncJob, info: VideoInfo) -> tuple[Regions, str]:
    """Per-frame crops and masks from the detector, the mask video or the fixed box.

    Frames are read resampled to a constant rate, so a variable-frame-rate source is analysed on
    the same frames the edit later reads.
    """
    fps = info.fps
    if job.mask_video is not None:
        size = (info.width, info.height)

        def read_masks(indices):
            return frames_in_order(job.mask_video, list(indices), fps=fps, size=size)

        regions = user_mask_regions(iter_frames(job.mask_video, fps=fps, size=size), CROP_ASPECT, read_masks)
        source_frames = _count_frames(job.video, fps)
        if len(regions.crops) < source_frames:
            raise InputError(
                f"--mask-video {job.mask_video}: {len(regions.crops)} frames, fewer than the video's "
                f"{source_frames} at {fps:g} fps"
            )
        return _first_frames(regions, source_frames), "mask-video"
    if job.face_box is not None:
        box = Box(*map(float, parse_face_box(job.face_box)))
        if box.x + box.w > info.width or box.y + box.h > info.height:
            raise InputError(f"--face-box {job.face_box}: outside the {info.width}x{info.height} video")
        regions = face_box_regions(box, info.width, info.height, _count_frames(job.video, fps), CROP_ASPECT)
        return regions, "face-box"
    return detect_faces(iter_frames(job.video, fps=fps), CROP_ASPECT), "detected"


def _count_frames(path: Path, fps: float) -> int:
    """Frames at the constant rate `fps` (decoded: exact also for variable-frame-rate files)."""
    return sum(1 for _ in iter_frames(path, fps=fps))


def _first_frames(regions, count: int):
    """A mask video longer than the source: only its first `count` frames matter."""
    return replace(regions, present=regions.present[:count], crops=regions.crops[:count])


def _generate(
    resolved: ResolvedJob, plan: EditPlan, regions: Regions, speech: Wave, pipelines
) -> VideoStream:
    """The model's stream, lazily: regenerated face crops (at the model's crop size) in mask mode,
    whole frames following the source (at the family's size for its aspect ratio) in full-frame."""
    job, config, family = resolved.job, resolved.config, resolved.family
    pipe = load_pipeline(pipelines, resolved)
    if EditMode(job.mode) == EditMode.full_frame:
        followed = ReferenceVideo(
            plan.video, plan.fps, len(regions.crops), LoopMode(job.loop_mode), crop=False
        )
        stream = start_stream(pipe, resolved, speech, reference_video=followed)
    else:
        width, height = pick_size(config.resolution, 1, 1, family.size_buckets)
        crops = SourceCrops(plan, regions, width, height, keep=family.frames_per_window)
        stream = start_stream(
            pipe, resolved, speech, portrait=Image.fromarray(crops.first_crop()),
            resolution=f"{width}x{height}", known_for_window=known_outside_mask(pipe.vae, crops, config.seed),
        )  # fmt: skip
    if stream.num_frames != plan.model_frames:
        raise RuntimeFailure(f"model timeline mismatch: {stream.num_frames} != {plan.model_frames} frames")
    return stream


def _soundtrack(job: EditLipsyncJob, info: VideoInfo, plan: EditPlan) -> Soundtrack:
    """The new audio; with --keep-original-audio, the source's own audio from where it ends."""
    edited_samples = round(plan.timeline.edited_frames / plan.fps * OUTPUT_AUDIO_SAMPLE_RATE)
    total_samples = round(plan.timeline.num_frames / plan.fps * OUTPUT_AUDIO_SAMPLE_RATE)
    if total_samples <= edited_samples:
        return Soundtrack.of(job.audio)
    rate = OUTPUT_AUDIO_SAMPLE_RATE
    edited, rest = edited_samples / rate, (total_samples - edited_samples) / rate
    source_sound = Segment(job.video if info.has_audio else None, rest, start=edited)
    return Soundtrack((Segment(job.audio, edited), source_sound))
