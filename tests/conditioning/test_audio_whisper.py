"""Whisper encoder features: HF -> openai-whisper key mapping, encoder parity with transformers, HuMo's
layer groups, 30 s chunking of long audio and the stretch onto video frames."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration
from whisper.model import AudioEncoder

from skyaudio_cli.conditioning.audio_encoders import load_audio_encoder
from skyaudio_cli.conditioning.audio_features import num_video_frames
from skyaudio_cli.conditioning.whisper_encoder import (
    WhisperFeatureEncoder,
    load_whisper_encoder,
    make_tiny_whisper,
    openai_encoder_state_dict,
)
from skyaudio_cli.errors import WeightsError

CHUNK = 30 * 16000


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return make_tiny_whisper(tmp_path_factory.mktemp("whisper") / "whisper-large-v3", layers=8)


@pytest.fixture(scope="module")
def encoder(tiny_folder) -> WhisperFeatureEncoder:
    return load_whisper_encoder(tiny_folder)


@pytest.fixture(scope="module")
def hf_model(tiny_folder) -> WhisperForConditionalGeneration:
    return WhisperForConditionalGeneration.from_pretrained(tiny_folder).eval()


@pytest.fixture(scope="module")
def long_speech() -> np.ndarray:
    """65 s whose sound changes every second, so rows of different chunks/seconds differ."""
    rng = np.random.default_rng(0)
    seconds = [
        np.sin(2 * np.pi * (100 + 37 * s) * np.arange(16000) / 16000) * rng.uniform(0.05, 0.5)
        + 0.01 * rng.standard_normal(16000)
        for s in range(65)
    ]
    return np.concatenate(seconds).astype(np.float32)


@pytest.fixture(scope="module")
def long_rows(encoder, long_speech) -> torch.Tensor:
    return encoder.features_50hz(long_speech)


def test_tiny_folder_has_the_hub_layout(tiny_folder):
    keys = set(load_file(tiny_folder / "model.safetensors"))
    assert {
        "model.encoder.conv1.weight",
        "model.encoder.embed_positions.weight",
        "model.encoder.layer_norm.bias",
    } <= keys
    assert any(key.startswith("model.decoder.layers.") for key in keys)
    preprocessor = json.loads((tiny_folder / "preprocessor_config.json").read_text())
    assert (preprocessor["feature_size"], preprocessor["n_samples"], preprocessor["nb_max_frames"]) == (
        128,
        CHUNK,
        3000,
    )


def test_key_mapping_covers_audio_encoder_exactly(tiny_folder):
    hf = {
        key.removeprefix("model.encoder."): tensor
        for key, tensor in load_file(tiny_folder / "model.safetensors").items()
        if key.startswith("model.encoder.")
    }
    mapped = openai_encoder_state_dict(hf)
    assert set(mapped) == set(AudioEncoder(128, 1500, 32, 2, 8).state_dict())
    pairs = {
        "conv2.bias": "conv2.bias",
        "embed_positions.weight": "positional_embedding",
        "layers.3.self_attn.q_proj.bias": "blocks.3.attn.query.bias",
        "layers.3.self_attn.k_proj.weight": "blocks.3.attn.key.weight",
        "layers.3.self_attn.v_proj.weight": "blocks.3.attn.value.weight",
        "layers.3.self_attn.out_proj.bias": "blocks.3.attn.out.bias",
        "layers.3.self_attn_layer_norm.weight": "blocks.3.attn_ln.weight",
        "layers.7.fc1.weight": "blocks.7.mlp.0.weight",
        "layers.7.fc2.bias": "blocks.7.mlp.2.bias",
        "layers.7.final_layer_norm.bias": "blocks.7.mlp_ln.bias",
        "layer_norm.weight": "ln_post.weight",
    }
    for hf_key, openai_key in pairs.items():
        assert torch.equal(mapped[openai_key], hf[hf_key]), hf_key


def test_every_hidden_state_matches_transformers(encoder, hf_model):
    mel = torch.randn(1, 128, 3000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = hf_model.model.encoder(mel, output_hidden_states=True)
        ours = encoder.hidden_states(mel)
    assert len(ours) == len(reference.hidden_states) == 9
    for index, (mine, theirs) in enumerate(zip(ours, reference.hidden_states, strict=True)):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5, msg=f"hidden state {index}")
    torch.testing.assert_close(ours[-1], reference.last_hidden_state, atol=1e-5, rtol=1e-5)


def humo_reference_50hz(hf_model, wave: np.ndarray) -> torch.Tensor:
    """HuMo's AudioProcessor.preprocess with 8 layers: mel per 30 s chunk, hidden states, trim, groups."""
    extractor = WhisperFeatureExtractor(feature_size=128)
    chunks = []
    for start in range(0, wave.size, CHUNK):
        mel = extractor(wave[start : start + CHUNK], sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            chunks.append(
                torch.stack(hf_model.model.encoder(mel, output_hidden_states=True).hidden_states, dim=2)
            )
    states = torch.cat(chunks, dim=1)[0, : math.ceil(wave.size / 320)]
    groups = [states[:, 2 * g : 2 * g + 2].mean(dim=1) for g in range(4)]
    return torch.stack([*groups, states[:, 8]], dim=1)


def test_50hz_features_follow_humo_grouping(encoder, hf_model, long_speech):
    wave = long_speech[: int(31.3 * 16000)]
    features = encoder.features_50hz(wave)
    assert features.shape == (math.ceil(wave.size / 320), 5, 32) == (1565, 5, 32)
    torch.testing.assert_close(features, humo_reference_50hz(hf_model, wave), atol=1e-5, rtol=1e-5)


def test_chunks_are_independent_and_the_last_is_zero_padded(encoder, long_speech, long_rows):
    features = long_rows
    assert features.shape[0] == 65 * 50
    first_30s = encoder.features_50hz(long_speech[:CHUNK])
    assert torch.equal(features[:1500], first_30s)
    assert torch.equal(features[1500:3000], encoder.features_50hz(long_speech[CHUNK : 2 * CHUNK]))
    tail = long_speech[2 * CHUNK :]
    padded_tail = np.concatenate([tail, np.zeros(CHUNK - tail.size, np.float32)])
    assert torch.equal(features[3000:], encoder.features_50hz(padded_tail)[: features.shape[0] - 3000])
    assert not torch.allclose(features[1400:1500], features[1500:1600])


def test_video_frames_of_long_audio_are_stretched_50hz_rows(encoder, long_speech, long_rows):
    num_frames = num_video_frames(long_speech.size)
    frames = encoder.encode(long_speech, num_frames)
    assert frames.shape == (num_frames, 5, 32) == (1625, 5, 32)

    rows = long_rows.double()
    scale = (rows.shape[0] - 1) / (num_frames - 1)
    for seconds, chunk_rows in ((29.9, slice(0, 1500)), (30.1, slice(1500, 3000))):
        frame = round(seconds * 25)
        low = math.floor(frame * scale)
        weight = frame * scale - low
        # The frame is built only from rows of the chunk its time falls in.
        assert chunk_rows.start <= low and low + 1 < chunk_rows.stop
        expected = (1 - weight) * rows[low] + weight * rows[low + 1]
        # torch places samples in float32 (~1e-4 of a row at position 1500); a row from the wrong
        # chunk or a 1-row shift would be off by the row-to-row change, O(0.1).
        torch.testing.assert_close(frames[frame].double(), expected, atol=1e-3, rtol=1e-3)
        assert (rows[low + 2] - rows[low]).abs().max() > 0.05


def test_factory_and_dimensions(tiny_folder):
    loaded = load_audio_encoder(tiny_folder, "whisper")
    assert (loaded.kind, loaded.num_layers, loaded.channels) == ("whisper", 5, 32)
    assert loaded.encode(np.zeros(16000, np.float32), 25).shape == (25, 5, 32)


def test_bfloat16_keeps_norms_in_float32(tiny_folder, encoder, long_speech):
    half = load_whisper_encoder(tiny_folder, dtype=torch.bfloat16)
    assert half.encoder.blocks[0].mlp[0].weight.dtype == torch.bfloat16
    assert half.encoder.ln_post.weight.dtype == torch.float32
    wave = long_speech[:16000]
    torch.testing.assert_close(half.encode(wave, 25), encoder.encode(wave, 25), atol=0.1, rtol=0.1)


def copy_folder_with_weights(source: Path, dest: Path, state_dict: dict) -> Path:
    dest.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (dest / name).write_bytes((source / name).read_bytes())
    save_file(state_dict, dest / "model.safetensors")
    return dest


def test_missing_encoder_key_is_a_weights_error(tmp_path, tiny_folder):
    state_dict = load_file(tiny_folder / "model.safetensors")
    del state_dict["model.encoder.layers.2.fc1.bias"]
    del state_dict["model.decoder.layers.0.fc1.bias"]  # decoder keys are never checked
    folder = copy_folder_with_weights(tiny_folder, tmp_path / "broken", state_dict)
    with pytest.raises(WeightsError, match=r"missing 1: \['blocks.2.mlp.0.bias'\], unexpected 0"):
        load_whisper_encoder(folder)


def test_layer_count_must_split_into_four_groups(tmp_path):
    folder = make_tiny_whisper(tmp_path / "six", layers=6)
    with pytest.raises(WeightsError, match="multiple of 4"):
        load_whisper_encoder(folder)
