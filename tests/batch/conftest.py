"""Batch test helpers: short clips, manifest lines for the tiny model, running the CLI in-process."""

import json
from pathlib import Path

import numpy as np
import pytest

from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.media.video import probe_video

CLIP_SECONDS = (0.16, 0.2, 0.24)  # 4-6 frames keep 20 jobs quick; distinct lengths catch mix-ups


@pytest.fixture(scope="session")
def clips(tmp_path_factory, make_wav) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return [
        make_wav(folder / f"clip{n}.wav", 0.3 * np.sin(np.linspace(0, 300 * (n + 1), round(seconds * 16000))))
        for n, seconds in enumerate(CLIP_SECONDS)
    ]


@pytest.fixture(scope="session")
def job_line(tiny_model, portrait_png):
    """`job_line(audio, output, **fields)`: a generate job for the tiny model at 32x32 on CPU."""

    def line(audio, output, **fields) -> dict:
        return {
            "task": "generate",
            "portrait": str(portrait_png),
            "audio": str(audio),
            "output": str(output),
            "model": str(tiny_model),
            "resolution": "32x32",
            "device": "cpu",
            "dtype": "fp32",
            "steps": 2,
            **fields,
        }

    return line


@pytest.fixture(scope="session")
def write_manifest():
    """`write_manifest(path, lines)`: JSON objects one per line; strings are written as they are."""

    def write(path: Path, lines: list) -> Path:
        path.write_text(
            "".join((text if isinstance(text, str) else json.dumps(text)) + "\n" for text in lines)
        )
        return path

    return write


@pytest.fixture
def batch_cli(run_cli):
    """`batch_cli(manifest, *args)` -> (exit code, result dicts from --results, stderr), in-process."""

    def run(manifest: Path, *args) -> tuple[int, list[dict], str]:
        results = manifest.with_name(manifest.stem + "-results.jsonl")
        code, _, stderr = run_cli(["batch", manifest, "--results", results, *args])
        lines = results.read_text().splitlines() if results.exists() else []
        return code, [json.loads(line) for line in lines], stderr

    return run


@pytest.fixture(scope="session")
def assert_complete():
    """`assert_complete(video, audio, before=0.0)`: decodes fully, has sound, and lasts `before`
    seconds plus the audio, to one frame."""

    def check(video: Path, audio: Path, before: float = 0.0) -> None:
        info = probe_video(video)
        seconds = before + load_audio(audio).size / 16000
        assert info.has_audio and info.fps == 25
        assert 0 <= info.duration - seconds < 1 / 25

    return check


@pytest.fixture(scope="session")
def partial_files():
    """`partial_files(folder)`: hidden temporary files an interrupted write would leave behind."""

    def hidden(folder: Path) -> list[str]:
        return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))

    return hidden
