"""Real test media, made once per session: synthetic speech, a real portrait, encoded variants."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from skyaudio_cli.media.ffmpeg import ffmpeg_exe

SPEECH_TEXT = "The quick brown fox jumps over the lazy dog, and then it takes a well deserved rest."


def _run_ffmpeg_cli(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _ffmpeg_listing(path: Path) -> str:
    completed = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    return completed.stderr


@pytest.fixture(scope="session")
def ffmpeg_cli():
    """`ffmpeg_cli(*args)`: make a test file with the bundled ffmpeg, independently of the code under test."""
    return _run_ffmpeg_cli


@pytest.fixture(scope="session")
def ffmpeg_listing():
    """`ffmpeg_listing(path)`: the `ffmpeg -i` stream listing, to inspect outputs with ffmpeg's own eyes."""
    return _ffmpeg_listing


def _synthetic_voice(sample_rate: int = 22050, seconds: float = 3.0) -> np.ndarray:
    """Fallback when espeak-ng is absent: a gliding harmonic buzz with syllable-like bursts."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 120.0 + 30.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    buzz = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t), 0.0, None)
    return (0.3 * buzz * syllables).astype(np.float32)


@pytest.fixture(scope="session")
def media_speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Speech as a 16-bit WAV at espeak-ng's native 22.05 kHz (not 16 kHz, so resampling is exercised)."""
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    espeak = shutil.which("espeak-ng")
    if espeak:
        subprocess.run([espeak, "-w", str(path), SPEECH_TEXT], check=True)
    else:
        wavfile.write(path, 22050, (_synthetic_voice() * 32767).astype(np.int16))
    return path


@pytest.fixture(scope="session")
def speech_seconds(media_speech_wav: Path) -> float:
    rate, samples = wavfile.read(media_speech_wav)
    return len(samples) / rate


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    """A real photographic portrait (512x512) that ships with scikit-image."""
    from skimage import data

    return Image.fromarray(data.astronaut())
