"""Option declarations shared by `generate`, `edit-lipsync` and `extend`.

Declared once as `Annotated` aliases so the three commands stay in step; defaults of `None` mean
"use the model family's default from weights.toml". Ranges come from the job fields they fill
(tasks/jobs.py), choices from the enums those fields declare (pipeline/modes.py).
"""

from pathlib import Path
from typing import Annotated, Any

import typer

# pure modules: no heavy imports
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
from skyaudio_cli.tasks.fields import bounds_of
from skyaudio_cli.tasks.jobs import Settings

GENERATION = "Generation"
RUNTIME = "Runtime"


def finite_float(name: str, *names: str, **option: Any) -> Any:
    """A `typer.Option` for `Settings.<name>`, a float in its declared range, that calls 'nan' "not a
    number" (typer's own min/max refused NaN, which compares false with everything, as "should be less
    than or equal to 120")."""
    bounds = bounds_of(Settings, name)

    def parse(text: Any) -> float:
        try:
            value = float(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a number") from None
        problem = bounds.problem(value, text)
        if problem is not None:
            raise typer.BadParameter(problem)
        return value

    shown = " to ".join(f"{bound:g}" for bound in (bounds.minimum, bounds.maximum) if bound is not None)
    if bounds.maximum is None:
        shown = f">= {shown}"
    return typer.Option(*names, parser=parse, metavar=f"FLOAT [{shown}]", **option)


def int_range(name: str) -> dict[str, Any]:
    """typer's min/max for `Settings.<name>`, an integer in its declared range."""
    bounds = bounds_of(Settings, name)
    return {"min": bounds.minimum, "max": bounds.maximum}


AudioOpt = Annotated[
    Path,
    typer.Option("--audio", "-a", help="Speech audio (wav, mp3, m4a, flac, ogg, or a video's audio track)."),
]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Output .mp4 (written atomically).")]
VideoOpt = Annotated[Path, typer.Option("--video", "-v", help="Input video.")]
PromptOpt = Annotated[
    str | None, typer.Option(help="Text describing the person and scene.", rich_help_panel=GENERATION)
]
NegativePromptOpt = Annotated[
    str | None,
    typer.Option(
        help="What to avoid (default: the model's released negative prompt).", rich_help_panel=GENERATION
    ),
]
KeepPromptOpt = Annotated[
    bool,
    typer.Option(
        "--keep-prompt",
        help="Condition every window on --prompt. By default skyreels-v3-a2v, as released, conditions the "
        "windows after its preview on the fixed prompt 'a person is talking'.",
        rich_help_panel=GENERATION,
    ),
]
ModelOpt = Annotated[
    str,
    typer.Option("--model", "-m", help="Model family from `skyaudio weights list`, or a local model folder."),
]
ResolutionOpt = Annotated[
    str | None,
    typer.Option(
        help="480p, 720p, or WIDTHxHEIGHT (multiples of 16); default from the model.",
        rich_help_panel=GENERATION,
    ),
]
SeedOpt = Annotated[
    int,
    typer.Option(
        **int_range("seed"), help="Random seed (same seed, same video).", rich_help_panel=GENERATION
    ),
]
StepsOpt = Annotated[
    int | None,
    typer.Option(
        **int_range("steps"), help="Denoising steps (default from the model).", rich_help_panel=GENERATION
    ),
]
ShiftOpt = Annotated[
    float | None, finite_float("shift", help="Timestep shift of the sampler.", rich_help_panel=GENERATION)
]
TextScaleOpt = Annotated[
    float | None,
    finite_float(
        "text_scale", "--text-scale", help="Text guidance scale (1 = off).", rich_help_panel=GENERATION
    ),
]
AudioScaleOpt = Annotated[
    float | None,
    finite_float(
        "audio_scale", "--audio-scale", help="Audio guidance scale (1 = off).", rich_help_panel=GENERATION
    ),
]
# extend's --fps has its own help text.
FpsOpt = Annotated[
    float | None,
    finite_float("fps", help="Output frame rate (model native: 25).", rich_help_panel=GENERATION),
]
LoraOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--lora",
        metavar="PATH[:SCALE]",
        help="LoRA adapter: a .safetensors file or a Hub file owner/name/path.safetensors, with an optional"
        " :SCALE (default 1); repeat for several. Fused into the weights before the first step.",
        rich_help_panel=GENERATION,
    ),
]
PresetOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="A published few-step recipe of the model (a LoRA + its steps, shift and guidance), e.g."
        " lightx2v or fusionx for infinitetalk; see README.",
        rich_help_panel=GENERATION,
    ),
]
MaxAudioOpt = Annotated[
    float,
    finite_float(
        "max_audio_seconds", "--max-audio-seconds", help="Refuse longer audio.", rich_help_panel=RUNTIME
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing output file.")]
DeviceOpt = Annotated[Device, typer.Option(help="Where to run.", rich_help_panel=RUNTIME)]
DTypeOpt = Annotated[DType, typer.Option(help="Weight/compute dtype.", rich_help_panel=RUNTIME)]
AttentionOpt = Annotated[
    Attention,
    typer.Option(
        help="Attention backend (auto: xformers on CUDA when installed, else PyTorch SDPA).",
        rich_help_panel=RUNTIME,
    ),
]
FP8Opt = Annotated[
    bool,
    typer.Option(
        "--fp8", help="Store transformer weights in FP8 (half the memory of bf16).", rich_help_panel=RUNTIME
    ),
]
OffloadOpt = Annotated[
    bool,
    typer.Option(
        "--offload",
        help="Keep transformer weights in host RAM, one block at a time on the GPU (for 24 GB GPUs).",
        rich_help_panel=RUNTIME,
    ),
]
CompileOpt = Annotated[
    bool,
    typer.Option(
        "--compile", help="torch.compile the transformer blocks (slow first step).", rich_help_panel=RUNTIME
    ),
]
CacheOpt = Annotated[
    CacheMode,
    typer.Option(
        help="Skip transformer blocks when a step changes little (faster, can lower quality).",
        rich_help_panel=RUNTIME,
    ),
]
LongVideoModeOpt = Annotated[
    LongVideoMode,
    typer.Option(
        help="How windows are chained past 81 frames: auto (the model's), skyreels (noised motion frames"
        " + keyframes), infinitetalk (clean motion frames), fusion (overlapping windows blended).",
        rich_help_panel=GENERATION,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON result object on stdout.")]

# edit-lipsync: which region is regenerated, and what happens when video and audio lengths differ.
EDIT = "Edit region and length"


MaskVideoOpt = Annotated[
    Path | None,
    typer.Option(
        help="Grey/binary video (same length; resized to the video) marking the region to regenerate "
        "(bright = edit), instead of detecting the face.",
        rich_help_panel=EDIT,
    ),
]
FaceBoxOpt = Annotated[
    str | None,
    typer.Option(
        help="x,y,w,h: a fixed rectangle (source pixels) to regenerate on every frame, e.g. mouth and chin.",
        rich_help_panel=EDIT,
    ),
]
DebugMaskOpt = Annotated[
    Path | None,
    typer.Option(
        help="Also write this .mp4: the output with the edit mask and face crop drawn on it.",
        rich_help_panel=EDIT,
    ),
]
AllowNoFaceOpt = Annotated[
    bool,
    typer.Option(
        "--allow-no-face",
        help="If no face is found at all, write the video unchanged with the new audio instead of failing.",
        rich_help_panel=EDIT,
    ),
]
EditModeOpt = Annotated[
    EditMode,
    typer.Option(
        "--mode",
        help="mask: regenerate only the lower face, every other pixel stays the source's; full-frame: "
        "regenerate the whole frame, following the video's camera, background and body.",
        rich_help_panel=EDIT,
    ),
]
ReferenceModeOpt = Annotated[
    ReferenceMode | None,
    typer.Option(
        help="A video --portrait: follow it (its camera, background and body, window by window) or use "
        "only its first frame. Default: follow for a video.",
        rich_help_panel=GENERATION,
    ),
]
LoopModeOpt = Annotated[
    LoopMode,
    typer.Option(
        help="Video shorter than the audio: play it back and forth, or hold its last frame.",
        rich_help_panel=EDIT,
    ),
]
KeepOriginalAudioOpt = Annotated[
    bool,
    typer.Option(
        "--keep-original-audio",
        help="Video longer than the audio: play it to its end, with its original sound after the new "
        "audio (default: trim).",
        rich_help_panel=EDIT,
    ),
]
