"""wav2vec2 features against the reference recipe, run with transformers' own loader and modules.

Reference (InfiniteTalk/SkyReels-V3 `get_embedding` + `Wav2Vec2Model.forward`, transformers 4.x):
zero-mean/unit-variance wave -> CNN -> linear align_corners=True stretch to the frame count ->
feature projection -> encoder -> hidden_states[1:] (every layer's output).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import Wav2Vec2Config, Wav2Vec2Model

from skyaudio_cli.conditioning.audio_encoders import load_audio_encoder
from skyaudio_cli.conditioning.audio_features import num_video_frames
from skyaudio_cli.conditioning.wav2vec2 import Wav2Vec2FeatureEncoder, load_wav2vec2, make_tiny_wav2vec2
from skyaudio_cli.errors import InputError, WeightsError


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return make_tiny_wav2vec2(tmp_path_factory.mktemp("wav2vec2") / "chinese-wav2vec2-base")


@pytest.fixture(scope="module")
def encoder(tiny_folder) -> Wav2Vec2FeatureEncoder:
    return load_wav2vec2(tiny_folder)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """2.3 s of a non-zero-mean, loud signal, so the normalisation step matters."""
    rng = np.random.default_rng(0)
    t = np.arange(int(2.3 * 16000)) / 16000
    return (0.3 + 2.0 * np.sin(2 * np.pi * 180 * t) + 0.5 * rng.standard_normal(t.size)).astype(np.float32)


def reference_features(model: Wav2Vec2Model, wave: np.ndarray, num_frames: int) -> torch.Tensor:
    values = torch.from_numpy((wave - wave.mean()) / np.sqrt(wave.var() + 1e-7))[None]
    layer_outputs = []
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out: layer_outputs.append(out))
        for layer in model.encoder.layers
    ]
    with torch.no_grad():
        conv = model.feature_extractor(values)
        stretched = F.interpolate(conv, size=num_frames, mode="linear", align_corners=True).transpose(1, 2)
        hidden, _ = model.feature_projection(stretched)
        model.encoder(hidden)
    for hook in hooks:
        hook.remove()
    return torch.stack(layer_outputs, dim=2)[0]


def test_tiny_folder_has_the_hub_layout(tiny_folder):
    assert sorted(p.name for p in tiny_folder.iterdir()) == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ]
    keys = set(load_file(tiny_folder / "model.safetensors"))
    assert {
        "wav2vec2.feature_extractor.conv_layers.0.conv.weight",
        "wav2vec2.feature_extractor.conv_layers.0.layer_norm.weight",
        "wav2vec2.encoder.pos_conv_embed.conv.weight_g",
        "wav2vec2.encoder.pos_conv_embed.conv.weight_v",
        "wav2vec2.encoder.layers.1.attention.q_proj.weight",
        "wav2vec2.masked_spec_embed",
        "quantizer.codevectors",
        "project_q.weight",
    } <= keys
    config = json.loads((tiny_folder / "config.json").read_text())
    assert (config["feat_extract_norm"], config["do_stable_layer_norm"]) == ("group", False)
    assert json.loads((tiny_folder / "preprocessor_config.json").read_text())["do_normalize"] is True


def test_matches_reference_recipe(tiny_folder, encoder, speech):
    num_frames = num_video_frames(speech.size)
    features = encoder.encode(speech, num_frames)
    assert features.shape == (num_frames, 2, 32) and features.dtype == torch.float32
    reference = reference_features(Wav2Vec2Model.from_pretrained(tiny_folder).eval(), speech, num_frames)
    torch.testing.assert_close(features, reference, atol=1e-5, rtol=1e-5)


def test_without_stretch_equals_transformers_hidden_states(tiny_folder, encoder, speech):
    model = Wav2Vec2Model.from_pretrained(tiny_folder).eval()
    values = torch.from_numpy((speech - speech.mean()) / np.sqrt(speech.var() + 1e-7))[None]
    with torch.no_grad():
        hidden_states = model(values, output_hidden_states=True).hidden_states
    natural_length = hidden_states[0].shape[1]
    features = encoder.encode(speech, natural_length)
    torch.testing.assert_close(features, torch.stack(hidden_states[1:], dim=2)[0], atol=1e-5, rtol=1e-5)


def test_stretch_happens_before_the_encoder(encoder, speech):
    # Attention mixes frames, so stretching the output of the encoder would give different rows.
    natural = encoder.encode(speech, 114)
    stretched_after = F.interpolate(natural.flatten(1).T[None], size=57, mode="linear", align_corners=True)
    assert not torch.allclose(encoder.encode(speech, 57), stretched_after[0].T.reshape(57, 2, 32), atol=1e-3)


def test_stable_layer_norm_variant_keeps_the_post_norm_last_layer(tmp_path, speech):
    config = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    torch.manual_seed(1)
    model = Wav2Vec2Model(config).eval()
    model.save_pretrained(tmp_path)  # current key names: no prefix, weight-norm parametrizations
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"do_normalize": True, "sampling_rate": 16000})
    )

    features = load_wav2vec2(tmp_path).encode(speech, 40)
    reference = reference_features(model, speech, 40)
    torch.testing.assert_close(features[:, :-1], reference[:, :-1], atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        post_norm = model.encoder.layer_norm(reference[None, :, -1])[0]
    torch.testing.assert_close(features[:, -1], post_norm, atol=1e-5, rtol=1e-5)


def test_pytorch_model_bin_route_loads_the_same_weights(tmp_path, tiny_folder, encoder, speech):
    for name in ("config.json", "preprocessor_config.json"):
        (tmp_path / name).write_bytes((tiny_folder / name).read_bytes())
    torch.save(load_file(tiny_folder / "model.safetensors"), tmp_path / "pytorch_model.bin")
    from_bin = load_audio_encoder(tmp_path, "wav2vec2")
    assert (from_bin.kind, from_bin.num_layers, from_bin.channels) == ("wav2vec2", 2, 32)
    assert torch.equal(from_bin.encode(speech, 30), encoder.encode(speech, 30))


@pytest.mark.parametrize("change", ["drop", "add"])
def test_key_mismatch_is_one_line_weights_error(tmp_path, tiny_folder, change):
    for name in ("config.json", "preprocessor_config.json"):
        (tmp_path / name).write_bytes((tiny_folder / name).read_bytes())
    state_dict = load_file(tiny_folder / "model.safetensors")
    if change == "drop":
        del state_dict["wav2vec2.encoder.layers.1.final_layer_norm.bias"]
    else:
        state_dict["wav2vec2.encoder.layers.2.final_layer_norm.bias"] = torch.zeros(32)
    save_file(state_dict, tmp_path / "model.safetensors")
    expected = "missing 1: \\['encoder.layers.1" if change == "drop" else "unexpected 1: \\['encoder.layers.2"
    with pytest.raises(WeightsError, match=expected) as error:
        load_wav2vec2(tmp_path)
    assert "\n" not in str(error.value)


def test_missing_weights_and_too_short_audio(tmp_path, tiny_folder, encoder):
    for name in ("config.json", "preprocessor_config.json"):
        (tmp_path / name).write_bytes((tiny_folder / name).read_bytes())
    with pytest.raises(WeightsError, match="neither model.safetensors nor pytorch_model.bin"):
        load_wav2vec2(tmp_path)
    with pytest.raises(WeightsError, match="not found"):
        load_wav2vec2(tmp_path / "absent")
    with pytest.raises(InputError, match="shorter than one wav2vec2 frame"):
        encoder.encode(np.ones(399, np.float32), 1)
    assert encoder.encode(np.ones(400, np.float32), 1).shape == (1, 2, 32)
