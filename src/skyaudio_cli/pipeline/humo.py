"""HuMo's talking-video pipeline (humo-17b, humo-1.7b): prompt + speech, with or without a portrait.

    pipe = HumoPipeline.from_pretrained("humo-1.7b", device="cuda")
    video = pipe(portrait=None, audio=wave_16k_mono, prompt="A woman in a red coat talks ...")

What differs from the a2v pipeline (HuMo's release; README: HuMo models):
- the reference image is VAE latents, one extra latent frame after the video's, dropped after
  sampling. humo-17b (36 input channels) sees it through concat(mask4, condition16) where the
  condition is the latents of an all-zero video with the reference in the extra frame (the release
  ships those zero-video latents as pickles; we encode them); humo-1.7b (16 channels) has the
  reference written straight into the extra latent frame before every forward.
- the portrait is letterboxed onto white, not cropped, as the release does; without a portrait the
  reference latent is zeros and the prompt alone describes the person;
- audio: Whisper features grouped per latent frame (8-frame windows), a zero window for the
  reference frame; guidance per ``sampling.humo_guidance``; UniPC sampling.

Long video (beyond one 97-frame window; the release stops there): the paper's sliding-window
latent fusion (``fusion.fused_sample``; HuMo has no motion conditioning to chain windows with).
Windows of 25 latents overlap by the family's ``fusion_overlap`` latents (5 = 20 frames, 0.8 s:
long enough for the blend ramp to hide the seam, for 25 % more compute). Each window is conditioned
as a one-window video would be: the same text, its own extra reference latent, and the audio windows
of its global frame range (zeros past the audio's real ends). Deviation from the release: fused
windows are sampled with Euler on UniPC's shifted timestep grid, because UniPC's multistep history
cannot follow latents whose overlaps are re-blended every step. A video that fits one window is
sampled with UniPC exactly as released.

Following a reference video (``reference_video``, InfiniteTalk's video-to-video idea on HuMo): each
fused window's reference latent is the letterboxed source frame at the window's first frame, on the
source's own timeline (``reference_video.py``). HuMo has no motion frames or I2V condition frame, so
that latent is all a window follows; a video that fits one window follows only its first frame.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from skyaudio_cli.conditioning.audio_features import SAMPLE_RATE, num_video_frames, require_mono
from skyaudio_cli.conditioning.audio_stream import WhisperFeatureStream, feature_stream
from skyaudio_cli.conditioning.audio_windows import humo_latent_windows, humo_window_frames
from skyaudio_cli.conditioning.frames import latent_frame_count, padded_frame_count, to_signed, to_uint8
from skyaudio_cli.errors import InputError
from skyaudio_cli.long_video.fusion import fused_sample
from skyaudio_cli.long_video.loop import decode_latent_stream
from skyaudio_cli.long_video.reference_video import FollowedFrames, ReferenceVideo
from skyaudio_cli.long_video.windows import LatentWindow, plan_latent_windows
from skyaudio_cli.media.audio import Wave, audio_duration
from skyaudio_cli.modes import HUMO_CANNOT_EXTEND, LongVideoMode
from skyaudio_cli.pipeline.base import PipelineBase, ProgressFn, VideoStream
from skyaudio_cli.pipeline.buckets import pick_size
from skyaudio_cli.pipeline.family import Architecture, GenerationOptions
from skyaudio_cli.sampling.flow_euler import euler_step
from skyaudio_cli.sampling.humo_guidance import Condition, HumoGuidance
from skyaudio_cli.sampling.unipc import sample_unipc, unipc_timesteps

# The release letterboxes the portrait onto white.
LETTERBOX_FILL = (255, 255, 255)
# Without a portrait the release renders its 16:9 size (1280x720 / 832x480).
TEXT_ONLY_SIZE = (16, 9)
_MASK_CHANNELS = 4

Velocity = Callable[[torch.Tensor, float], torch.Tensor]
MaskedConditions = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


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


class HumoPipeline(PipelineBase):
    """``from_pretrained`` loads a HuMo family (no image encoder); ``stream``/``__call__`` for any
    length. Its ``architecture`` tells the two layouts apart (``masked_condition``: humo-17b's)."""

    architectures = frozenset({Architecture.humo_masked_condition, Architecture.humo_reference_latents})

    @torch.no_grad()
    def encode_portrait(self, portrait: Image.Image | None, width: int, height: int) -> torch.Tensor:
        """Reference latents [1, 16, 1, height/8, width/8]: the letterboxed portrait, or zeros."""
        stride = self.vae.spatial_stride
        if portrait is None:
            return torch.zeros(1, self.vae.z_dim, 1, height // stride, width // stride, device=self.device)
        fitted = torch.from_numpy(np.array(letterbox(portrait, width, height))).permute(2, 0, 1)
        return self.vae.encode(to_signed(fitted[None, :, None]).to(self.device))

    def encode_audio_windows(self, features: WhisperFeatureStream, latent_frames: int) -> torch.Tensor:
        """[1, latent_frames + 1, 8, 5, 1280]: HuMo's per-latent windows over all the audio's rows,
        then the reference frame's zeros."""
        rows = features.rows(range(features.num_frames))
        return self.with_reference_window(humo_latent_windows(rows, latent_frames))

    def window_audio(self, features: WhisperFeatureStream, window: LatentWindow) -> torch.Tensor:
        """A long video's window: the audio windows of its latents as in the whole video's table,
        from only the feature rows they reach, then the reference frame's zeros."""
        reach = humo_window_frames(window.start, window.stop)
        first = max(0, reach.start)
        rows = features.rows(range(first, min(reach.stop, features.num_frames)))
        windows = humo_latent_windows(
            rows, window.stop - window.start, first_frame=-first, first_latent=window.start
        )
        return self.with_reference_window(windows)

    def with_reference_window(self, windows: torch.Tensor) -> torch.Tensor:
        """[n, 8, L, C] -> [1, n + 1, 8, L, C]: the reference frame hears silence."""
        windows = torch.cat([windows, torch.zeros_like(windows[:1])])
        return windows[None].to(self.device, self.dtype)

    @torch.no_grad()
    def zero_video_latents(self, reference: torch.Tensor, latent_frames: int) -> torch.Tensor:
        """Latents of an all-zero video of 1 + 4 * latent_frames pixel frames at the reference's size."""
        _, _, _, height, width = reference.shape
        stride = self.vae.spatial_stride
        zero_video = torch.zeros(
            1, 3, 1 + self.vae.temporal_stride * latent_frames, height * stride, width * stride,
            device=self.device,
        )  # fmt: skip
        return self.vae.encode(zero_video)

    @torch.no_grad()
    def masked_conditions(
        self, reference: torch.Tensor, latent_frames: int, zero_latents: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """humo-17b's concat(mask4, condition16), with and without the reference, for latent_frames + 1.

        The mask is 1 on the reference frame in both (as released); the condition latents are those of
        an all-zero video of 1 + 4 * latent_frames pixel frames (``zero_latents``, when already encoded),
        the last one replaced by the reference.
        """
        if zero_latents is None:
            zero_latents = self.zero_video_latents(reference, latent_frames)
        return (
            masked_condition(zero_latents, reference).to(self.dtype),
            masked_condition(zero_latents).to(self.dtype),
        )

    def window_conditions(
        self,
        text: torch.Tensor,
        negative_text: torch.Tensor,
        reference: torch.Tensor,
        audio: torch.Tensor,
        masked_conditions: MaskedConditions,
    ) -> HumoConditions:
        """One window's conditions; ``audio`` [1, F_lat + 1, ...] sets its length, and
        ``masked_conditions(F_lat)`` gives humo-17b's condition channels (cached by the caller: a
        long video's windows share one length, so the zero video is encoded once)."""
        conditions = HumoConditions(text=text, negative_text=negative_text, audio=audio, reference=reference)
        if self.architecture.masked_condition:
            conditions.condition, conditions.condition_without_reference = masked_conditions(
                audio.shape[1] - 1
            )
        return conditions

    def model_input(self, latents: torch.Tensor, condition: Condition, c: HumoConditions) -> torch.Tensor:
        """The transformer input of one pass for the current latents [1, 16, F_lat + 1, h, w]."""
        if self.architecture.masked_condition:
            extra = c.condition if condition.image else c.condition_without_reference
            return torch.cat([latents.to(self.dtype), extra], dim=1)
        reference = c.reference if condition.image else torch.zeros_like(c.reference)
        return torch.cat([latents[:, :, :-1], reference], dim=2).to(self.dtype)

    def guided_velocity(self, conditions: HumoConditions, guidance: HumoGuidance) -> Velocity:
        """velocity(latents [1, 16, F_lat + 1, h, w], t): all guidance passes of a step in one batch."""
        silent = torch.zeros_like(conditions.audio)

        @torch.no_grad()
        def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
            # The release gives the model (and its guidance switch) sigma * 1000 truncated to an
            # integer; UniPC's timesteps already are, Euler's grid is not.
            t = float(math.trunc(t))
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

        return velocity

    def guidance(self, o: GenerationOptions, *, with_image: bool) -> HumoGuidance:
        """The guidance of merged options `o`."""
        d = self.defaults
        return HumoGuidance(
            text=o.text_scale,
            audio=o.audio_scale,
            image=d.image_scale,
            with_image=with_image,
            # The time-dependent switch is humo-17b's recipe; humo-1.7b's families have none (four
            # passes throughout).
            switch_timestep=d.guidance_switch_timestep,
        )

    def fused_latents(
        self,
        windows: tuple[LatentWindow, ...],
        conditions_of: Callable[[LatentWindow], HumoConditions],
        guidance: HumoGuidance,
        timesteps: torch.Tensor,
        generator: torch.Generator,
        *,
        on_step: Callable[[], None] | None = None,
    ) -> Iterator[torch.Tensor]:
        """The video latents (no reference frame), front first as they are final, of overlapping
        ``windows`` fused by ``fusion.fused_sample`` with Euler steps on ``timesteps``."""
        reference_shape = conditions_of(windows[0]).reference.shape

        def noise(frames: int) -> torch.Tensor:
            shape = (1, reference_shape[1], frames, *reference_shape[-2:])
            # CPU noise: the same video on any device.
            return torch.randn(shape, generator=generator).to(self.device)

        @lru_cache(maxsize=2 * len(timesteps) + 2)  # the windows in flight
        def velocity_of(k: int) -> Velocity:
            return self.guided_velocity(conditions_of(windows[k]), guidance)

        # Every window carries its own extra reference latent, noised and stepped with it as in a
        # one-window video; fusion only ever sees the video latents.
        next_timestep = dict(zip(timesteps[:-1].tolist(), timesteps[1:].tolist(), strict=True))
        reference_latents: dict[int, torch.Tensor] = {}

        def velocity(x: torch.Tensor, t: float, k: int) -> torch.Tensor:
            reference = reference_latents.pop(k) if k in reference_latents else noise(1)
            with self.window_session(k):
                v = velocity_of(k)(torch.cat([x, reference], dim=2), t)
            if next_timestep[t] > 0:  # after the last step the reference latent is dropped
                reference_latents[k] = euler_step(reference, v[:, :, -1:], t, next_timestep[t])
            return v[:, :, :-1]

        with self.sampling_session(per_window=True):
            for _, latents in fused_sample(
                velocity, lambda start, stop: noise(stop - start), windows, timesteps, on_step=on_step
            ):
                yield latents

    def stream(
        self,
        *,
        audio: Wave,
        portrait: Image.Image | None = None,
        start_frames: np.ndarray | None = None,
        reference_video: ReferenceVideo | None = None,
        progress: ProgressFn | None = None,
        **options: Any,
    ) -> VideoStream:
        """Frames at 25 fps for 16 kHz mono ``audio`` of any length, generated when ``frames`` is
        iterated (``TalkingVideoPipeline.stream``'s interface); ``portrait`` None = text + audio mode;
        ``reference_video`` instead of ``portrait``: each window's reference latent follows the video.
        ``options`` are the fields of ``GenerationOptions``. Every window hears ``prompt`` (HuMo has no
        connection prompt), so ``keep_prompt`` changes nothing."""
        d = self.defaults
        o = GenerationOptions(**options).merged(d)
        if start_frames is not None:
            raise InputError(f"model '{d.family}': {HUMO_CANNOT_EXTEND}")
        if reference_video is not None:
            if portrait is not None:
                raise InputError("give one of portrait and reference_video")
            portrait = Image.fromarray(reference_video.first_frame())
        if o.long_video_mode != LongVideoMode.fusion:
            raise InputError(
                f"--long-video-mode {o.long_video_mode}: {d.family} has no motion conditioning; use fusion"
            )
        num_frames = num_video_frames(require_mono(audio).size, SAMPLE_RATE, d.fps)
        num_latents = latent_frame_count(padded_frame_count(num_frames))
        windows = plan_latent_windows(
            num_latents, window=latent_frame_count(d.frames_per_window), overlap=d.fusion_overlap
        )
        width, height = self.output_size(portrait, o.resolution)
        steps, shift = o.steps, o.shift
        single = len(windows) == 1
        result = VideoStream(
            frames=iter(()), fps=d.fps, width=width, height=height, num_frames=num_frames,
            windows=len(windows), mode="single-window" if single else str(LongVideoMode.fusion),
            progress=progress,
        )  # fmt: skip
        done = 0

        def on_step() -> None:
            nonlocal done
            done += 1
            if result.progress is not None:  # may be set once the caller starts consuming
                result.progress(done, len(windows) * steps)

        @torch.no_grad()
        def frames() -> Iterator[np.ndarray]:
            text, negative_text = self.encode_prompt(o.prompt, o.negative_prompt)
            reference = self.encode_portrait(portrait, width, height)
            masked = lru_cache(maxsize=2)(partial(self.masked_conditions, reference))
            zero_latents = lru_cache(maxsize=2)(partial(self.zero_video_latents, reference))
            guidance = self.guidance(o, with_image=portrait is not None)
            generator = torch.Generator("cpu").manual_seed(o.seed)
            conditions = partial(self.window_conditions, text, negative_text, reference)
            features = feature_stream(self.audio_encoder, audio, d.fps)
            if single:
                audio_windows = self.encode_audio_windows(features, num_latents)
                latents = self.one_window_latents(
                    conditions(audio_windows, masked), guidance, steps, shift, generator, on_step
                )
                chunks = iter([latents])
            else:
                reference_of = self.followed_references(
                    reference_video, num_frames, audio_duration(audio, SAMPLE_RATE), width, height
                )

                def conditions_of(window: LatentWindow) -> HumoConditions:
                    audio_windows = self.window_audio(features, window)
                    if reference_of is None:
                        return conditions(audio_windows, masked)
                    own = reference_of(window)
                    return self.window_conditions(
                        text, negative_text, own, audio_windows,
                        lambda n: self.masked_conditions(own, n, zero_latents(n)),
                    )  # fmt: skip

                chunks = self.fused_latents(
                    windows,
                    conditions_of,
                    guidance,
                    unipc_timesteps(steps, shift),
                    generator,
                    on_step=on_step,
                )
            for video in decode_latent_stream(self.vae, (x.float() for x in chunks), num_frames):
                yield to_uint8(video)

        result.frames = frames()
        return result

    def followed_references(
        self, video: ReferenceVideo | None, num_frames: int, seconds: float, width: int, height: int
    ) -> Callable[[LatentWindow], torch.Tensor] | None:
        """window -> its reference latents: the source frame at the window's first frame (windows come
        in order, so frames are read once); None when no video is followed."""
        if video is None:
            return None
        sources = video.model_frame_sources(num_frames, self.defaults.fps, seconds)
        follow = FollowedFrames(video, sources, lambda frame: frame, keep=1)
        return lambda window: self.encode_portrait(
            Image.fromarray(follow.frame(self.vae.temporal_stride * window.start)), width, height
        )

    def one_window_latents(
        self,
        conditions: HumoConditions,
        guidance: HumoGuidance,
        steps: int,
        shift: float,
        generator: torch.Generator,
        on_step: Callable[[], None],
    ) -> torch.Tensor:
        """The release's sampling: one window, UniPC; returns the video latents (reference dropped)."""
        # One extra latent frame for the reference, noised and sampled like the rest, then dropped.
        _, channels, _, height, width = conditions.reference.shape
        latent_frames = conditions.audio.shape[1]
        noise = torch.randn(channels, latent_frames, height, width, generator=generator)
        velocity = self.guided_velocity(conditions, guidance)
        with self.sampling_session():
            latents = sample_unipc(
                velocity, noise[None].to(self.device), steps, shift, on_step=lambda _: on_step()
            )
        return latents[:, :, :-1]

    def output_size(self, portrait: Image.Image | None, resolution: str) -> tuple[int, int]:
        width, height = (portrait.width, portrait.height) if portrait is not None else TEXT_ONLY_SIZE
        return pick_size(resolution, width, height, self.defaults.size_buckets)


def masked_condition(zero_latents: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """humo-17b's concat(mask4, condition16) [..., 20, F + 1, h, w] from the zero-video latents
    [..., 16, F + 1, h, w]: the mask is 1 on the last (reference) frame with or without a reference
    (as released); the condition is the zero-video latents, their last frame replaced by
    `reference` [..., 16, 1, h, w] when one is given."""
    mask = torch.zeros_like(zero_latents[..., :_MASK_CHANNELS, :, :, :])
    mask[..., -1, :, :] = 1.0
    if reference is not None:
        zero_latents = torch.cat([zero_latents[..., :-1, :, :], reference], dim=-3)
    return torch.cat([mask, zero_latents], dim=-4)


def letterbox(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` fitted inside width x height on white bars, as HuMo's generate.py fits its reference:
    the long side to the frame, the other truncated to int, Lanczos, then bars of (excess // 2)
    before and the rest after."""
    aspect = image.width / image.height
    size = (width, int(width / aspect)) if aspect > width / height else (int(height * aspect), height)
    fitted = image.resize(size, Image.Resampling.LANCZOS)
    extra_w, extra_h = width - size[0], height - size[1]
    border = (extra_w // 2, extra_h // 2, extra_w - extra_w // 2, extra_h - extra_h // 2)
    return ImageOps.expand(fitted, border, fill=LETTERBOX_FILL)
