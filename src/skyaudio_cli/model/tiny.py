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

WAN_SHARD_BASE = "diffusion_pytorch_model"
# HuMo-17B's shards are indexed by humo.safetensors.index.json; HuMo-1.7B is one EMA state dict.
HUMO_SHARD_BASE = "humo"
HUMO_PTH_NAME = "ema.pth"
ADAPTER_NAME = "infinitetalk.safetensors"
_PATCH = (1, 2, 2)


def _linear(key: str, out_features: int, in_features: int) -> dict[str, tuple[int, ...]]:
    return {f"{key}.weight": (out_features, in_features), f"{key}.bias": (out_features,)}


def _layer_norm(key: str, dim: int) -> dict[str, tuple[int, ...]]:
    return {f"{key}.weight": (dim,), f"{key}.bias": (dim,)}


def backbone_key_shapes(
    *,
    dim: int,
    layers: int,
    ffn: int,
    freq_dim: int,
    text_dim: int,
    image_dim: int | None,
    in_channels: int,
    out_channels: int = 16,
) -> dict[str, tuple[int, ...]]:
    """The Wan2.1 keys with their shapes: I2V with CLIP tokens, or T2V when image_dim is None."""
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embedding.weight": (dim, in_channels, *_PATCH),
        "patch_embedding.bias": (dim,),
        **_linear("text_embedding.0", dim, text_dim),
        **_linear("text_embedding.2", dim, dim),
        **_linear("time_embedding.0", dim, freq_dim),
        **_linear("time_embedding.2", dim, dim),
        **_linear("time_projection.1", 6 * dim, dim),
        **_linear("head.head", out_channels * math.prod(_PATCH), dim),
        "head.modulation": (1, 2, dim),
    }
    if image_dim is not None:
        shapes.update(_layer_norm("img_emb.proj.0", image_dim))
        shapes.update(_linear("img_emb.proj.1", image_dim, image_dim))
        shapes.update(_linear("img_emb.proj.3", dim, image_dim))
        shapes.update(_layer_norm("img_emb.proj.4", dim))
    cross_projections = ["q", "k", "v", "o"] + (["k_img", "v_img"] if image_dim is not None else [])
    for n in range(layers):
        block = f"blocks.{n}"
        for attention, projections in (("self_attn", "qkvo"), ("cross_attn", cross_projections)):
            for projection in projections:
                shapes.update(_linear(f"{block}.{attention}.{projection}", dim, dim))
            shapes[f"{block}.{attention}.norm_q.weight"] = (dim,)
            shapes[f"{block}.{attention}.norm_k.weight"] = (dim,)
        if image_dim is not None:
            shapes[f"{block}.cross_attn.norm_k_img.weight"] = (dim,)
        shapes.update(_layer_norm(f"{block}.norm3", dim))
        shapes.update(_linear(f"{block}.ffn.0", ffn, dim))
        shapes.update(_linear(f"{block}.ffn.2", dim, ffn))
        shapes[f"{block}.modulation"] = (1, 6, dim)
    return shapes


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
    shapes = backbone_key_shapes(
        dim=dim, layers=layers, ffn=ffn, freq_dim=freq_dim, text_dim=text_dim, image_dim=image_dim,
        in_channels=in_channels, out_channels=out_channels,
    )  # fmt: skip
    shapes.update(_linear("audio_proj.proj1", audio_hidden, audio_window * audio_feature_dim))
    shapes.update(
        _linear("audio_proj.proj1_vf", audio_hidden, (audio_window + vae_scale - 1) * audio_feature_dim)
    )
    shapes.update(_linear("audio_proj.proj2", audio_hidden, audio_hidden))
    shapes.update(_linear("audio_proj.proj3", audio_tokens * audio_token_dim, audio_hidden))
    shapes.update(_layer_norm("audio_proj.norm", audio_token_dim))
    for n in range(layers):
        block = f"blocks.{n}"
        shapes.update(_linear(f"{block}.audio_cross_attn.q_linear", dim, dim))
        shapes.update(_linear(f"{block}.audio_cross_attn.kv_linear", 2 * dim, audio_token_dim))
        shapes.update(_linear(f"{block}.audio_cross_attn.proj", dim, dim))
        shapes.update(_layer_norm(f"{block}.norm_x", dim))
    return _model_level_keys_first(shapes)


