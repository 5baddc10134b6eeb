"""CLIP vision tower: Wan's preprocessing, penultimate-layer output, original open-clip `.pth` mapping."""

import copy
import re
from pathlib import Path

import pytest
import torch

from skyaudio_cli.conditioning.image_encoder import CLIP_MEAN, CLIP_STD, ImageEncoder, make_tiny_image_encoder
from skyaudio_cli.errors import WeightsError


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clip")
    make_tiny_image_encoder(root / "image_encoder", root / "image_processor")
    return root


@pytest.fixture(scope="module")
def encoder(tiny_dir) -> ImageEncoder:
    return ImageEncoder.from_pretrained(tiny_dir / "image_encoder")


def random_images(batch: int, height: int, width: int) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(1)) * 2 - 1


def original_open_clip_state_dict(model) -> dict[str, torch.Tensor]:
    """Write a transformers CLIP vision tower under Wan's XLMRobertaCLIP names (wan/modules/clip.py)."""
    state = model.state_dict()
    hidden = state["embeddings.class_embedding"].shape[0]
    original = {
        "visual.patch_embedding.weight": state["embeddings.patch_embedding.weight"],
        "visual.cls_embedding": state["embeddings.class_embedding"].view(1, 1, hidden),
        "visual.pos_embedding": state["embeddings.position_embedding.weight"].unsqueeze(0),
        # Parts the image tokens do not use; they must be ignored, not rejected.
        "visual.head": torch.randn(hidden, 16),
        "textual.token_embedding.weight": torch.randn(10, 8),
        "log_scale": torch.tensor(4.6),
    }
    for parameter in ("weight", "bias"):
        original[f"visual.pre_norm.{parameter}"] = state[f"pre_layrnorm.{parameter}"]
        original[f"visual.post_norm.{parameter}"] = state[f"post_layernorm.{parameter}"]
    layer_parts = {
        "layer_norm1": "norm1",
        "self_attn.out_proj": "attn.proj",
        "layer_norm2": "norm2",
        "mlp.fc1": "mlp.0",
        "mlp.fc2": "mlp.2",
    }
    for key, tensor in state.items():
        match = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key)
        if match is None:
            continue
        index, part, parameter = match.groups()
        if part == "self_attn.q_proj":
            qkv = [state[f"encoder.layers.{index}.self_attn.{n}_proj.{parameter}"] for n in "qkv"]
            original[f"visual.transformer.{index}.attn.to_qkv.{parameter}"] = torch.cat(qkv)
        elif part in layer_parts:
            original[f"visual.transformer.{index}.{layer_parts[part]}.{parameter}"] = tensor
    return {key: tensor.clone() for key, tensor in original.items()}


def test_output_is_the_penultimate_block_output_without_post_layernorm(encoder):
    images = random_images(2, 224, 224)
    tokens = encoder.encode(images)
    assert tokens.shape == (2, 257, 32)

    truncated = copy.deepcopy(encoder.model)
    truncated.encoder.layers = truncated.encoder.layers[:-1]
    expected = truncated(pixel_values=encoder.preprocess(images)).last_hidden_state
    torch.testing.assert_close(tokens, expected, atol=1e-6, rtol=1e-6)


def test_preprocessing_maps_to_unit_range_then_clip_mean_and_std(encoder):
    images = torch.tensor([-1.0, 0.0, 0.5]).view(1, 3, 1, 1).expand(1, 3, 300, 300)
    pixels = encoder.preprocess(images)
    unit = (0.0, 0.5, 0.75)
    expected = [(value - mean) / std for value, mean, std in zip(unit, CLIP_MEAN, CLIP_STD, strict=True)]
    for channel, value in enumerate(expected):
        torch.testing.assert_close(pixels[0, channel], torch.full((224, 224), value), atol=1e-5, rtol=0)


def test_non_square_frames_are_squashed_not_cropped(encoder):
    """Wan resizes the whole frame to 224x224; a centre crop would lose the left quarter entirely."""
    images = torch.ones(1, 3, 112, 448)
    images[..., :112] = -1.0
    pixels = encoder.preprocess(images)
    assert pixels.shape == (1, 3, 224, 224)
    dark = (0.0 - CLIP_MEAN[0]) / CLIP_STD[0]
    bright = (1.0 - CLIP_MEAN[0]) / CLIP_STD[0]
    torch.testing.assert_close(pixels[0, 0, :, :50], torch.full((224, 50), dark), atol=1e-5, rtol=0)
    torch.testing.assert_close(pixels[0, 0, :, 62:], torch.full((224, 162), bright), atol=1e-5, rtol=0)


def test_folder_layout_has_processor_config(tiny_dir):
    assert (tiny_dir / "image_encoder" / "config.json").is_file()
    assert (tiny_dir / "image_encoder" / "model.safetensors").is_file()
    assert (tiny_dir / "image_processor" / "preprocessor_config.json").is_file()


def test_original_pth_route_matches_key_for_key_and_numerically(tmp_path):
    # open-clip ViT-H/14 heads are 80 wide, which the .pth route relies on: 160 = 2 heads.
    make_tiny_image_encoder(tmp_path / "image_encoder", None, hidden_size=160, num_heads=2, seed=3)
    reference = ImageEncoder.from_pretrained(tmp_path / "image_encoder")
    torch.save(original_open_clip_state_dict(reference.model), tmp_path / "clip.pth")

    loaded = ImageEncoder.from_pretrained(tmp_path / "clip.pth")

    expected = reference.model.state_dict()
    assert set(loaded.model.state_dict()) == set(expected)
    for key, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, expected[key]), key
    assert loaded.model.config.hidden_act == "gelu" and loaded.model.config.layer_norm_eps == 1e-5
    images = random_images(1, 200, 160)
    torch.testing.assert_close(loaded.encode(images), reference.encode(images), atol=0, rtol=0)


def test_original_pth_with_unknown_visual_key_is_rejected(tmp_path, encoder):
    make_tiny_image_encoder(tmp_path / "image_encoder", None, hidden_size=80, num_heads=1)
    original = original_open_clip_state_dict(ImageEncoder.from_pretrained(tmp_path / "image_encoder").model)
    original["visual.transformer.0.attn.extra.weight"] = torch.zeros(1)
    torch.save(original, tmp_path / "clip.pth")
    with pytest.raises(WeightsError, match="visual.transformer.0.attn.extra.weight"):
        ImageEncoder.from_pretrained(tmp_path / "clip.pth")


def test_missing_weights_file_is_named(tiny_dir, tmp_path):
    folder = tmp_path / "image_encoder"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny_dir / "image_encoder" / "config.json").read_bytes())
    with pytest.raises(WeightsError, match="model.safetensors"):
        ImageEncoder.from_pretrained(folder)
    with pytest.raises(WeightsError, match="clip.pth"):
        ImageEncoder.from_pretrained(tmp_path / "clip.pth")
