"""Every user mistake: a one-line error naming the file/option, its exit code, and no output left behind."""

import json
import os

import numpy as np
import pytest


@pytest.fixture
def run(run_cli):
    """`run_cli` taking the arguments one by one."""
    return lambda *args: run_cli(list(args))


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_corrupt_audio(tmp_path, run, tiny_model, portrait_png):
    audio = tmp_path / "broken.wav"
    audio.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage that is not audio")
    out = tmp_path / "o.mp4"
    code, _, err = run("generate", "-p", portrait_png, "-a", audio, "-m", tiny_model, "-o", out)
    assert code == 2
    assert_one_line_error(err, "broken.wav")
    assert list(tmp_path.iterdir()) == [audio]


def test_audio_over_the_configured_limit(tmp_path, run, tiny_model, portrait_png, make_wav):
    audio = make_wav(tmp_path / "long.wav", np.zeros(16000 * 2))
    out = tmp_path / "o.mp4"
    code, _, err = run(
        "generate", "-p", portrait_png, "-a", audio, "-m", tiny_model, "-o", out, "--max-audio-seconds", "1"
    )
    assert code == 2
    assert_one_line_error(err, "long.wav")
    assert not out.exists()


def test_silent_audio_makes_a_video(tmp_path, run, tiny_model, portrait_png, make_wav):
    audio = make_wav(tmp_path / "silence.wav", np.zeros(8000))
    out = tmp_path / "quiet.mp4"
    code, stdout, err = run(
        "generate",
        "-p",
        portrait_png,
        "-a",
        audio,
        "-m",
        tiny_model,
        "-o",
        out,
        "--resolution",
        "64x64",
        "--json",
    )
    assert code == 0, err
    assert json.loads(stdout)["frames"] == 13 and out.exists()
    assert "silence.wav is silent" in " ".join(err.split())  # warned, not refused


def test_portrait_that_is_not_an_image(tmp_path, run, tiny_model, make_wav):
    audio = make_wav(tmp_path / "a.wav", np.zeros(8000))
    fake = tmp_path / "face.png"
    fake.write_text("not a png")
    out = tmp_path / "o.mp4"
    code, _, err = run("generate", "-p", fake, "-a", audio, "-m", tiny_model, "-o", out)
    assert code == 2
    assert_one_line_error(err, "face.png")
    assert not out.exists()


def test_missing_output_folders_are_created(tmp_path, run, tiny_model, portrait_png, make_wav):
    audio = make_wav(tmp_path / "a.wav", np.zeros(4000))
    out = tmp_path / "new" / "folder" / "o.mp4"
    code, stdout, err = run(
        "generate", "-p", portrait_png, "-a", audio, "-m", tiny_model, "-o", out, "--resolution", "32x32",
        "--steps", "1", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["output"] == str(out) and os.listdir(out.parent) == ["o.mp4"]


def test_output_folder_is_a_file(tmp_path, run, portrait_png, make_wav):
    audio = make_wav(tmp_path / "a.wav", np.zeros(8000))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run("generate", "-p", portrait_png, "-a", audio, "-o", blocker / "o.mp4")
    assert code == 2
    assert_one_line_error(err)


def test_missing_weights_name_the_fetch_command_and_size(tmp_path, run, portrait_png, make_wav, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    audio = make_wav(tmp_path / "a.wav", np.zeros(8000))
    out = tmp_path / "o.mp4"
    code, stdout, err = run(
        "generate", "-p", portrait_png, "-a", audio, "-m", "skyreels-v3-a2v", "-o", out, "--json"
    )
    assert code == 3
    assert_one_line_error(err, "skyaudio weights fetch skyreels-v3-a2v", "GB")
    assert json.loads(stdout)["exit_code"] == 3
    assert not out.exists()


def test_portrait_required_for_image_families(tmp_path, run, tiny_model, make_wav):
    audio = make_wav(tmp_path / "a.wav", np.zeros(8000))
    code, _, err = run("generate", "-a", audio, "-m", tiny_model, "-o", tmp_path / "o.mp4")
    assert code == 2
    assert_one_line_error(err, "--portrait")
