"""`skyaudio weights ...` through the sub-app, with the main app's error -> exit-code mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skyaudio_cli.cli.weights import app
from skyaudio_cli.errors import SkyaudioError
from skyaudio_cli.weights import write_local_model


def run(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) as the main app reports them: SkyaudioError -> its exit code."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, SkyaudioError):
        return result.exception.exit_code, result.stdout, f"error: {result.exception}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_CACHE at import; point its constant at an empty folder.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    for name in ("transformer", "vae"):
        (folder / name).mkdir(parents=True)
        (folder / name / "config.json").write_text("{}")
    write_local_model(
        folder,
        family="tiny-random",
        audio_encoder="whisper",
        components={"transformer": "transformer", "vae": "vae"},
    )
    return folder


def test_list_json() -> None:
    code, stdout, _ = run("list", "--json")
    listing = json.loads(stdout)
    assert code == 0 and listing["status"] == "ok"
    rows = {row["name"]: row for row in listing["models"]}
    # A family's presets are families of their own, listed after it: its components plus the LoRA.
    presets = ["infinitetalk-lightx2v", "infinitetalk-fusionx"]
    hub_families = ["skyreels-v3-a2v", "infinitetalk", *presets, "humo-17b", "humo-1.7b"]
    assert list(rows) == [*hub_families, "tiny-random", "tiny-humo", "tiny-humo-1.7b"]
    for preset in presets:
        assert 0.3e9 < rows[preset]["size_bytes"] - rows["infinitetalk"]["size_bytes"] < 0.4e9
    assert [name for name, row in rows.items() if row["default"]] == ["skyreels-v3-a2v"]
    assert rows["skyreels-v3-a2v"]["downloaded"] is False and rows["tiny-random"]["downloaded"] is None
    assert rows["humo-17b"]["size_bytes"] > 50e9


def test_fetch_with_a_preset_fetches_the_preset_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    code, _, stderr = run("fetch", "infinitetalk", "--preset", "lightx2v")
    assert code == 3 and "cannot download 'infinitetalk-lightx2v'" in stderr

    code, _, stderr = run("fetch", "infinitetalk", "--preset", "turbo")
    assert code == 2
    assert (
        stderr
        == "error: --preset turbo: model 'infinitetalk' has no such preset (its presets: lightx2v, fusionx)"
    )


def test_path_of_a_local_folder(tiny_folder: Path) -> None:
    code, stdout, _ = run("path", str(tiny_folder))
    assert (code, stdout) == (0, f"{tiny_folder.resolve()}\n")

    code, stdout, _ = run("path", str(tiny_folder), "--json")
    described = json.loads(stdout)
    assert described["family"] == "tiny-random" and described["audio_encoder"] == "whisper"
    assert described["components"] == {
        "transformer": str(tiny_folder.resolve() / "transformer"),
        "vae": str(tiny_folder.resolve() / "vae"),
    }


def test_unknown_model_is_a_usage_error() -> None:
    code, _, stderr = run("path", "no-such-model")
    assert code == 2
    assert stderr.startswith("error: unknown model 'no-such-model'; known: skyreels-v3-a2v,")


def test_missing_weights_exit_3_with_the_fetch_command() -> None:
    code, _, stderr = run("path", "humo-1.7b")
    assert code == 3
    assert stderr.endswith("run: skyaudio weights fetch humo-1.7b")


def test_verify_broken_folder_exits_3_with_a_json_report(tiny_folder: Path) -> None:
    (tiny_folder / "vae" / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    code, stdout, _ = run("verify", str(tiny_folder), "--json")
    report = json.loads(stdout)
    assert code == 3 and report["status"] == "error" and report["ok"] is False
    assert report["problems"] == [
        {
            "component": "vae",
            "path": "vae/broken.safetensors",
            "problem": "truncated or invalid safetensors header",
        }
    ]


def test_verify_sound_folder_exits_0(tiny_folder: Path) -> None:
    code, stdout, _ = run("verify", str(tiny_folder), "--json")
    assert code == 0 and json.loads(stdout)["files_checked"] == 2


def test_list_fits_80_columns_with_every_value_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, stdout, _ = run("list")
    lines = stdout.splitlines()
    assert code == 0 and all(len(line) <= 80 for line in lines) and "…" not in stdout
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert rows["skyreels-v3-a2v"] == ["skyreels-v3-a2v", "64", "GB", "Skywork", "Community", "License",
                                       "wav2vec2", "no"]  # fmt: skip
    assert rows["tiny-humo"] == ["tiny-humo", "-", "Apache-2.0", "whisper", "make-tiny"]
    assert lines[-1] == "default: skyreels-v3-a2v; make-tiny models: `skyaudio weights make-tiny DIR`"
