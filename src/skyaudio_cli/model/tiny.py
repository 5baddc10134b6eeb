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
from .key_shapes import humo_key_shapes, original_key_shapes

WAN_SHARD_BASE = "diffusion_pytorch_model"
# HuMo-17B's shards are indexed by humo.safetensors.index.json; HuMo-1.7B is one EMA state dict.
HUMO_SHARD_BASE = "humo"
HUMO_PTH_NAME = "ema.pth"
ADAPTER_NAME = "infinitetalk.safetensors"


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
