"""HuMo's talking-video pipeline (humo-17b, humo-1.7b): prompt + speech, with or without a portrait.

    pipe = HumoPipeline.from_pretrained("humo-1.7b", device="cuda")
    video = pipe(portrait=None, audio=wave_16k_mono, prompt="A woman in a red coat talks ...")

What differs from the a2v pipeline (DESIGN.md section 7, HuMo's release):
- the reference image is VAE latents, one extra latent frame after the video's, dropped after
  sampling. humo-17b (36 input channels) sees it through concat(mask4, condition16) where the
  condition is the latents of an all-zero video with the reference in the extra frame (the release
  ships those zero-video latents as pickles; we encode them); humo-1.7b (16 channels) has the
  reference written straight into the extra latent frame before every forward.
- the portrait is letterboxed onto white, not cropped, as the release does; without a portrait the
  reference latent is zeros and the prompt alone describes the person;
- audio: Whisper features grouped per latent frame (8-frame windows), a zero window for the
  reference frame; guidance per ``sampling.humo_guidance``; UniPC sampling.
"""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps

from skyaudio_cli.conditioning.audio_features import num_video_frames
from skyaudio_cli.conditioning.audio_windows import humo_latent_windows
from skyaudio_cli.errors import InputError
from skyaudio_cli.pipeline.buckets import pick_size
from skyaudio_cli.pipeline.conditioning import padded_frame_count
from skyaudio_cli.pipeline.talking_video import SAMPLE_RATE, GeneratedVideo, ProgressFn, TalkingVideoPipeline
from skyaudio_cli.sampling.humo_guidance import Condition, HumoGuidance
from skyaudio_cli.sampling.unipc import sample_unipc

# The release letterboxes the portrait onto white.
LETTERBOX_FILL = (255, 255, 255)
# Without a portrait the release renders its 16:9 size (1280x720 / 832x480).
TEXT_ONLY_ASPECT = 16 / 9
_MASK_CHANNELS = 4
_MASKED_CONDITION_CHANNELS = 36


@dataclass
class HumoConditions:
    """Everything a forward pass can be conditioned on, for one window (batch 1)."""

    text: torch.Tensor  # [1, 512, text_dim]
    negative_text: torch.Tensor
    audio: torch.Tensor  # [1, F_lat + 1, 8, layers, channels], last window zero (reference frame)
    reference: torch.Tensor  # [1, 16, 1, h, w] latents; zeros without a portrait
    # humo-17b only: concat(mask4, condition16) with / without the reference, [1, 20, F_lat + 1, h, w]
    condition: torch.Tensor | None = None
    condition_without_reference: torch.Tensor | None = None


