"""Per-family generation defaults, read from weights.toml so there is one source of truth."""

from dataclasses import dataclass

# The negative prompt the Wan2.1 family was trained with (kept in the original language, as the
# text encoder saw it).
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
DEFAULT_PROMPT = "A person talks to the camera with natural facial expressions and clear lip movements."


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
    # "humo": HuMo's pipeline (reference latents, optional portrait, UniPC); otherwise the a2v one.
    architecture: str = "a2v"
    image_scale: float = 1.0
    guidance_switch_timestep: float | None = None
    # Long video: "skyreels" / "infinitetalk" chain windows by motion frames (`motion_frames` of them,
    # what the model was trained with); "fusion" blends overlapping windows (`fusion_overlap` latents).
    long_video_mode: str = "fusion"
    motion_frames: int = 5
    fusion_overlap: int = 5
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = WAN_NEGATIVE_PROMPT
    random_weights: bool = False
    # A preset's LoRA (its family's `lora` component) is fused at this scale.
    lora_scale: float = 1.0


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
        architecture=str(d.get("architecture", "a2v")),
        image_scale=float(d.get("image_guidance", 1.0)),
        guidance_switch_timestep=(
            float(d["guidance_switch_timestep"]) if "guidance_switch_timestep" in d else None
        ),
        random_weights=spec.generated,
        lora_scale=float(d.get("lora_scale", 1.0)),
    )
