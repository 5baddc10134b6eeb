"""Fixtures: a fake Hub on 127.0.0.1 serving small repos, and a manifest pointing at them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
from safetensors.numpy import save

from skyaudio_cli.weights import Manifest, fetch_model, load_manifest

from .fake_hub import FakeHub

# 24 MiB: more than huggingface_hub's 10 MB read chunk, so a transfer cut at half has saved a
# chunk that the resumed request must not fetch again.
AUDIO_WEIGHTS = np.random.default_rng(0).bytes(24 << 20)


def _safetensors(seed: int, shapes: dict[str, tuple[int, ...]]) -> bytes:
    rng = np.random.default_rng(seed)
    return save({name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()})


def _dit_repo() -> dict[str, bytes]:
    shard_1 = _safetensors(1, {"blocks.0.weight": (64, 64)})
    shard_2 = _safetensors(2, {"blocks.1.weight": (64, 64), "head.weight": (16, 64)})
    index = {
        "metadata": {"total_size": len(shard_1) + len(shard_2)},
        "weight_map": {
            "blocks.0.weight": "model-00001-of-00002.safetensors",
            "blocks.1.weight": "model-00002-of-00002.safetensors",
            "head.weight": "model-00002-of-00002.safetensors",
        },
    }
    return {
        "config.json": b'{"dim": 64}',
        "model-00001-of-00002.safetensors": shard_1,
        "model-00002-of-00002.safetensors": shard_2,
        "model.safetensors.index.json": json.dumps(index).encode(),
        # Files in sub-folders of the DiT repo belong to other components: excluded by "*/*".
        "old_encoder/encoder.pth": b"x" * 100,
        "README.md": b"not a weight",
    }


def _shared_repo() -> dict[str, bytes]:
    return {
        "vae/config.json": b'{"z_dim": 4}',
        "vae/diffusion_pytorch_model.safetensors": _safetensors(3, {"decoder.weight": (8, 8)}),
        "text_encoder/config.json": b'{"d_model": 8}',
        "text_encoder/model.safetensors": _safetensors(4, {"encoder.weight": (8, 8)}),
        "tokenizer/tokenizer.json": b'{"vocab": {}}',
        "tokenizer/special_tokens_map.json": b"{}",
        "transformer/diffusion_pytorch_model.safetensors": _safetensors(5, {"unused": (2, 2)}),
    }


MANIFEST_TEMPLATE = """
default = "fake-a2v"

[shared.vae]
repo = "org/shared"
revision = "main"
subfolder = "vae"
patterns = ["config.json", "diffusion_pytorch_model.safetensors"]
size_bytes = 1000
format = "diffusers"

[shared.text-encoder]
repo = "org/shared"
revision = "main"
subfolder = "text_encoder"
patterns = ["config.json", "*.safetensors"]
size_bytes = 2000
format = "transformers"

[shared.tokenizer]
repo = "org/shared"
revision = "main"
subfolder = "tokenizer"
patterns = ["*"]
size_bytes = 100
format = "transformers"

[shared.audio]
repo = "org/audio"
revision = "{audio_commit}"
subfolder = "w2v"
patterns = ["model.bin"]
size_bytes = 25165824
format = "transformers"
sha256 = {{ "model.bin" = "{audio_sha256}" }}

[models.fake-a2v]
description = "test family"
licence = "MIT"
audio_encoder = "wav2vec2"

[models.fake-a2v.components]
vae = "vae"
text_encoder = "text-encoder"
tokenizer = "tokenizer"
audio_encoder = "audio"

[models.fake-a2v.components.transformer]
repo = "org/dit"
revision = "main"
subfolder = ""
patterns = ["config.json", "*.safetensors", "*.safetensors.index.json"]
exclude = ["*/*"]
size_gb = 38.0
format = "original"

[models.fake-a2v.presets.fast]
description = "the family with a step-distilled LoRA"

[models.fake-a2v.presets.fast.defaults]
steps = 4

[models.fake-a2v.presets.fast.lora]
repo = "org/loras"
revision = "main"
subfolder = "distill"
patterns = ["fast.safetensors"]
size_bytes = 100
format = "original"

[models.missing-repo]
description = "points at a repo the hub does not have"
licence = "MIT"
audio_encoder = "whisper"

[models.missing-repo.components]
vae = "vae"
text_encoder = "text-encoder"
tokenizer = "tokenizer"
audio_encoder = "audio"

[models.missing-repo.components.transformer]
repo = "org/nothing-here"
revision = "main"
subfolder = ""
patterns = ["*.safetensors"]
size_gb = 1.5
format = "original"
"""


@dataclass
class HubSetup:
    hub: FakeHub
    server: ThreadingHTTPServer
    endpoint: str
    manifest: Manifest
    cache_dir: Path
    repos: dict[str, dict[str, bytes]]

    def fetch(self, **kwargs: object):
        """`fetch_model` of the fake family from this Hub into this cache (no progress bars)."""
        return fetch_model(
            "fake-a2v",
            cache_dir=self.cache_dir,
            endpoint=self.endpoint,
            progress=False,
            manifest=self.manifest,
            **kwargs,
        )

    def stop_network(self) -> None:
        """Take the Hub away: later requests would fail to connect."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub_setup(tmp_path: Path) -> Iterator[HubSetup]:
    hub = FakeHub()
    repos = {
        "org/dit": _dit_repo(),
        "org/shared": _shared_repo(),
        "org/audio": {"w2v/model.bin": AUDIO_WEIGHTS, "w2v/other.bin": b"not wanted"},
        "org/loras": {
            "distill/fast.safetensors": _safetensors(6, {"blocks.0.self_attn.q.lora_down.weight": (4, 64)}),
            "style/ann.safetensors": _safetensors(7, {"blocks.0.self_attn.q.diff_b": (64,)}),
        },
    }
    commits = {repo_id: hub.add_repo(repo_id, files) for repo_id, files in repos.items()}
    manifest_path = tmp_path / "weights.toml"
    manifest_path.write_text(
        MANIFEST_TEMPLATE.format(
            audio_commit=commits["org/audio"], audio_sha256=hashlib.sha256(AUDIO_WEIGHTS).hexdigest()
        ),
        encoding="utf-8",
    )
    server, endpoint = hub.start()
    setup = HubSetup(hub, server, endpoint, load_manifest(manifest_path), tmp_path / "hf-cache", repos)
    yield setup
    server.shutdown()
    server.server_close()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1 as huggingface_hub sees it (it reads the variable once, at import)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
