"""What a user asks for, independent of how it was asked (CLI flags, a batch manifest line, Python).

Each field's range or choices are declared here (`fields.bounded` / `fields.choice`); the CLI options
and the manifest checks are made from them. Validation here is cheap (files, paths, option
combinations) and runs before any model is loaded, so a typo fails in milliseconds instead of after
minutes of loading weights; `resolve.py` adds the checks that need the model family.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from skyaudio_cli.errors import InputError, NotAvailableError
from skyaudio_cli.modes import (
    Attention,
    CacheMode,
    Device,
    DType,
    EditMode,
    LongVideoMode,
    LoopMode,
    ReferenceMode,
)
from skyaudio_cli.tasks.fields import bounded, choice

DEFAULT_MODEL = "skyreels-v3-a2v"
DEFAULT_MAX_AUDIO_SECONDS = 3600.0


@dataclass(frozen=True)
class Settings:
    """Knobs shared by every task; `None` means the model family's default."""

    model: str = DEFAULT_MODEL
    prompt: str | None = None
    negative_prompt: str | None = None
    keep_prompt: bool = False
    resolution: str | None = None
    seed: int = bounded(0, 0)
    steps: int | None = bounded(None, 1, 1000)
    shift: float | None = bounded(None, 0.01)
    text_scale: float | None = bounded(None, 0.0)
    audio_scale: float | None = bounded(None, 0.0)
    fps: float | None = bounded(None, 1.0, 120.0)
    device: str = choice("auto", Device)
    dtype: str = choice("bf16", DType)
    attention: str = choice("auto", Attention)
    fp8: bool = False
    offload: bool = False
    compile: bool = False
    cache: str = choice("none", CacheMode)
    long_video_mode: str = choice("auto", LongVideoMode)
    max_audio_seconds: float = bounded(DEFAULT_MAX_AUDIO_SECONDS, 0.1)
    # LoRA adapters as given (`PATH_OR_HUB_FILE[:SCALE]`), and a published recipe of the family.
    lora: tuple[str, ...] = ()
    preset: str | None = None

    @property
    def family(self) -> str:
        """The model to load: `model`, or its preset's family (`<model>-<preset>`)."""
        if self.preset is None:
            return self.model
        from skyaudio_cli.weights.manifest import preset_family

        return preset_family(self.model, self.preset)


@dataclass(frozen=True)
class GenerateJob:
    audio: Path
    output: Path
    portrait: Path | None = None
    overwrite: bool = False
    # A video portrait: "follow" it window by window, or only its "first-frame"; None: follow a
    # video, and an image has only its first frame.
    reference_mode: str | None = choice(None, ReferenceMode)
    loop_mode: str = choice("pingpong", LoopMode)  # a followed video shorter than the audio
    settings: Settings = field(default_factory=Settings)
    UNUSED_SETTINGS: ClassVar[tuple[str, ...]] = ()

    @property
    def portrait_is_video(self) -> bool:
        from skyaudio_cli.media.video import VIDEO_SUFFIXES

        return self.portrait is not None and self.portrait.suffix.lower() in VIDEO_SUFFIXES

    @property
    def follows_video(self) -> bool:
        """Whether the portrait is a video the generation follows (the default for a video)."""
        return self.portrait_is_video and self.reference_mode in (None, "follow")


@dataclass(frozen=True)
class ExtendJob:
    video: Path
    audio: Path
    output: Path
    append_only: bool = False
    overwrite: bool = False
    settings: Settings = field(default_factory=Settings)
    UNUSED_SETTINGS: ClassVar[tuple[str, ...]] = ()


def require_file(path: Path, option: str) -> None:
    if not path.exists():
        raise InputError(f"{option} {path}: file not found")
    if not path.is_file():
        raise InputError(f"{option} {path}: not a file")


def validate_settings(settings: Settings) -> None:
    from skyaudio_cli.pipeline.buckets import validate_resolution
    from skyaudio_cli.pipeline.preflight import check_runtime

    if settings.resolution is not None:
        validate_resolution(settings.resolution)
    check_runtime(settings.device, settings.dtype, settings.attention)
    if settings.cache == CacheMode.mag:
        raise NotAvailableError(
            "--cache mag: MagCache needs magnitude ratios calibrated for the checkpoint and none are shipped"
            " yet; use --cache first-block"
        )
    if settings.prompt is not None and not settings.prompt.strip():
        raise InputError("--prompt: empty prompt; leave the option out to use the model's default")
    from skyaudio_cli.weights.lora_files import LoraRef
    from skyaudio_cli.weights.manifest import preset_family

    if settings.preset is not None:
        preset_family(settings.model, settings.preset)  # an unknown preset fails before any model loads
    for text in settings.lora:
        LoraRef.parse(text).validate()


