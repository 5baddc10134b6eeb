"""Presets in a batch share their family's loaded model: a tiny family and its preset served by the
fake Hub, fetched into a cache, run as one batch. Each job gets its recipe (steps) and exactly its
LoRAs; the model loads once."""

import json
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import save_file

from skyaudio_cli.model.checkpoint import load_transformer
from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline
from skyaudio_cli.weights import COMPONENT_NAMES, fetch_model, load_manifest
from skyaudio_cli.weights import manifest as manifest_module

from ..weights.fake_hub import FakeHub

# The tiny a2v model's components: every slot but the InfiniteTalk adapter and a preset's LoRA.
SLOTS = tuple(slot for slot in COMPONENT_NAMES if slot not in ("transformer_adapter", "lora"))
Q = "diffusion_model.blocks.0.self_attn.q"


def _manifest_text() -> str:
    text = ['default = "tinyhub"', "[models.tinyhub]", 'description = "tiny"', 'licence = "MIT"']
    text += ['audio_encoder = "wav2vec2"', "[models.tinyhub.defaults]", "steps = 3", "shift = 5.0"]
    text += ['resolution = "32x32"', 'long_video = "skyreels"']
    for slot in SLOTS:
        text += [f"[models.tinyhub.components.{slot}]", 'repo = "org/tiny"', 'revision = "main"']
        text += [f'subfolder = "{slot}"', 'patterns = ["*"]', "size_bytes = 1000", 'format = "original"']
    text += ["[models.tinyhub.presets.fast]", 'description = "2-step LoRA"']
    text += ["[models.tinyhub.presets.fast.defaults]", "steps = 2", "lora_scale = 0.5"]
    text += ["[models.tinyhub.presets.fast.lora]", 'repo = "org/loras"', 'revision = "main"']
    text += ['patterns = ["fast.safetensors"]', "size_bytes = 100", 'format = "original"']
    return "\n".join(text) + "\n"


def _lora_bytes(seed: int, path: Path) -> bytes:
    generator = torch.Generator().manual_seed(seed)
    pair = {f"{Q}.lora_down.weight": torch.randn(2, 64, generator=generator)}
    save_file({**pair, f"{Q}.lora_up.weight": torch.randn(64, 2, generator=generator)}, str(path))
    return path.read_bytes()


@pytest.fixture
def hub_family(tmp_path, tiny_model, monkeypatch):
    """(manifest, HF cache) with `tinyhub` and `tinyhub-fast` fetched; the manifest is the packaged one."""
    hub = FakeHub()
    files = {
        path.relative_to(tiny_model).as_posix(): path.read_bytes()
        for path in tiny_model.rglob("*")
        if path.is_file() and path.parent != tiny_model
    }
    hub.add_repo("org/tiny", files)
    hub.add_repo("org/loras", {"fast.safetensors": _lora_bytes(1, tmp_path / "fast.safetensors")})
    server, endpoint = hub.start()
    (tmp_path / "weights.toml").write_text(_manifest_text())
    manifest = load_manifest(tmp_path / "weights.toml")
    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(manifest_module, "_default_manifest", manifest)
    fetch_model("tinyhub-fast", cache_dir=cache, endpoint=endpoint, progress=False, manifest=manifest)
    server.shutdown()
    server.server_close()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return manifest, cache


@pytest.mark.slow
def test_presets_share_the_loaded_family_and_get_their_recipe(
    hub_family, tmp_path, clips, portrait_png, write_manifest, batch_cli, monkeypatch
):
    _, cache = hub_family
    style = tmp_path / "style.safetensors"
    _lora_bytes(2, style)
    base = {"task": "generate", "portrait": str(portrait_png), "audio": str(clips[0]), "device": "cpu"}
    jobs = [
        {"model": "tinyhub"},
        {"model": "tinyhub", "preset": "fast"},
        {"model": "tinyhub-fast", "lora": [f"{style}:2"]},
        {"model": "tinyhub"},
    ]
    lines = [{**base, **job, "output": str(tmp_path / f"out{n}.mp4")} for n, job in enumerate(jobs)]
    seen = []
    original_stream = TalkingVideoPipeline.stream

    def recording_stream(self, **kwargs):
        weights = {name: value.detach().clone() for name, value in self.transformer.state_dict().items()}
        seen.append((self.defaults.steps, weights))
        return original_stream(self, **kwargs)

    monkeypatch.setattr(TalkingVideoPipeline, "stream", recording_stream)
    code, results, stderr = batch_cli(write_manifest(tmp_path / "jobs.jsonl", lines))

    assert code == 0, stderr
    assert [result["model"] for result in results] == ["tinyhub", "tinyhub-fast", "tinyhub-fast", "tinyhub"]
    assert [result["load_seconds"] > 0 for result in results] == [True, False, False, False]  # one load
    fast = next((cache / "models--org--loras" / "snapshots").iterdir()) / "fast.safetensors"
    sources = next((cache / "models--org--tiny" / "snapshots").iterdir()) / "transformer"
    expected = [(3, []), (2, [(fast, 0.5)]), (2, [(fast, 0.5), (style, 2.0)]), (3, [])]
    for (steps, weights), (expected_steps, adapters) in zip(seen, expected, strict=True):
        assert steps == expected_steps
        fresh = load_transformer(sources, dtype=torch.bfloat16, adapters=adapters).state_dict()
        assert all(torch.equal(weights[name], fresh[name]) for name in fresh)
    assert json.loads((tmp_path / "jobs-results.jsonl").read_text().splitlines()[1])["status"] == "ok"
