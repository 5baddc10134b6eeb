"""Runs validated `generate` and `extend` jobs: inputs -> pipeline stream -> mp4, progress on stderr.

Frames go from the pipeline to ffmpeg as each window finishes, so memory does not grow with the
video's length.
"""

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from skyaudio_cli import console
from skyaudio_cli.errors import InputError
from skyaudio_cli.jobs import ExtendJob, GenerateJob, Settings
from skyaudio_cli.media.audio import (
    AudioFile,
    audio_duration,
    check_audio,
    is_silent,
    normalize_loudness,
    open_audio,
)
from skyaudio_cli.media.image import load_image
from skyaudio_cli.media.soundtrack import Segment, Soundtrack
from skyaudio_cli.media.video import VIDEO_SUFFIXES, VideoInfo, iter_frames, probe_video, read_last_frames
from skyaudio_cli.media.video_writer import OUTPUT_AUDIO_SAMPLE_RATE, encoded_size
from skyaudio_cli.pipeline.acceleration import Acceleration
from skyaudio_cli.pipeline.cache import PipelineCache, PipelineKey
from skyaudio_cli.pipeline.edit_timeline import ReferenceMode
from skyaudio_cli.pipeline.family import FamilyDefaults, family_defaults
from skyaudio_cli.pipeline.frame_rate import output_frame_count, resample_frame_indices
from skyaudio_cli.pipeline.long_video import LongVideoMode
from skyaudio_cli.pipeline.reference_video import ReferenceVideo
from skyaudio_cli.pipeline.talking_video import SAMPLE_RATE, TalkingVideoPipeline, VideoStream, family_loras
from skyaudio_cli.pipeline.video_output import resized, retime, video_sink

# Without a terminal, a progress line this often: ~40 lines for a 20-minute job.
LOG_PROGRESS_SECONDS = 30.0


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


def run_generate(job: GenerateJob, pipelines: PipelineCache | None = None) -> dict:
    """Run one job; pass a shared `pipelines` cache to reuse loaded models across jobs."""
    from skyaudio_cli.weights import resolve_model

    s = job.settings
    resolved = resolve_model(s.family)
    defaults = family_defaults(resolved.family)
    # HuMo also renders a person from the prompt alone; the a2v families animate a given face.
    if job.portrait is None and defaults.architecture != "humo":
        raise InputError(f"--portrait is required for model '{resolved.family}' (it animates a given face)")
    defaults.check_scales(s.text_scale, s.audio_scale)
    if job.follows_video:
        check_can_follow(defaults, s.long_video_mode)
    warn_if_random_weights(resolved.family, defaults)
    speech = at_family_loudness(load_speech(job.audio, s.max_audio_seconds), defaults)
    if job.follows_video:
        source = {"reference_video": ReferenceVideo.open(job.portrait, loop=job.loop_mode)}
    else:
        source = {"portrait": load_portrait(job.portrait) if job.portrait is not None else None}
    stream = _start_stream(load_pipeline(pipelines, s), s, speech, **source)
    fps = s.fps or stream.fps
    seconds = audio_duration(speech, SAMPLE_RATE)
    count = output_frame_count(seconds, fps)
    with (
        step_progress(stream),
        video_sink(
            job.output, fps=fps, width=stream.width, height=stream.height,
            audio=Soundtrack.of(job.audio), audio_sample_rate=OUTPUT_AUDIO_SAMPLE_RATE,
            overwrite=job.overwrite,
        ) as sink,
    ):  # fmt: skip
        indices = resample_frame_indices(stream.num_frames, stream.fps, fps, seconds)
        for frame in retime(stream.frames, indices):
            sink.write(frame)
    return {
        "output": str(job.output),
        "model": resolved.family,
        "random_weights": defaults.random_weights,
        "frames": count,
        "fps": fps,
        "width": stream.width,
        "height": stream.height,
        "duration_s": count / fps,
        "audio_duration_s": seconds,
        "windows": stream.windows,
        "long_video_mode": stream.mode,
        "reference_mode": str(ReferenceMode.follow if job.follows_video else ReferenceMode.first_frame),
        "seed": s.seed,
    }


