"""The model variant is decided once, from the family (weights.toml): what each architecture offers,
which class runs it, and that the tiny layouts are written as families of their own architecture."""

import pytest

from skyaudio_cli.pipeline.family import Architecture, family_defaults

A2V, HUMO_17B, HUMO_1_7B = "a2v", "humo-masked-condition", "humo-reference-latents"
FAMILIES = {
    "skyreels-v3-a2v": A2V,
    "infinitetalk": A2V,
    "infinitetalk-lightx2v": A2V,
    "tiny-random": A2V,
    "humo-17b": HUMO_17B,
    "tiny-humo": HUMO_17B,
    "humo-1.7b": HUMO_1_7B,
    "tiny-humo-1.7b": HUMO_1_7B,
}
# (is_humo, has_image_encoder, can_extend, needs_portrait, masked_condition, transformer_in_channels)
PROPERTIES = {
    A2V: (False, True, True, True, True, 36),
    HUMO_17B: (True, False, False, False, True, 36),
    HUMO_1_7B: (True, False, False, False, False, 16),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_names_its_architecture(family):
    variant = family_defaults(family).variant
    assert variant == FAMILIES[family] and isinstance(variant, Architecture)


@pytest.mark.parametrize("architecture", PROPERTIES)
def test_architecture_properties(architecture):
    a = Architecture(architecture)
    got = (a.is_humo, a.has_image_encoder, a.can_extend, a.needs_portrait, a.masked_condition)
    assert (*got, a.transformer_in_channels) == PROPERTIES[architecture]


def test_humo_1_7b_families_have_no_guidance_switch():
    assert family_defaults("humo-17b").guidance_switch_timestep == 980
    assert family_defaults("humo-1.7b").guidance_switch_timestep is None
    assert family_defaults("tiny-humo-1.7b").guidance_switch_timestep is None


def test_each_architecture_has_one_pipeline_class():
    from skyaudio_cli.pipeline.dispatch import pipeline_for
    from skyaudio_cli.pipeline.humo import HumoPipeline
    from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline

    for architecture in Architecture:
        cls = pipeline_for(architecture)
        assert cls is (HumoPipeline if architecture != A2V else TalkingVideoPipeline)
        assert architecture in cls.architectures
    # Siblings: neither is built on the other.
    assert not issubclass(HumoPipeline, TalkingVideoPipeline)
    assert not issubclass(TalkingVideoPipeline, HumoPipeline)


@pytest.mark.parametrize(("layout", "family"), [("humo-17b", "tiny-humo"), ("humo-1.7b", "tiny-humo-1.7b")])
def test_tiny_humo_layouts_are_written_as_their_architectures_family(tmp_path, layout, family):
    import json

    from safetensors import safe_open

    from skyaudio_cli.conditioning.checkpoint_files import load_pth_state_dict
    from skyaudio_cli.tiny import make_tiny, tiny_family

    folder = make_tiny(tmp_path / layout, layout=layout)
    description = json.loads((folder / "skyaudio_model.json").read_text())
    assert description["family"] == family == tiny_family(layout)
    transformer = folder / description["components"]["transformer"]
    key = "patch_embedding.weight"
    if transformer.suffix == ".pth":
        shape = tuple(load_pth_state_dict(transformer)[key].shape)
    else:
        shard = next(transformer.glob("*.safetensors")) if transformer.is_dir() else transformer
        with safe_open(str(shard), framework="pt") as f:
            shape = tuple(f.get_slice(key).get_shape())
    assert shape[1] == {"tiny-humo": 36, "tiny-humo-1.7b": 16}[family]


def test_a_pipeline_class_refuses_a_family_of_another_architecture(tmp_path):
    from skyaudio_cli.errors import InputError
    from skyaudio_cli.pipeline.humo import HumoPipeline
    from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline
    from skyaudio_cli.tiny import make_tiny

    humo = make_tiny(tmp_path / "humo", layout="humo-1.7b")
    with pytest.raises(InputError, match="'tiny-humo-1.7b' has architecture humo-reference-latents, "
                       "which TalkingVideoPipeline does not run"):  # fmt: skip
        TalkingVideoPipeline.from_pretrained(humo, device="cpu", dtype="fp32")
    a2v = make_tiny(tmp_path / "a2v")
    with pytest.raises(
        InputError, match="'tiny-random' has architecture a2v, which HumoPipeline does not run"
    ):
        HumoPipeline.from_pretrained(a2v, device="cpu", dtype="fp32")
