"""edit-lipsync refuses bad input with exit 2 and one line naming the option, before loading a model."""

import json

import numpy as np
import pytest

from skyaudio_cli.edit.lipsync import EditPlan
from skyaudio_cli.long_video.timeline import plan_timeline


@pytest.fixture
def audio(tmp_path, make_wav):
    return make_wav(tmp_path / "a.wav", 0.2 * np.sin(np.linspace(0, 300, 8000)))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--face-box", "10,20,30"], "--face-box"),
        (["--face-box", "10,20,0,40"], "--face-box"),
        (["--face-box", "1,2,3,4", "--mask-video", "MASK"], "--mask-video and --face-box"),
        (["--mask-video", "missing.mp4"], "--mask-video"),
        (["--debug-mask", "OUT"], "--debug-mask"),
        (["--loop-mode", "bounce"], "--loop-mode"),
    ],
)
def test_bad_options(tmp_path, run_cli, audio, face_video, tiny_model, extra, message):
    out = tmp_path / "o.mp4"
    extra = [str(face_video) if e == "MASK" else str(out) if e == "OUT" else e for e in extra]
    code, _, err = run_cli(
        ["edit-lipsync", "-v", face_video, "-a", audio, "-o", out, "-m", tiny_model, *extra]
    )
    assert code == 2 and message in err and "Traceback" not in err


def test_audio_file_as_video(tmp_path, run_cli, audio, tiny_model):
    code, stdout, _ = run_cli(
        ["edit-lipsync", "-v", audio, "-a", audio, "-o", tmp_path / "o.mp4", "-m", tiny_model, "--json"],
    )
    assert code == 2 and "no video stream" in json.loads(stdout)["error"]


def test_face_box_outside_the_video(tmp_path, run_cli, audio, face_video, tiny_model):
    code, _, err = run_cli(
        ["edit-lipsync", "-v", face_video, "-a", audio, "-o", tmp_path / "o.mp4", "-m", tiny_model,
         "--face-box", "300,200,50,50"],
    )  # fmt: skip
    assert code == 2 and "outside the 320x240 video" in err


def test_non_25_fps_sources_map_model_frames_by_time():
    seconds = 1.0  # 30 output frames at 30 fps, 25 model frames at 25 fps
    plan = EditPlan.build(None, 30.0, plan_timeline(12, 30), 25.0, seconds)
    assert plan.model_frames == 25
    assert plan.output_to_model == [i * 25 // 30 for i in range(30)]
    assert plan.model_to_output == [k * 30 // 25 for k in range(25)]
    assert plan.source_of_model_frame(24) == plan.timeline.source_indices[28]  # ping-ponged source
