"""Per-frame audio features for audio of any length, on each release's frame grid.

`feature_stream(encoder, wave, fps, frame_rounding)` picks the stream the encoder's release implies:

- wav2vec2 (skyreels-v3-a2v, infinitetalk): the releases encode the real, unpadded samples of the
  whole utterance and stretch the 50 Hz CNN features onto ceil (SkyReels-V3) or floor
  (InfiniteTalk) of duration x fps frames; a window that runs past the audio reads those frames
  mirrored (windows.mirrored_index), which is how both releases pad the per-frame embeddings.
  Their attention spans the whole clip (their limit is 200 s); minutes to hours of speech neither
  fit that attention nor should sit in memory as features, so past CHUNK_FRAMES the audio is
  encoded in chunks, each starting CROSSFADE_FRAMES early, crossfaded linearly over the shared
  frames. Audio up to one chunk (30 s) is encoded in one piece, exactly as the releases do.
- Whisper (humo-*): the release encodes fixed 30 s chunks from sample 0, concatenates their 50 Hz
  rows, trims them to 2 x floor(samples / 640) and stretches that whole sequence onto the 25 fps
  grid once. Each 30 s chunk is encoded on its own there too, so streaming by those chunks and
  interpolating on the global grid gives the release's rows exactly, for any length.

Only the chunks the current window touches are kept.
"""

from collections.abc import Sequence

import torch

from skyaudio_cli.conditioning.audio_features import (
    SAMPLE_RATE,
    AudioFeatureEncoder,
    FrameRounding,
    num_video_frames,
)
from skyaudio_cli.conditioning.whisper_encoder import CHUNK_SAMPLES, SAMPLES_PER_STEP, whisper_grid
from skyaudio_cli.errors import InputError
from skyaudio_cli.media.audio import Wave

CHUNK_FRAMES = 750  # 30 s at 25 fps
CROSSFADE_FRAMES = 50  # 2 s
_STEPS_PER_CHUNK = CHUNK_SAMPLES // SAMPLES_PER_STEP  # Whisper's 50 Hz rows per 30 s chunk


def feature_stream(
    encoder: AudioFeatureEncoder, wave: Wave, fps: float, frame_rounding: FrameRounding = "ceil"
) -> "ChunkedFeatureStream | WhisperFeatureStream":
    """The stream for `encoder`; `frame_rounding` is the family's wav2vec2 frame count rule."""
    if encoder.kind == "whisper":
        return WhisperFeatureStream(encoder, wave, fps)
    num_frames = num_video_frames(wave.size, SAMPLE_RATE, fps, frame_rounding)
    return ChunkedFeatureStream(encoder, wave, num_frames, fps)


