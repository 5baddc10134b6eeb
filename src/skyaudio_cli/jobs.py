"""What a user asks for, independent of how it was asked (CLI flags today, batch manifests later).

Validation here is cheap (files, paths, option combinations) and runs before any model is
loaded, so a typo fails in milliseconds instead of after minutes of loading weights.
"""

from dataclasses import dataclass, field
from pathlib import Path

from skyaudio_cli.errors import InputError, NotAvailableError

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
    seed: int = 0
    steps: int | None = None
    shift: float | None = None
    text_scale: float | None = None
    audio_scale: float | None = None
    fps: float | None = None
    device: str = "auto"
    dtype: str = "bf16"
    attention: str = "auto"
    fp8: bool = False
    offload: bool = False
    compile: bool = False
    cache: str = "none"
    long_video_mode: str = "auto"
    max_audio_seconds: float = DEFAULT_MAX_AUDIO_SECONDS
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
    reference_mode: str | None = None
    loop_mode: str = "pingpong"  # a followed video shorter than the audio: "pingpong" or "freeze"
    settings: Settings = field(default_factory=Settings)

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
    if settings.cache == "mag":
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
    loop_mode: str = "pingpong"
    keep_original_audio: bool = False
    mode: str = "mask"  # "mask": the lower face only; "full-frame": the whole frame, following the video
    settings: Settings = field(default_factory=Settings)


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
    if job.settings.long_video_mode == "fusion":
        raise InputError("--long-video-mode fusion cannot continue a video (no motion frames); use auto")
    check_output_path(job.output, overwrite=job.overwrite)
