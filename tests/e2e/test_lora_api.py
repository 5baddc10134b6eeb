"""The Python API: pipe.load_lora / unload_lora / loras, and a model folder whose family ships a LoRA."""

import json

import pytest
import torch
from safetensors.torch import save_file

from skyaudio_cli.errors import WeightsError
from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline
from skyaudio_cli.weights import LOCAL_MODEL_FILE

NAME = "blocks.0.attn1.to_q.weight"


def _lora(path, seed: int):
    generator = torch.Generator().manual_seed(seed)
    up, down = torch.randn(64, 2, generator=generator), torch.randn(2, 64, generator=generator)
    stem = "transformer.blocks.0.attn1.to_q"
    save_file({f"{stem}.lora_B.weight": up, f"{stem}.lora_A.weight": down}, str(path))
    return path, up @ down


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return TalkingVideoPipeline.from_pretrained(tiny_model, device="cpu", dtype="fp32")


def test_load_and_unload_lora(pipe, tmp_path):
    released = {name: value.clone() for name, value in pipe.transformer.state_dict().items()}
    first, first_delta = _lora(tmp_path / "first.safetensors", 1)
    second, second_delta = _lora(tmp_path / "second.safetensors", 2)

    pipe.load_lora(first, 0.5)
    pipe.load_lora(second, -1.0)

    assert pipe.loras == ((first, 0.5), (second, -1.0))
    expected = released[NAME] + 0.5 * first_delta - second_delta
    torch.testing.assert_close(pipe.transformer.state_dict()[NAME], expected, rtol=0, atol=1e-6)
    pipe.unload_lora()
    assert pipe.loras == ()
    assert all(torch.equal(value, released[name]) for name, value in pipe.transformer.state_dict().items())
    with pytest.raises(WeightsError, match="pickle-based files are never loaded"):
        pipe.load_lora(tmp_path / "style.pt")


def test_a_family_lora_is_fused_at_load_and_kept_by_use_loras(tiny_model, tmp_path):
    folder = tmp_path / "with-lora"
    folder.mkdir()
    for entry in tiny_model.iterdir():
        (folder / entry.name).symlink_to(entry)
    description = json.loads((tiny_model / LOCAL_MODEL_FILE).read_text())
    (folder / LOCAL_MODEL_FILE).unlink()
    family_lora, delta = _lora(folder / "lora.safetensors", 3)
    description["components"]["lora"] = "lora.safetensors"
    (folder / LOCAL_MODEL_FILE).write_text(json.dumps(description))
    extra, extra_delta = _lora(tmp_path / "extra.safetensors", 4)
    plain = TalkingVideoPipeline.from_pretrained(tiny_model, device="cpu", dtype="fp32")
    base = plain.transformer.state_dict()[NAME]

    pipe = TalkingVideoPipeline.from_pretrained(folder, device="cpu", dtype="fp32", loras=[(extra, 2.0)])

    assert pipe.loras == ((folder / "lora.safetensors", 1.0), (extra, 2.0))
    torch.testing.assert_close(
        pipe.transformer.state_dict()[NAME], base + delta + 2.0 * extra_delta, rtol=0, atol=1e-6
    )
    pipe.use_loras([])  # a job without LoRAs still runs the family's recipe
    assert pipe.loras == ((folder / "lora.safetensors", 1.0),)
    torch.testing.assert_close(pipe.transformer.state_dict()[NAME], base + delta, rtol=0, atol=1e-6)
    assert family_lora.is_file()
