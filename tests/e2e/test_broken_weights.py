"""Every component of a model folder, damaged three ways (truncated, a tensor of the wrong shape,
corrupt JSON), fails `generate` with exit 3 and one line naming the damaged file."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from skyaudio_cli.errors import EXIT_WEIGHTS

TRANSFORMER_SHARD = "diffusion_pytorch_model-00001-of-00002.safetensors"


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def wrong_shape(path):
    """The largest tensor (one every model uses) gets one row more."""
    tensors = load_file(path)
    key = max(sorted(tensors), key=lambda name: tensors[name].numel())
    tensor = tensors[key]
    tensors[key] = torch.zeros(tensor.shape[0] + 1, *tensor.shape[1:], dtype=tensor.dtype)
    save_file(tensors, path)


def corrupt_json(path):
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def empty_json(path):
    path.write_text("{}")


DAMAGES = [
    ("transformer", TRANSFORMER_SHARD, truncate),
    ("transformer", TRANSFORMER_SHARD, wrong_shape),
    ("transformer", "config.json", corrupt_json),
    ("transformer", "diffusion_pytorch_model.safetensors.index.json", corrupt_json),
    ("vae", "diffusion_pytorch_model.safetensors", truncate),
    ("vae", "diffusion_pytorch_model.safetensors", wrong_shape),
    ("vae", "config.json", corrupt_json),
    ("text_encoder", "model.safetensors", truncate),
    ("text_encoder", "model.safetensors", wrong_shape),
    ("text_encoder", "config.json", corrupt_json),
    ("tokenizer", "tokenizer.json", corrupt_json),
    ("tokenizer", "tokenizer.json", empty_json),  # valid JSON, no vocabulary: transformers' KeyError
    ("tokenizer", "tokenizer_config.json", corrupt_json),
    ("image_encoder", "model.safetensors", truncate),
    ("image_encoder", "model.safetensors", wrong_shape),
    ("image_encoder", "config.json", corrupt_json),
    ("audio_encoder", "model.safetensors", truncate),
    ("audio_encoder", "model.safetensors", wrong_shape),
    ("audio_encoder", "config.json", corrupt_json),
]


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory, make_wav):
    path = tmp_path_factory.mktemp("audio") / "short.wav"
    return make_wav(path, 0.3 * np.sin(np.linspace(0, 200, 3200)))


@pytest.mark.parametrize(
    ("component", "name", "damage"), DAMAGES, ids=[f"{c}-{n}-{d.__name__}" for c, n, d in DAMAGES]
)
def test_damaged_component_is_exit_3_naming_the_file(
    tmp_path, tiny_model, portrait_png, short_wav, run_cli, component, name, damage
):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    damaged = model / component / name
    damage(damaged)
    out = tmp_path / "out"
    out.mkdir()

    code, stdout, stderr = run_cli(
        ["generate", "-p", portrait_png, "-a", short_wav, "-o", out / "talk.mp4", "--model", model,
         "--resolution", "32x32", "--device", "cpu", "--dtype", "fp32", "--steps", "1", "--json"]
    )  # fmt: skip

    assert code == EXIT_WEIGHTS, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {damaged}: "), stderr
    assert "Traceback" not in stderr
    result = json.loads(stdout)  # exactly one object
    message = errors[0].removeprefix("error: ")
    assert result == {"status": "error", "exit_code": EXIT_WEIGHTS, "error": message}
    assert list(out.iterdir()) == []
