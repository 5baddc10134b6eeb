"""Key mappings from the original Wan2.1 `.pth` encoders onto their transformers equivalents.

The families' own folders ship Wan's T5 (`models_t5_umt5-xxl-enc-bf16.pth`) and open-clip XLM-R
ViT-H/14 (`models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth`) under the names of Wan's own
modules (wan/modules/t5.py, wan/modules/clip.py). They are the same networks as transformers'
UMT5EncoderModel and CLIPVisionModel, so we rename (and split the fused CLIP qkv) instead of
carrying a second implementation. Hyper-parameters are read from tensor shapes so that one code
path serves both the real checkpoints and the tiny test models; the few that shapes cannot tell
are fixed by the original code (noted where used).
"""

import re
from pathlib import Path

import torch
from transformers import CLIPVisionConfig, CLIPVisionModel, PreTrainedModel, UMT5Config, UMT5EncoderModel

from skyaudio_cli.errors import WeightsError

StateDict = dict[str, torch.Tensor]

# Wan's T5RelativeEmbedding default; not visible in any tensor shape.
_T5_MAX_RELATIVE_DISTANCE = 128
# open-clip's ViT-H-14 config sets head_width 80 (1280 = 16 heads x 80); heads are not in any shape.
_OPEN_CLIP_VIT_HEAD_WIDTH = 80

_T5_BLOCK_RENAMES = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    # Wan computes fc1(x) * gelu(gate(x)); transformers computes gelu(wi_0(x)) * wi_1(x).
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}

_CLIP_LAYER_RENAMES = {
    "norm1": "layer_norm1",
    "attn.proj": "self_attn.out_proj",
    "norm2": "layer_norm2",
    "mlp.0": "mlp.fc1",
    "mlp.2": "mlp.fc2",
}

# Outside the blocks: mapped explicitly below, or (head) deliberately not loaded.
_CLIP_TOP_LEVEL_KEYS = {
    f"visual.{name}"
    for name in (
        "patch_embedding.weight",
        "cls_embedding",
        "pos_embedding",
        "pre_norm.weight",
        "pre_norm.bias",
        "post_norm.weight",
        "post_norm.bias",
        "head",
    )
}

_BLOCK_KEY = re.compile(r"(?P<prefix>.*?)(?P<index>\d+)\.(?P<rest>.+)")


def _tensor(state_dict: StateDict, key: str, path: Path) -> torch.Tensor:
    if key not in state_dict:
        raise WeightsError(f"{path}: '{key}' not found; not the expected original Wan checkpoint")
    return state_dict[key]


def _count_blocks(state_dict: StateDict, prefix: str, probe: str) -> int:
    return sum(1 for key in state_dict if key.startswith(prefix) and key.endswith(f".{probe}"))


def _split_block_key(key: str, prefix: str, path: Path) -> tuple[int, str]:
    """`<prefix>N.<rest>` -> (N, rest)."""
    match = _BLOCK_KEY.fullmatch(key)
    if match is None or match["prefix"] != prefix:
        raise WeightsError(f"{path}: unexpected key '{key}'")
    return int(match["index"]), match["rest"]


def _renamed(rest: str, renames: dict[str, str], key: str, path: Path) -> str:
    """Rename the module part of `rest`, keeping its parameter suffix; unknown parts are a layout error."""
    for original, renamed in renames.items():
        if rest == original or rest.startswith(original + "."):
            return renamed + rest[len(original) :]
    raise WeightsError(f"{path}: unexpected key '{key}'")


def umt5_from_original(state_dict: StateDict, path: Path) -> tuple[UMT5Config, dict]:
    """Wan T5Encoder state dict -> (UMT5Config, UMT5EncoderModel state dict)."""
    vocab_size, d_model = _tensor(state_dict, "token_embedding.weight", path).shape
    num_buckets, num_heads = _tensor(state_dict, "blocks.0.pos_embedding.embedding.weight", path).shape
    config = UMT5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=_tensor(state_dict, "blocks.0.attn.q.weight", path).shape[0] // num_heads,
        d_ff=_tensor(state_dict, "blocks.0.ffn.fc1.weight", path).shape[0],
        num_layers=_count_blocks(state_dict, "blocks.", "norm1.weight"),
        num_heads=num_heads,
        relative_attention_num_buckets=num_buckets,
        relative_attention_max_distance=_T5_MAX_RELATIVE_DISTANCE,
        feed_forward_proj="gated-gelu",  # Wan's GELU is the tanh approximation = transformers' gelu_new
        layer_norm_epsilon=1e-6,
        is_encoder_decoder=False,
        use_cache=False,
    )
    mapped = {}
    for key, tensor in state_dict.items():
        if key == "token_embedding.weight":
            mapped["shared.weight"] = tensor  # encoder.embed_tokens is tied to it
        elif key == "norm.weight":
            mapped["encoder.final_layer_norm.weight"] = tensor
        else:
            index, rest = _split_block_key(key, "blocks.", path)
            mapped[f"encoder.block.{index}.{_renamed(rest, _T5_BLOCK_RENAMES, key, path)}"] = tensor
    return config, mapped


