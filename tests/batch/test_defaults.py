"""`skyaudio batch jobs.jsonl --model ... --steps ...`: the subcommands' generation and runtime flags
are defaults for every line; a line's own values win."""

import pytest

from skyaudio_cli.batch.manifest import ManifestLine, parse_line
from skyaudio_cli.errors import EXIT_USAGE


@pytest.mark.slow
def test_flags_are_defaults_and_a_lines_own_values_win(
    tmp_path, tiny_model, portrait_png, clips, write_manifest, batch_cli
):
    plain = {"task": "generate", "portrait": str(portrait_png), "audio": str(clips[0])}
    manifest = write_manifest(
        tmp_path / "jobs.jsonl",
        [
            {**plain, "output": str(tmp_path / "a.mp4")},
            {**plain, "output": str(tmp_path / "b.mp4"), "seed": 7, "settings": {"resolution": "48x32"}},
        ],
    )

    code, results, _ = batch_cli(
        manifest, "--model", tiny_model, "--resolution", "32x32", "--device", "cpu", "--dtype", "fp32",
        "--steps", "1", "--seed", "3",
    )  # fmt: skip

    assert code == 0
    assert [(r["status"], r["model"], r["seed"], r["width"], r["height"]) for r in results] == [
        ("ok", "tiny-random", 3, 32, 32),
        ("ok", "tiny-random", 7, 48, 32),
    ]


def test_defaults_reach_only_the_tasks_that_take_them(tmp_path):
    video, audio = tmp_path / "in.mp4", tmp_path / "a.wav"
    edit = (
        f'{{"task": "edit-lipsync", "video": "{video}", "audio": "{audio}", "output": "o.mp4", "steps": 8}}'
    )
    generate = f'{{"task": "generate", "audio": "{audio}", "output": "g.mp4"}}'
    defaults = {"fps": 30.0, "steps": 2, "model": "infinitetalk", "device": "cpu"}

    edited = parse_line(ManifestLine(1, 0, edit), defaults).job.settings
    generated = parse_line(ManifestLine(2, 1, generate), defaults).job.settings

    # edit-lipsync keeps the source's frame rate: it has no --fps to take a default for.
    assert (edited.fps, edited.steps, edited.model, edited.device) == (None, 8, "infinitetalk", "cpu")
    assert (generated.fps, generated.steps, generated.model, generated.device) == (
        30.0,
        2,
        "infinitetalk",
        "cpu",
    )


def test_a_bad_default_is_a_usage_error(tmp_path, run_cli):
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("")
    code, _, stderr = run_cli(["batch", manifest, "--fps", "nan"])
    assert code == EXIT_USAGE
    assert stderr == "error: Invalid value for '--fps': 'nan' is not a number (see `skyaudio batch --help`)\n"
