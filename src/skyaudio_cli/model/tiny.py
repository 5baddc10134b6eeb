"""Write small random checkpoints in the ORIGINAL release layout (key names, shards, index, config.json).

Used by tests and by the ``tiny-random`` family so the real conversion and loading paths run
end to end without the 20-60 GB downloads. Outputs are noise by design.
"""

import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from .checkpoint import is_audio_key

SHARD_NAME = "diffusion_pytorch_model-{index:05d}-of-{count:05d}.safetensors"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
ADAPTER_NAME = "infinitetalk.safetensors"
_PATCH = (1, 2, 2)


def _linear(key: str, out_features: int, in_features: int) -> dict[str, tuple[int, ...]]:
    return {f"{key}.weight": (out_features, in_features), f"{key}.bias": (out_features,)}


def _layer_norm(key: str, dim: int) -> dict[str, tuple[int, ...]]:
    return {f"{key}.weight": (dim,), f"{key}.bias": (dim,)}


def original_key_shapes(
    *,
    dim: int,
    layers: int,
    ffn: int,
    freq_dim: int,
    text_dim: int,
    image_dim: int,
    in_channels: int,
    out_channels: int = 16,
    audio_window: int = 5,
    vae_scale: int = 4,
    audio_feature_dim: int,
    audio_hidden: int,
    audio_tokens: int,
    audio_token_dim: int,
) -> dict[str, tuple[int, ...]]:
    """Every key of the released a2v / InfiniteTalk DiT with its shape (Linear weights are [out, in])."""
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embedding.weight": (dim, in_channels, *_PATCH),
        "patch_embedding.bias": (dim,),
        **_linear("text_embedding.0", dim, text_dim),
        **_linear("text_embedding.2", dim, dim),
        **_linear("time_embedding.0", dim, freq_dim),
        **_linear("time_embedding.2", dim, dim),
        **_linear("time_projection.1", 6 * dim, dim),
        **_layer_norm("img_emb.proj.0", image_dim),
        **_linear("img_emb.proj.1", image_dim, image_dim),
        **_linear("img_emb.proj.3", dim, image_dim),
        **_layer_norm("img_emb.proj.4", dim),
        **_linear("head.head", out_channels * math.prod(_PATCH), dim),
        "head.modulation": (1, 2, dim),
        **_linear("audio_proj.proj1", audio_hidden, audio_window * audio_feature_dim),
        **_linear("audio_proj.proj1_vf", audio_hidden, (audio_window + vae_scale - 1) * audio_feature_dim),
        **_linear("audio_proj.proj2", audio_hidden, audio_hidden),
        **_linear("audio_proj.proj3", audio_tokens * audio_token_dim, audio_hidden),
        **_layer_norm("audio_proj.norm", audio_token_dim),
    }
    for n in range(layers):
        block = f"blocks.{n}"
        for attention, projections in (
            ("self_attn", "qkvo"),
            ("cross_attn", ["q", "k", "v", "o", "k_img", "v_img"]),
        ):
            for projection in projections:
                shapes.update(_linear(f"{block}.{attention}.{projection}", dim, dim))
            shapes[f"{block}.{attention}.norm_q.weight"] = (dim,)
            shapes[f"{block}.{attention}.norm_k.weight"] = (dim,)
        shapes[f"{block}.cross_attn.norm_k_img.weight"] = (dim,)
        shapes.update(_layer_norm(f"{block}.norm3", dim))
        shapes.update(_linear(f"{block}.ffn.0", ffn, dim))
        shapes.update(_linear(f"{block}.ffn.2", dim, ffn))
        shapes[f"{block}.modulation"] = (1, 6, dim)
        shapes.update(_linear(f"{block}.audio_cross_attn.q_linear", dim, dim))
        shapes.update(_linear(f"{block}.audio_cross_attn.kv_linear", 2 * dim, audio_token_dim))
        shapes.update(_linear(f"{block}.audio_cross_attn.proj", dim, dim))
        shapes.update(_layer_norm(f"{block}.norm_x", dim))
    return shapes