def clip_vision_from_original(state_dict: StateDict, path: Path) -> tuple[CLIPVisionConfig, dict]:
    """open-clip XLM-R ViT-H/14 state dict (Wan names) -> (CLIPVisionConfig, CLIPVisionModel state dict).

    Only the `visual.` tower is used; the XLM-R text tower, `log_scale` and the visual projection
    `visual.head` (Wan takes hidden states, not the pooled embedding) are not loaded.
    """
    patch_weight = _tensor(state_dict, "visual.patch_embedding.weight", path)
    hidden_size, _, patch_size, _ = patch_weight.shape
    num_positions = _tensor(state_dict, "visual.pos_embedding", path).shape[1]
    grid = round((num_positions - 1) ** 0.5)
    if hidden_size % _OPEN_CLIP_VIT_HEAD_WIDTH or grid * grid != num_positions - 1:
        raise WeightsError(f"{path}: visual tower shapes do not match an open-clip ViT with head width 80")
    config = CLIPVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=_tensor(state_dict, "visual.transformer.0.mlp.0.weight", path).shape[0],
        num_hidden_layers=_count_blocks(state_dict, "visual.transformer.", "norm1.weight"),
        num_attention_heads=hidden_size // _OPEN_CLIP_VIT_HEAD_WIDTH,
        image_size=grid * patch_size,
        patch_size=patch_size,
        hidden_act="gelu",  # Wan builds ViT-H/14 with activation='gelu' (exact erf), not quick_gelu
        layer_norm_eps=1e-5,
    )
    mapped = {
        "embeddings.patch_embedding.weight": patch_weight,
        "embeddings.class_embedding": _tensor(state_dict, "visual.cls_embedding", path).reshape(hidden_size),
        "embeddings.position_embedding.weight": state_dict["visual.pos_embedding"].reshape(num_positions, -1),
    }
    for original, renamed in (("pre_norm", "pre_layrnorm"), ("post_norm", "post_layernorm")):
        for parameter in ("weight", "bias"):
            mapped[f"{renamed}.{parameter}"] = _tensor(state_dict, f"visual.{original}.{parameter}", path)
    for key, tensor in state_dict.items():
        if not key.startswith("visual."):
            continue
        if not key.startswith("visual.transformer."):
            if key not in _CLIP_TOP_LEVEL_KEYS:
                raise WeightsError(f"{path}: unexpected key '{key}'")
            continue
        index, rest = _split_block_key(key, "visual.transformer.", path)
        if rest.startswith("attn.to_qkv."):
            parameter = rest.rsplit(".", 1)[1]
            # The fused projection is viewed as (3, heads, head_dim): q, k, v blocks in that order.
            for name, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0), strict=True):
                mapped[f"encoder.layers.{index}.self_attn.{name}.{parameter}"] = part
        else:
            mapped[f"encoder.layers.{index}.{_renamed(rest, _CLIP_LAYER_RENAMES, key, path)}"] = tensor
    return config, mapped


def build_transformers_model(
    model_class: type[PreTrainedModel], config, state_dict: dict, path: Path, dtype: torch.dtype
) -> PreTrainedModel:
    """Instantiate from a mapped state dict with strict checking (transformers only warns by default)."""
    model, info = model_class.from_pretrained(
        None, config=config, state_dict=state_dict, dtype=dtype, output_loading_info=True
    )
    problems = {name: sorted(info[name]) for name in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if any(problems.values()):
        raise WeightsError(f"{path}: state dict does not match {model_class.__name__} ({problems})")
    return model


def load_original_umt5(state_dict: StateDict, path: Path, dtype: torch.dtype) -> UMT5EncoderModel:
    config, mapped = umt5_from_original(state_dict, path)
    return build_transformers_model(UMT5EncoderModel, config, mapped, path, dtype)


def load_original_clip_vision(state_dict: StateDict, path: Path, dtype: torch.dtype) -> CLIPVisionModel:
    config, mapped = clip_vision_from_original(state_dict, path)
    return build_transformers_model(CLIPVisionModel, config, mapped, path, dtype)
