"""Speech audio in: decode any file ffmpeg reads to 16 kHz mono float32, check it, normalise loudness.

The audio encoders (wav2vec2, Whisper) take 16 kHz mono; loudness is normalised to -23 LUFS
(EBU R128 programme level) because the models were trained on normalised speech.
"""

from __future__ import annotations

import os

import numpy as np

from skyaudio_cli.errors import InputError
from skyaudio_cli.media.ffmpeg import FfmpegResult, execute_ffmpeg, ffmpeg_file_url
from skyaudio_cli.media.paths import require_input_file

DEFAULT_SAMPLE_RATE = 16000
# Decoding may end a few ms short of the header's duration (encoder padding, rounding).
TRUNCATION_TOLERANCE_SECONDS = 0.1
# BS.1770 gating block: integrated loudness is undefined for anything shorter.
LOUDNESS_BLOCK_SECONDS = 0.4
LOUDNESS_CHUNK_SAMPLES = 1 << 20


def load_audio(path: str | os.PathLike[str], sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of `path` (any container/codec, or a video's soundtrack).

    Returns float32 mono samples in [-1, 1] at `sample_rate`: channels are averaged and the signal
    resampled by ffmpeg. Raises InputError naming the file when it is missing, unreadable, has no
    audio stream, is corrupt or truncated (ffmpeg logged a decode error: we refuse rather than
    animate half a sentence), or decodes to zero samples.
    """
    path = require_input_file(path, "audio")
    result = execute_ffmpeg(
        [
            "-i",
            ffmpeg_file_url(path),
            "-map",
            "0:a:0?",
            "-ac",
            "1",
            "-ar",
            str(sample_rate),
            "-f",
            "f32le",
            "pipe:1",
        ]
    )
    if not result.opened_input:
        raise InputError(f"not an audio or video file ffmpeg can read: {path} ({result.failure_reason()})")
    if not any(stream.kind == "Audio" for stream in result.streams):
        raise InputError(f"audio file has no audio stream: {path}")
    if result.returncode != 0:
        raise InputError(f"cannot decode audio file {path}: {result.failure_reason()}")
    if result.damage:
        raise InputError(f"audio file {path} is corrupt or truncated: {result.damage[-1].rstrip('.')}")
    wave = np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)
    if wave.size == 0:
        raise InputError(f"audio file contains no samples: {path}")
    declared = _trustworthy_declared_duration(result)
    decoded = audio_duration(wave, sample_rate)
    if declared is not None and decoded < declared - max(TRUNCATION_TOLERANCE_SECONDS, 0.02 * declared):
        raise InputError(
            f"audio file {path} is truncated: {decoded:.2f} s decoded, its header declares {declared:.2f} s"
        )
    # Lossy decoders overshoot full scale slightly; downstream code relies on [-1, 1].
    return np.clip(wave, -1.0, 1.0, out=wave)  # in place: minutes of audio are not copied again


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


def audio_duration(wave: np.ndarray, sample_rate: int = DEFAULT_SAMPLE_RATE) -> float:
    """Duration in seconds."""
    return wave.shape[-1] / sample_rate


def check_audio(
    wave: np.ndarray,
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


def rms_dbfs(wave: np.ndarray) -> float:
    """RMS level in dB relative to full scale (1.0); -inf for digital silence or an empty wave."""
    if wave.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0.0 else float("-inf")


def is_silent(wave: np.ndarray, threshold_dbfs: float = -60.0) -> bool:
    """True when the RMS level is below `threshold_dbfs` (-60 dBFS is below any audible speech)."""
    return rms_dbfs(wave) < threshold_dbfs


def integrated_loudness(wave: np.ndarray, sample_rate: int = DEFAULT_SAMPLE_RATE) -> float | None:
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
    wave: np.ndarray, sample_rate: int = DEFAULT_SAMPLE_RATE, target_lufs: float = -23.0
) -> np.ndarray:
    """Scale `wave` to `target_lufs` integrated loudness; return it unchanged when unmeasurable.

    The result never leaves [-1, 1]: when the gain needed would push peaks past full scale, the
    whole wave is scaled down to peak exactly 1.0 instead. That leaves it quieter than the target
    but undistorted; clipping would add harmonics the audio encoder would hear as speech content.
    """
    loudness = integrated_loudness(wave, sample_rate)
    if loudness is None:
        return wave
    gain = 10.0 ** ((target_lufs - loudness) / 20.0)
    peak = float(np.max(np.abs(wave))) * gain
    if peak > 1.0:
        gain /= peak
    # In chunks: a float64 copy of hours of audio would cost more than the wave itself.
    scaled = np.empty(wave.shape, np.float32)
    for start in range(0, wave.shape[-1], LOUDNESS_CHUNK_SAMPLES):
        chunk = wave[start : start + LOUDNESS_CHUNK_SAMPLES].astype(np.float64)
        scaled[start : start + LOUDNESS_CHUNK_SAMPLES] = chunk * gain
    return scaled
