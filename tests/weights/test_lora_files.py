"""LoRA files on the Hub: a preset's LoRA is fetched with its family, `--lora owner/name/file` into the
cache (then found offline); and the cheap checks of `--lora` values."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest

from skyaudio_cli.errors import InputError, WeightsError
from skyaudio_cli.weights import fetch_model, resolve_model
from skyaudio_cli.weights.lora_files import LoraRef

from .conftest import HubSetup


def test_fetching_a_preset_family_fetches_its_lora(hub_setup: HubSetup) -> None:
    fetched = fetch_model(
        "fake-a2v-fast", cache_dir=hub_setup.cache_dir, endpoint=hub_setup.endpoint, progress=False,
        manifest=hub_setup.manifest,
    )  # fmt: skip
    lora = fetched.components["lora"]
    assert lora.name == "fast.safetensors"
    assert lora.read_bytes() == hub_setup.repos["org/loras"]["distill/fast.safetensors"]
    assert hub_setup.hub.downloads_of("style/ann.safetensors") == []  # only the preset's file
    resolved = resolve_model("fake-a2v", cache_dir=hub_setup.cache_dir, manifest=hub_setup.manifest)
    assert {name: fetched.components[name] for name in resolved.components} == dict(resolved.components)


def test_a_hub_lora_is_downloaded_into_the_cache_then_found_offline(
    hub_setup: HubSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = LoraRef.parse("org/loras/style/ann.safetensors:0.6")
    assert ref.scale == 0.6
    ref.validate()  # a Hub file is not looked for on disk
    path = ref.local_path(hub_setup.cache_dir, hub_setup.endpoint)
    assert path.read_bytes() == hub_setup.repos["org/loras"]["style/ann.safetensors"]
    assert hub_setup.cache_dir in path.parents

    hub_setup.stop_network()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert ref.local_path(hub_setup.cache_dir) == path
    missing = LoraRef.parse("org/loras/style/bob.safetensors")
    with pytest.raises(WeightsError, match="not in the Hugging Face cache and HF_HUB_OFFLINE is set"):
        missing.local_path(hub_setup.cache_dir)


@pytest.mark.parametrize(
    ("text", "source", "scale", "hub"),
    [
        ("style.safetensors", "style.safetensors", 1.0, None),
        ("./loras/style.safetensors:0.75", "./loras/style.safetensors", 0.75, None),
        ("/abs/style.safetensors:-1e-1", "/abs/style.safetensors", -0.1, None),
        (
            "Kijai/WanVideo_comfy/Wan21.safetensors",
            "Kijai/WanVideo_comfy/Wan21.safetensors",
            1.0,
            ("main", ""),
        ),
        (
            "org/repo@0123abc/sub/f.safetensors:2",
            "org/repo@0123abc/sub/f.safetensors",
            2.0,
            ("0123abc", "sub"),
        ),
    ],
)
def test_lora_values_parse_into_source_scale_and_hub_file(text, source, scale, hub) -> None:
    ref = LoraRef.parse(text)
    assert (ref.source, ref.scale) == (source, scale)
    component = ref.hub_file
    assert (None if component is None else (component.revision, component.subfolder)) == hub


def test_an_existing_local_file_wins_over_a_hub_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "repo").mkdir(parents=True)
    (tmp_path / "org" / "repo" / "f.safetensors").write_bytes(b"x")
    assert LoraRef.parse("org/repo/f.safetensors").hub_file is None


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("missing.safetensors", InputError, "--lora missing.safetensors: file not found"),
        ("style.pt", WeightsError, "--lora style.pt: pickle-based files are never loaded"),
        ("org/repo/style.ckpt:0.5", WeightsError, "pickle-based files are never loaded"),
    ],
)
def test_bad_lora_values_are_refused_before_loading(text, error, message) -> None:
    with pytest.raises(error, match=message):
        LoraRef.parse(text).validate()
