"""Videos of any length: the window loops that feed one window's output into the next.

Two families of methods (README: Long video), picked by the model family or `--long-video-mode`:

- Motion frames (skyreels-v3-a2v, infinitetalk): windows run one after another; each starts from
  the last frames already written, VAE-encoded and re-imposed on its first latents before the loop
  and after every step. skyreels noises them to the current timestep, puts them into the I2V
  condition, takes CLIP tokens from the first of them, and pins the window's end to a keyframe
  taken from a preview window generated from the reference alone; infinitetalk imposes them clean
  and keeps the reference frame as the condition. Every window is colour-matched to the reference
  (Lab mean/std per frame) before its tail becomes the next motion frames.
- Latent fusion (the paper; for families without motion conditioning): overlapping windows
  denoised step by step and blended with ramps (`fusion.fused_sample`).

Following a reference video (`reference_video.py`): each motion-frame window takes its CLIP tokens
and I2V condition frame from the source frame at its start (skyreels: its end keyframe from the
source frame at its end, so no preview is made), and holds the source's latents at sparse keyframes.

Frames are produced window by window and yielded as soon as they are final, so a caller can pipe
them to ffmpeg: nothing here holds more than one window (plus the preview's keyframes).
Decoding: motion-frame windows each start a new latent sequence (their first latent is encoded
as a lone first frame), so each window is decoded on its own, latent by latent; fused latents form
one continuous sequence, decoded by one streaming decoder that carries the VAE's causal cache.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import torch

from skyaudio_cli.conditioning.audio_stream import ChunkedFeatureStream, WhisperFeatureStream
from skyaudio_cli.conditioning.frames import frames_to_tensor, latent_frame_count, padded_frame_count
from skyaudio_cli.conditioning.vae import VideoVAE
from skyaudio_cli.long_video.colour import LabStats, match_colours
from skyaudio_cli.long_video.fusion import fused_sample
from skyaudio_cli.long_video.known_latents import KnownLatents
from skyaudio_cli.long_video.reference_video import FollowedFrames, keyframe_latents
from skyaudio_cli.long_video.windows import (
    Window,
    WindowPlan,
    audio_frame_indices,
    keyframe_source_index,
    plan_latent_windows,
)
from skyaudio_cli.modes import LongVideoMode
from skyaudio_cli.sampling.guidance import GuidanceScales

# The skyreels release pins each window's last frames to one keyframe repeated this many times.
KEYFRAME_FRAMES = 5

Velocity = Callable[[torch.Tensor, float], torch.Tensor]


class WindowModel(Protocol):
    """What the window loops call back: one window's steps (``TalkingVideoPipeline`` has them)."""

    device: torch.device
    vae: VideoVAE  # encode (motion and source latents), streaming_decoder, z_dim, spatial_stride

    @property
    def frames_per_window(self) -> int: ...

    def prepare_condition(self, video: torch.Tensor, known: torch.Tensor) -> torch.Tensor: ...

    def encode_image(self, frames: torch.Tensor) -> torch.Tensor: ...

    def audio_windows(self, rows: torch.Tensor, num_frames: int) -> torch.Tensor: ...

    def velocity_function(self, conditions: "WindowConditions") -> Velocity: ...

    def prepare_latents(self, condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...

    def denoise(
        self,
        latents: torch.Tensor,
        velocity: Velocity,
        timesteps: torch.Tensor,
        *,
        known: Sequence[KnownLatents] = ...,
        on_step: Callable[[], None] | None = ...,
    ) -> torch.Tensor: ...

    def sampling_session(self, *, per_window: bool = ...) -> AbstractContextManager: ...

    def window_session(self, window: int) -> AbstractContextManager: ...


@dataclass(frozen=True)
class MotionScheme:
    noised: bool  # motion latents noised to the current t (else imposed clean)
    motion_in_condition: bool  # motion pixels (and the keyframe) form the I2V condition
    keyframes: bool
    drop: int  # frames discarded at the end of every window but the last
    clip_from_motion: bool  # CLIP tokens of the first motion frame instead of the reference
    # The first window holds the reference's own latent on latent 0 (clean, before and after
    # every step), as later windows hold their motion latents: InfiniteTalk does, SkyReels-V3 not.
    hold_reference: bool
    # Audio context past the padded timeline is clamped to it (SkyReels-V3) or keeps mirroring.
    clamp_audio_to_padded: bool


MOTION_SCHEMES = {
    LongVideoMode.skyreels: MotionScheme(
        noised=True, motion_in_condition=True, keyframes=True, drop=12, clip_from_motion=True,
        hold_reference=False, clamp_audio_to_padded=True,
    ),
    LongVideoMode.infinitetalk: MotionScheme(
        noised=False, motion_in_condition=False, keyframes=False, drop=0, clip_from_motion=False,
        hold_reference=True, clamp_audio_to_padded=False,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class WindowConditions:
    """What one window of an a2v pipeline is conditioned on (batch 1)."""

    condition: torch.Tensor  # concat(mask4, latents16) of the window's known frames
    text: torch.Tensor
    negative_text: torch.Tensor
    image_tokens: torch.Tensor  # CLIP tokens of the window's reference frame
    audio: torch.Tensor  # [1, frames, 5, layers, channels] per-frame audio windows
    scales: GuidanceScales


KnownForWindow = Callable[[Window], KnownLatents | None]


@dataclass
class Request:
    """Everything one run needs, encoded once."""

    text: torch.Tensor
    negative_text: torch.Tensor
    # The text of the windows after a preview (SkyReels-V3's connection prompt); None: `text`.
    connection_text: torch.Tensor | None
    reference: torch.Tensor  # [1, 3, H, W] in [-1, 1]
    reference_tokens: torch.Tensor
    audio: ChunkedFeatureStream | WhisperFeatureStream
    timesteps: torch.Tensor
    scales: GuidanceScales
    generator: torch.Generator
    start_frames: torch.Tensor | None = None  # extend: [m, 3, H, W] in [-1, 1], the motion context
    known_for_window: KnownForWindow | None = None  # extra latents to hold per window (lip-sync edits)
    follow: FollowedFrames | None = None  # the reference video followed, at the model's size

    def __post_init__(self) -> None:
        self.colour = LabStats.of(self.reference[0])


class WindowedGenerator:
    def __init__(
        self, pipe: WindowModel, request: Request, on_step: Callable[[], None] | None = None
    ) -> None:
        self.pipe = pipe
        self.request = request
        self.on_step = on_step

    # -- motion-frame schemes -----------------------------------------------------------------

    def motion_frames(self, plan: WindowPlan, scheme: MotionScheme) -> Iterator[torch.Tensor]:
        """Colour-matched frames [n, 3, H, W] in [-1, 1], window by window, in order."""
        follow = self.request.follow
        preview = scheme.keyframes and not plan.single and follow is None
        keyframes = self._preview_keyframes(plan) if preview else {}
        text = self.request.text
        if preview and self.request.connection_text is not None:
            text = self.request.connection_text
        keep = max(w.motion for w in plan.windows)
        tail = self.request.start_frames  # the last `keep` frames written so far
        for window in plan.windows:
            motion = tail[len(tail) - window.motion :] if window.motion else None
            keyframe = keyframes.get(keyframe_source_index(window, plan, self._window_frames))
            if follow is not None and scheme.keyframes and not plan.single:
                keyframe = self._followed(window.end, 1)[0]
            latents = self._denoise_motion_window(window, plan, scheme, motion, keyframe, text)
            for chunk in self._decode(latents, window.emit_start, window.emit_stop):
                if keep:
                    tail = chunk[-keep:] if tail is None else torch.cat([tail, chunk])[-keep:]
                yield chunk

    @property
    def _window_frames(self) -> int:
        return self.pipe.frames_per_window

    def _preview_keyframes(self, plan: WindowPlan) -> dict[int, torch.Tensor]:
        """skyreels: one window from the reference alone; keep only the frames used as keyframes."""
        preview = Window(-1, 0, self._window_frames, 0, self._window_frames)
        wanted = {keyframe_source_index(w, plan, self._window_frames) for w in plan.windows}
        latents = self._denoise_motion_window(
            preview, plan, MOTION_SCHEMES[LongVideoMode.skyreels], None, None, self.request.text
        )
        keyframes, index = {}, 0
        for chunk in self._decode(latents, 0, max(wanted) + 1):
            for frame in chunk:
                if index in wanted:
                    keyframes[index] = frame
                index += 1
        return keyframes

    def _denoise_motion_window(
        self,
        window: Window,
        plan: WindowPlan,
        scheme: MotionScheme,
        motion: torch.Tensor | None,
        keyframe: torch.Tensor | None,
        text: torch.Tensor,
    ) -> torch.Tensor:
        pipe, request = self.pipe, self.request
        follow = request.follow is not None
        reference = self._followed(window.start, 1) if follow else request.reference
        video = reference.new_zeros(1, 3, window.length, *reference.shape[-2:])
        known = torch.zeros(window.length, dtype=torch.bool)
        if motion is not None and scheme.motion_in_condition:
            video[0, :, : len(motion)] = motion.transpose(0, 1)
            known[: len(motion)] = True
        else:
            video[0, :, 0] = reference[0]
            known[0] = True
        if keyframe is not None:
            video[0, :, -KEYFRAME_FRAMES:] = keyframe[:, None]
            known[-KEYFRAME_FRAMES:] = True
        condition = pipe.prepare_condition(video, known)

        tokens = request.reference_tokens
        if follow:
            tokens = pipe.encode_image(reference)
        elif motion is not None and scheme.clip_from_motion:
            tokens = pipe.encode_image(motion[:1])
        held = []
        if motion is None and scheme.hold_reference:
            motion = reference
        if motion is not None:
            motion_latents = pipe.vae.encode(motion.transpose(0, 1)[None].to(torch.float32))
            held.append(
                KnownLatents.leading_frames(
                    motion_latents, condition.shape[2], noised=scheme.noised, generator=request.generator
                )
            )
        if request.known_for_window is not None and (extra := request.known_for_window(window)) is not None:
            held.append(extra)
        if follow:
            held.append(self._source_keyframes(window, condition.shape[2]))

        velocity = pipe.velocity_function(
            WindowConditions(
                condition=condition,
                text=text,
                negative_text=request.negative_text,
                image_tokens=tokens,
                audio=self._audio(window, plan, clamp_to_padded=scheme.clamp_audio_to_padded),
                scales=request.scales,
            )
        )
        latents = pipe.prepare_latents(condition, request.generator)
        return pipe.denoise(latents, velocity, request.timesteps, known=held, on_step=self.on_step)

    def _followed(self, start: int, length: int) -> torch.Tensor:
        """Model frames start..start+length-1 of the followed video: [length, 3, H, W] in [-1, 1]."""
        frames = self.request.follow.window(start, length)
        return frames_to_tensor(frames, frames.shape[2], frames.shape[1]).to(self.pipe.device)

    def _source_keyframes(self, window: Window, num_latents: int) -> KnownLatents:
        """The followed video's latents over the window (VAE-encoded as one clip), held noised at the
        keyframe latents."""
        pixels = self._followed(window.start, window.length)
        clean = self.pipe.vae.encode(pixels.transpose(0, 1)[None].to(torch.float32))
        mask = clean.new_zeros(1, 1, num_latents, 1, 1)
        mask[:, :, keyframe_latents(num_latents)] = 1.0
        return KnownLatents(clean=clean, mask=mask, noised=True, generator=self.request.generator)

    # -- latent fusion ------------------------------------------------------------------------

    def fused_frames(self, num_frames: int, overlap: int) -> Iterator[torch.Tensor]:
        """Colour-matched frames of a `num_frames` video made by latent fusion, in order."""
        pipe, request = self.pipe, self.request
        num_latents = latent_frame_count(padded_frame_count(num_frames))
        latent_windows = plan_latent_windows(
            num_latents, window=latent_frame_count(self._window_frames), overlap=overlap
        )
        # Each latent window as pixel frames, for its audio: latent j of the video ends at frame 4j.
        stride = pipe.vae.temporal_stride
        pixel_windows = tuple(
            Window(w.index, stride * w.start, stride * (w.stop - w.start - 1) + 1, 0, 0)
            for w in latent_windows
        )
        plan = WindowPlan(num_frames, pixel_windows)
        height, width = (size // pipe.vae.spatial_stride for size in request.reference.shape[-2:])

        @lru_cache(maxsize=2)
        def condition(first: bool, length: int) -> torch.Tensor:
            # Only the first window starts at the reference; later ones hold no frame (mask 0).
            video = request.reference.new_zeros(1, 3, length, *request.reference.shape[-2:])
            known = torch.zeros(length, dtype=torch.bool)
            if first:
                video[0, :, 0] = request.reference[0]
                known[0] = True
            return pipe.prepare_condition(video, known)

        @lru_cache(maxsize=2 * len(request.timesteps) + 2)  # the windows in flight
        def window_velocity(k: int):
            window = pixel_windows[k]
            return pipe.velocity_function(
                WindowConditions(
                    condition=condition(k == 0, window.length),
                    text=request.text,
                    negative_text=request.negative_text,
                    image_tokens=request.reference_tokens,
                    audio=self._audio(window, plan),
                    scales=request.scales,
                )
            )

        def initial_latents(start: int, stop: int) -> torch.Tensor:
            shape = (1, pipe.vae.z_dim, stop - start, height, width)
            return torch.randn(shape, generator=request.generator, dtype=torch.float32).to(pipe.device)

        def velocity(x: torch.Tensor, t: float, k: int) -> torch.Tensor:
            with pipe.window_session(k):
                return window_velocity(k)(x, t)

        with torch.no_grad(), pipe.sampling_session(per_window=True):
            fused = fused_sample(
                velocity,
                initial_latents,
                latent_windows,
                request.timesteps,
                on_step=self.on_step,
            )
            for frames in decode_latent_stream(pipe.vae, (latents for _, latents in fused), num_frames):
                yield match_colours(frames, request.colour)

    # -- shared -------------------------------------------------------------------------------

    def _audio(self, window: Window, plan: WindowPlan, *, clamp_to_padded: bool = True) -> torch.Tensor:
        audio = self.request.audio
        indices = audio_frame_indices(window, plan, audio.num_frames, clamp_to_padded=clamp_to_padded)
        rows = audio.rows(indices)
        return self.pipe.audio_windows(rows, window.length)

    def _decode(self, latents: torch.Tensor, start: int, stop: int) -> Iterator[torch.Tensor]:
        """Window frames [start, stop), colour-matched, decoded latent by latent (later latents skipped)."""
        decoder = self.pipe.vae.streaming_decoder()
        index = 0
        for j in range(latents.shape[2]):
            if index >= stop:
                return
            frames = decoder.decode_next(latents[:, :, j : j + 1])[0].transpose(0, 1)
            wanted = frames[max(start - index, 0) : stop - index]
            index += len(frames)
            if len(wanted):
                yield match_colours(wanted, self.request.colour)


def decode_latent_stream(vae, chunks: Iterable[torch.Tensor], num_frames: int) -> Iterator[torch.Tensor]:
    """Frames [n, 3, H, W] of consecutive latent chunks of one video, through one decoder that carries
    the VAE's causal cache across chunks; the padding frames past `num_frames` are cut."""
    decoder = vae.streaming_decoder()
    written = 0
    for latents in chunks:
        frames = decoder.decode_next(latents)[0].transpose(0, 1)[: num_frames - written]
        written += len(frames)
        if len(frames):
            yield frames
