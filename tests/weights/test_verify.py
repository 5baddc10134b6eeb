"""verify_model: missing, truncated and corrupted files, in the HF cache and in model folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import save

from skyaudio_cli.weights import LOCAL_MODEL_FILE, verify_model
from skyaudio_cli.weights.manifest import human_size
from skyaudio_cli.weights.verify import _safetensors_problem

from .conftest import HubSetup

SHARD = "model-00002-of-00002.safetensors"


def _verify(setup: HubSetup, model: str | Path = "fake-a2v"):
    return verify_model(model, cache_dir=setup.cache_dir, manifest=setup.manifest)


def _truncate(path: Path, drop: int) -> None:
    # Cache snapshots hold symlinks to blobs: damage the blob, as a killed copy would.
    real = Path(os.path.realpath(path))
    real.write_bytes(real.read_bytes()[:-drop])


def test_complete_download_verifies(hub_setup: HubSetup) -> None:
    hub_setup.fetch()
    report = _verify(hub_setup)
    # 4 DiT files + 2 vae + 2 text encoder + 2 tokenizer + 1 audio file
    assert report.ok and report.files_checked == 11 and report.family == "fake-a2v"


def test_truncated_file_in_cache_is_reported(hub_setup: HubSetup) -> None:
    resolved = hub_setup.fetch()
    _truncate(resolved.components["transformer"] / SHARD, 10)

    report = _verify(hub_setup)

    assert not report.ok
    [problem] = report.problems
    full = len(hub_setup.repos["org/dit"][SHARD])
    assert (problem.component, problem.path) == ("transformer", SHARD)
    assert problem.problem.startswith(f"size {full - 10} bytes, expected {full}")


def test_wrong_sha256_is_reported(hub_setup: HubSetup) -> None:
    resolved = hub_setup.fetch()
    audio = Path(os.path.realpath(resolved.components["audio_encoder"]))
    corrupted = bytearray(audio.read_bytes())
    corrupted[1000] ^= 0xFF
    audio.write_bytes(bytes(corrupted))

    report = _verify(hub_setup)

    assert [(p.component, p.path, p.problem) for p in report.problems] == [
        ("audio_encoder", "w2v/model.bin", "sha256 does not match the manifest")
    ]


def test_deleted_component_is_reported_as_missing(hub_setup: HubSetup) -> None:
    resolved = hub_setup.fetch()
    (resolved.components["vae"] / "config.json").unlink()

    report = _verify(hub_setup)

    assert [(p.component, p.path, p.problem) for p in report.problems] == [
        ("vae", "vae/config.json", "missing")
    ]


def test_nothing_downloaded_reports_every_component(hub_setup: HubSetup) -> None:
    report = _verify(hub_setup)
    assert {problem.component for problem in report.problems} == {
        "transformer",
        "vae",
        "text_encoder",
        "tokenizer",
        "audio_encoder",
    }
    assert all(problem.problem == "not downloaded" for problem in report.problems)


def test_truncated_file_in_model_folder_is_reported(hub_setup: HubSetup, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    hub_setup.fetch(local_dir=folder)
    assert _verify(hub_setup, folder).ok
    _truncate(folder / "org--dit" / SHARD, 10)

    [problem] = _verify(hub_setup, folder).problems

    assert (problem.component, problem.path) == ("transformer", f"org--dit/{SHARD}")
    assert "expected" in problem.problem


def test_safetensors_header_catches_truncation_without_a_file_list(
    hub_setup: HubSetup, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    hub_setup.fetch(local_dir=folder)
    description_path = folder / LOCAL_MODEL_FILE
    description = json.loads(description_path.read_text())
    del description["files"]
    description_path.write_text(json.dumps(description))
    _truncate(folder / "org--dit" / SHARD, 10)

    full = len(hub_setup.repos["org/dit"][SHARD])
    report = _verify(hub_setup, folder)

    [problem] = report.problems
    assert problem.path == f"org--dit/{SHARD}"
    assert problem.problem.startswith(f"safetensors size {full - 10} bytes, header expects {full}")


def test_safetensors_header_check(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    content = save({"a": np.zeros((4, 4), np.float32), "b": np.ones(3, np.float16)})
    path.write_bytes(content)
    assert _safetensors_problem(path, len(content)) is None

    path.write_bytes(content[:-1])
    assert "header expects" in _safetensors_problem(path, len(content) - 1)

    path.write_bytes(content[:20])
    assert _safetensors_problem(path, 20) == "truncated or invalid safetensors header"

    path.write_bytes(b"\x01\x02")
    assert _safetensors_problem(path, 2) == "truncated safetensors file (no header)"


def test_missing_weights_name_the_fetch_command_and_its_size(hub_setup: HubSetup) -> None:
    spec = hub_setup.manifest.get("fake-a2v")
    report = _verify(hub_setup)
    size = human_size(spec.size_bytes)
    assert report.remedy == (
        f"run: skyaudio weights fetch fake-a2v (fetches transformer, vae, text_encoder, tokenizer, "
        f"audio_encoder: up to {size})"
    )
    assert report.summary().endswith(f"; {report.remedy}") and report.to_json()["remedy"] == report.remedy


def test_the_fetch_command_covers_only_the_components_with_files_missing(
    hub_setup: HubSetup, tmp_path
) -> None:
    resolved = hub_setup.fetch()
    (resolved.components["vae"] / "config.json").unlink()
    vae = human_size(hub_setup.manifest.get("fake-a2v").components["vae"].size_bytes)
    assert _verify(hub_setup).remedy == f"run: skyaudio weights fetch fake-a2v (fetches vae: up to {vae})"

    folder = tmp_path / "model"
    hub_setup.fetch(local_dir=folder)
    (folder / "org--shared" / "vae" / "config.json").unlink()
    remedy = _verify(hub_setup, folder).remedy
    assert remedy == f"run: skyaudio weights fetch fake-a2v --dir {folder} (fetches vae: up to {vae})"


def test_no_fetch_command_for_damage_it_does_not_repair(hub_setup: HubSetup) -> None:
    resolved = hub_setup.fetch()
    _truncate(resolved.components["transformer"] / SHARD, 10)
    report = _verify(hub_setup)
    assert not report.ok and report.remedy is None
