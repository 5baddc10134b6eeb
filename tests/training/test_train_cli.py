"""`skyaudio train` from the command line: bad input refused with one line, exit 2 and no checkpoint;
a 2-process (gloo) run through torchrun (8-bit AdamW, TensorBoard from the main process); the trained
LoRA loads with `generate --lora` and changes it."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from .conftest import CLIP_FRAMES
from .test_train import assert_tensorboard_matches_the_loss_log, write_config

STAGES = [
    {"name": "audio", "steps": 3, "lr": 1e-2, "frames": 5, "train": "audio"},
    {"name": "lora", "steps": 3, "lr": 1e-2, "frames": CLIP_FRAMES, "train": "lora"},
]
EXTRA = '[lora]\nrank = 4\nalpha = 8\ntargets = ["self_attn", "audio_attn"]\n'


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(built_dataset, tiny_model, tmp_path_factory, portrait_png, speech_wav):
    from skyaudio_cli.cli.app import main

    folder = tmp_path_factory.mktemp("cli-train")
    validation = f'[validation]\nevery = 3\nportrait = "{portrait_png}"\naudio = "{speech_wav}"\nsteps = 2\n'
    config = write_config(folder, built_dataset[0], tiny_model, stages=STAGES, extra=EXTRA + validation)
    with pytest.raises(SystemExit) as done:
        main(["train", str(config), "--json"])
    assert done.value.code == 0
    return folder / "run"


def test_the_lora_file_is_in_the_format_lora_loads(trained):
    tensors = load_file(str(trained / "lora.safetensors"))
    assert "transformer.blocks.0.attn1.to_q.lora_A.weight" in tensors
    assert tensors["transformer.blocks.0.attn1.to_q.alpha"].item() == 8.0
    # the audio stage trained the audio layers in full: full deltas against the released weights
    assert any(key.endswith(".diff") and "audio_cross_attn" in key for key in tensors)


def assert_lora_changes_generate(run_cli, model, lora, portrait_png, speech_wav, folder):
    """`generate` with `--lora lora` gives other frames of the same shape than without it."""
    from skyaudio_cli.media.video import iter_frames

    def generate(name, *extra):
        out = folder / name
        arguments = ["generate", "-p", portrait_png, "-a", speech_wav, "-m", model, "-o", out]
        code, _, err = run_cli(
            [*arguments, "--resolution", "32x32", "--steps", "2", "--device", "cpu", *extra]
        )
        assert code == 0, err
        return np.stack(list(iter_frames(out)))

    plain = generate("plain.mp4")
    tuned = generate("tuned.mp4", "--lora", lora)
    assert plain.shape == tuned.shape
    assert np.abs(plain.astype(int) - tuned.astype(int)).mean() > 0.5


def test_trained_lora_loads_in_generate_and_changes_the_video(
    trained, run_cli, tiny_model, portrait_png, speech_wav, tmp_path
):
    assert_lora_changes_generate(
        run_cli, tiny_model, trained / "lora.safetensors", portrait_png, speech_wav, tmp_path
    )


def test_validation_videos_are_written_every_n_steps(trained, speech_wav):
    from skyaudio_cli.media.audio import load_audio
    from skyaudio_cli.media.video import probe_video

    assert sorted(p.name for p in trained.glob("validation-*")) == [
        "validation-0000003.mp4",
        "validation-0000006.mp4",
    ]
    info = probe_video(trained / "validation-0000006.mp4")
    # the tiny family's 128x128, as long as the speech (ceil of its duration x 25 fps)
    assert (info.width, info.height, info.fps) == (128, 128, 25)
    assert info.num_frames == -(-len(load_audio(speech_wav)) * 25 // 16000)
    assert info.has_audio


def _empty_manifest(data: Path) -> None:
    (data / "manifest.jsonl").write_text("")


def _no_manifest(data: Path) -> None:
    (data / "manifest.jsonl").unlink()


BAD = {
    "empty dataset": (_empty_manifest, "", STAGES, "the dataset is empty"),
    "missing manifest": (_no_manifest, "", STAGES, "no dataset here (manifest.jsonl missing)"),
    "unknown key": (None, "learning_rate = 1\n", STAGES, "unknown key 'learning_rate'"),
    "unknown optimizer": (
        None, 'optimizer = "sgd"\n', STAGES, "'optimizer' must be one of adamw, adamw8bit, got 'sgd'"
    ),
    "missing validation portrait": (
        None, '[validation]\nevery = 1\nportrait = "none.png"\naudio = "none.wav"\n', STAGES,
        "validation.portrait",
    ),
    "too many frames": (
        None, "", [{"name": "long", "steps": 1, "lr": 1e-3, "frames": CLIP_FRAMES + 4}],
        f"stages[0] (long) asks for {CLIP_FRAMES + 4} frames; the clips in",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_no_checkpoint(case, built_dataset, tiny_model, tmp_path, run_cli):
    import shutil

    damage, extra, stages, expected = BAD[case]
    data = tmp_path / "data"
    shutil.copytree(built_dataset[0], data)
    if damage is not None:
        damage(data)
    config = write_config(tmp_path, data, tiny_model, stages=stages, extra=extra)
    code, out, err = run_cli(["train", config, "--json"])
    assert code == 2
    assert expected in _one_error_line(err)
    assert json.loads(out) == {
        "status": "error",
        "exit_code": 2,
        "error": _one_error_line(err)[len("error: ") :],
    }
    assert not (tmp_path / "run").exists()


MISSING = {
    "tensorboard": ("tensorboard = true\n", ("tensorboard", "torch.utils.tensorboard"),
                    "'tensorboard = true' needs the tensorboard package (pip install tensorboard"),
    "bitsandbytes": ('optimizer = "adamw8bit"\n', ("bitsandbytes",),
                     "'optimizer = \"adamw8bit\"' needs the bitsandbytes package (pip install bitsandbytes"),
}  # fmt: skip


@pytest.mark.parametrize("package", MISSING)
def test_a_missing_optional_package_is_one_line_exit_2(
    package, built_dataset, tiny_model, tmp_path, run_cli, monkeypatch
):
    extra, modules, expected = MISSING[package]
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    config = write_config(tmp_path, built_dataset[0], tiny_model, stages=STAGES, extra=extra)
    code, _, err = run_cli(["train", config, "--json"])
    assert code == 2 and expected in _one_error_line(err)
    assert not (tmp_path / "run").exists()


def test_bitsandbytes_that_cannot_run_here_is_one_line_exit_2(
    built_dataset, tiny_model, tmp_path, run_cli, monkeypatch
):
    import bitsandbytes
    import torch

    def no_kernel(self, closure=None):
        raise RuntimeError("no 8-bit kernel for this device\n(details)")

    monkeypatch.setattr(bitsandbytes.optim.AdamW8bit, "step", no_kernel)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # the device the Trainer would train on
    config = write_config(
        tmp_path, built_dataset[0], tiny_model, stages=STAGES, extra='optimizer = "adamw8bit"\n'
    )
    code, _, err = run_cli(["train", config])
    assert code == 2
    assert (
        f"'optimizer = \"adamw8bit\"': bitsandbytes {bitsandbytes.__version__} cannot run on {device} "
        '(no 8-bit kernel for this device); use optimizer = "adamw"' in _one_error_line(err)
    )
    assert not (tmp_path / "run").exists()


def test_resume_without_checkpoint_is_refused(built_dataset, tiny_model, tmp_path, run_cli):
    config = write_config(tmp_path, built_dataset[0], tiny_model, stages=STAGES)
    code, _, err = run_cli(["train", config, "--resume"])
    assert code == 2 and "holds no checkpoint to resume from" in _one_error_line(err)


def test_two_processes_with_gloo_through_torchrun(built_dataset, tiny_model, tmp_path):
    extra = 'optimizer = "adamw8bit"\ntensorboard = true\n' + EXTRA
    config = write_config(tmp_path, built_dataset[0], tiny_model, stages=STAGES, extra=extra)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port),
         "-m", "skyaudio_cli", "train", str(config), "--json"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gemm_4bit" not in done.stderr  # bitsandbytes' import notice is silenced
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1 and results[0]["status"] == "ok"  # rank 0 reports
    records = [json.loads(line) for line in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 7))
    # only the main process writes TensorBoard events
    assert len(list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert_tensorboard_matches_the_loss_log(tmp_path / "run")
    state = json.loads((tmp_path / "run" / "checkpoint-0000006" / "state.json").read_text())
    assert state["processes"] == 2
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoint-0000006").glob("rng-rank*")) == [
        "rng-rank0.safetensors", "rng-rank1.safetensors"
    ]  # fmt: skip
