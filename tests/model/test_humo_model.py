"""HuMo DiT: release key layout (17B shards + index, 1.7B ema.pth), strict loading, fp64 reference parity."""

import pytest
import torch
from safetensors.torch import load_file

from skyaudio_cli.errors import WeightsError
from skyaudio_cli.model.checkpoint import infer_config, load_transformer, model_key_names
from skyaudio_cli.model.humo_transformer import HUMO_AUDIO_CONFIG, HumoTransformer3DModel
from skyaudio_cli.model.tiny import humo_key_shapes, write_tiny_humo_transformer

from .reference_wan import reference_forward

PARITY_TOLERANCE = 1e-4
HEADS = 2  # tiny writer: dim 256 = 2 heads of 128, as the release's head size
AUDIO_FEATURES = (5, 16)  # Whisper layer groups x channels of the tiny writer
HUMO_17B = {"dim": 5120, "layers": 40, "ffn": 13824, "in_channels": 36}
HUMO_1_7B = {"dim": 1536, "layers": 30, "ffn": 8960, "in_channels": 16}
RELEASE_AUDIO = {
    "audio_feature_dim": 5 * 1280, "audio_hidden": 512, "audio_tokens": 16, "audio_token_dim": 1536
}  # fmt: skip


@pytest.fixture(scope="module")
def humo_17b_tiny(tmp_path_factory):
    return write_tiny_humo_transformer(tmp_path_factory.mktemp("humo17b"), in_channels=36)


@pytest.mark.parametrize(("release", "heads"), [(HUMO_17B, 40), (HUMO_1_7B, 12)])
def test_release_layout_maps_key_for_key_onto_the_meta_model(release, heads):
    shapes = humo_key_shapes(**release, freq_dim=256, text_dim=4096, **RELEASE_AUDIO)
    dim = release["dim"]
    assert shapes["audio_proj.audio_proj_glob_1.layer.weight"] == (512, 51200)
    assert shapes["audio_proj.audio_proj_glob_3.layer.weight"] == (16 * 1536, 512)
    assert shapes["blocks.0.audio_cross_attn_wrapper.audio_cross_attn.k.weight"] == (dim, 1536)
    assert shapes["blocks.0.audio_cross_attn_wrapper.audio_cross_attn.norm_q.weight"] == (dim,)
    assert "blocks.0.cross_attn.k_img.weight" not in shapes and "img_emb.proj.1.weight" not in shapes

    names = model_key_names(list(shapes))
    config = infer_config({name: shapes[key] for name, key in names.items()}, {}, "release")
    assert config["num_attention_heads"] == heads and config["attention_head_dim"] == 128
    assert config["in_channels"] == release["in_channels"] and config["num_layers"] == release["layers"]
    assert config["image_dim"] is None and config["added_kv_proj_dim"] is None
    assert {key: config[key] for key in HUMO_AUDIO_CONFIG} == HUMO_AUDIO_CONFIG
    with torch.device("meta"):
        model = HumoTransformer3DModel(**config)
    state = model.state_dict()
    assert sorted(names.values()) == sorted(shapes) and set(names) == set(state)
    for name, stored in names.items():
        assert tuple(state[name].shape) == shapes[stored], (name, stored)


def test_17b_tiny_is_sharded_with_the_release_index_and_loads_strictly(humo_17b_tiny):
    assert (humo_17b_tiny / "humo.safetensors.index.json").is_file()
    assert not (humo_17b_tiny / "config.json").exists()  # the release ships none
    model = load_transformer(humo_17b_tiny, dtype=torch.float32)
    assert isinstance(model, HumoTransformer3DModel) and model.config.in_channels == 36


def test_1_7b_tiny_is_a_weights_only_pth_and_a_stray_key_is_refused(tmp_path):
    pth = write_tiny_humo_transformer(tmp_path / "humo", in_channels=16)
    assert pth.name == "ema.pth"
    model = load_transformer(pth, dtype=torch.float32)
    assert model.config.in_channels == 16
    state = torch.load(pth, weights_only=True)
    torch.save({**state, "blocks.0.audio_cross_attn_wrapper.gate": torch.zeros(1)}, pth)
    with pytest.raises(WeightsError, match=r"ema\.pth: 1 unexpected key.*audio_cross_attn_wrapper\.gate"):
        load_transformer(pth, dtype=torch.float32)


def _release_state(folder) -> dict[str, torch.Tensor]:
    state = {}
    for shard in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(shard)))
    return state


@torch.no_grad()
def test_forward_matches_the_fp64_reference_of_the_release(humo_17b_tiny):
    model = load_transformer(humo_17b_tiny, dtype=torch.float32)
    generator = torch.Generator().manual_seed(3)
    latents = torch.randn(1, 36, 3, 4, 6, generator=generator)
    text = torch.zeros(1, 512, 32)
    text[:, :5] = torch.randn(1, 5, 32, generator=generator)
    windows = torch.randn(1, 3, 8, *AUDIO_FEATURES, generator=generator)

    ours = model(latents, torch.tensor([981.0]), text, audio_embeds=windows).sample[0]
    expected = reference_forward(
        _release_state(humo_17b_tiny), heads=HEADS, latents=latents[0], timestep=981.0,
        text=text[0, :5], clip=None, audio_windows=windows[0],
    )  # fmt: skip
    assert expected.std() > 0.1
    assert (ours.double() - expected).abs().max().item() <= PARITY_TOLERANCE

    # No audio means zero features; a changed window changes its latent frame.
    changed = windows.clone()
    changed[:, 1] += 1.0
    moved = model(latents, torch.tensor([981.0]), text, audio_embeds=changed).sample[0]
    model_silent = model(latents, torch.tensor([981.0]), text, audio_embeds=None).sample[0]
    zeros = model(latents, torch.tensor([981.0]), text, audio_embeds=torch.zeros_like(windows)).sample[0]
    torch.testing.assert_close(model_silent, zeros, rtol=0, atol=0)
    assert (moved - ours)[:, 1].abs().max() > 1e-3
