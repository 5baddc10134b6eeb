"""Runs resolved `generate` and `extend` jobs: inputs -> pipeline stream -> mp4 (render.py)."""

from collections import deque
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import numpy as np
from PIL import Image

from skyaudio_cli.conditioning.audio_features import SAMPLE_RATE
from skyaudio_cli.errors import InputError
from skyaudio_cli.long_video.reference_video import ReferenceVideo
from skyaudio_cli.media.audio import AudioFile, audio_duration
from skyaudio_cli.media.frame_rate import output_frame_count, resample_frame_indices
from skyaudio_cli.media.image import load_image
from skyaudio_cli.media.retime import resized, retime
from skyaudio_cli.media.soundtrack import Segment, Soundtrack
from skyaudio_cli.media.video import VIDEO_SUFFIXES, VideoInfo, iter_frames, probe_video, read_last_frames
from skyaudio_cli.modes import ReferenceMode
from skyaudio_cli.pipeline.base import VideoPipeline, VideoStream
from skyaudio_cli.pipeline.cache import PipelineCache
from skyaudio_cli.tasks.jobs import ExtendJob
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


def load_portrait(path: Path) -> Image.Image:
    """A portrait image, or the first frame of a portrait video (`--reference-mode first-frame`)."""
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        return load_image(path)
    probe_video(path)
    frames = iter_frames(path)
    try:
        return Image.fromarray(next(frames))
    except StopIteration:
        raise InputError(f"--portrait {path}: video has no frames") from None
    finally:
        frames.close()


def run_generate(resolved: ResolvedJob, pipelines: PipelineCache | None = None) -> dict:
    """Run one job; pass a shared `pipelines` cache to reuse loaded models across jobs."""
    job, s = resolved.job, resolved.settings
    speech = job_speech(resolved)
    if job.follows_video:
        source = {"reference_video": ReferenceVideo.open(job.portrait, loop=job.loop_mode)}
    else:
        source = {"portrait": load_portrait(job.portrait) if job.portrait is not None else None}
    stream = start_stream(load_pipeline(pipelines, resolved), resolved, speech, **source)
    fps = s.fps or stream.fps
    seconds = audio_duration(speech, SAMPLE_RATE)
    count = output_frame_count(seconds, fps)
    indices = resample_frame_indices(stream.num_frames, stream.fps, fps, seconds)
    sink = Sink(job.output, fps, stream.width, stream.height, Soundtrack.of(job.audio))
    render(Render(stream, (sink,), ((f,) for f in retime(stream.frames, indices)), job.overwrite))
    return {
        "output": str(job.output),
        **family_result(resolved),
        "frames": count,
        "fps": fps,
        "width": stream.width,
        "height": stream.height,
        "duration_s": count / fps,
        "audio_duration_s": seconds,
        "windows": stream.windows,
        "long_video_mode": stream.mode,
        "reference_mode": str(ReferenceMode.follow if job.follows_video else ReferenceMode.first_frame),
    }


def run_extend(resolved: ResolvedJob, pipelines: PipelineCache | None = None) -> dict:
    """Continue `job.video` with `job.audio`: the source frames (unless append-only), then new ones.

    The continuation is generated at 25 fps at the family's size bucket from the source's last
    frames (re-sampled to 25 fps when the source runs at another rate), then resized back to the
    source size and re-timed to the output rate: the source rate unless --fps says otherwise.
    """
    job, s, family = resolved.job, resolved.settings, resolved.family
    source = probe_video(job.video)
    speech = job_speech(resolved)
    context = _last_frames(source, family.motion_frames, family.fps)
    stream = start_stream(load_pipeline(pipelines, resolved), resolved, speech, start_frames=context)

    fps = s.fps or source.fps
    seconds = audio_duration(speech, SAMPLE_RATE)
    new_frames = output_frame_count(seconds, fps)
    original = iter(()) if job.append_only else _source_frames(source, fps)
    original_frames = 0 if job.append_only else _source_frame_count(source, fps)
    audio = _extended_soundtrack(job, source, original_frames / fps)
    continuation = resized(
        retime(stream.frames, resample_frame_indices(stream.num_frames, stream.fps, fps, seconds)),
        source.width,
        source.height,
    )
    sink = Sink(job.output, fps, source.width, source.height, audio)
    frames = ((f,) for f in chain(original, continuation))
    written = render(Render(stream, (sink,), frames, job.overwrite))
    return {
        "output": str(job.output),
        **family_result(resolved),
        "frames": written,
        "source_frames": original_frames,
        "new_frames": new_frames,
        "fps": fps,
        **written_size(source),
        "duration_s": written / fps,
        "audio_duration_s": seconds,
        "windows": stream.windows,
        "long_video_mode": stream.mode,
    }


def start_stream(pipe: VideoPipeline, resolved: ResolvedJob, speech: AudioFile, **source) -> VideoStream:
    """The job's video as a stream; `source` is the portrait, the video to follow, or the start
    frames to continue (and may override the config, as edits do)."""
    return pipe.stream(audio=speech, **{**resolved.config.as_arguments(), **source})


def _last_frames(source: VideoInfo, count: int, model_fps: float) -> np.ndarray:
    """The source's last `count` frames as the model sees time (resampled to its rate if needed)."""
    if abs(source.fps - model_fps) < 1e-6:
        return read_last_frames(source.path, count)
    # Re-timing needs the frames from the start; only the last `count` are kept.
    return np.stack(deque(iter_frames(source.path, fps=model_fps), maxlen=count))


def _source_frames(source: VideoInfo, fps: float) -> Iterator[np.ndarray]:
    return iter_frames(source.path, fps=None if abs(source.fps - fps) < 1e-6 else fps)


def _source_frame_count(source: VideoInfo, fps: float) -> int:
    if abs(source.fps - fps) < 1e-6:
        return source.num_frames
    return output_frame_count(source.duration, fps)


def _extended_soundtrack(job: ExtendJob, source: VideoInfo, original_seconds: float) -> Soundtrack:
    """The source's soundtrack fitted to its video (silence if it has none), then the new audio."""
    if job.append_only:
        return Soundtrack.of(job.audio)
    original = Segment(source.path if source.has_audio else None, original_seconds)
    return Soundtrack((original, Segment(job.audio)))
