"""Key-for-key conversion of the released layout, strict loading, and the equivalent source layouts."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from skyaudio_cli.errors import WeightsError
from skyaudio_cli.model.checkpoint import (
    TransformerLayout,
    infer_config,
    is_audio_key,
    load_transformer,
    model_key_names,
)
from skyaudio_cli.model.cost import RELEASE_DIMS as RELEASE_14B
from skyaudio_cli.model.humo_transformer import HumoTransformer3DModel
from skyaudio_cli.model.tiny import original_key_shapes, write_tiny_humo_transformer, write_tiny_transformer
from skyaudio_cli.model.transformer import AudioWanTransformer3DModel

# Per block: self_attn q/k/v/o (8) + norm_q/norm_k (2); cross_attn q/k/v/o/k_img/v_img (12) + 3 norms;
# norm3 (2); ffn (4); modulation (1); audio q_linear/kv_linear/proj (6); norm_x (2) = 40.
# Top level: patch 2, text 4, time 4, time_projection 2, img_emb 8, head 3, audio_proj 10 = 33.
RELEASE_14B_KEY_COUNT = 40 * 40 + 33


def _assert_round_trip(
    original_shapes: dict[str, tuple[int, ...]], model: AudioWanTransformer3DModel
) -> None:
    names = model_key_names(list(original_shapes))
    assert len(names) == len(original_shapes)
    assert sorted(names.values()) == sorted(original_shapes)  # every stored key used exactly once
    state = model.state_dict()
    assert set(names) == set(state)  # and every model parameter fed by exactly one stored key
    for name, stored in names.items():
        assert tuple(state[name].shape) == original_shapes[stored], (name, stored)


def test_release_14b_layout_maps_key_for_key_onto_the_meta_model():
    shapes = original_key_shapes(**RELEASE_14B)
    assert len(shapes) == RELEASE_14B_KEY_COUNT
    assert shapes["audio_proj.proj1.weight"] == (512, 46080)
    assert shapes["audio_proj.proj1_vf.weight"] == (512, 73728)
    assert shapes["audio_proj.proj3.weight"] == (24576, 512)
    assert shapes["blocks.39.audio_cross_attn.kv_linear.weight"] == (10240, 768)

    names = model_key_names(list(shapes))
    config = infer_config({name: shapes[key] for name, key in names.items()}, {}, "release")
    assert config["num_attention_heads"] == 40 and config["attention_head_dim"] == 128
    assert config["num_layers"] == 40 and config["ffn_dim"] == 13824 and config["in_channels"] == 36
    assert config["image_dim"] == 1280 and config["added_kv_proj_dim"] == 5120 and config["cross_attn_norm"]
    assert (config["audio_feature_dim"], config["audio_tokens"], config["audio_token_dim"]) == (9216, 32, 768)
    with torch.device("meta"):
        model = AudioWanTransformer3DModel(**config)
    _assert_round_trip(shapes, model)


def test_conversion_swaps_original_norm3_into_the_cross_attention_norm():
    names = model_key_names(
        ["blocks.3.norm3.weight", "blocks.3.norm_x.weight", "blocks.3.cross_attn.k_img.bias"]
    )
    assert names == {
        "blocks.3.norm2.weight": "blocks.3.norm3.weight",
        "blocks.3.norm_x.weight": "blocks.3.norm_x.weight",
        "blocks.3.attn2.add_k_proj.bias": "blocks.3.cross_attn.k_img.bias",
    }


def test_tiny_checkpoint_round_trips_and_writes_the_release_layout(
    tiny_sources, tiny_model, original_state_dict
):
    folder = tiny_sources[0]
    assert (folder / "diffusion_pytorch_model-00001-of-00002.safetensors").is_file()
    assert (folder / "diffusion_pytorch_model.safetensors.index.json").is_file()
    _assert_round_trip({k: tuple(v.shape) for k, v in original_state_dict.items()}, tiny_model)
    state = tiny_model.state_dict()
    for name, stored in model_key_names(list(original_state_dict)).items():
        torch.testing.assert_close(state[name], original_state_dict[stored], rtol=0, atol=0)


def test_infinitetalk_base_plus_adapter_equals_single_checkpoint(tmp_path, tiny_model):
    sources = write_tiny_transformer(tmp_path / "split", heads=2, adapter_split=True)
    adapter = load_file(str(sources[1]))
    assert adapter and all(is_audio_key(key) for key in adapter)
    split = load_transformer(sources, dtype=torch.float32)
    reference = tiny_model.state_dict()
    for name, tensor in split.state_dict().items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0)
    with pytest.raises(WeightsError, match="missing key"):
        load_transformer(sources[0], dtype=torch.float32)


def test_single_file_and_diffusers_named_checkpoints_load_the_same(tmp_path, tiny_model, original_state_dict):
    single = tmp_path / "single.safetensors"
    save_file(original_state_dict, str(single))
    from_single = load_transformer(single, dtype=torch.float32, config={"num_attention_heads": 2})
    converted = tmp_path / "converted.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(converted))
    from_converted = load_transformer(converted, dtype=torch.float32, config={"num_attention_heads": 2})
    for name, tensor in tiny_model.state_dict().items():
        torch.testing.assert_close(from_single.state_dict()[name], tensor, rtol=0, atol=0)
        torch.testing.assert_close(from_converted.state_dict()[name], tensor, rtol=0, atol=0)


def _rewrite_first_shard(folder, edit) -> None:
    shard = folder / "diffusion_pytorch_model-00001-of-00002.safetensors"
    tensors = load_file(str(shard))
    edit(tensors)
    save_file(tensors, str(shard))


def test_missing_key_is_a_weights_error_naming_it(tmp_path):
    [folder] = write_tiny_transformer(tmp_path / "ckpt", heads=2)
    _rewrite_first_shard(folder, lambda tensors: tensors.pop("audio_proj.norm.bias"))
    with pytest.raises(WeightsError, match=r"missing key.*'audio_proj\.norm\.bias'"):
        load_transformer(folder, dtype=torch.float32)


def test_unexpected_key_is_a_weights_error_naming_it_and_its_file(tmp_path):
    [folder] = write_tiny_transformer(tmp_path / "ckpt", heads=2)
    extra = tmp_path / "extra.safetensors"
    save_file({"blocks.0.audio_cross_attn.gate": torch.zeros(1)}, str(extra))
    with pytest.raises(WeightsError, match=r"extra\.safetensors: 1 unexpected key.*audio_cross_attn\.gate"):
        load_transformer([folder, extra], dtype=torch.float32)


def test_wrong_shape_and_duplicate_keys_are_weights_errors(tmp_path):
    [folder] = write_tiny_transformer(tmp_path / "ckpt", heads=2)
    duplicate = tmp_path / "dup.safetensors"
    save_file({"head.modulation": torch.zeros(1, 2, 64)}, str(duplicate))
    with pytest.raises(WeightsError, match="'head.modulation' is also stored in"):
        load_transformer([folder, duplicate], dtype=torch.float32)
    _rewrite_first_shard(folder, lambda tensors: tensors.update({"head.modulation": torch.zeros(1, 3, 64)}))
    with pytest.raises(WeightsError, match=r"'head.modulation' has shape \(1, 3, 64\)"):
        load_transformer(folder, dtype=torch.float32)


def test_missing_or_foreign_sources_are_weights_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_transformer(tmp_path / "nowhere")
    (tmp_path / "model.bin").write_bytes(b"pickle")
    with pytest.raises(WeightsError, match="not a .safetensors or .pth file"):
        load_transformer(tmp_path / "model.bin")
    (tmp_path / "model.pth").write_bytes(b"pickle")
    with pytest.raises(WeightsError, match="not a loadable weights-only checkpoint"):
        load_transformer(tmp_path / "model.pth")
    (tmp_path / "broken.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_transformer(tmp_path / "broken.safetensors")


def test_a_layout_given_by_the_family_builds_that_model_and_refuses_other_weights(tmp_path, tiny_sources):
    a2v = TransformerLayout(humo=False, in_channels=36)
    assert type(load_transformer(tiny_sources, dtype=torch.float32, layout=a2v)) is AudioWanTransformer3DModel
    with pytest.raises(WeightsError, match=r"a2v \(SkyReels-V3 / InfiniteTalk\) transformer weights, but the "
                       r"model family is HuMo"):  # fmt: skip
        load_transformer(
            tiny_sources, dtype=torch.float32, layout=TransformerLayout(humo=True, in_channels=36)
        )
    humo_16 = write_tiny_humo_transformer(tmp_path / "humo", in_channels=16)
    model = load_transformer(
        humo_16, dtype=torch.float32, layout=TransformerLayout(humo=True, in_channels=16)
    )
    assert type(model) is HumoTransformer3DModel
    with pytest.raises(WeightsError, match="takes 16 input channels, but the model family's layout has 36"):
        load_transformer(humo_16, dtype=torch.float32, layout=TransformerLayout(humo=True, in_channels=36))