def check_can_follow(defaults: FamilyDefaults, long_video_mode: str) -> None:
    """Refuse, before loading, a video to follow where the windows have no per-window reference:
    latent fusion on the image-conditioned families (HuMo's fused windows each have their own)."""
    mode = defaults.long_video_mode if long_video_mode == LongVideoMode.auto else long_video_mode
    if mode == LongVideoMode.fusion and defaults.architecture != "humo":
        raise InputError(
            f"--reference-mode follow: --long-video-mode fusion gives model '{defaults.family}' no "
            "per-window reference frame; use --long-video-mode auto or --reference-mode first-frame"
        )


def run_extend(job: ExtendJob, pipelines: PipelineCache | None = None) -> dict:
    """Continue `job.video` with `job.audio`: the source frames (unless append-only), then new ones.

    The continuation is generated at 25 fps at the family's size bucket from the source's last
    frames (re-sampled to 25 fps when the source runs at another rate), then resized back to the
    source size and re-timed to the output rate: the source rate unless --fps says otherwise.
    """
    from skyaudio_cli.weights import resolve_model

    s = job.settings
    # Inputs first: a corrupt video should not wait for (or be reported as) missing weights.
    source = probe_video(job.video)
    speech = load_speech(job.audio, s.max_audio_seconds)
    resolved = resolve_model(s.family)
    defaults = family_defaults(resolved.family)
    defaults.check_scales(s.text_scale, s.audio_scale)
    warn_if_random_weights(resolved.family, defaults)
    speech = at_family_loudness(speech, defaults)
    context = _last_frames(source, defaults.motion_frames, defaults.fps)
    stream = _start_stream(load_pipeline(pipelines, s), s, speech, start_frames=context)

    fps = s.fps or source.fps
    seconds = audio_duration(speech, SAMPLE_RATE)
    new_frames = output_frame_count(seconds, fps)
    original = [] if job.append_only else _source_frames(source, fps)
    original_frames = 0 if job.append_only else _source_frame_count(source, fps)
    audio = _extended_soundtrack(job, source, original_frames / fps)
    continuation = resized(
        retime(stream.frames, resample_frame_indices(stream.num_frames, stream.fps, fps, seconds)),
        source.width,
        source.height,
    )
    with (
        step_progress(stream),
        video_sink(
            job.output, fps=fps, width=source.width, height=source.height, audio=audio,
            audio_sample_rate=OUTPUT_AUDIO_SAMPLE_RATE, overwrite=job.overwrite,
        ) as sink,
    ):  # fmt: skip
        for frame in original:
            sink.write(frame)
        for frame in continuation:
            sink.write(frame)
        written = sink.frames_written
    return {
        "output": str(job.output),
        "model": resolved.family,
        "random_weights": defaults.random_weights,
        "frames": written,
        "source_frames": original_frames,
        "new_frames": new_frames,
        "fps": fps,
        **written_size(source),
        "duration_s": written / fps,
        "audio_duration_s": seconds,
        "windows": stream.windows,
        "long_video_mode": stream.mode,
        "seed": s.seed,
    }


def written_size(source: VideoInfo) -> dict:
    """--json fields: the output's size (an odd one loses its last column/row, see `encoded_size`)
    and the source's."""
    width, height = encoded_size(source.width, source.height)
    return {"width": width, "height": height, "source_width": source.width, "source_height": source.height}


def warn_if_random_weights(family: str, defaults) -> None:
    if defaults.random_weights:
        console.warn(
            f"model '{family}' has RANDOM weights (a test model): the video will be noise, not a "
            "talking person. For real output run `skyaudio weights fetch skyreels-v3-a2v` and use --model "
            "skyreels-v3-a2v."
        )


def load_speech(path: Path, max_seconds: float) -> AudioFile:
    """The speech at the encoders' rate, checked, read from disk as windows need it."""
    speech = open_audio(path, sample_rate=SAMPLE_RATE)
    check_audio(speech, path, max_seconds=max_seconds)
    if is_silent(speech):
        console.warn(f"audio file {path} is silent: the face will not speak")
    return speech


def at_family_loudness(speech: AudioFile, defaults: FamilyDefaults) -> AudioFile:
    """The speech at the level the family's release feeds its encoder: a LUFS target (the wav2vec2
    families; -23) or its own level (HuMo: Whisper's log-mel is not scale-invariant)."""
    if defaults.loudness_lufs is None:
        return speech
    return normalize_loudness(speech, SAMPLE_RATE, target_lufs=defaults.loudness_lufs)


