"""The runner skeleton every video task shares: prepare -> stream -> sink -> result.

A runner prepares a `Render` (its inputs read and checked, the pipeline loaded, a lazy stream of
frames) and `render` writes it: one bar (or, without a terminal, a line every 30 s) over every
denoising step, frames piped to ffmpeg as each window finishes so memory does not grow with the
video's length, and under torchrun only rank 0 writing (every rank generates: the DiT is split
across them). Shared preparation steps live here too.
"""

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from skyaudio_cli import console
from skyaudio_cli.conditioning.audio_features import SAMPLE_RATE
from skyaudio_cli.errors import RuntimeFailure
from skyaudio_cli.media.audio import AudioFile, check_audio, is_silent, normalize_loudness, open_audio
from skyaudio_cli.media.soundtrack import Soundtrack
from skyaudio_cli.media.video import VideoInfo, VideoWriter
from skyaudio_cli.media.video_writer import OUTPUT_AUDIO_SAMPLE_RATE, encoded_size
from skyaudio_cli.model import parallel
from skyaudio_cli.model.acceleration import Acceleration
from skyaudio_cli.pipeline.base import VideoPipeline, VideoStream, family_loras
from skyaudio_cli.pipeline.cache import PipelineCache, PipelineKey
from skyaudio_cli.pipeline.dispatch import pipeline_for
from skyaudio_cli.pipeline.family import FamilyDefaults
from skyaudio_cli.tasks.resolve import ResolvedJob

# Without a terminal, a progress line this often: ~40 lines for a 20-minute job.
LOG_PROGRESS_SECONDS = 30.0


@dataclass(frozen=True)
class Sink:
    """One mp4 a job writes."""

    path: Path
    fps: float
    width: int
    height: int
    soundtrack: Soundtrack


@dataclass
class Render:
    """A prepared job: `frames` yields, in order, one frame per sink (generated lazily)."""

    stream: VideoStream | None  # the model's stream, for progress; None when nothing is generated
    sinks: tuple[Sink, ...]
    frames: Iterator[tuple[np.ndarray, ...]]
    overwrite: bool


def render(r: Render) -> int:
    """Write every frame of `r` to its sinks; returns the frames written to the first."""
    with ExitStack() as stack:
        stack.enter_context(step_progress(r.stream) if r.stream is not None else nullcontext())
        sinks = [
            stack.enter_context(
                video_sink(
                    sink.path, fps=sink.fps, width=sink.width, height=sink.height, audio=sink.soundtrack,
                    audio_sample_rate=OUTPUT_AUDIO_SAMPLE_RATE, overwrite=r.overwrite,
                )
            )
            for sink in r.sinks
        ]  # fmt: skip
        for frames in r.frames:
            for sink, frame in zip(sinks, frames, strict=True):
                sink.write(frame)
        return sinks[0].frames_written


class _Discard:
    frames_written = 0

    def write(self, frames: np.ndarray) -> None:
        self.frames_written += 1 if frames.ndim == 3 else len(frames)


@contextmanager
def video_sink(
    path: Path,
    *,
    fps: float,
    width: int,
    height: int,
    audio: np.ndarray | Soundtrack,
    audio_sample_rate: int,
    overwrite: bool,
) -> Iterator[VideoWriter | _Discard]:
    """A VideoWriter on the main process, a counter elsewhere; I/O errors become RuntimeFailure."""
    if not parallel.is_main_process():
        yield _Discard()
        return
    try:
        with VideoWriter(
            path, fps=fps, width=width, height=height, audio=audio,
            audio_sample_rate=audio_sample_rate, overwrite=overwrite,
        ) as writer:  # fmt: skip
            yield writer
    except OSError as failure:
        raise RuntimeFailure(f"{path}: could not write video ({failure.strerror or failure})") from failure


def family_result(resolved: ResolvedJob) -> dict:
    """The result fields every task reports about the model and the seed."""
    return {
        "model": resolved.model.family,
        "random_weights": resolved.family.random_weights,
        "seed": resolved.config.seed,
    }


def written_size(source: VideoInfo) -> dict:
    """--json fields: the output's size (an odd one loses its last column/row, see `encoded_size`)
    and the source's."""
    width, height = encoded_size(source.width, source.height)
    return {"width": width, "height": height, "source_width": source.width, "source_height": source.height}


def warn_if_random_weights(resolved: ResolvedJob) -> None:
    if resolved.family.random_weights:
        console.warn(
            f"model '{resolved.model.family}' has RANDOM weights (a test model): the video will be noise, "
            "not a talking person. For real output run `skyaudio weights fetch skyreels-v3-a2v` and use "
            "--model skyreels-v3-a2v."
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


def job_speech(resolved: ResolvedJob) -> AudioFile:
    """The job's speech, checked, at its family's loudness; the random-weights warning once the
    inputs are known to be usable."""
    speech = load_speech(resolved.job.audio, resolved.settings.max_audio_seconds)
    warn_if_random_weights(resolved)
    return at_family_loudness(speech, resolved.family)


def load_pipeline(pipelines: PipelineCache | None, resolved: ResolvedJob) -> VideoPipeline:
    """The job's pipeline with exactly the job's LoRAs and its preset's fused. Loaded once per base
    family and runtime settings: a preset shares its family's loaded model (the same weights), and a
    cached pipeline fused with other LoRAs is re-fused exactly."""
    from skyaudio_cli.weights.lora_files import LoraRef
    from skyaudio_cli.weights.manifest import base_family

    s = resolved.settings
    acceleration = Acceleration(fp8=s.fp8, offload=s.offload, compile=s.compile, cache=s.cache)
    pipelines = pipelines or PipelineCache()
    recipe = family_loras(resolved.model.components, resolved.family)
    base = base_family(s.family)
    with console.stderr.status("loading model...") as status:
        refs = [LoraRef.parse(text) for text in s.lora]
        loras = tuple((ref.local_path(), ref.scale) for ref in refs)
        pipe = pipelines.get(
            PipelineKey(base, s.device, s.dtype, s.attention, acceleration),
            pipeline_for(resolved.family.variant),
            on_load=lambda part: status.update(f"loading {part}..."),
            # Loading its own family adds the recipe itself; loading a preset's base does not.
            loras=loras if base == s.family else (*recipe, *loras),
        )
        pipe.use_family(resolved.family, recipe)
        if pipe.loras != (*pipe.family_loras, *loras):
            status.update("fusing LoRA adapters...")
        pipe.use_loras(loras)
        return pipe


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
