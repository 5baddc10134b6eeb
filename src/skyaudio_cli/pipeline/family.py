"""Per-family generation defaults, read from weights.toml so there is one source of truth."""

import re
from dataclasses import dataclass, fields, replace
from enum import StrEnum

from skyaudio_cli.errors import InputError

# Negative prompts by the name weights.toml gives them. "wan" is the one the Wan2.1 family was
# trained with (kept in the original language, as the text encoder saw it; HuMo uses it);
# "wan-english" is its English version, which the SkyReels-V3 talking-avatar and InfiniteTalk
# configs set instead.
NEGATIVE_PROMPTS = {
    "wan": (
        "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
        "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
        "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
    ),
    "wan-english": (
        "bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, "
        "static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, "
        "extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, "
        "fused fingers, still picture, messy background, three legs, many people in the background, "
        "walking backwards"
    ),
}
DEFAULT_PROMPT = "A person talks to the camera with natural facial expressions and clear lip movements."
_LUFS = re.compile(r"^(-?\d+(?:\.\d+)?) LUFS$")


class Architecture(StrEnum):
    """The model a family runs (weights.toml's ``architecture``): the one place the pipeline class,
    the components loaded, the transformer's input layout and the modes offered are decided from.
    Checkpoint shapes are only checked against it (``model.checkpoint.TransformerLayout``)."""

    # Wan2.1-I2V + audio cross-attention (SkyReels-V3, InfiniteTalk): CLIP tokens of the reference and
    # the I2V condition concat(mask4, latents16) next to the noise; motion frames chain windows.
    a2v = "a2v"
    # humo-17b: the reference is an extra latent frame seen through concat(mask4, condition16).
    humo_masked_condition = "humo-masked-condition"
    # humo-1.7b: the reference is written straight into the extra latent frame (16 input channels).
    humo_reference_latents = "humo-reference-latents"

    @property
    def is_humo(self) -> bool:
        """HuMo's pipeline: VAE reference latents, an optional portrait, UniPC, latent fusion."""
        return self is not Architecture.a2v

    @property
    def has_image_encoder(self) -> bool:
        """Conditions on CLIP image tokens (HuMo families ship no image encoder)."""
        return self is Architecture.a2v

    @property
    def can_extend(self) -> bool:
        """Has motion-frame conditioning, so it can continue a video."""
        return self is Architecture.a2v

    @property
    def needs_portrait(self) -> bool:
        """Every video starts from a reference image (HuMo can run from text and audio alone)."""
        return self is Architecture.a2v

    @property
    def masked_condition(self) -> bool:
        """The transformer input carries concat(mask4, condition16) channels after the noise."""
        return self is not Architecture.humo_reference_latents

    @property
    def transformer_in_channels(self) -> int:
        """Noise latents (16), plus the mask (4) and condition latents (16) where there are any."""
        return 36 if self.masked_condition else 16


@dataclass(frozen=True)
class FamilyDefaults:
    family: str
    audio_encoder: str
    fps: float
    frames_per_window: int
    steps: int
    shift: float
    text_scale: float
    audio_scale: float
    resolution: str
    variant: Architecture = Architecture.a2v  # weights.toml's `architecture`
    image_scale: float = 1.0
    guidance_switch_timestep: float | None = None
    # Long video: "skyreels" / "infinitetalk" chain windows by motion frames (`motion_frames` of them,
    # what the model was trained with); "fusion" blends overlapping windows (`fusion_overlap` latents).
    long_video_mode: str = "fusion"
    motion_frames: int = 5
    fusion_overlap: int = 5
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = NEGATIVE_PROMPTS["wan"]
    # The fixed prompt the release conditions every window after its first pass on (SkyReels-V3's
    # "connection prompt"); None: every window hears the user's prompt.
    connection_prompt: str | None = None
    # Speech loudness the encoder is fed at (integrated LUFS), or None: the samples' own level.
    loudness_lufs: float | None = -23.0
    # Feature frame count: ceil or floor of duration x fps (wav2vec2 families).
    audio_frames: str = "ceil"
    # Guidance scales below this are refused: the release runs a term only when its scale is
    # above 1, so a smaller value would silently mean "off" there (SkyReels-V3).
    min_guidance_scale: float | None = None
    # Shift at 720p where the release switches it with the resolution (InfiniteTalk: 11).
    shift_720p: float | None = None
    size_buckets: str = "skyreels"
    random_weights: bool = False
    # A preset's LoRA (its family's `lora` component) is fused at this scale.
    lora_scale: float = 1.0

    def shift_for(self, resolution: str | None) -> float:
        if self.shift_720p is not None and (resolution or self.resolution) == "720p":
            return self.shift_720p
        return self.shift

    def check_scales(self, text_scale: float | None, audio_scale: float | None) -> None:
        """Refuse guidance scales this family's release would not run (before any model loads)."""
        if self.min_guidance_scale is None:
            return
        for option, value in (("--text-scale", text_scale), ("--audio-scale", audio_scale)):
            if value is not None and value < self.min_guidance_scale:
                raise InputError(
                    f"{option} {value:g}: model '{self.family}' guides only with scales above "
                    f"{self.min_guidance_scale:g} ({self.min_guidance_scale:g} turns the term off); "
                    f"use a value >= {self.min_guidance_scale:g}"
                )


