"""`--lora` and `--preset` on the command line: a working run, and every bad file refused with one
line naming the key and the file, exit 3, and no output left behind."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

Q = "diffusion_model.blocks.0.self_attn.q"


@pytest.fixture
def run(run_cli, tiny_model, portrait_png, make_wav, tmp_path):
    """`run(*extra)`: generate with the tiny model at 32x32, 2 steps, on a short sine."""
    audio = make_wav(tmp_path / "a.wav", 0.3 * np.sin(np.linspace(0, 300, 3200)))

    def generate(*extra):
        arguments = ["generate", "-p", portrait_png, "-a", audio, "-m", tiny_model, "-o", tmp_path / "o.mp4"]
        return run_cli([*arguments, "--resolution", "32x32", "--steps", "2", "--device", "cpu", *extra])

    return generate


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_generate_with_two_loras(run, tmp_path):
    generator = torch.Generator().manual_seed(0)
    style = tmp_path / "style.safetensors"
    save_file(
        {f"{Q}.lora_down.weight": torch.randn(2, 64), f"{Q}.lora_up.weight": torch.randn(64, 2)}, str(style)
    )
    audio_lora = tmp_path / "audio.safetensors"
    audio_pair = {
        "transformer.audio_proj.proj2.lora_A.weight": torch.randn(2, 32, generator=generator),
        "transformer.audio_proj.proj2.lora_B.weight": torch.randn(32, 2, generator=generator),
    }
    save_file(audio_pair, str(audio_lora))

    code, out, err = run("--lora", f"{style}:0.5", "--lora", audio_lora, "--json")

    assert code == 0, err
    assert json.loads(out)["status"] == "ok" and (tmp_path / "o.mp4").is_file()


BAD = {
    "unknown key": (
        {f"{Q}x.lora_down.weight": torch.zeros(2, 64)},
        f"key '{Q}x.lora_down.weight' maps to no parameter",
    ),
    "wrong shape": (
        {f"{Q}.lora_down.weight": torch.zeros(2, 60), f"{Q}.lora_up.weight": torch.zeros(64, 2)},
        "do not fit 'blocks.0.attn1.to_q.weight' of shape (64, 64)",
    ),
    "rank mismatch": (
        {f"{Q}.lora_down.weight": torch.zeros(4, 64), f"{Q}.lora_up.weight": torch.zeros(64, 2)},
        f"rank mismatch: '{Q}.lora_up.weight' (64, 2) and '{Q}.lora_down.weight' (4, 64)",
    ),
}


@pytest.mark.parametrize("case", [*BAD, "corrupt", "pickle content", "pickle suffix"])
def test_bad_lora_files_exit_3_with_one_line(case, run, tmp_path):
    lora = tmp_path / ("bad.pt" if case == "pickle suffix" else "bad.safetensors")
    if case in BAD:
        tensors, needle = BAD[case]
        save_file(tensors, str(lora))
    elif case == "corrupt":
        lora.write_bytes(bytes(range(200)))
        needle = "not a readable safetensors file"
    else:
        torch.save({f"{Q}.diff_b": torch.zeros(64)}, lora)
        needle = "pickle"

    code, out, err = run("--lora", lora)

    assert code == 3
    line = _one_error_line(err)
    assert str(lora) in line and needle in line, line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.wav", lora.name]


def test_missing_lora_and_unknown_preset_are_usage_errors(run, tmp_path, tiny_model):
    code, _, err = run("--lora", tmp_path / "nope.safetensors")
    assert code == 2 and "--lora" in _one_error_line(err) and "file not found" in err

    code, _, err = run("--preset", "lightx2v")
    assert code == 2
    assert "--preset lightx2v: presets belong to a family name" in _one_error_line(err)


@pytest.fixture
def style_lora(tmp_path):
    generator = torch.Generator().manual_seed(1)
    path = tmp_path / "style.safetensors"
    save_file({f"{Q}.lora_down.weight": torch.randn(2, 64, generator=generator),
               f"{Q}.lora_up.weight": torch.randn(64, 2, generator=generator)}, str(path))  # fmt: skip
    return path


@pytest.mark.slow
def test_extend_and_edit_lipsync_take_loras(run_cli, tiny_model, face_video, make_wav, tmp_path, style_lora):
    audio = make_wav(tmp_path / "a.wav", 0.3 * np.sin(np.linspace(0, 300, 3200)))
    common = ["-a", audio, "-m", tiny_model, "--steps", "2", "--device", "cpu", "--lora", f"{style_lora}:0.7"]
    code, _, err = run_cli(
        ["extend", "-v", face_video, "-o", tmp_path / "x.mp4", "--resolution", "32x32", *common]
    )
    assert code == 0, err
    box = ["--face-box", "100,40,120,120", "--resolution", "32x32"]
    code, _, err = run_cli(["edit-lipsync", "-v", face_video, "-o", tmp_path / "e.mp4", *box, *common])
    assert code == 0, err
