"""edit-lipsync --mode full-frame: whole frames that follow the source, at its size and frame rate."""

import json
import math

import numpy as np
import pytest

from skyaudio_cli.long_video.reference_video import ReferenceVideo
from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.media.video import VideoWriter, iter_frames, probe_video
from skyaudio_cli.modes import LoopMode
from skyaudio_cli.pipeline.cache import PipelineCache
from skyaudio_cli.tasks.edit_lipsync import prepare_edit
from skyaudio_cli.tasks.jobs import EditLipsyncJob, Settings
from skyaudio_cli.tasks.registry import resolve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_tone(tmp_path_factory, make_wav):
    """1.4 s (35 frames at 25 fps): longer than the 30-frame video, so it loops."""
    t = np.arange(round(1.4 * 16000)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(9 * t)) / 2
    return make_wav(tmp_path_factory.mktemp("audio") / "tone.wav", wave)


def test_whole_frames_change_and_faceless_frames_pass_through(tmp_path, face_video, long_tone, tiny_model):
    settings = Settings(model=str(tiny_model), device="cpu", dtype="fp32", resolution="64x64", steps=1)
    job = EditLipsyncJob(
        video=face_video, audio=long_tone, output=tmp_path / "o.mp4", mode="full-frame", settings=settings
    )
    edit = prepare_edit(resolve("edit-lipsync", job), PipelineCache())
    decoded = list(iter_frames(face_video, fps=25))
    source = [decoded[i] for i in [*range(30), 28, 27, 26, 25, 24]]  # ping-pong past the end
    outputs = [frame for frame, _, _ in edit.frames]
    assert len(outputs) == 35 == edit.summary["frames"] and edit.summary["mode"] == "full-frame"
    faceless = [12, 13, 14]  # blank grey frames of the fixture
    for i, frame in enumerate(outputs):
        assert frame.shape == source[i].shape == (240, 320, 3)
        if i in faceless:
            assert np.array_equal(frame, source[i])
        else:  # random weights: the whole frame is regenerated, far outside any lower-face mask
            changed = np.abs(frame.astype(int) - source[i]).max(axis=2) > 8
            assert changed[:80].mean() > 0.5 and changed[-80:].mean() > 0.5, f"frame {i}"
    assert edit.stats["faceless"] == 3
    # The windows follow the source by the same timeline the output is composited on.
    followed = ReferenceVideo(face_video, 25.0, 30, LoopMode.pingpong)
    seconds = load_audio(long_tone).size / 16000
    plan = edit.plan
    assert followed.model_frame_sources(plan.model_frames, 25, seconds) == [
        plan.source_of_model_frame(k) for k in range(plan.model_frames)
    ]


def test_cli_keeps_the_source_rate_and_size_for_the_audio_length(
    tmp_path, run_cli, moving_face_frames, long_tone, tiny_model
):
    video = tmp_path / "face30.mp4"
    with VideoWriter(video, fps=30, width=320, height=240, crf=12) as writer:
        writer.write(moving_face_frames)
    out = tmp_path / "dub.mp4"
    code, stdout, err = run_cli(
        ["edit-lipsync", "--mode", "full-frame", "-v", video, "-a", long_tone, "-o", out, "-m", tiny_model,
         "--resolution", "64x64", "--steps", "1", "--device", "cpu", "--dtype", "fp32", "--loop-mode",
         "freeze", "--json"],
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(stdout)
    seconds = load_audio(long_tone).size / 16000
    info = probe_video(out)
    assert (info.width, info.height, info.fps) == (320, 240, 30) and info.has_audio
    assert info.num_frames == math.ceil(seconds * 30) == result["frames"] == 42
    assert abs(load_audio(out).size / 16000 - seconds) < 0.05
    assert result["looped"] and result["faceless_frames"] == 3 and result["mode"] == "full-frame"


def test_debug_mask_is_refused_in_full_frame(tmp_path, run_cli, face_video, long_tone, tiny_model):
    out = tmp_path / "o.mp4"
    code, _, err = run_cli(
        ["edit-lipsync", "--mode", "full-frame", "-v", face_video, "-a", long_tone, "-o", out, "-m",
         tiny_model, "--debug-mask", tmp_path / "d.mp4"],
    )  # fmt: skip
    assert code == 2 and "--debug-mask" in err and len(err.strip().splitlines()) == 1 and not out.exists()
