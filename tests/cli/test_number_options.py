"""Float options: NaN is "not a number" (a range check alone called it out of range), on the command
line and in batch manifests alike."""

import json

import pytest

from skyaudio_cli.errors import EXIT_USAGE


@pytest.mark.parametrize(
    ("command", "option", "value", "problem"),
    [
        ("generate", "--fps", "nan", "'nan' is not a number"),
        ("generate", "--text-scale", "nan", "'nan' is not a number"),
        ("generate", "--audio-scale", "NaN", "'NaN' is not a number"),
        ("generate", "--shift", "inf", "'inf' is not a finite number"),
        ("generate", "--max-audio-seconds", "nan", "'nan' is not a number"),
        ("extend", "--fps", "nan", "'nan' is not a number"),
        ("edit-lipsync", "--text-scale", "nan", "'nan' is not a number"),
        ("generate", "--fps", "121", "121 is above the maximum 120"),
        ("generate", "--text-scale", "-0.5", "-0.5 is below the minimum 0"),
        ("generate", "--fps", "fast", "'fast' is not a number"),
    ],
)
def test_float_option_messages(run_cli, tmp_path, command, option, value, problem):
    source = "-p" if command == "generate" else "-v"
    code, stdout, stderr = run_cli(
        [command, source, tmp_path / "in.png", "-a", tmp_path / "a.wav", "-o", tmp_path / "o.mp4",
         option, value, "--json"]
    )  # fmt: skip
    message = f"Invalid value for '{option}': {problem} (see `skyaudio {command} --help`)"
    assert code == EXIT_USAGE
    assert stderr == f"error: {message}\n"
    assert json.loads(stdout) == {"status": "error", "exit_code": EXIT_USAGE, "error": message}


def test_nan_in_a_manifest_is_not_a_number(run_cli, tmp_path):
    manifest = tmp_path / "jobs.jsonl"
    line = {"task": "generate", "portrait": "p.png", "audio": "a.wav", "output": str(tmp_path / "o.mp4")}
    manifest.write_text(json.dumps(line)[:-1] + ', "fps": NaN}\n')  # Python's json reads NaN

    code, _, stderr = run_cli(["batch", manifest, "--validate-only"])

    assert code == EXIT_USAGE
    assert stderr.splitlines()[0] == 'error: line 1: "fps": nan is not a number'
