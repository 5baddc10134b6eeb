"""Runs a validated `generate` job: inputs -> pipeline -> mp4, with progress on stderr."""

from pathlib import Path

from PIL import Image
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from skyaudio_cli.cli import output
from skyaudio_cli.conditioning.audio_features import num_video_frames
from skyaudio_cli.errors import InputError, RuntimeFailure
from skyaudio_cli.jobs import GenerateJob
from skyaudio_cli.media.audio import audio_duration, check_audio, load_audio, normalize_loudness
from skyaudio_cli.media.image import load_image
from skyaudio_cli.media.video import VideoWriter, iter_frames, probe_video
from skyaudio_cli.pipeline import parallel
from skyaudio_cli.pipeline.acceleration import Acceleration
from skyaudio_cli.pipeline.cache import PipelineCache, PipelineKey
from skyaudio_cli.pipeline.family import family_defaults
from skyaudio_cli.pipeline.frame_rate import resample_frame_indices
from skyaudio_cli.pipeline.talking_video import SAMPLE_RATE

# Muxed audio is decoded at this rate so the output keeps the input's quality, not the 16 kHz
# the audio encoder needs.
MUX_SAMPLE_RATE = 48000
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}


def load_portrait(path: Path) -> Image.Image:
    """A portrait image, or the first frame of a portrait video."""
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


def run_generate(job: GenerateJob, pipelines: PipelineCache | None = None) -> dict:
    """Run one job; pass a shared `pipelines` cache to reuse loaded models across jobs."""
    from skyaudio_cli.weights import resolve_model

    s = job.settings
    resolved = resolve_model(s.model)
    defaults = family_defaults(resolved.family)
    # HuMo also renders a person from the prompt alone; the a2v families animate a given face.
    if job.portrait is None and defaults.architecture != "humo":
        raise InputError(f"--portrait is required for model '{resolved.family}' (it animates a given face)")
    if defaults.random_weights:
        output.warn(
            f"model '{resolved.family}' has RANDOM weights (a test model): the video will be noise, not a "
            "talking person. For real output run `skyaudio weights fetch skyreels-v3-a2v` and use --model "
            "skyreels-v3-a2v."
        )

    speech = load_audio(job.audio, sample_rate=SAMPLE_RATE)
    check_audio(speech, job.audio, max_seconds=s.max_audio_seconds)
    num_frames = num_video_frames(speech.size, SAMPLE_RATE, defaults.fps)
    if num_frames > defaults.frames_per_window:
        raise InputError(
            f"--audio {job.audio}: {speech.size / SAMPLE_RATE:.2f} s is longer than one window "
            f"({defaults.frames_per_window} frames = {defaults.frames_per_window / defaults.fps:.2f} s), "
            "the most this version generates; long video is not available yet"
        )
    speech = normalize_loudness(speech, SAMPLE_RATE)
    portrait = load_portrait(job.portrait) if job.portrait is not None else None

    acceleration = Acceleration(fp8=s.fp8, offload=s.offload, compile=s.compile, cache=s.cache)
    pipelines = pipelines or PipelineCache()
    with output.stderr.status("loading model...") as status:
        pipe = pipelines.get(
            PipelineKey(s.model, s.device, s.dtype, s.attention, acceleration),
            on_load=lambda part: status.update(f"loading {part}..."),
        )
    with _progress() as bar:
        task = bar.add_task("denoising", total=None)
        video = pipe(
            portrait=portrait, audio=speech, prompt=s.prompt, negative_prompt=s.negative_prompt,
            resolution=s.resolution, seed=s.seed, steps=s.steps, shift=s.shift, text_scale=s.text_scale,
            audio_scale=s.audio_scale,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip

    fps = s.fps or video.fps
    seconds = audio_duration(speech, SAMPLE_RATE)
    indices = resample_frame_indices(len(video.frames), video.fps, fps, seconds)
    mux_audio = load_audio(job.audio, sample_rate=MUX_SAMPLE_RATE)
    height, width = video.frames.shape[1:3]
    # Under torchrun every rank holds the same frames; only rank 0 writes them.
    if parallel.is_main_process():
        try:
            with VideoWriter(
                job.output, fps=fps, width=width, height=height, audio=mux_audio,
                audio_sample_rate=MUX_SAMPLE_RATE, overwrite=job.overwrite,
            ) as writer:  # fmt: skip
                for index in indices:
                    writer.write(video.frames[index])
        except OSError as failure:
            raise RuntimeFailure(
                f"{job.output}: could not write video ({failure.strerror or failure})"
            ) from failure
    return {
        "output": str(job.output),
        "model": resolved.family,
        "random_weights": defaults.random_weights,
        "frames": len(indices),
        "fps": fps,
        "width": width,
        "height": height,
        "duration_s": len(indices) / fps,
        "audio_duration_s": seconds,
        "seed": s.seed,
    }


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=output.stderr,
        transient=False,
    )