def humo_key_shapes(
    *,
    dim: int,
    layers: int,
    ffn: int,
    freq_dim: int,
    text_dim: int,
    in_channels: int,
    audio_window: int = 8,
    audio_feature_dim: int,
    audio_hidden: int,
    audio_tokens: int,
    audio_token_dim: int,
) -> dict[str, tuple[int, ...]]:
    """Every key of a released HuMo DiT (Wan2.1 T2V + HuMo's audio modules) with its shape."""
    shapes = backbone_key_shapes(
        dim=dim, layers=layers, ffn=ffn, freq_dim=freq_dim, text_dim=text_dim, image_dim=None,
        in_channels=in_channels,
    )  # fmt: skip
    projection = "audio_proj.audio_proj_glob_{}.layer"
    shapes.update(_linear(projection.format(1), audio_hidden, audio_window * audio_feature_dim))
    shapes.update(_linear(projection.format(2), audio_hidden, audio_hidden))
    shapes.update(_linear(projection.format(3), audio_tokens * audio_token_dim, audio_hidden))
    shapes.update(_layer_norm(projection.format("norm"), audio_token_dim))
    for n in range(layers):
        wrapper = f"blocks.{n}.audio_cross_attn_wrapper"
        shapes.update(_layer_norm(f"{wrapper}.norm1_audio", dim))
        inputs = {"q": dim, "k": audio_token_dim, "v": audio_token_dim, "o": dim}
        for projection_name, in_features in inputs.items():
            shapes.update(_linear(f"{wrapper}.audio_cross_attn.{projection_name}", dim, in_features))
        shapes[f"{wrapper}.audio_cross_attn.norm_q.weight"] = (dim,)
        shapes[f"{wrapper}.audio_cross_attn.norm_k.weight"] = (dim,)
    return _model_level_keys_first(shapes)


def _model_level_keys_first(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    # As the releases order them: embeddings, head and audio projection, then block by block.
    return {key: shapes[key] for key in sorted(shapes, key=lambda key: key.startswith("blocks."))}


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


def _write_shards(
    folder: Path, tensors: dict[str, torch.Tensor], shards: int, base: str = WAN_SHARD_BASE
) -> None:
    keys = list(tensors)
    per_shard = math.ceil(len(keys) / shards)
    weight_map = {}
    for index in range(shards):
        name = f"{base}-{index + 1:05d}-of-{shards:05d}.safetensors"
        chunk = keys[index * per_shard : (index + 1) * per_shard]
        save_file({key: tensors[key] for key in chunk}, str(folder / name))
        weight_map.update(dict.fromkeys(chunk, name))
    total_size = sum(t.numel() * t.element_size() for t in tensors.values())
    index_json = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    (folder / f"{base}.safetensors.index.json").write_text(json.dumps(index_json, indent=2))


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


def write_tiny_humo_transformer(
    folder: Path,
    *,
    dim: int = 256,
    layers: int = 2,
    ffn: int = 256,
    freq_dim: int = 32,
    text_dim: int = 32,
    audio_layers: int = 5,
    audio_channels: int = 16,
    audio_hidden: int = 32,
    audio_tokens: int = 4,
    audio_token_dim: int = 24,
    in_channels: int = 36,
    shards: int = 2,
    seed: int = 0,
) -> Path:
    """Write a random HuMo DiT in the release layout; returns what to pass to ``load_transformer``.

    The release has no config.json, so the head count comes from dim / 128 as there: keep dim a
    multiple of 128.

    ``in_channels`` 36 (noise + mask + condition latents) is HuMo-17B's layout: sharded safetensors
    with ``humo.safetensors.index.json``, no config.json. 16 is HuMo-1.7B's: one ``ema.pth``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shapes = humo_key_shapes(
        dim=dim, layers=layers, ffn=ffn, freq_dim=freq_dim, text_dim=text_dim, in_channels=in_channels,
        audio_feature_dim=audio_layers * audio_channels, audio_hidden=audio_hidden,
        audio_tokens=audio_tokens, audio_token_dim=audio_token_dim,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    tensors = {key: _random_tensor(key, shape, generator) for key, shape in shapes.items()}
    if in_channels == 16:
        torch.save(tensors, folder / HUMO_PTH_NAME)
        return folder / HUMO_PTH_NAME
    _write_shards(folder, tensors, shards, base=HUMO_SHARD_BASE)
    return folder