def check_formats(*, audio: Path, videos: tuple[Path, ...] = (), portrait: Path | None = None) -> None:
    """Each input holds what it is given as (an audio stream, a video stream, an image), judged from
    its header in milliseconds so a swapped file fails before any model code is imported."""
    from skyaudio_cli.media.audio import check_audio_file
    from skyaudio_cli.media.image import check_image_file
    from skyaudio_cli.media.video import VIDEO_SUFFIXES, check_video_file

    for video in videos:
        check_video_file(video)
    if portrait is not None:
        (check_video_file if portrait.suffix.lower() in VIDEO_SUFFIXES else check_image_file)(portrait)
    check_audio_file(audio)


def validate_generate(job: GenerateJob) -> None:
    from skyaudio_cli.media.video import VIDEO_SUFFIXES, check_output_path

    require_file(job.audio, "--audio")
    if job.portrait is not None:
        require_file(job.portrait, "--portrait")
        if job.portrait.resolve() == job.output.resolve():
            raise InputError(f"--output {job.output}: would overwrite the portrait")
    if job.audio.resolve() == job.output.resolve():
        raise InputError(f"--output {job.output}: would overwrite the audio input")
    if job.reference_mode == "follow" and not job.portrait_is_video:
        raise InputError(
            f"--reference-mode follow: --portrait {job.portrait} is not a video "
            f"({', '.join(sorted(VIDEO_SUFFIXES))})"
        )
    check_formats(audio=job.audio, portrait=job.portrait)
    validate_settings(job.settings)
    check_output_path(job.output, overwrite=job.overwrite)


@dataclass(frozen=True)
class EditLipsyncJob:
    """Re-lip-sync `video` to `audio`. The region to regenerate is detected (lower face) unless
    `mask_video` (bright = edit) or `face_box` ("x,y,w,h" in source pixels) gives it."""

    video: Path
    audio: Path
    output: Path
    overwrite: bool = False
    mask_video: Path | None = None
    face_box: str | None = None  # "x,y,w,h", see parse_face_box
    debug_mask: Path | None = None
    allow_no_face: bool = False
    loop_mode: str = choice("pingpong", LoopMode)
    keep_original_audio: bool = False
    mode: str = choice("mask", EditMode)
    settings: Settings = field(default_factory=Settings)
    # The edit keeps the source's frame rate, and chains windows by motion frames (edit_lipsync.py).
    UNUSED_SETTINGS: ClassVar[tuple[str, ...]] = ("fps", "long_video_mode")


def parse_face_box(text: str) -> tuple[int, int, int, int]:
    """`--face-box x,y,w,h` in source pixels (upright, as players show the video)."""
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise InputError(
            f"--face-box {text!r}: expected four integers x,y,w,h (pixels), e.g. 400,300,200,160"
        )
    x, y, w, h = (int(p) for p in parts)
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise InputError(f"--face-box {text!r}: x and y must be >= 0, width and height > 0")
    return x, y, w, h


def validate_edit_lipsync(job: EditLipsyncJob) -> None:
    from skyaudio_cli.media.video import check_output_path

    require_file(job.video, "--video")
    require_file(job.audio, "--audio")
    inputs = {"the input video": job.video, "the audio input": job.audio}
    if job.mask_video is not None:
        require_file(job.mask_video, "--mask-video")
        inputs["the mask video"] = job.mask_video
    if job.mask_video is not None and job.face_box is not None:
        raise InputError("--mask-video and --face-box: give one of them (or neither, to detect the face)")
    if job.face_box is not None:
        parse_face_box(job.face_box)
    for name, path in inputs.items():
        if path.resolve() == job.output.resolve():
            raise InputError(f"--output {job.output}: would overwrite {name}")
        if job.debug_mask is not None and path.resolve() == job.debug_mask.resolve():
            raise InputError(f"--debug-mask {job.debug_mask}: would overwrite {name}")
    if job.debug_mask is not None and job.mode == "full-frame":
        raise InputError("--debug-mask: draws the lip-sync mask, which --mode full-frame does not use")
    if job.debug_mask is not None:
        if job.debug_mask.resolve() == job.output.resolve():
            raise InputError(f"--debug-mask {job.debug_mask}: is the same file as --output")
        check_output_path(job.debug_mask, overwrite=job.overwrite)
    check_formats(audio=job.audio, videos=tuple(p for p in (job.video, job.mask_video) if p is not None))
    validate_settings(job.settings)
    check_output_path(job.output, overwrite=job.overwrite)


def validate_extend(job: ExtendJob) -> None:
    from skyaudio_cli.media.video import check_output_path

    require_file(job.video, "--video")
    require_file(job.audio, "--audio")
    for given, option in ((job.video, "input video"), (job.audio, "audio input")):
        if given.resolve() == job.output.resolve():
            raise InputError(f"--output {job.output}: would overwrite the {option}")
    check_formats(audio=job.audio, videos=(job.video,))
    validate_settings(job.settings)
    check_output_path(job.output, overwrite=job.overwrite)
