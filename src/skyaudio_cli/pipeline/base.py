"""What both pipelines (a2v: ``TalkingVideoPipeline``, HuMo: ``HumoPipeline``) share, and what callers
use of either (``VideoPipeline``).

``PipelineBase`` loads a family's components (the transformer as the family's ``Architecture`` lays
it out; a CLIP image encoder only where the architecture has one, passed as ``image_encoder``),
fuses LoRAs, encodes text, and opens the sampling session every denoising loop runs in, so block
caches, compiled blocks and offloading behave the same under both.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np
import torch
from PIL import Image

from skyaudio_cli.conditioning.audio_encoders import load_audio_encoder
from skyaudio_cli.conditioning.audio_features import AudioFeatureEncoder
from skyaudio_cli.conditioning.image_encoder import ImageEncoder
from skyaudio_cli.conditioning.text import TextEncoder
from skyaudio_cli.conditioning.vae import VideoVAE
from skyaudio_cli.errors import InputError, WeightsError
from skyaudio_cli.long_video.reference_video import ReferenceVideo
from skyaudio_cli.media.audio import Wave
from skyaudio_cli.model.acceleration import (
    Acceleration,
    denoising_session,
    load_accelerated_transformer,
    window_cache,
)
from skyaudio_cli.model.checkpoint import TransformerLayout, set_adapters
from skyaudio_cli.model.transformer import AudioWanTransformer3DModel
from skyaudio_cli.pipeline.device import resolve_attention_backend, resolve_device, resolve_dtype
from skyaudio_cli.pipeline.family import Architecture, FamilyDefaults, family_defaults
from skyaudio_cli.pipeline.library_logs import libraries_quiet

ProgressFn = Callable[[int, int], None]
Loras = tuple[tuple[Path, float], ...]


@dataclass
class GeneratedVideo:
    frames: np.ndarray  # [T, H, W, 3] uint8
    fps: float

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


@dataclass
class VideoStream:
    """A video being generated: iterate `frames` for uint8 [n, H, W, 3] batches, in order."""

    frames: Iterator[np.ndarray]
    fps: float
    width: int
    height: int
    num_frames: int
    windows: int  # generation windows (incl. a skyreels preview window)
    mode: str
    progress: ProgressFn | None = None  # (steps done, total steps) over all windows; may be set late


class VideoPipeline(Protocol):
    """What the job runners use of a loaded pipeline, whichever architecture it runs."""

    defaults: FamilyDefaults
    family_loras: Loras

    @property
    def loras(self) -> Loras: ...

    def load_lora(self, path: str | Path, scale: float = 1.0) -> None: ...

    def unload_lora(self) -> None: ...

    def use_family(self, defaults: FamilyDefaults, recipe: Sequence[tuple[Path, float]]) -> None: ...

    def use_loras(self, loras: Sequence[tuple[Path, float]]) -> None: ...

    def stream(
        self,
        *,
        audio: Wave,
        portrait: Image.Image | None = ...,
        start_frames: np.ndarray | None = ...,
        reference_video: ReferenceVideo | None = ...,
        prompt: str | None = ...,
        negative_prompt: str | None = ...,
        keep_prompt: bool = ...,
        resolution: str | None = ...,
        seed: int = ...,
        steps: int | None = ...,
        shift: float | None = ...,
        text_scale: float | None = ...,
        audio_scale: float | None = ...,
        long_video_mode: str = ...,
        progress: ProgressFn | None = ...,
    ) -> VideoStream: ...

    def __call__(self, **kwargs: Any) -> GeneratedVideo: ...


class PipelineBase(ABC):
    """A loaded model family: its components, defaults, device and dtype."""

    # The architectures this class runs (from_pretrained refuses a family of another).
    architectures: frozenset[Architecture]

    def __init__(
        self,
        *,
        transformer: AudioWanTransformer3DModel,
        vae: VideoVAE,
        text_encoder: TextEncoder,
        audio_encoder: AudioFeatureEncoder,
        defaults: FamilyDefaults,
        device: torch.device,
        dtype: torch.dtype,
        family_loras: Loras = (),
    ) -> None:
        self.transformer = transformer
        self.vae = vae
        self.text_encoder = text_encoder
        self.audio_encoder = audio_encoder
        self.defaults = defaults
        self.device = device
        self.dtype = dtype
        # A preset family's own LoRA (fused at load): part of the recipe, kept under use_loras.
        self.family_loras = family_loras

    @property
    def architecture(self) -> Architecture:
        return self.defaults.variant

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path = "skyreels-v3-a2v",
        *,
        device: str = "auto",
        dtype: str = "bf16",
        attention: str = "auto",
        acceleration: Acceleration | None = None,
        on_load: Callable[[str], None] | None = None,
        loras: Sequence[tuple[Path, float]] = (),
    ) -> Self:
        """Load every component of a model family (manifest name or local folder); ``acceleration``
        picks the transformer's optional speed/memory modes; ``loras`` (file, scale) are fused into
        the transformer while it loads, after the family's own LoRA (a preset's)."""
        from skyaudio_cli.weights import resolve_model

        with libraries_quiet():  # their notices and per-file bars, not ours
            resolved = resolve_model(str(model))
            defaults = family_defaults(resolved.family)
            architecture = defaults.variant
            if architecture not in cls.architectures:
                raise InputError(
                    f"{model}: model family '{resolved.family}' has architecture {architecture}, which "
                    f"{cls.__name__} does not run (pipeline.dispatch.pipeline_for picks the class)"
                )
            torch_device = resolve_device(device)
            torch_dtype = resolve_dtype(dtype, torch_device)
            parts = resolved.components

            def step(name: str) -> None:
                if on_load is not None:
                    on_load(name)

            step("transformer")
            transformer_files = [parts["transformer"]] + (
                [parts["transformer_adapter"]] if "transformer_adapter" in parts else []
            )
            recipe = family_loras(parts, defaults)
            transformer = load_accelerated_transformer(
                transformer_files, device=torch_device, dtype=torch_dtype,
                attention=resolve_attention_backend(attention, torch_device),
                acceleration=acceleration or Acceleration(), num_steps=defaults.steps,
                adapters=(*recipe, *loras),
                layout=TransformerLayout(
                    humo=architecture.is_humo, in_channels=architecture.transformer_in_channels
                ),
            )  # fmt: skip
            step("vae")
            # Like the reference, the VAE runs in float32: it is small, and bf16 decoding shows banding.
            vae = VideoVAE.from_pretrained(parts["vae"], device=torch_device, dtype=torch.float32)
            step("text encoder")
            text_encoder = TextEncoder.from_pretrained(
                parts["text_encoder"], parts["tokenizer"], device=torch_device, dtype=torch_dtype
            )
            extra = {}
            if architecture.has_image_encoder:
                step("image encoder")
                path = _require_component(parts, "image_encoder", architecture)
                extra["image_encoder"] = ImageEncoder.from_pretrained(
                    path, device=torch_device, dtype=torch_dtype
                )
            step("audio encoder")
            audio_encoder = load_audio_encoder(
                parts["audio_encoder"], resolved.audio_encoder, device=torch_device, dtype=torch.float32
            )
            return cls(
                transformer=transformer, vae=vae, text_encoder=text_encoder, audio_encoder=audio_encoder,
                defaults=defaults, device=torch_device, dtype=torch_dtype, family_loras=recipe, **extra,
            )  # fmt: skip

    # -- LoRA adapters (fused into the transformer's weights: no cost per step) ------------------

    @property
    def loras(self) -> Loras:
        """The (file, scale) pairs fused into the transformer now, in order."""
        return self.transformer.fused_adapters.adapters

    def load_lora(self, path: str | Path, scale: float = 1.0) -> None:
        """Fuse one more LoRA (a .safetensors file, or a Hub file ``owner/name/path.safetensors``)."""
        from skyaudio_cli.weights.lora_files import LoraRef

        ref = LoraRef(str(path), scale)
        ref.validate()
        set_adapters(self.transformer, (*self.loras, (ref.local_path(), scale)))

    def unload_lora(self) -> None:
        """Remove every fused LoRA (a preset's too): the weights are the released ones, bit for bit."""
        set_adapters(self.transformer, ())

    def use_family(self, defaults: FamilyDefaults, recipe: Sequence[tuple[Path, float]]) -> None:
        """Run as another family with the same weights (a preset of the loaded one): its defaults
        and its LoRA, fused by the next ``use_loras``."""
        self.defaults = defaults
        self.family_loras = tuple(recipe)

    def use_loras(self, loras: Sequence[tuple[Path, float]]) -> None:
        """Fuse exactly the family's LoRA plus ``loras`` (re-fusing only when that changes)."""
        set_adapters(self.transformer, (*self.family_loras, *loras))

    # -- shared steps ------------------------------------------------------------------------

    @torch.no_grad()
    def encode_prompt(self, prompt: str, negative_prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = self.text_encoder.encode([prompt, negative_prompt])
        return embeddings[:1].to(self.dtype), embeddings[1:].to(self.dtype)

    @torch.no_grad()
    def encode_text(self, prompt: str) -> torch.Tensor:
        return self.text_encoder.encode([prompt]).to(self.dtype)

    def sampling_session(self, *, per_window: bool = False) -> AbstractContextManager:
        """Wrap one sampling loop (``acceleration.denoising_session``): block caches start clean;
        ``per_window`` for fused loops, whose every call enters ``window_session`` of its window."""
        return denoising_session(self.transformer, per_window=per_window)

    def window_session(self, window: int) -> AbstractContextManager:
        """One fused window's transformer calls (its own block-cache state)."""
        return window_cache(self.transformer, window)

    # -- the whole job -----------------------------------------------------------------------

    @abstractmethod
    def stream(self, **kwargs: Any) -> VideoStream:
        """Frames for 16 kHz mono audio of any length, generated as they are iterated."""

    def __call__(self, **kwargs: Any) -> GeneratedVideo:
        """Generate the whole video in memory (see `stream` for long videos); same arguments."""
        stream = self.stream(**kwargs)
        return GeneratedVideo(frames=np.concatenate(list(stream.frames)), fps=stream.fps)


def family_loras(components: Mapping[str, Path], defaults: FamilyDefaults) -> Loras:
    """A family's own LoRA (a preset's ``lora`` component) at its scale, or none."""
    return ((components["lora"], defaults.lora_scale),) if "lora" in components else ()


def _require_component(parts: Mapping[str, Path], name: str, architecture: Architecture) -> Path:
    """The component path, or one WeightsError line: the family's architecture needs it."""
    if name not in parts:
        raise WeightsError(f"model folder has no {name} component, which {architecture} models need")
    return parts[name]
