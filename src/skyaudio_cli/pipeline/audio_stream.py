"""Per-frame audio features for audio of any length, encoded in chunks as the windows need them.

The references encode the whole utterance at once (wav2vec2's attention spans all of it; their
limit is 200 s). Minutes to hours of speech neither fit that attention nor should sit in memory as
features, so the audio is encoded in chunks of CHUNK_FRAMES video frames, each starting
CROSSFADE_FRAMES early; over those shared frames the two chunks' features are crossfaded linearly,
which hides the small differences at a chunk's edges (per-clip normalisation, attention context).
Audio up to one chunk (30 s) is encoded in one piece, exactly as the references do. Only the
chunks the current window touches are kept.
"""

from collections.abc import Sequence

import numpy as np
import torch

from skyaudio_cli.conditioning.audio_features import AudioFeatureEncoder
from skyaudio_cli.media.audio import Wave

SAMPLE_RATE = 16000
CHUNK_FRAMES = 750  # 30 s at 25 fps
CROSSFADE_FRAMES = 50  # 2 s


class AudioFeatureStream:
    """`rows(frame_indices)` -> features [len, layers, channels] for any real video frames."""

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
        self.encoder = encoder
        self.num_frames = num_frames
        self.fps = fps
        self.chunk_frames = chunk_frames
        self.crossfade_frames = crossfade_frames
        self.wave = wave
        self.num_chunks = -(-num_frames // chunk_frames)
        self._encoded: dict[int, torch.Tensor] = {}

    def rows(self, frames: Sequence[int]) -> torch.Tensor:
        frames = torch.as_tensor(frames, dtype=torch.int64)
        if frames.min() < 0 or frames.max() >= self.num_frames:
            raise IndexError(f"frames must be in [0, {self.num_frames}), got {frames.min()}..{frames.max()}")
        chunk = frames // self.chunk_frames
        self._forget_before(int(chunk.min()))
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
            samples = self.wave[_sample(start, self.fps) : _sample(stop, self.fps)]
            # The last video frame is usually only partly covered by speech; mirrored samples fill
            # it, so the shortest audio still gives the encoder a whole frame. Padding the chunk (not
            # the whole wave) avoids a second copy of hours of audio.
            samples = pad_audio_reversed(samples, stop - start, self.fps)
            self._encoded[chunk] = self.encoder.encode(samples, stop - start)
        return self._encoded[chunk]

    def _forget_before(self, chunk: int) -> None:
        for old in [c for c in self._encoded if c < chunk]:
            del self._encoded[old]


def _sample(frame: int, fps: float) -> int:
    return round(frame * SAMPLE_RATE / fps)


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