def load_pipeline(pipelines: PipelineCache | None, s: Settings) -> TalkingVideoPipeline:
    """The job's pipeline with exactly the job's LoRAs and its preset's fused. Loaded once per base
    family and runtime settings: a preset shares its family's loaded model (the same weights), and a
    cached pipeline fused with other LoRAs is re-fused exactly."""
    from skyaudio_cli.weights import resolve_model
    from skyaudio_cli.weights.lora_files import LoraRef
    from skyaudio_cli.weights.manifest import base_family

    acceleration = Acceleration(fp8=s.fp8, offload=s.offload, compile=s.compile, cache=s.cache)
    pipelines = pipelines or PipelineCache()
    resolved = resolve_model(s.family)
    defaults = family_defaults(resolved.family)
    recipe = family_loras(resolved.components, defaults)
    base = base_family(s.family)
    with console.stderr.status("loading model...") as status:
        refs = [LoraRef.parse(text) for text in s.lora]
        loras = tuple((ref.local_path(), ref.scale) for ref in refs)
        pipe = pipelines.get(
            PipelineKey(base, s.device, s.dtype, s.attention, acceleration),
            on_load=lambda part: status.update(f"loading {part}..."),
            # Loading its own family adds the recipe itself; loading a preset's base does not.
            loras=loras if base == s.family else (*recipe, *loras),
        )
        pipe.use_family(defaults, recipe)
        if pipe.loras != (*pipe.family_loras, *loras):
            status.update("fusing LoRA adapters...")
        pipe.use_loras(loras)
        return pipe


def _start_stream(pipe: TalkingVideoPipeline, s: Settings, speech: AudioFile, **source) -> VideoStream:
    """The job's video as a stream; `source` is the portrait or the start frames to continue."""
    return pipe.stream(
        audio=speech, prompt=s.prompt, negative_prompt=s.negative_prompt, keep_prompt=s.keep_prompt,
        resolution=s.resolution,
        seed=s.seed, steps=s.steps, shift=s.shift, text_scale=s.text_scale, audio_scale=s.audio_scale,
        long_video_mode=s.long_video_mode, **source,
    )  # fmt: skip


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


class LogProgress:
    """Progress for logs: a plain line every `interval` seconds, and at the first and last step.

    A rich bar draws nothing until it ends when stderr is not a terminal (Slurm, nohup, `2> log`):
    a 20-minute job would show no progress for as long. Used as the stream's `progress` callback.
    """

    def __init__(
        self, stream: VideoStream, interval: float = LOG_PROGRESS_SECONDS, clock=time.monotonic, write=None
    ) -> None:
        self.windows = stream.windows
        # Fused windows are denoised side by side, so no window is "current".
        self.by_window = stream.mode != "fusion"
        self.interval = interval
        self.clock = clock
        self.write = write or console.info
        self.started = clock()
        self.first_step: float | None = None
        self.last: float | None = None

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self.first_step is None:
            self.first_step = now
        if done != 1 and done != total and self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.started
        where = ""
        if self.by_window and total % self.windows == 0:
            per_window = total // self.windows
            window = min(self.windows, (done - 1) // per_window + 1)
            where = f"window {window}/{self.windows}, "
        # The first step also pays for encoding the prompt, portrait and audio: the rate is taken
        # from the steps after it once there are any.
        rate = (now - self.first_step) / (done - 1) if done > 1 else elapsed
        eta = rate * (total - done)
        self.write(
            f"denoising: {where}step {done}/{total} ({100 * done // total}%), "
            f"elapsed {_clock_time(elapsed)}, ETA {_clock_time(eta)}"
        )


def _clock_time(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


@contextmanager
def step_progress(stream: VideoStream) -> Iterator[None]:
    """One bar over all windows x steps, with an ETA, while the stream is consumed; plain lines
    at a steady interval instead when stderr is not a terminal."""
    if not console.stderr.is_terminal:
        stream.progress = LogProgress(stream)
        yield
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console.stderr,
        transient=False,
    ) as bar:
        task = bar.add_task(f"denoising {stream.windows} window(s)", total=None)
        stream.progress = lambda done, total: bar.update(task, completed=done, total=total)
        yield
