"""Session-wide real inputs and the tiny random model, built once and shared by all tests."""

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Property tests check behaviour, not speed: on a loaded CI machine a per-example deadline only
# produces flaky failures.
settings.register_profile("skyaudio", deadline=None)
settings.load_profile("skyaudio")


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """About 1.5 s of real synthesised speech (espeak-ng), 22.05 kHz mono wav."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng); .ci/run installs it")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-s", "170", "-w", str(path), "Hello there, nice to meet you."], check=True)
    return path


@pytest.fixture(scope="session")
def portrait_png(tmp_path_factory) -> Path:
    """scikit-image's public-domain astronaut portrait (512x512 RGB)."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("portrait") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture(scope="session")
def moving_face_frames() -> np.ndarray:
    """30 frames (25 fps, 320x240) of the astronaut portrait drifting and zooming by a few pixels,
    with frames 12-14 blank grey (no face): [30, 240, 320, 3] uint8."""
    import cv2
    from skimage import data

    portrait = data.astronaut()
    frames = []
    for t in range(30):
        scale = 0.47 * (1 + 0.02 * np.sin(t / 6))
        shift_x, shift_y = 40 + 3 * np.sin(t / 4), -2 + 2 * np.cos(t / 5)
        warp = np.array([[scale, 0, shift_x], [0, scale, shift_y]])
        frames.append(cv2.warpAffine(portrait, warp, (320, 240), borderMode=cv2.BORDER_REPLICATE))
    frames = np.stack(frames)
    frames[12:15] = 128
    return frames


@pytest.fixture(scope="session")
def face_video(tmp_path_factory, moving_face_frames) -> Path:
    """`moving_face_frames` written as an H.264 mp4 at 25 fps, no audio."""
    from skyaudio_cli.media.video import VideoWriter

    path = tmp_path_factory.mktemp("face_video") / "face.mp4"
    with VideoWriter(path, fps=25, width=320, height=240, crf=12) as writer:
        writer.write(moving_face_frames)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from skyaudio_cli.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def run_cli(capsys):
    """Run `skyaudio ARGS...` in-process: `code, stdout, stderr = run_cli([...])`."""
    from skyaudio_cli.cli.app import main

    def run(args):
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        return done.value.code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def make_wav():
    """Write float samples in [-1, 1] as a 16-bit PCM wav: `make_wav(path, samples, rate=16000)`."""
    return write_wav


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = 16000) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())
    return path
