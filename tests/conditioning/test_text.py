"""umT5 text encoder: padding semantics, prompt cleaning, and the original Wan `.pth` key mapping."""

import re
from pathlib import Path

import pytest
import torch
from transformers import UMT5EncoderModel

from skyaudio_cli.conditioning.text import TEXT_LENGTH, TextEncoder, clean_prompt, make_tiny_text_encoder
from skyaudio_cli.errors import WeightsError

PROMPTS = ["kalo mine su tame", "nota  lisu，“kami”  xyz"]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("text")
    make_tiny_text_encoder(root / "text_encoder", root / "tokenizer")
    return root / "text_encoder", root / "tokenizer"


@pytest.fixture(scope="module")
def encoder(tiny_dirs) -> TextEncoder:
    return TextEncoder.from_pretrained(*tiny_dirs)


def original_wan_state_dict(model: UMT5EncoderModel) -> dict[str, torch.Tensor]:
    """Write a transformers umT5 under Wan's T5Encoder names (wan/modules/t5.py, shared_pos=False)."""
    block_parts = {
        r"layer\.0\.layer_norm": "norm1",
        r"layer\.0\.SelfAttention\.([qkvo])": r"attn.\1",
        r"layer\.0\.SelfAttention\.relative_attention_bias": "pos_embedding.embedding",
        r"layer\.1\.layer_norm": "norm2",
        r"layer\.1\.DenseReluDense\.wi_0": "ffn.gate.0",
        r"layer\.1\.DenseReluDense\.wi_1": "ffn.fc1",
        r"layer\.1\.DenseReluDense\.wo": "ffn.fc2",
    }
    original = {}
    for key, tensor in model.state_dict().items():
        if key == "encoder.embed_tokens.weight":
            continue  # tied to shared.weight; Wan stores the table once
        if key == "shared.weight":
            original["token_embedding.weight"] = tensor.clone()
        elif key == "encoder.final_layer_norm.weight":
            original["norm.weight"] = tensor.clone()
        else:
            index, rest = re.fullmatch(r"encoder\.block\.(\d+)\.(.+)\.weight", key).groups()
            renamed = [re.sub(f"^{p}$", r, rest) for p, r in block_parts.items() if re.fullmatch(p, rest)]
            assert len(renamed) == 1, key
            original[f"blocks.{index}.{renamed[0]}.weight"] = tensor.clone()
    return original


def test_embeddings_are_padded_to_512_with_exact_zero_rows(encoder):
    embeddings = encoder.encode(PROMPTS)
    tokens = encoder.tokenizer([clean_prompt(p) for p in PROMPTS], add_special_tokens=True)
    lengths = [len(ids) for ids in tokens.input_ids]
    assert embeddings.shape == (2, TEXT_LENGTH, encoder.model.config.d_model)
    for row, length in zip(embeddings, lengths, strict=True):
        assert torch.all(row[length:] == 0)
        assert torch.all(row[:length].abs().sum(dim=-1) > 0)


def test_kept_rows_equal_the_unpadded_encoder_output(encoder):
    """Padding must not leak into the real rows: same as running the prompt alone with no padding."""
    embeddings = encoder.encode(PROMPTS)
    for prompt, row in zip(PROMPTS, embeddings, strict=True):
        ids = encoder.tokenizer(clean_prompt(prompt), return_tensors="pt").input_ids
        alone = encoder.model(input_ids=ids).last_hidden_state[0]
        torch.testing.assert_close(row[: ids.shape[1]], alone, atol=1e-5, rtol=1e-5)


def test_unpadded_mode_cuts_to_the_longest_prompt(encoder):
    full = encoder.encode(PROMPTS)
    short = encoder.encode(PROMPTS, pad_to_max=False)
    longest = int((full.abs().sum(dim=-1) > 0).sum(dim=1).max())
    assert short.shape[1] == longest
    assert torch.equal(short, full[:, :longest])


def test_long_prompts_are_truncated_to_512_tokens_ending_in_eos(encoder):
    long_prompt = "ka " * 2000
    ids = encoder.tokenizer(long_prompt, max_length=TEXT_LENGTH, truncation=True).input_ids
    assert len(ids) == TEXT_LENGTH and ids[-1] == encoder.tokenizer.eos_token_id
    assert torch.all(encoder.encode([long_prompt]).abs().sum(dim=-1) > 0)


def test_prompt_cleaning_matches_wan_basic_and_whitespace_clean():
    assert clean_prompt("  a\n\tb  ") == "a b"
    assert clean_prompt("Tom &amp;amp; Jerry") == "Tom & Jerry"  # unescaped twice, as Wan does
    assert clean_prompt("“quoted” ‘single’") == "\"quoted\" 'single'"
    assert clean_prompt("色调艳丽，过曝　静态") == "色调艳丽,过曝 静态"  # ftfy: fullwidth forms -> ASCII
    assert clean_prompt("e\u0301") == "\u00e9"  # NFC


def test_original_pth_route_matches_key_for_key_and_numerically(tiny_dirs, encoder, tmp_path):
    original = original_wan_state_dict(encoder.model)
    assert (
        "blocks.1.pos_embedding.embedding.weight" in original
        and "pos_embedding.embedding.weight" not in original
    )
    torch.save(original, tmp_path / "models_t5_umt5-xxl-enc-bf16.pth")

    loaded = TextEncoder.from_pretrained(tmp_path / "models_t5_umt5-xxl-enc-bf16.pth", tiny_dirs[1])

    reference = encoder.model.state_dict()
    assert set(loaded.model.state_dict()) == set(reference)
    for key, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, reference[key]), key
    torch.testing.assert_close(loaded.encode(PROMPTS), encoder.encode(PROMPTS), atol=0, rtol=0)


def test_original_pth_with_a_foreign_key_is_rejected(tiny_dirs, encoder, tmp_path):
    original = original_wan_state_dict(encoder.model)
    original["blocks.0.attn.extra.weight"] = torch.zeros(1)
    torch.save(original, tmp_path / "t5.pth")
    with pytest.raises(WeightsError, match="blocks.0.attn.extra.weight"):
        TextEncoder.from_pretrained(tmp_path / "t5.pth", tiny_dirs[1])


def test_original_pth_missing_a_block_tensor_is_rejected(tiny_dirs, encoder, tmp_path):
    original = original_wan_state_dict(encoder.model)
    del original["blocks.1.ffn.fc2.weight"]
    torch.save(original, tmp_path / "t5.pth")
    with pytest.raises(WeightsError, match="DenseReluDense.wo"):
        TextEncoder.from_pretrained(tmp_path / "t5.pth", tiny_dirs[1])


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_folder_missing_a_file_names_it(tiny_dirs, tmp_path, missing):
    folder = tmp_path / "text_encoder"
    folder.mkdir()
    for item in tiny_dirs[0].iterdir():
        if item.name != missing:
            (folder / item.name).write_bytes(item.read_bytes())
    with pytest.raises(WeightsError, match=missing):
        TextEncoder.from_pretrained(folder, tiny_dirs[1])


def test_missing_tokenizer_is_a_weights_error(tiny_dirs, tmp_path):
    with pytest.raises(WeightsError, match="tokenizer.json"):
        TextEncoder.from_pretrained(tiny_dirs[0], tmp_path)
