"""The talking-portrait pipeline: portrait + speech -> frames, for audio of any length.

Usable from Python as well as from the CLI:

    pipe = TalkingVideoPipeline.from_pretrained("skyreels-v3-a2v", device="cuda")
    video = pipe(portrait=PIL.Image.open("face.png"), audio=wave_16k_mono)  # all frames in memory
    stream = pipe.stream(portrait=..., audio=...)  # or window by window, for long videos
    for frames in stream.frames: ...
    pipe.load_lora("style.safetensors", 0.8)  # fused into the weights; pipe.unload_lora() restores them
    # follow a video's camera, background and body (InfiniteTalk's video-to-video mode)
    stream = pipe.stream(reference_video=ReferenceVideo.open("clip.mp4"), audio=...)

Steps follow diffusers' pipeline shape: encode_prompt / encode_image / audio_windows ->
prepare_condition / prepare_latents -> denoise (one window) -> decode; the window loops that chain
windows into a video of any length live in long_video/loop.py.
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from skyaudio_cli.conditioning.audio_features import (
    SAMPLE_RATE,
    num_video_frames,
    require_mono,
    require_speech,
)
from skyaudio_cli.conditioning.audio_stream import feature_stream
from skyaudio_cli.conditioning.audio_windows import frame_windows
from skyaudio_cli.conditioning.frames import (
    frames_to_tensor,
    known_frames_mask,
    latent_frame_count,
    padded_frame_count,
    to_uint8,
)
from skyaudio_cli.conditioning.image_encoder import ImageEncoder
from skyaudio_cli.errors import InputError
from skyaudio_cli.long_video.known_latents import KnownLatents
from skyaudio_cli.long_video.loop import (
    MOTION_SCHEMES,
    KnownForWindow,
    Request,
    WindowConditions,
    WindowedGenerator,
)
from skyaudio_cli.long_video.reference_video import FollowedFrames, ReferenceVideo
from skyaudio_cli.long_video.windows import plan_latent_windows, plan_windows
from skyaudio_cli.media.audio import Wave, audio_duration
from skyaudio_cli.media.image import resize_center_crop
from skyaudio_cli.modes import FUSION_CANNOT_EXTEND, LongVideoMode
from skyaudio_cli.pipeline.base import (
    PipelineBase,
    ProgressFn,
    VideoStream,
)
from skyaudio_cli.pipeline.buckets import pick_size
from skyaudio_cli.pipeline.family import Architecture, GenerationOptions
from skyaudio_cli.sampling.flow_euler import sample_euler, shifted_timesteps
from skyaudio_cli.sampling.guidance import GuidanceScales, Pass, combine

AUDIO_RADIUS = 2  # each frame hears frames i-2..i+2 (both releases)


class TalkingVideoPipeline(PipelineBase):
    """The a2v pipeline: CLIP tokens and the I2V condition of a reference image; motion frames."""

    architectures = frozenset({Architecture.a2v})

    def __init__(self, *, image_encoder: ImageEncoder, **components) -> None:
        super().__init__(**components)
        self.image_encoder = image_encoder

    @property
    def frames_per_window(self) -> int:
        return self.defaults.frames_per_window

    # -- steps -------------------------------------------------------------------------------

    @torch.no_grad()
    def encode_image(self, frames: torch.Tensor) -> torch.Tensor:
        """CLIP tokens [1, N, C] of one frame [1, 3, H, W] in [-1, 1]."""
        return self.image_encoder.encode(frames.to(self.device)).to(self.dtype)

    def audio_windows(self, rows: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Feature rows of `num_frames` frames plus AUDIO_RADIUS context rows either side ->
        per-frame audio windows [1, num_frames, 5, layers, channels] on the device."""
        windows = frame_windows(rows, AUDIO_RADIUS, start=AUDIO_RADIUS, stop=AUDIO_RADIUS + num_frames)
        return windows[None].to(self.device, self.dtype)

    @torch.no_grad()
    def prepare_condition(self, video: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """concat(mask4, VAE latents16) of a [1, 3, 1+4k, H, W] video whose `known` frames are given
        (bool per frame; the other frames are zeros, mid-grey)."""
        latents = self.vae.encode(video.to(torch.float32))
        mask = known_frames_mask(known, *latents.shape[-2:]).to(latents.device, latents.dtype)
        return torch.cat([mask, latents], dim=1).to(self.dtype)

    def prepare_latents(self, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _, _, frames, height, width = condition.shape
        # Noise is drawn on the CPU so the same seed gives the same video on any device.
        noise = torch.randn(
            (1, self.vae.z_dim, frames, height, width), generator=generator, dtype=torch.float32
        )
        return noise.to(self.device)

    def velocity_function(self, c: WindowConditions) -> Callable[[torch.Tensor, float], torch.Tensor]:
        """The guided velocity of one window: all guidance passes in one batched forward."""
        scales = c.scales
        passes = scales.passes()
        text_for = {
            Pass.COND: c.text,
            Pass.DROP_TEXT: c.negative_text,
            Pass.DROP_AUDIO: c.text,
            Pass.UNCOND: c.negative_text,
        }
        silent = torch.zeros_like(c.audio)
        audio_for = {
            Pass.COND: c.audio,
            Pass.DROP_TEXT: c.audio,
            Pass.DROP_AUDIO: silent,
            Pass.UNCOND: silent,
        }
        text_batch = torch.cat([text_for[p] for p in passes])
        audio_batch = torch.cat([audio_for[p] for p in passes])
        image_batch = c.image_tokens.expand(len(passes), -1, -1)
        condition_batch = c.condition.expand(len(passes), -1, -1, -1, -1)

        @torch.no_grad()
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

        return velocity

    @torch.no_grad()
    def denoise(
        self,
        latents: torch.Tensor,
        velocity: Callable[[torch.Tensor, float], torch.Tensor],
        timesteps: torch.Tensor,
        *,
        known: Sequence[KnownLatents] = (),
        on_step: Callable[[], None] | None = None,
    ) -> torch.Tensor:
        """Sample one window; `known` latents are imposed before the first step and after every step."""

        def impose(x: torch.Tensor, t: float) -> torch.Tensor:
            for held in known:
                x = held.impose(x, t)
            return x

        with self.sampling_session():
            return sample_euler(
                velocity,
                impose(latents, float(timesteps[0])),
                timesteps,
                after_step=impose if known else None,
                on_step=(lambda _: on_step()) if on_step is not None else None,
            )

    # -- the whole job -----------------------------------------------------------------------

    def stream(
        self,
        *,
        audio: Wave,
        portrait: Image.Image | None = None,
        start_frames: np.ndarray | None = None,
        reference_video: ReferenceVideo | None = None,
        known_for_window: KnownForWindow | None = None,
        progress: ProgressFn | None = None,
        **options: Any,
    ) -> "VideoStream":
        """Frames for `audio` (16 kHz mono float32) of any length, produced window by window.

        Give `portrait` to animate it, or `start_frames` (uint8 [n, H, W, 3], the end of a video)
        to continue them (`extend`): the continuation starts from those frames as motion context,
        and the last one serves as the reference. Or give `reference_video` to follow a video: its
        first frame is the portrait, and every window takes its reference frame and sparse keyframe
        latents from the source frame at its own time (`reference_video.py`; motion-frame modes only).
        `options` are the fields of `GenerationOptions` (prompt, negative_prompt, keep_prompt,
        resolution, seed, steps, shift, text_scale, audio_scale, long_video_mode); left out or None,
        the family's default. `keep_prompt` conditions the windows after a preview on `prompt` too,
        instead of the family's connection prompt. Nothing runs until the stream is iterated.
        """
        d = self.defaults
        o = GenerationOptions(**options).merged(d)
        audio = require_speech(audio) if isinstance(audio, np.ndarray) else require_mono(audio)
        if sum(x is not None for x in (portrait, start_frames, reference_video)) != 1:
            raise InputError("give exactly one of portrait, start_frames and reference_video")
        num_frames = num_video_frames(audio.size, SAMPLE_RATE, d.fps)
        mode = self.resolve_mode(o.long_video_mode, extending=start_frames is not None)
        if reference_video is not None:
            if mode == LongVideoMode.fusion:
                raise InputError(
                    f"reference video: long-video mode fusion has no per-window reference frame on "
                    f"'{d.family}'; use a motion-frame mode (skyreels, infinitetalk) or the first frame only"
                )
            portrait = Image.fromarray(reference_video.first_frame())
        if start_frames is not None:
            width, height = pick_size(
                o.resolution, start_frames.shape[2], start_frames.shape[1], d.size_buckets
            )
            context = frames_to_tensor(fit_motion_context(start_frames, d.motion_frames), width, height)
            reference = context[-1:]
        else:
            width, height = pick_size(o.resolution, portrait.width, portrait.height, d.size_buckets)
            context = None
            if reference_video is not None:
                fitted = reference_video.fit(np.asarray(portrait), width, height)
            else:
                fitted = np.asarray(resize_center_crop(portrait.convert("RGB"), width, height))
            reference = frames_to_tensor(fitted[None], width, height)
        reference, context = (x.to(self.device) if x is not None else None for x in (reference, context))
        follow = None
        if reference_video is not None:
            follow = FollowedFrames(
                reference_video,
                reference_video.model_frame_sources(num_frames, d.fps, audio_duration(audio, SAMPLE_RATE)),
                lambda frame: reference_video.fit(frame, width, height),
                keep=d.frames_per_window,
            )
        if mode == LongVideoMode.fusion:
            plan = None
            windows = len(
                plan_latent_windows(
                    latent_frame_count(padded_frame_count(num_frames)),
                    window=latent_frame_count(d.frames_per_window),
                    overlap=d.fusion_overlap,
                )
            )
        else:
            scheme = MOTION_SCHEMES[mode]
            plan = plan_windows(
                num_frames, window=d.frames_per_window, motion=d.motion_frames, drop=scheme.drop,
                first_motion=0 if context is None else d.motion_frames,
            )  # fmt: skip
            # skyreels' preview window, unless a followed video gives the keyframes.
            preview = scheme.keyframes and not plan.single and follow is None
            windows = len(plan.windows) + (1 if preview else 0)
        timesteps = shifted_timesteps(o.steps, o.shift).to(torch.float32)
        connection_prompt = None if o.keep_prompt else d.connection_prompt
        video = VideoStream(
            frames=iter(()), fps=d.fps, width=width, height=height, num_frames=num_frames,
            windows=windows, mode=str(mode), progress=progress,
        )  # fmt: skip
        total_steps = windows * (len(timesteps) - 1)

        def frames() -> Iterator[np.ndarray]:
            text, negative_text = self.encode_prompt(o.prompt, o.negative_prompt)
            request = Request(
                text=text,
                negative_text=negative_text,
                connection_text=None if connection_prompt is None else self.encode_text(connection_prompt),
                reference=reference,
                reference_tokens=self.encode_image(reference),
                audio=feature_stream(self.audio_encoder, audio, d.fps, d.audio_frames),
                timesteps=timesteps,
                scales=GuidanceScales(text=o.text_scale, audio=o.audio_scale),
                generator=torch.Generator("cpu").manual_seed(o.seed),
                start_frames=context,
                known_for_window=known_for_window,
                follow=follow,
            )
            done = 0

            def on_step() -> None:
                nonlocal done
                done += 1
                if video.progress is not None:
                    video.progress(done, total_steps)

            generator = WindowedGenerator(self, request, on_step)
            chunks = (
                generator.fused_frames(num_frames, d.fusion_overlap)
                if plan is None
                else generator.motion_frames(plan, scheme)
            )
            for chunk in chunks:
                yield to_uint8(chunk)

        video.frames = frames()
        return video

    def resolve_mode(self, requested: str, *, extending: bool = False) -> LongVideoMode:
        """The merged `long_video_mode` option, refused where this start cannot use it."""
        mode = LongVideoMode(requested)
        if extending and mode == LongVideoMode.fusion:
            raise InputError(FUSION_CANNOT_EXTEND)
        return mode


def fit_motion_context(frames: np.ndarray, motion_frames: int) -> np.ndarray:
    """The last `motion_frames` frames; a shorter video is padded by repeating its first frame."""
    if len(frames) == 0:
        raise InputError("the video to continue has no frames")
    frames = frames[-motion_frames:]
    missing = motion_frames - len(frames)
    return np.concatenate([np.repeat(frames[:1], missing, axis=0), frames]) if missing else frames
