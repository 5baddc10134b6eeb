"""Real media for the training tests: a talking astronaut (moving face + espeak-ng speech), a faceless
clip with the same speech, and the dataset built from them with the tiny model."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

CLIP_FRAMES = 9


def _mux(frames: np.ndarray, speech: Path, dest: Path) -> Path:
    from skyaudio_cli.media.ffmpeg import ffmpeg_exe
    from skyaudio_cli.media.video import VideoWriter

    silent = dest.with_name(dest.stem + "-video.mp4")
    with VideoWriter(silent, fps=25, width=frames.shape[2], height=frames.shape[1], crf=12) as writer:
        writer.write(frames)
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(silent), "-i", str(speech), "-c:v", "copy",
         "-c:a", "aac", "-shortest", str(dest)],
        check=True,
    )  # fmt: skip
    silent.unlink()
    return dest


@pytest.fixture(scope="session")
def talking_video(tmp_path_factory, moving_face_frames, speech_wav) -> Path:
    """The moving astronaut (its blank frames 12-14 replaced by face frames) with speech: 30 frames."""
    frames = moving_face_frames.copy()
    frames[12:15] = frames[11]
    path = _mux(frames, speech_wav, tmp_path_factory.mktemp("talking") / "talk.mp4")
    path.with_suffix(".txt").write_text("An astronaut talks to the camera.\n")
    return path


@pytest.fixture(scope="session")
def faceless_video(tmp_path_factory, speech_wav) -> Path:
    """Smooth grey gradients, no face, with speech: every clip must be dropped."""
    ramp = np.linspace(60, 200, 320, dtype=np.float32)[None, :, None]
    frames = np.broadcast_to(ramp, (30, 240, 320, 3)).astype(np.uint8).copy()
    return _mux(frames, speech_wav, tmp_path_factory.mktemp("faceless") / "wall.mp4")


@pytest.fixture(scope="session")
def built_dataset(tmp_path_factory, tiny_model, talking_video, faceless_video):
    from skyaudio_cli.training.dataset import BuildOptions, build_dataset

    out = tmp_path_factory.mktemp("data") / "data"
    report = build_dataset(
        [talking_video, faceless_video], out, BuildOptions(model=str(tiny_model), clip_frames=CLIP_FRAMES)
    )
    return out, report
