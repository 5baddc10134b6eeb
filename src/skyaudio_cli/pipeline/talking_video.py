"""The talking-portrait pipeline: portrait + speech -> frames, one window (up to 81 frames).

Usable from Python as well as from the CLI:

    pipe = TalkingVideoPipeline.from_pretrained("skyreels-v3-a2v", device="cuda")
    video = pipe(portrait=PIL.Image.open("face.png"), audio=wave_16k_mono)

Steps follow diffusers' pipeline shape: check_inputs -> encode_prompt / encode_reference /
encode_audio -> prepare_latents -> denoise -> decode.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from skyaudio_cli.conditioning.audio_features import AudioFeatureEncoder, load_audio_encoder, num_video_frames
from skyaudio_cli.conditioning.audio_windows import frame_windows
from skyaudio_cli.conditioning.image_encoder import ImageEncoder
from skyaudio_cli.conditioning.text import TextEncoder
from skyaudio_cli.conditioning.vae import VideoVAE
from skyaudio_cli.errors import InputError
from skyaudio_cli.media.image import resize_center_crop
from skyaudio_cli.model.transformer import AudioWanTransformer3DModel
from skyaudio_cli.pipeline.acceleration import Acceleration, denoising_session, load_accelerated_transformer
from skyaudio_cli.pipeline.buckets import pick_size
from skyaudio_cli.pipeline.conditioning import known_frames_mask, padded_frame_count, reference_video
from skyaudio_cli.pipeline.device import resolve_attention_backend, resolve_device, resolve_dtype
from skyaudio_cli.pipeline.family import FamilyDefaults, family_defaults
from skyaudio_cli.sampling.flow_euler import sample_euler, shifted_timesteps
from skyaudio_cli.sampling.guidance import GuidanceScales, Pass, combine

SAMPLE_RATE = 16000
ProgressFn = Callable[[int, int], None]


@dataclass
class GeneratedVideo:
    frames: np.ndarray  # [T, H, W, 3] uint8
    fps: float

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


class TalkingVideoPipeline:
    def __init__(
        self,
        *,
        transformer: AudioWanTransformer3DModel,
        vae: VideoVAE,
        text_encoder: TextEncoder,
        image_encoder: ImageEncoder | None,
        audio_encoder: AudioFeatureEncoder,
        defaults: FamilyDefaults,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.transformer = transformer
        self.vae = vae
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.audio_encoder = audio_encoder
        self.defaults = defaults
        self.device = device
        self.dtype = dtype

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
    ) -> "TalkingVideoPipeline":
        """Load every component of a model family (manifest name or local folder); ``acceleration``
        picks the transformer's optional speed/memory modes."""
        from skyaudio_cli.weights import resolve_model

        resolved = resolve_model(str(model))
        defaults = family_defaults(resolved.family)
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
        transformer = load_accelerated_transformer(
            transformer_files, device=torch_device, dtype=torch_dtype,
            attention=resolve_attention_backend(attention, torch_device),
            acceleration=acceleration or Acceleration(), num_steps=defaults.steps,
        )  # fmt: skip
        step("vae")
        # Like the reference, the VAE runs in float32: it is small, and bf16 decoding shows banding.
        vae = VideoVAE.from_pretrained(parts["vae"], device=torch_device, dtype=torch.float32)
        step("text encoder")
        text_encoder = TextEncoder.from_pretrained(
            parts["text_encoder"], parts["tokenizer"], device=torch_device, dtype=torch_dtype
        )
        # HuMo conditions on VAE latents only: its families ship no CLIP image encoder.
        image_encoder = None
        if "image_encoder" in parts:
            step("image encoder")
            image_encoder = ImageEncoder.from_pretrained(
                parts["image_encoder"], device=torch_device, dtype=torch_dtype
            )
        step("audio encoder")
        audio_encoder = load_audio_encoder(
            parts["audio_encoder"], resolved.audio_encoder, device=torch_device, dtype=torch.float32
        )
        return cls(
            transformer=transformer, vae=vae, text_encoder=text_encoder, image_encoder=image_encoder,
            audio_encoder=audio_encoder, defaults=defaults, device=torch_device, dtype=torch_dtype,
        )  # fmt: skip

    # -- steps -------------------------------------------------------------------------------

    def check_inputs(self, audio: np.ndarray, num_frames: int) -> None:
        if audio.ndim != 1 or audio.size == 0:
            raise InputError("audio: expected non-empty mono samples at 16 kHz")
        if num_frames > self.defaults.frames_per_window:
            seconds = self.defaults.frames_per_window / self.defaults.fps
            raise InputError(
                f"audio is {audio.size / SAMPLE_RATE:.2f} s; this version generates up to one window "
                f"({self.defaults.frames_per_window} frames = {seconds:.2f} s)"
                "; long video is not available yet"
            )

    @torch.no_grad()
    def encode_prompt(self, prompt: str, negative_prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = self.text_encoder.encode([prompt, negative_prompt])
        return embeddings[:1].to(self.dtype), embeddings[1:].to(self.dtype)

    @torch.no_grad()
    def encode_reference(
        self, portrait: Image.Image, width: int, height: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels [1, 3, 1, H, W] in [-1, 1] and CLIP tokens [1, N, C] of the cropped portrait."""
        cropped = np.asarray(resize_center_crop(portrait, width, height), dtype=np.float32)
        pixels = torch.from_numpy(cropped).permute(2, 0, 1)[None, :, None] / 127.5 - 1.0
        pixels = pixels.to(self.device)
        tokens = self.image_encoder.encode(pixels[:, :, 0])
        return pixels, tokens.to(self.dtype)

    @torch.no_grad()
    def encode_audio(self, audio: np.ndarray, num_frames: int) -> torch.Tensor:
        """Per-frame audio windows [1, num_frames, 5, layers, channels]."""
        features = self.audio_encoder.encode(audio, num_frames)
        return frame_windows(features)[None].to(self.device, self.dtype)

    @torch.no_grad()
    def prepare_condition(self, reference: torch.Tensor, num_frames: int) -> torch.Tensor:
        """concat(mask4, VAE latents16) for a video whose first frame is the reference."""
        latents = self.vae.encode(reference_video(reference, num_frames).to(torch.float32))
        known = torch.zeros(num_frames, dtype=torch.bool)
        known[0] = True
        mask = known_frames_mask(known, *latents.shape[-2:]).to(latents.device, latents.dtype)
        return torch.cat([mask, latents], dim=1).to(self.dtype)

    def prepare_latents(self, condition: torch.Tensor, seed: int) -> torch.Tensor:
        _, _, frames, height, width = condition.shape
        generator = torch.Generator("cpu").manual_seed(seed)
        # Noise is drawn on the CPU so the same seed gives the same video on any device.
        noise = torch.randn(
            (1, self.vae.z_dim, frames, height, width), generator=generator, dtype=torch.float32
        )
        return noise.to(self.device)

    @torch.no_grad()
    def denoise(
        self,
        latents: torch.Tensor,
        *,
        condition: torch.Tensor,
        text: torch.Tensor,
        negative_text: torch.Tensor,
        image_tokens: torch.Tensor,
        audio: torch.Tensor,
        timesteps: torch.Tensor,
        scales: GuidanceScales,
        progress: ProgressFn | None = None,
    ) -> torch.Tensor:
        passes = scales.passes()
        text_for = {
            Pass.COND: text,
            Pass.DROP_TEXT: negative_text,
            Pass.DROP_AUDIO: text,
            Pass.UNCOND: negative_text,
        }
        silent = torch.zeros_like(audio)
        audio_for = {Pass.COND: audio, Pass.DROP_TEXT: audio, Pass.DROP_AUDIO: silent, Pass.UNCOND: silent}
        # All guidance passes go through the transformer as one batch.
        text_batch = torch.cat([text_for[p] for p in passes])
        audio_batch = torch.cat([audio_for[p] for p in passes])
        image_batch = image_tokens.expand(len(passes), -1, -1)
        condition_batch = condition.expand(len(passes), -1, -1, -1, -1)

        def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
            model_input = torch.cat(
                [x.to(self.dtype).expand(len(passes), -1, -1, -1, -1), condition_batch], dim=1
            )
            timestep = torch.full((len(passes),), t, device=self.device, dtype=torch.float32)
            out = self.transformer(
                hidden_states=model_input,
                timestep=timestep,
                encoder_hidden_states=text_batch,
                encoder_hidden_states_image=image_batch,
                audio_embeds=audio_batch,
                return_dict=False,
            )[0].float()
            return combine(scales, dict(zip(passes, out.split(1), strict=True)))

        total = len(timesteps) - 1
        with denoising_session(self.transformer):
            return sample_euler(
                velocity,
                latents,
                timesteps,
                on_step=(lambda i: progress(i + 1, total)) if progress is not None else None,
            )

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, num_frames: int) -> np.ndarray:
        video = self.vae.decode(latents.to(torch.float32))[0, :, :num_frames]
        frames = ((video.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return frames.permute(1, 2, 3, 0).cpu().numpy()

    # -- the whole job -----------------------------------------------------------------------

    def __call__(
        self,
        *,
        portrait: Image.Image,
        audio: np.ndarray,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        resolution: str | None = None,
        seed: int = 0,
        steps: int | None = None,
        shift: float | None = None,
        text_scale: float | None = None,
        audio_scale: float | None = None,
        progress: ProgressFn | None = None,
    ) -> GeneratedVideo:
        """Generate frames at the model's fps; `audio` is 16 kHz mono float32."""
        d = self.defaults
        num_frames = num_video_frames(audio.size, SAMPLE_RATE, d.fps)
        self.check_inputs(audio, num_frames)
        padded_frames = padded_frame_count(num_frames)
        width, height = pick_size(resolution or d.resolution, portrait.width / portrait.height)

        text, negative_text = self.encode_prompt(prompt or d.prompt, negative_prompt or d.negative_prompt)
        reference, image_tokens = self.encode_reference(portrait, width, height)
        audio_windows = self.encode_audio(pad_audio_reversed(audio, padded_frames, d.fps), padded_frames)
        condition = self.prepare_condition(reference, padded_frames)
        latents = self.prepare_latents(condition, seed)

        latents = self.denoise(
            latents,
            condition=condition,
            text=text,
            negative_text=negative_text,
            image_tokens=image_tokens,
            audio=audio_windows,
            timesteps=shifted_timesteps(steps or d.steps, shift or d.shift).to(torch.float32),
            scales=GuidanceScales(
                text=d.text_scale if text_scale is None else text_scale,
                audio=d.audio_scale if audio_scale is None else audio_scale,
            ),
            progress=progress,
        )
        return GeneratedVideo(frames=self.decode(latents, num_frames), fps=d.fps)


def pad_audio_reversed(audio: np.ndarray, num_frames: int, fps: float) -> np.ndarray:
    """Extend audio to cover `num_frames` frames by mirroring its tail.

    A mirrored tail keeps the speech envelope continuous at the cut (silence would make the
    mouth snap shut in the padding frames, which are trimmed afterwards anyway).
    """
    needed = int(np.ceil(num_frames * SAMPLE_RATE / fps))
    if audio.size >= needed:
        return audio
    pieces = [audio]
    length = audio.size
    reverse = True
    while length < needed:
        piece = audio[::-1] if reverse else audio
        pieces.append(piece[: needed - length])
        length += pieces[-1].size
        reverse = not reverse
    return np.concatenate(pieces)