class ChunkedFeatureStream:
    """`rows(frame_indices)` -> features [len, layers, channels] for frames in [0, num_frames)."""

    def __init__(
        self,
        encoder: AudioFeatureEncoder,
        wave: Wave,
        num_frames: int,
        fps: float,
        *,
        chunk_frames: int = CHUNK_FRAMES,
        crossfade_frames: int = CROSSFADE_FRAMES,
    ) -> None:
        if not 0 <= crossfade_frames < chunk_frames:
            raise ValueError(f"crossfade {crossfade_frames} must be shorter than the chunk {chunk_frames}")
        if num_frames < 1:
            raise InputError("audio: shorter than one video frame")
        self.encoder = encoder
        self.num_frames = num_frames
        self.fps = fps
        self.chunk_frames = chunk_frames
        self.crossfade_frames = crossfade_frames
        self.wave = wave
        self.num_chunks = -(-num_frames // chunk_frames)
        self._encoded: dict[int, torch.Tensor] = {}

    def rows(self, frames: Sequence[int]) -> torch.Tensor:
        frames = _frame_tensor(frames, self.num_frames)
        chunk = frames // self.chunk_frames
        _forget_before(self._encoded, int(chunk.min()))
        rows = self._chunk_rows(chunk, frames)
        # Frames in the crossfade before the next chunk's start blend into that chunk.
        fade_start = (chunk + 1) * self.chunk_frames - self.crossfade_frames
        fading = (frames >= fade_start) & (chunk + 1 < self.num_chunks)
        if fading.any():
            weight = ((frames - fade_start + 1).float() / (self.crossfade_frames + 1))[fading]
            following = self._chunk_rows(chunk[fading] + 1, frames[fading])
            weight = weight.view(-1, *([1] * (rows.ndim - 1)))
            rows[fading] = (1.0 - weight) * rows[fading] + weight * following
        return rows

    def _chunk_rows(self, chunks: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        parts = []
        for chunk, frame in zip(chunks.tolist(), frames.tolist(), strict=True):
            start, _ = self._span(chunk)
            parts.append(self._features(chunk)[frame - start])
        return torch.stack(parts)

    def _span(self, chunk: int) -> tuple[int, int]:
        start = max(0, chunk * self.chunk_frames - self.crossfade_frames)
        return start, min(self.num_frames, (chunk + 1) * self.chunk_frames)

    def _features(self, chunk: int) -> torch.Tensor:
        if chunk not in self._encoded:
            start, stop = self._span(chunk)
            # The last chunk takes every remaining sample: the releases stretch all of them onto
            # the frame grid, whichever way that grid rounds the duration.
            last = stop == self.num_frames
            samples = self.wave[_sample(start, self.fps) : None if last else _sample(stop, self.fps)]
            self._encoded[chunk] = self.encoder.encode(samples, stop - start)
        return self._encoded[chunk]


class WhisperFeatureStream:
    """HuMo's Whisper rows on the release's global 25 fps grid, from 30 s chunks encoded on demand."""

    def __init__(self, encoder, wave: Wave, fps: float) -> None:
        self.encoder = encoder
        self.wave = wave
        self.rows_50hz, self.num_frames = whisper_grid(wave.size, fps)
        if self.num_frames < 1:
            raise InputError("audio: shorter than one video frame")
        self._encoded: dict[int, torch.Tensor] = {}

    def rows(self, frames: Sequence[int]) -> torch.Tensor:
        """F.interpolate(linear, align_corners=True) of the whole 50 Hz sequence, row by row.

        The sampling positions are computed in float32 as torch's kernel computes them, so each
        row equals the one-shot interpolation of the release to float rounding.
        """
        frames = _frame_tensor(frames, self.num_frames)
        length = self.rows_50hz
        if self.num_frames > 1:
            scale = torch.tensor((length - 1) / (self.num_frames - 1), dtype=torch.float32)
            position = scale * frames.to(torch.float32)
        else:
            position = torch.zeros(len(frames), dtype=torch.float32)
        low = position.to(torch.int64).clamp(max=length - 1)
        high = (low + 1).clamp(max=length - 1)
        weight = (position - low.to(torch.float32)).clamp(0, 1)
        _forget_before(self._encoded, int(low.min()) // _STEPS_PER_CHUNK)
        lows, highs = self._rows_50hz(low), self._rows_50hz(high)
        weight = weight.view(-1, *([1] * (lows.ndim - 1)))
        return (1.0 - weight) * lows + weight * highs

    def _rows_50hz(self, steps: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [self._chunk(step // _STEPS_PER_CHUNK)[step % _STEPS_PER_CHUNK] for step in steps.tolist()]
        )

    def _chunk(self, chunk: int) -> torch.Tensor:
        if chunk not in self._encoded:
            samples = self.wave[chunk * CHUNK_SAMPLES : (chunk + 1) * CHUNK_SAMPLES]
            self._encoded[chunk] = self.encoder.features_50hz(samples)
        return self._encoded[chunk]


def _frame_tensor(frames: Sequence[int], num_frames: int) -> torch.Tensor:
    frames = torch.as_tensor(frames, dtype=torch.int64)
    if frames.min() < 0 or frames.max() >= num_frames:
        raise IndexError(f"frames must be in [0, {num_frames}), got {frames.min()}..{frames.max()}")
    return frames


def _forget_before(encoded: dict[int, torch.Tensor], chunk: int) -> None:
    for old in [c for c in encoded if c < chunk]:
        del encoded[old]


def _sample(frame: int, fps: float) -> int:
    return round(frame * SAMPLE_RATE / fps)