def family_defaults(family: str) -> FamilyDefaults:
    from skyaudio_cli.weights import get_model

    spec = get_model(family)
    d = spec.defaults
    return FamilyDefaults(
        family=family,
        audio_encoder=spec.audio_encoder,
        fps=float(d.get("fps", 25)),
        frames_per_window=int(d.get("frames_per_window", 81)),
        steps=int(d["steps"]),
        shift=float(d["shift"]),
        text_scale=float(d.get("text_guidance", 1.0)),
        audio_scale=float(d.get("audio_guidance", 1.0)),
        resolution=str(d.get("resolution", "480p")),
        long_video_mode=str(d.get("long_video", "fusion")),
        motion_frames=int(d.get("motion_frames", 5)),
        fusion_overlap=int(d.get("fusion_overlap_latents", 5)),
        variant=Architecture(str(d.get("architecture", Architecture.a2v))),
        image_scale=float(d.get("image_guidance", 1.0)),
        guidance_switch_timestep=(
            float(d["guidance_switch_timestep"]) if "guidance_switch_timestep" in d else None
        ),
        negative_prompt=NEGATIVE_PROMPTS[str(d.get("negative_prompt", "wan"))],
        connection_prompt=str(d["connection_prompt"]) if "connection_prompt" in d else None,
        loudness_lufs=_loudness(str(d.get("loudness", "-23 LUFS"))),
        audio_frames=str(d.get("audio_frames", "ceil")),
        min_guidance_scale=float(d["min_guidance_scale"]) if "min_guidance_scale" in d else None,
        shift_720p=float(d["shift_720p"]) if "shift_720p" in d else None,
        size_buckets=str(d.get("size_buckets", "skyreels")),
        random_weights=spec.generated,
        lora_scale=float(d.get("lora_scale", 1.0)),
    )


def _loudness(text: str) -> float | None:
    """weights.toml's `loudness`: "none" or "<target> LUFS"."""
    if text == "none":
        return None
    match = _LUFS.match(text)
    if match is None:
        raise ValueError(f'weights.toml loudness must be "none" or "<number> LUFS", got {text!r}')
    return float(match[1])


@dataclass(frozen=True)
class GenerationOptions:
    """What a pipeline's `stream` is asked for; None (and long-video mode "auto") = the family's
    default, filled in by `merged`. The tasks layer resolves a job to merged options once; the
    pipelines merge what Python callers give them the same way."""

    prompt: str | None = None
    negative_prompt: str | None = None
    keep_prompt: bool = False  # the windows after a preview hear `prompt`, not the connection prompt
    resolution: str | None = None
    seed: int = 0
    steps: int | None = None
    shift: float | None = None
    text_scale: float | None = None
    audio_scale: float | None = None
    long_video_mode: str = "auto"

    def merged(self, d: FamilyDefaults) -> "GenerationOptions":
        """Every default of family `d` filled in (the shift for the resolution asked for)."""
        return replace(
            self,
            prompt=self.prompt or d.prompt,
            negative_prompt=self.negative_prompt or d.negative_prompt,
            resolution=self.resolution or d.resolution,
            steps=self.steps or d.steps,
            shift=self.shift or d.shift_for(self.resolution),
            text_scale=d.text_scale if self.text_scale is None else self.text_scale,
            audio_scale=d.audio_scale if self.audio_scale is None else self.audio_scale,
            long_video_mode=d.long_video_mode if self.long_video_mode == "auto" else self.long_video_mode,
        )

    def as_arguments(self) -> dict:
        """The options as keyword arguments of the pipelines' `stream`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