def _random_tensor(key: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Scales that keep activations O(1): fan-in Gaussian matrices, norm gains near 1, small biases."""
    noise = torch.randn(shape, generator=generator)
    if key.endswith("modulation"):
        return noise / math.sqrt(shape[-1])
    if len(shape) > 1:
        return noise / math.sqrt(math.prod(shape[1:]))
    if key.endswith(".weight"):
        return 1.0 + 0.1 * noise
    return 0.1 * noise


def _wan_config(dim: int, heads: int, layers: int, ffn: int, freq_dim: int, in_channels: int) -> dict:
    return {
        "_class_name": "WanModel",
        "_diffusers_version": "0.30.0",
        "dim": dim,
        "eps": 1e-06,
        "ffn_dim": ffn,
        "freq_dim": freq_dim,
        "in_dim": in_channels,
        "model_type": "i2v",
        "num_heads": heads,
        "num_layers": layers,
        "out_dim": 16,
        "text_len": 512,
    }


def _write_shards(folder: Path, tensors: dict[str, torch.Tensor], shards: int) -> None:
    keys = list(tensors)
    per_shard = math.ceil(len(keys) / shards)
    weight_map = {}
    for index in range(shards):
        name = SHARD_NAME.format(index=index + 1, count=shards)
        chunk = keys[index * per_shard : (index + 1) * per_shard]
        save_file({key: tensors[key] for key in chunk}, str(folder / name))
        weight_map.update(dict.fromkeys(chunk, name))
    total_size = sum(t.numel() * t.element_size() for t in tensors.values())
    index_json = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    (folder / INDEX_NAME).write_text(json.dumps(index_json, indent=2))


def write_tiny_transformer(
    folder: Path,
    *,
    dim: int = 64,
    heads: int = 2,
    layers: int = 2,
    ffn: int = 128,
    freq_dim: int = 32,
    text_dim: int = 32,
    image_dim: int = 32,
    audio_layers: int = 2,
    audio_channels: int = 32,
    audio_hidden: int = 32,
    audio_tokens: int = 4,
    audio_token_dim: int = 32,
    in_channels: int = 36,
    shards: int = 2,
    seed: int = 0,
    adapter_split: bool = False,
) -> list[Path]:
    """Write a random DiT in the released layout; returns the sources to pass to ``load_transformer``.

    Default: sharded a2v-style folder with the audio keys inside. ``adapter_split``: the folder holds
    a Wan2.1 base without audio keys and ``folder/single/infinitetalk.safetensors`` the audio keys
    (the InfiniteTalk layout); both paths are returned.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shapes = original_key_shapes(
        dim=dim,
        layers=layers,
        ffn=ffn,
        freq_dim=freq_dim,
        text_dim=text_dim,
        image_dim=image_dim,
        in_channels=in_channels,
        audio_feature_dim=audio_layers * audio_channels,
        audio_hidden=audio_hidden,
        audio_tokens=audio_tokens,
        audio_token_dim=audio_token_dim,
    )
    generator = torch.Generator().manual_seed(seed)
    tensors = {key: _random_tensor(key, shape, generator) for key, shape in shapes.items()}
    config = _wan_config(dim, heads, layers, ffn, freq_dim, in_channels)
    if not adapter_split:
        audio_config = {"audio_window": 5, "vae_scale": 4, "intermediate_dim": audio_hidden}
        audio_config |= {"output_dim": audio_token_dim, "context_tokens": audio_tokens}
        audio_config |= {"norm_input_visual": True, "norm_output_audio": True}
        (folder / "config.json").write_text(json.dumps(config | audio_config, indent=2))
        _write_shards(folder, tensors, shards)
        return [folder]
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    _write_shards(folder, {k: t for k, t in tensors.items() if not is_audio_key(k)}, shards)
    adapter = folder / "single" / ADAPTER_NAME
    adapter.parent.mkdir(exist_ok=True)
    save_file({k: t for k, t in tensors.items() if is_audio_key(k)}, str(adapter))
    return [folder, adapter]