class HumoPipeline(TalkingVideoPipeline):
    """Loaded like the a2v pipeline (``from_pretrained``); generates one window of up to 97 frames."""

    @property
    def appends_masked_condition(self) -> bool:
        """humo-17b's layout (mask + condition channels) versus humo-1.7b's (reference in the latents)."""
        return self.transformer.config.in_channels == _MASKED_CONDITION_CHANNELS

    @torch.no_grad()
    def encode_portrait(self, portrait: Image.Image | None, width: int, height: int) -> torch.Tensor:
        """Reference latents [1, 16, 1, height/8, width/8]: the letterboxed portrait, or zeros."""
        stride = self.vae.spatial_stride
        if portrait is None:
            return torch.zeros(1, self.vae.z_dim, 1, height // stride, width // stride, device=self.device)
        fitted = ImageOps.pad(
            portrait, (width, height), method=Image.Resampling.LANCZOS, color=LETTERBOX_FILL
        )
        pixels = torch.from_numpy(np.asarray(fitted, dtype=np.float32)).permute(2, 0, 1)
        pixels = (pixels[None, :, None] / 127.5 - 1.0).to(self.device)
        return self.vae.encode(pixels)

    @torch.no_grad()
    def encode_audio_windows(self, audio: np.ndarray, num_frames: int, latent_frames: int) -> torch.Tensor:
        """[1, latent_frames + 1, 8, 5, 1280]: HuMo's per-latent windows, then the reference frame's zeros."""
        features = self.audio_encoder.encode(audio, num_frames)
        windows = humo_latent_windows(features, latent_frames)
        windows = torch.cat([windows, torch.zeros_like(windows[:1])])
        return windows[None].to(self.device, self.dtype)

    @torch.no_grad()
    def masked_conditions(
        self, reference: torch.Tensor, latent_frames: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """humo-17b's concat(mask4, condition16), with and without the reference, for latent_frames + 1.

        The mask is 1 on the reference frame in both (as released); the condition latents are those of
        an all-zero video of 1 + 4 * latent_frames pixel frames, the last one replaced by the reference.
        """
        _, _, _, height, width = reference.shape
        stride = self.vae.spatial_stride
        zero_video = torch.zeros(
            1, 3, 1 + self.vae.temporal_stride * latent_frames, height * stride, width * stride,
            device=self.device,
        )  # fmt: skip
        zero_latents = self.vae.encode(zero_video)
        mask = torch.zeros_like(zero_latents[:, :_MASK_CHANNELS])
        mask[:, :, -1] = 1.0
        with_reference = torch.cat([zero_latents[:, :, :-1], reference], dim=2)
        return (
            torch.cat([mask, with_reference], dim=1).to(self.dtype),
            torch.cat([mask, zero_latents], dim=1).to(self.dtype),
        )

    def model_input(self, latents: torch.Tensor, condition: Condition, c: HumoConditions) -> torch.Tensor:
        """The transformer input of one pass for the current latents [1, 16, F_lat + 1, h, w]."""
        if self.appends_masked_condition:
            extra = c.condition if condition.image else c.condition_without_reference
            return torch.cat([latents.to(self.dtype), extra], dim=1)
        reference = c.reference if condition.image else torch.zeros_like(c.reference)
        return torch.cat([latents[:, :, :-1], reference], dim=2).to(self.dtype)

    @torch.no_grad()
    def denoise_humo(
        self,
        latents: torch.Tensor,
        conditions: HumoConditions,
        guidance: HumoGuidance,
        *,
        steps: int,
        shift: float,
        progress: ProgressFn | None = None,
    ) -> torch.Tensor:
        silent = torch.zeros_like(conditions.audio)

        def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
            passes = guidance.conditions(t)
            out = self.transformer(
                hidden_states=torch.cat([self.model_input(x, p, conditions) for p in passes]),
                timestep=torch.full((len(passes),), t, device=self.device, dtype=torch.float32),
                encoder_hidden_states=torch.cat(
                    [conditions.text if p.text else conditions.negative_text for p in passes]
                ),
                audio_embeds=torch.cat([conditions.audio if p.audio else silent for p in passes]),
                return_dict=False,
            )[0].float()
            return guidance.combine(t, dict(zip(passes, out.split(1), strict=True)))

        on_step = (lambda i: progress(i + 1, steps)) if progress is not None else None
        return sample_unipc(velocity, latents, steps, shift, on_step=on_step)

    def __call__(
        self,
        *,
        portrait: Image.Image | None,
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
        """Generate frames at 25 fps for 16 kHz mono ``audio``; ``portrait`` None = text + audio mode."""
        d = self.defaults
        num_frames = num_video_frames(audio.size, SAMPLE_RATE, d.fps)
        self.require_one_window(num_frames)
        latent_frames = 1 + (padded_frame_count(num_frames) - 1) // self.vae.temporal_stride
        width, height = self.output_size(portrait, resolution)

        text, negative_text = self.encode_prompt(prompt or d.prompt, negative_prompt or d.negative_prompt)
        reference = self.encode_portrait(portrait, width, height)
        conditions = HumoConditions(
            text=text,
            negative_text=negative_text,
            audio=self.encode_audio_windows(audio, num_frames, latent_frames),
            reference=reference,
        )
        if self.appends_masked_condition:
            conditions.condition, conditions.condition_without_reference = self.masked_conditions(
                reference, latent_frames
            )
        # One extra latent frame for the reference, noised and sampled like the rest, then dropped.
        _, channels, _, latent_height, latent_width = reference.shape
        generator = torch.Generator("cpu").manual_seed(seed)  # CPU noise: same video on any device
        noise = torch.randn(channels, latent_frames + 1, latent_height, latent_width, generator=generator)
        guidance = HumoGuidance(
            text=d.text_scale if text_scale is None else text_scale,
            audio=d.audio_scale if audio_scale is None else audio_scale,
            image=d.image_scale,
            with_image=portrait is not None,
            # The time-dependent switch is humo-17b's recipe; humo-1.7b guides with four passes throughout.
            switch_timestep=d.guidance_switch_timestep if self.appends_masked_condition else None,
        )
        latents = self.denoise_humo(
            noise[None].to(self.device), conditions, guidance, steps=steps or d.steps, shift=shift or d.shift,
            progress=progress,
        )  # fmt: skip
        video = self.vae.decode(latents[:, :, :-1].float())[0, :, :num_frames]
        frames = ((video.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return GeneratedVideo(frames=frames.permute(1, 2, 3, 0).cpu().numpy(), fps=d.fps)

    def output_size(self, portrait: Image.Image | None, resolution: str | None) -> tuple[int, int]:
        aspect = portrait.width / portrait.height if portrait is not None else TEXT_ONLY_ASPECT
        return pick_size(resolution or self.defaults.resolution, aspect)

    def stream(
        self,
        *,
        audio: np.ndarray,
        portrait: Image.Image | None = None,
        start_frames: np.ndarray | None = None,
        long_video_mode: str | None = None,
        **settings,
    ):
        """The streaming interface the CLI drives (``TalkingVideoPipeline.stream``): one window here,
        generated when ``frames`` is iterated; ``settings`` are ``__call__``'s. ``long_video_mode`` is
        accepted and has no effect (a single window)."""
        # Imported here: the streaming result type belongs to the a2v pipeline's long-video API.
        from skyaudio_cli.pipeline.talking_video import VideoStream

        if start_frames is not None:
            raise InputError(
                f"{self.defaults.family}: HuMo models cannot continue a video (no motion frames)"
            )
        num_frames = num_video_frames(audio.size, SAMPLE_RATE, self.defaults.fps)
        self.require_one_window(num_frames)
        width, height = self.output_size(portrait, settings.get("resolution"))
        result = VideoStream(
            frames=iter(()), fps=self.defaults.fps, width=width, height=height, num_frames=num_frames,
            windows=1, mode="single-window",
        )  # fmt: skip

        def report(done: int, total: int) -> None:
            if result.progress is not None:  # set by the caller once it starts consuming
                result.progress(done, total)

        def frames():
            yield self(portrait=portrait, audio=audio, progress=report, **settings).frames

        result.frames = frames()
        return result

    def require_one_window(self, num_frames: int) -> None:
        # Long HuMo video needs the sliding-window latent fusion (DESIGN.md section 5), not wired yet.
        d = self.defaults
        if num_frames > d.frames_per_window:
            raise InputError(
                f"audio lasts {num_frames} frames; {d.family} generates up to one window of "
                f"{d.frames_per_window} frames ({d.frames_per_window / d.fps:.2f} s) in this version"
            )
