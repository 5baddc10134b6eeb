"""The CLI's contract with shell scripts: exit codes, one-line errors, JSON on stdout, no torch at --help."""

import json
import subprocess
import sys

import numpy as np
import pytest


def test_help_does_not_import_torch():
    probe = (
        "import sys\nfrom skyaudio_cli.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'huggingface_hub') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "generate" in done.stdout and "edit-lipsync" in done.stdout and "extend" in done.stdout
    assert done.stdout.strip().endswith("HEAVY=")


def test_version(run_cli):
    code, out, _ = run_cli(["--version"])
    assert code == 0 and out.startswith("skyaudio ")


def test_missing_audio_is_usage_error_naming_file(tmp_path, run_cli, portrait_png):
    code, out, err = run_cli(
        [
            "generate",
            "-p",
            str(portrait_png),
            "-a",
            str(tmp_path / "nope.wav"),
            "-o",
            str(tmp_path / "o.mp4"),
            "--json",
        ]
    )
    assert code == 2
    assert err.count("\n") == 1 and "nope.wav" in err and "Traceback" not in err
    assert json.loads(out) == {
        "status": "error",
        "exit_code": 2,
        "error": err.strip().removeprefix("error: "),
    }
    assert not (tmp_path / "o.mp4").exists()


def test_unknown_option_value_is_usage_error(tmp_path, run_cli):
    code, _, err = run_cli(["generate", "-a", "x.wav", "-o", "o.mp4", "--dtype", "fp64"])
    assert code == 2 and "--dtype" in err and err.count("\n") == 1


def test_existing_output_without_overwrite(tmp_path, run_cli, portrait_png, make_wav):
    audio = make_wav(tmp_path / "a.wav", np.zeros(8000))
    existing = tmp_path / "o.mp4"
    existing.write_bytes(b"keep me")
    code, _, err = run_cli(["generate", "-p", str(portrait_png), "-a", str(audio), "-o", str(existing)])
    assert code == 2 and "o.mp4" in err and "--overwrite" in err
    assert existing.read_bytes() == b"keep me"


def test_conflicting_dtype_and_device(tmp_path, run_cli, portrait_png, make_wav):
    audio = make_wav(tmp_path / "a.wav", np.zeros(8000))
    code, _, err = run_cli(
        ["generate", "-p", str(portrait_png), "-a", str(audio), "-o", str(tmp_path / "o.mp4"),
         "--device", "cpu", "--dtype", "fp16"])  # fmt: skip
    assert code == 2 and "fp16" in err


def test_unknown_model(tmp_path, run_cli, portrait_png, make_wav):
    audio = make_wav(tmp_path / "a.wav", np.zeros(8000))
    code, _, err = run_cli(
        [
            "generate",
            "-p",
            str(portrait_png),
            "-a",
            str(audio),
            "-o",
            str(tmp_path / "o.mp4"),
            "-m",
            "nosuch",
        ]
    )
    assert code == 2 and "nosuch" in err


@pytest.mark.parametrize("command", ["edit-lipsync", "extend"])
def test_video_commands_validate_inputs_before_loading(command, tmp_path, run_cli, make_wav):
    audio = make_wav(tmp_path / "a.wav", np.zeros(8000))
    video = tmp_path / "in.mp4"
    code, _, err = run_cli([command, "--video", str(video), "-a", str(audio), "-o", str(tmp_path / "o.mp4")])
    assert code == 2 and "in.mp4" in err
    video.write_bytes(b"x")
    code, out, err = run_cli(
        [command, "--video", str(video), "-a", str(audio), "-o", str(tmp_path / "o.mp4"), "--json"]
    )
    assert code == 2 and "in.mp4" in err and json.loads(out)["exit_code"] == 2
