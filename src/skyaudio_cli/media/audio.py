"""Speech audio in: decode any file ffmpeg reads to 16 kHz mono float32, check it, normalise loudness.

The audio encoders (wav2vec2, Whisper) take 16 kHz mono; loudness is normalised to -23 LUFS
(EBU R128 programme level) because the models were trained on normalised speech.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import numpy as np

from skyaudio_cli.errors import InputError, RuntimeFailure
from skyaudio_cli.media.ffmpeg import FfmpegResult, execute_ffmpeg, ffmpeg_file_url
from skyaudio_cli.media.paths import require_input_file

DEFAULT_SAMPLE_RATE = 16000
# Decoding may end a few ms short of the header's duration (encoder padding, rounding).
TRUNCATION_TOLERANCE_SECONDS = 0.1
# BS.1770 gating block: integrated loudness is undefined for anything shorter.
LOUDNESS_BLOCK_SECONDS = 0.4
LOUDNESS_CHUNK_SAMPLES = 1 << 16
BYTES_PER_SAMPLE = 4  # float32
# ffmpeg's reasons when writing the decoded samples failed (not reading the input).
_DISK_FULL = re.compile(r"No space left on device|File too large|Disk quota exceeded")


class AudioFile:
    """Mono float32 samples decoded to a temporary file, read back slice by slice.

    Sliced like a 1-D array (`audio[start:stop]` -> float32 ndarray), so hours of speech cost
    memory only for the slices being used. `gain` scales what is read: loudness normalisation
    without a second copy. The file is deleted when the object is closed or collected.
    """

    ndim = 1

    def __init__(
        self,
        samples: IO[bytes],
        size: int,
        sample_rate: int,
        gain: float = 1.0,
        *,
        owner: AudioFile | None = None,
    ) -> None:
        self._samples = samples
        self.size = size
        self.sample_rate = sample_rate
        self.gain = gain
        # A scaled view holds the file's owner, so the file lives as long as any view of it.
        self._owner = owner
        self._closer = owner._closer if owner is not None else weakref.finalize(self, samples.close)

    @property
    def shape(self) -> tuple[int]:
        return (self.size,)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError("AudioFile supports slices only")
        start, stop, step = key.indices(self.size)
        if step != 1:
            raise ValueError("AudioFile slices must be contiguous")
        count = max(0, stop - start)
        self._samples.seek(start * BYTES_PER_SAMPLE)
        wave = np.frombuffer(self._samples.read(count * BYTES_PER_SAMPLE), dtype="<f4").astype(np.float32)
        # Lossy decoders overshoot full scale slightly; downstream code relies on [-1, 1].
        np.clip(wave, -1.0, 1.0, out=wave)
        if self.gain == 1.0:
            return wave
        return (wave.astype(np.float64) * self.gain).astype(np.float32)

    def scaled(self, gain: float) -> AudioFile:
        """The same samples scaled by `gain`; it shares the file (closing either closes both)."""
        owner = self._owner or self
        return AudioFile(self._samples, self.size, self.sample_rate, self.gain * gain, owner=owner)

    def close(self) -> None:
        self._closer()

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# Anything 1-D that slices into float32 arrays: the loudness and feature code takes either.
Wave = np.ndarray | AudioFile


def open_audio(path: str | os.PathLike[str], sample_rate: int = DEFAULT_SAMPLE_RATE) -> AudioFile:
    """Decode the first audio stream of `path` (any container/codec, or a video's soundtrack).

    The samples are float32 mono in [-1, 1] at `sample_rate` (channels averaged and resampled by
    ffmpeg), kept in a temporary file. Raises InputError naming the file when it is missing,
    unreadable, has no audio stream, is corrupt or truncated (ffmpeg logged a decode error: we
    refuse rather than animate half a sentence), or decodes to zero samples.
    """
    path = require_input_file(path, "audio")
    with ExitStack() as on_error:
        samples = on_error.enter_context(tempfile.TemporaryFile(prefix="skyaudio-audio-"))
        result = execute_ffmpeg(
            ["-i", ffmpeg_file_url(path), "-map", "0:a:0?", "-ac", "1", "-ar", str(sample_rate),
             "-f", "f32le", "pipe:1"],
            stdout=samples,
        )  # fmt: skip
        if _DISK_FULL.search(result.failure_reason()):
            raise RuntimeFailure(
                f"decoding {path}: no room for the decoded samples in {tempfile.gettempdir()} "
                f"({result.failure_reason()}); point TMPDIR at a disk with space"
            )
        _check_decode(result, path)
        size = os.fstat(samples.fileno()).st_size // BYTES_PER_SAMPLE
        # Length first: a cut-off wav also logs "corrupt input packet", but "truncated" says more.
        _check_length(result, path, size / sample_rate)
        _check_wav_length(path)
        _check_damage(result, path)
        on_error.pop_all()  # from here on the AudioFile owns the file
    return AudioFile(samples, size, sample_rate)


def check_audio_file(path: str | os.PathLike[str]) -> None:
    """Refuse a file with no audio stream from its stream listing alone (milliseconds, no decoding).

    Validation runs this before any model code is imported; `open_audio` decodes and checks it all.
    """
    path = require_input_file(path, "audio")
    _check_streams(execute_ffmpeg(["-i", ffmpeg_file_url(path)]), path)


def load_audio(path: str | os.PathLike[str], sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """`open_audio` read whole into memory: for short clips and tests."""
    with open_audio(path, sample_rate) as audio:
        return audio[:]


def _check_streams(result: FfmpegResult, path: Path) -> None:
    if not result.opened_input:
        raise InputError(f"not an audio or video file ffmpeg can read: {path} ({result.failure_reason()})")
    if not any(stream.kind == "Audio" for stream in result.streams):
        raise InputError(f"audio file has no audio stream: {path}")


def _check_decode(result: FfmpegResult, path: Path) -> None:
    _check_streams(result, path)
    if result.returncode != 0:
        raise InputError(f"cannot decode audio file {path}: {result.failure_reason()}")


def _check_damage(result: FfmpegResult, path: Path) -> None:
    if result.damage:
        raise InputError(f"audio file {path} is corrupt or truncated: {result.damage[-1].rstrip('.')}")


def _check_length(result: FfmpegResult, path: Path, decoded: float) -> None:
    if decoded == 0:
        raise InputError(f"audio file contains no samples: {path}")
    declared = _trustworthy_declared_duration(result)
    if declared is not None and decoded < declared - max(TRUNCATION_TOLERANCE_SECONDS, 0.02 * declared):
        raise InputError(
            f"audio file {path} is truncated: {decoded:.2f} s decoded, its header declares {declared:.2f} s"
        )


# A RIFF/WAVE data chunk whose size is unknown (written by a stream that could not seek back).
_UNKNOWN_WAV_SIZES = (0, 0xFFFFFFFF)


def _check_wav_length(path: Path) -> None:
    """A wav whose data chunk stops before its header's size is truncated.

    ffmpeg decodes the part that is there and estimates the duration from the file size, so it
    only logs a "corrupt packet"; the header's own byte count tells the real story.
    """
    with path.open("rb") as file:
        if file.read(12)[8:12] != b"WAVE":
            return
        byte_rate = None
        while len(header := file.read(8)) == 8:
            kind, size = header[:4], struct.unpack("<I", header[4:])[0]
            if kind == b"fmt " and size >= 16:
                byte_rate = struct.unpack("<I", file.read(16)[8:12])[0]
                file.seek(size - 16 + size % 2, os.SEEK_CUR)
            elif kind == b"data":
                held = os.fstat(file.fileno()).st_size - file.tell()
                known = byte_rate and size not in _UNKNOWN_WAV_SIZES
                if known and size - held > TRUNCATION_TOLERANCE_SECONDS * byte_rate:
                    raise InputError(
                        f"audio file {path} is truncated: its header declares {size / byte_rate:.2f} s, "
                        f"the file holds {held / byte_rate:.2f} s"
                    )
                return
            else:
                file.seek(size + size % 2, os.SEEK_CUR)


def _trustworthy_declared_duration(result: FfmpegResult) -> float | None:
    """The header's duration when it can reveal a truncated file, else None.

    A cut-off file decodes cleanly up to the cut (mp3 frames are independent), so the only sign is a
    header promising more. Only audio-only files count (a video's container duration is its longest
    stream's), and not when ffmpeg estimated the duration from the file size itself.
    """
    if any(stream.kind != "Audio" for stream in result.streams):
        return None
    if any("Estimating duration from bitrate" in line.text for line in result.log):
        return None
    return result.declared_duration


def audio_duration(wave: Wave, sample_rate: int = DEFAULT_SAMPLE_RATE) -> float:
    """Duration in seconds."""
    return wave.shape[-1] / sample_rate


def check_audio(
    wave: Wave,
    path: str | os.PathLike[str],
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    max_seconds: float | None = None,
) -> float:
    """Reject audio that cannot drive a video; return its duration in seconds.

    Zero-length audio and audio longer than `max_seconds` (when given) raise InputError naming
    `path`. Silence is accepted (a portrait that stays quiet is a valid result): use `is_silent`.
    """
    duration = audio_duration(wave, sample_rate)
    if wave.size == 0:
        raise InputError(f"audio file contains no samples: {path}")
    if max_seconds is not None and duration > max_seconds:
        raise InputError(f"audio file {path} is {duration:.1f} s long; the limit is {max_seconds:g} s")
    return duration


def chunks(wave: Wave, size: int = LOUDNESS_CHUNK_SAMPLES) -> Iterator[np.ndarray]:
    """Consecutive pieces of `wave`, so whole-signal statistics never copy all of it at once."""
    for start in range(0, wave.size, size):
        yield wave[start : start + size]


def rms_dbfs(wave: Wave) -> float:
    """RMS level in dB relative to full scale (1.0); -inf for digital silence or an empty wave."""
    if wave.size == 0:
        return float("-inf")
    energy = sum(float(np.sum(np.square(piece, dtype=np.float64))) for piece in chunks(wave))
    rms = (energy / wave.size) ** 0.5
    return float(20.0 * np.log10(rms)) if rms > 0.0 else float("-inf")


def is_silent(wave: Wave, threshold_dbfs: float = -60.0) -> bool:
    """True when the RMS level is below `threshold_dbfs` (-60 dBFS is below any audible speech)."""
    return rms_dbfs(wave) < threshold_dbfs


def integrated_loudness(wave: Wave, sample_rate: int = DEFAULT_SAMPLE_RATE) -> float | None:
    """ITU-R BS.1770-4 gated integrated loudness in LUFS, or None when it is not measurable.

    Not measurable: shorter than one 400 ms gating block, or every block below the -70 LUFS
    absolute gate (silence), where the standard's result is -inf.
    """
    from skyaudio_cli.media.loudness import integrated_loudness_streaming

    if wave.shape[-1] < LOUDNESS_BLOCK_SECONDS * sample_rate:
        return None
    loudness = integrated_loudness_streaming(wave, sample_rate)
    return float(loudness) if np.isfinite(loudness) else None


def normalize_loudness(
    wave: Wave, sample_rate: int = DEFAULT_SAMPLE_RATE, target_lufs: float = -23.0
) -> Wave:
    """Scale `wave` to `target_lufs` integrated loudness; return it unchanged when unmeasurable.

    The result never leaves [-1, 1]: when the gain needed would push peaks past full scale, the
    whole wave is scaled down to peak exactly 1.0 instead. That leaves it quieter than the target
    but undistorted; clipping would add harmonics the audio encoder would hear as speech content.
    """
    loudness = integrated_loudness(wave, sample_rate)
    if loudness is None:
        return wave
    gain = 10.0 ** ((target_lufs - loudness) / 20.0)
    peak = max(float(np.max(np.abs(piece))) for piece in chunks(wave)) * gain
    if peak > 1.0:
        gain /= peak
    if isinstance(wave, AudioFile):
        return wave.scaled(gain)
    # In chunks: a float64 copy of hours of audio would cost more than the wave itself.
    scaled = np.empty(wave.shape, np.float32)
    for start, piece in zip(range(0, wave.size, LOUDNESS_CHUNK_SAMPLES), chunks(wave), strict=True):
        scaled[start : start + piece.size] = piece.astype(np.float64) * gain
    return scaled
