"""User text (paths, ffmpeg's and batch's messages) reaches the console exactly as typed: rich markup
such as `[bold]` or `[/]`, emoji codes, unicode, spaces and a leading `-` are printed, not
interpreted (a `[/]` used to crash the closing 'wrote ...' line after a complete video)."""

import json

import numpy as np
import pytest

from skyaudio_cli import console
from skyaudio_cli.errors import EXIT_BATCH_SOME_FAILED, EXIT_USAGE

pytestmark = pytest.mark.slow

ODD_NAME = "]2 [bold]take [red] ünï cödé :smile: [draft]"  # no "/": that would be a folder


@pytest.fixture(autouse=True)
def one_line_per_message(monkeypatch):
    # Not wrapped at 80 columns (stderr is not a terminal here), so a message can be compared whole.
    monkeypatch.setattr(console.stderr, "soft_wrap", True)


@pytest.fixture(scope="module")
def quiet_wav(tmp_path_factory, make_wav):
    """0.2 s of silence, in a folder named with markup: its path appears in the silence warning."""
    folder = tmp_path_factory.mktemp("audio") / "[yellow]voice["
    folder.mkdir()
    return make_wav(folder / "] quiet.wav", np.zeros(3200))  # ".../[yellow]voice[/] quiet.wav"


def generate_args(tiny_model, portrait, audio, out):
    return ["generate", "-p", portrait, "-a", audio, "-o", out, "--model", tiny_model, "--resolution",
            "32x32", "--device", "cpu", "--dtype", "fp32", "--steps", "1"]  # fmt: skip


def test_markup_in_paths_is_printed_as_typed(tmp_path, run_cli, tiny_model, portrait_png, quiet_wav):
    folder = tmp_path / "take["  # with the file name below, the path reads "take[/]2 ..."
    folder.mkdir()
    out = folder / f"{ODD_NAME}.mp4"

    code, _, stderr = run_cli(generate_args(tiny_model, portrait_png, quiet_wav, out))

    assert code == 0, stderr
    assert out.is_file()
    assert f"warning: audio file {quiet_wav} is silent: the face will not speak\n" in stderr
    assert f"\nwrote {out} (5 frames, 0.20 s at 25 fps) in " in stderr


def test_output_with_a_leading_dash(tmp_path, monkeypatch, run_cli, tiny_model, portrait_png, quiet_wav):
    monkeypatch.chdir(tmp_path)

    code, stdout, stderr = run_cli(
        [*generate_args(tiny_model, portrait_png, quiet_wav, "-x [i].mp4"), "--json"]
    )

    assert code == 0, stderr
    assert json.loads(stdout)["output"] == "-x [i].mp4"
    assert (tmp_path / "-x [i].mp4").is_file()


def test_error_about_a_file_with_markup(tmp_path, run_cli, tiny_model, portrait_png):
    (tmp_path / "[bold]not audio[").mkdir()
    bad = tmp_path / "[bold]not audio[" / "].wav"
    bad.write_text("[red]plain text[/]\n")

    code, stdout, stderr = run_cli(
        [*generate_args(tiny_model, portrait_png, bad, tmp_path / "o.mp4"), "--json"]
    )

    assert code == EXIT_USAGE
    message = json.loads(stdout)["error"]
    assert message == f"audio file has no audio stream: {bad}"
    assert stderr.endswith(f"error: {message}\n")


def test_batch_lines_and_errors_with_markup(tmp_path, run_cli, tiny_model, portrait_png, quiet_wav):
    out = tmp_path / f"{ODD_NAME}.mp4"
    missing = tmp_path / "[bold]gone[/].wav"
    settings = {"model": str(tiny_model), "resolution": "32x32", "device": "cpu", "dtype": "fp32", "steps": 1}
    lines = [
        {
            "task": "generate",
            "portrait": str(portrait_png),
            "audio": str(audio),
            "output": str(dest),
            **settings,
        }
        for audio, dest in [(quiet_wav, out), (missing, tmp_path / "[b]2.mp4")]
    ]
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))

    code, _, stderr = run_cli(["batch", manifest, "--results", tmp_path / "results.jsonl"])

    assert code == EXIT_BATCH_SOME_FAILED, stderr
    assert f"error: line 2: --audio {missing}: file not found\n" in stderr
    assert f"[1/1] line 1: generate -> {out}\n" in stderr
    assert out.is_file()
