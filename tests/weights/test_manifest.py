"""The packaged weights.toml and the manifest validator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skyaudio_cli.errors import InputError, WeightsError
from skyaudio_cli.weights import COMPONENT_NAMES, get_manifest, get_model, load_manifest
from skyaudio_cli.weights.manifest import (
    REQUIRED_COMPONENTS,
    default_manifest_path,
    human_size,
    preset_family,
)

PRESETS = ["infinitetalk-lightx2v", "infinitetalk-fusionx"]
HUB_FAMILIES = ["skyreels-v3-a2v", "infinitetalk", *PRESETS, "humo-17b", "humo-1.7b"]


def test_packaged_manifest_families() -> None:
    manifest = load_manifest()
    assert list(manifest.models) == [*HUB_FAMILIES, "tiny-random", "tiny-humo", "tiny-humo-1.7b"]
    assert manifest.default == "skyreels-v3-a2v"
    for tiny in ("tiny-random", "tiny-humo", "tiny-humo-1.7b"):
        assert manifest.models[tiny].generated and not manifest.models[tiny].components
    audio = {name: spec.audio_encoder for name, spec in manifest.models.items()}
    assert audio == {
        "skyreels-v3-a2v": "wav2vec2",
        "infinitetalk": "wav2vec2",
        "infinitetalk-lightx2v": "wav2vec2",
        "infinitetalk-fusionx": "wav2vec2",
        "humo-17b": "whisper",
        "humo-1.7b": "whisper",
        "tiny-random": "wav2vec2",
        "tiny-humo": "whisper",
        "tiny-humo-1.7b": "whisper",
    }


@pytest.mark.parametrize("family", HUB_FAMILIES)
def test_packaged_components_are_well_formed(family: str) -> None:
    spec = get_model(family)
    assert set(REQUIRED_COMPONENTS) <= set(spec.components) <= set(COMPONENT_NAMES)
    for name, component in spec.components.items():
        assert component.name == name
        assert component.revision == "main" or re.fullmatch(r"[0-9a-f]{40}", component.revision)
        assert component.size_bytes > 0 and component.patterns
    assert spec.defaults["fps"] == 25 and spec.defaults["steps"] > 0 and spec.defaults["shift"] > 0


def test_family_specific_layout() -> None:
    assert "image_encoder" not in get_model("humo-17b").components  # HuMo has no CLIP branch
    adapter = get_model("infinitetalk").components["transformer_adapter"]
    assert (adapter.repo, adapter.single_file) == ("MeiGen-AI/InfiniteTalk", "infinitetalk.safetensors")
    assert adapter.allow_patterns == ["single/infinitetalk.safetensors"]
    dit = get_model("skyreels-v3-a2v").components["transformer"]
    assert dit.single_file is None and dit.ignore_patterns == ["*/*"] and dit.format == "original"
    assert get_model("skyreels-v3-a2v").defaults["steps"] == 4


@pytest.mark.parametrize(
    ("preset", "steps", "repo", "file"),
    [
        (
            "lightx2v",
            4,
            "Kijai/WanVideo_comfy",
            "Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors",
        ),
        (
            "fusionx",
            8,
            "vrgamedevgirl84/Wan14BT2VFusioniX",
            "FusionX_LoRa/Wan2.1_I2V_14B_FusionX_LoRA.safetensors",
        ),
    ],
)
def test_infinitetalk_presets_are_the_readme_recipes(preset: str, steps: int, repo: str, file: str) -> None:
    """InfiniteTalk's README: lightx2v 4 steps, FusioniX 8; text guidance 1, audio 2, shift 2, LoRA 1."""
    base, spec = get_model("infinitetalk"), get_model(preset_family("infinitetalk", preset))
    assert spec.preset_of == "infinitetalk" and spec.name == f"infinitetalk-{preset}"
    recipe = ("steps", "shift", "shift_720p", "text_guidance", "audio_guidance", "lora_scale")
    assert {key: spec.defaults[key] for key in recipe} == {
        "steps": steps, "shift": 2.0, "shift_720p": 2.0, "text_guidance": 1.0, "audio_guidance": 2.0,
        "lora_scale": 1.0,
    }  # fmt: skip
    assert spec.defaults["motion_frames"] == base.defaults["motion_frames"]  # the rest is the family's
    assert dict(spec.components) == {**base.components, "lora": spec.components["lora"]}
    lora = spec.components["lora"]
    assert (lora.repo, lora.allow_patterns, lora.single_file) == (repo, [file], file.rsplit("/", 1)[-1])


def test_an_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(
        InputError, match=r"model 'infinitetalk' has no such preset \(its presets: lightx2v, fusionx\)"
    ):
        preset_family("infinitetalk", "turbo")
    with pytest.raises(InputError, match=r"\(its presets: none\)"):
        preset_family("humo-17b", "lightx2v")


def _component(slot: str, pattern: str = "*") -> str:
    return (
        f'[models.m.{slot}]\nrepo = "o/{slot}"\nrevision = "main"\npatterns = ["{pattern}"]\n'
        'size_bytes = 10\nformat = "original"\n'
    )


def test_a_preset_lora_must_be_one_file(tmp_path: Path) -> None:
    text = "\n".join(
        [
            'default = "m"\n[models.m]\ndescription = "d"\nlicence = "MIT"\naudio_encoder = "whisper"',
            *(_component(f"components.{slot}") for slot in REQUIRED_COMPONENTS),
            '[models.m.presets.fast]\ndescription = "a LoRA recipe"',
            "[models.m.presets.fast.defaults]\nsteps = 4",
        ]
    )
    fine = _manifest(tmp_path, text + "\n" + _component("presets.fast.lora", "fast.safetensors"))
    assert fine.models["m-fast"].defaults == {"steps": 4} and fine.models["m-fast"].preset_of == "m"
    with pytest.raises(WeightsError, match="models.m.presets.fast.lora must name exactly one file"):
        _manifest(tmp_path, text + "\n" + _component("presets.fast.lora", "*.safetensors"))


def test_repo_root_manifest_is_the_packaged_one() -> None:
    root_copy = Path(__file__).resolve().parents[2] / "weights.toml"
    assert root_copy.resolve() == default_manifest_path().resolve()


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(InputError) as unknown:
        get_model("wan-9000")
    assert str(unknown.value) == (
        "unknown model 'wan-9000'; known: skyreels-v3-a2v, infinitetalk, infinitetalk-lightx2v, "
        "infinitetalk-fusionx, humo-17b, humo-1.7b, tiny-random, tiny-humo, tiny-humo-1.7b"
    )


VALID = """
default = "m"
[models.m]
description = "d"
licence = "MIT"
audio_encoder = "whisper"
[models.m.components.{slot}]
repo = "o/r"
revision = "{revision}"
patterns = ["*"]
size_gb = 1
format = "original"
"""


def _manifest(tmp_path: Path, text: str):
    path = tmp_path / "weights.toml"
    path.write_text(text)
    return load_manifest(path)


@pytest.mark.parametrize(
    ("slot", "revision", "problem"),
    [
        ("transformer", "v1.0", "models.m.components.transformer.revision must be a 40-hex commit or 'main'"),
        ("transformr", "main", "models.m.components.transformr is not a component name"),
        (
            "transformer",
            "main",
            "models.m lacks required components ['vae', 'text_encoder', 'tokenizer', 'audio_",
        ),
    ],
)
def test_invalid_manifest_names_the_key(tmp_path: Path, slot: str, revision: str, problem: str) -> None:
    with pytest.raises(WeightsError, match=re.escape(problem)):
        _manifest(tmp_path, VALID.format(slot=slot, revision=revision))


def test_typo_in_component_key_is_rejected(tmp_path: Path) -> None:
    text = VALID.format(slot="transformer", revision="main").replace("patterns", "pattern")
    with pytest.raises(WeightsError, match=r"has unknown keys \['pattern'\]"):
        _manifest(tmp_path, text)


def test_unknown_shared_reference_is_rejected(tmp_path: Path) -> None:
    text = VALID.format(slot="transformer", revision="main") + '[models.m.components]\nvae = "nope"\n'
    with pytest.raises(
        WeightsError, match="models.m.components.vae refers to unknown shared component 'nope'"
    ):
        _manifest(tmp_path, text)


def test_human_size() -> None:
    assert [human_size(n) for n in (38_000_000_000, 380_263_948, 2_530_000_000, 478)] == [
        "38 GB",
        "380 MB",
        "2.5 GB",
        "478 B",
    ]


def test_the_captioner_is_pinned_safetensors_in_transformers_layout() -> None:
    blip = get_manifest().captioner("blip-large")
    assert blip.repo == "Salesforce/blip-image-captioning-large" and len(blip.revision) == 40
    assert "model.safetensors" in blip.patterns and blip.format == "transformers"
    assert not any(p.endswith((".bin", ".h5", ".pt")) for p in blip.patterns)  # no pickles, no TF
    with pytest.raises(InputError, match="unknown captioner"):
        get_manifest().captioner("nope")
