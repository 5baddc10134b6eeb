"""Load the audio-conditioned Wan DiT from its released checkpoints.

Accepts the original Wan/InfiniteTalk/SkyReels/HuMo key names (converted here) or already-converted
diffusers names, as one file, a sharded folder, or several sources whose union is the model (Wan2.1
base shards + the InfiniteTalk audio adapter). The audio keys tell the layout: a2v/InfiniteTalk
builds ``AudioWanTransformer3DModel``, HuMo ``HumoTransformer3DModel``. Tensors are read one at a
time from memory-mapped safetensors (or a weights-only, memory-mapped ``.pth`` such as HuMo-1.7B's
``ema.pth``), cast once and assigned into a meta-device model, so host RAM peaks at about the final
model plus one tensor; every key is checked strictly against the model before any data is read.
"""

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed
from safetensors import SafetensorError, safe_open

from ..conditioning.checkpoint_files import load_pth_state_dict
from ..errors import WeightsError
from .humo_transformer import HUMO_AUDIO_CONFIG, HumoTransformer3DModel
from .lora import WeightDeltas, combine
from .transformer import TEXT_TOKENS, AudioWanTransformer3DModel

ORIGINAL_PREFIX = "model.diffusion_model."
# Audio modules: the a2v release uses our names; HuMo's wrap the same kinds of modules differently.
_AUDIO_KEY = re.compile(r"^(audio_proj\.|blocks\.\d+\.(norm_x|audio_cross_attn|audio_cross_attn_wrapper)\.)")
_HUMO_AUDIO_RENAMES = (
    (re.compile(r"^audio_proj\.audio_proj_glob_(\d)\.layer\."), r"audio_proj.proj\1."),
    (re.compile(r"^audio_proj\.audio_proj_glob_norm\.layer\."), "audio_proj.norm."),
    (re.compile(r"^(blocks\.\d+)\.audio_cross_attn_wrapper\.norm1_audio\."), r"\1.norm_x."),
    (re.compile(r"^(blocks\.\d+)\.audio_cross_attn_wrapper\.audio_cross_attn\."), r"\1.audio_cross_attn."),
)
_DIFFUSERS_MARKER = "condition_embedder."
_DEFAULT_HEAD_DIM = 128
# Wan-style config.json names (as released) -> our config names; sizes always come from tensor shapes.
_FILE_CONFIG_NAMES = {
    "num_heads": "num_attention_heads",
    "num_attention_heads": "num_attention_heads",
    "eps": "eps",
    "audio_window": "audio_window",
    "vae_scale": "audio_vae_scale",
    "audio_vae_scale": "audio_vae_scale",
    "rope_max_seq_len": "rope_max_seq_len",
}
_DEFAULT_AUDIO_WINDOW = 5
_DEFAULT_VAE_SCALE = 4


def is_audio_key(key: str) -> bool:
    """True for the audio modules (what the InfiniteTalk adapter file holds)."""
    return _AUDIO_KEY.match(key.removeprefix(ORIGINAL_PREFIX)) is not None


def _folder_weight_files(folder: Path) -> list[Path]:
    indexes = sorted(folder.glob("*.safetensors.index.json"))
    if not indexes:
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise WeightsError(f"{folder}: no *.safetensors files")
        return files
    shards: set[str] = set()
    for index in indexes:
        try:
            shards.update(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError) as error:
            raise WeightsError(f"{index}: unreadable shard index ({error})") from error
    missing = [name for name in sorted(shards) if not (folder / name).is_file()]
    if missing:
        raise WeightsError(f"{folder}: shard {missing[0]} listed in the index is missing")
    return [folder / name for name in sorted(shards)]


def resolve_checkpoint(files: Sequence[Path] | Path) -> tuple[list[Path], list[Path]]:
    """Expand folders and files into (weight files: safetensors or .pth, config.json files)."""
    sources = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    weights: list[Path] = []
    configs: list[Path] = []
    for source in sources:
        if source.is_dir():
            weights.extend(_folder_weight_files(source))
            if (source / "config.json").is_file():
                configs.append(source / "config.json")
        elif source.is_file() and source.suffix in (".safetensors", ".pth"):
            weights.append(source)
        elif source.exists():
            raise WeightsError(f"{source}: not a .safetensors or .pth file, nor a folder of them")
        else:
            raise WeightsError(f"{source}: not found")
    return weights, configs


def _open(stack: ExitStack, path: Path) -> Any:
    """A memory-mapped safetensors handle, or the state dict of a weights-only, memory-mapped .pth."""
    if path.suffix == ".pth":
        return load_pth_state_dict(path)
    try:
        return stack.enter_context(safe_open(str(path), framework="pt", device="cpu"))
    except (SafetensorError, OSError) as error:
        raise WeightsError(f"{path}: not a readable safetensors file ({error})") from error


def _stored_shape(handle: Any, key: str) -> tuple[int, ...]:
    if isinstance(handle, dict):
        return tuple(handle[key].shape)
    return tuple(handle.get_slice(key).get_shape())


def _stored_tensor(handle: Any, key: str) -> torch.Tensor:
    return handle[key] if isinstance(handle, dict) else handle.get_tensor(key)


def _open_all(stack: ExitStack, weight_files: list[Path]) -> dict[str, tuple[Any, Path]]:
    """Map every stored key to its (open memory-mapped handle or state dict, file)."""
    located: dict[str, tuple[Any, Path]] = {}
    for path in weight_files:
        handle = _open(stack, path)
        stored_keys = list(handle.keys())  # a safe_open handle is not iterable
        for key in stored_keys:
            if key in located:
                raise WeightsError(f"{path}: key {key!r} is also stored in {located[key][1]}")
            located[key] = (handle, path)
    return located


def model_key_names(stored_keys: Sequence[str]) -> dict[str, str]:
    """Map our model's parameter names to the stored keys (original Wan names or diffusers names).

    Base keys go through diffusers' Wan converter, which rewrites by global substring rules (and
    swaps original norm3, the cross-attention norm, with norm2); the audio keys are kept out of it
    because those rules would also rewrite them, and their names are already ours.
    """
    if any(key.startswith(_DIFFUSERS_MARKER) for key in stored_keys):
        return {key: key for key in stored_keys}
    audio_keys = [key for key in stored_keys if is_audio_key(key)]
    names = {_audio_model_name(key.removeprefix(ORIGINAL_PREFIX)): key for key in audio_keys}
    base = {key: key for key in stored_keys if not is_audio_key(key)}
    converted = convert_wan_transformer_to_diffusers(base)
    if len(converted) != len(stored_keys) - len(names):
        raise WeightsError("two checkpoint keys convert to the same model parameter")
    names.update(converted)
    return names


def original_parameter_name(key: str) -> str:
    """Our parameter name for one original (Wan/InfiniteTalk/HuMo) parameter key, as the loader maps it."""
    return next(iter(model_key_names([key])))


def _audio_model_name(key: str) -> str:
    for pattern, replacement in _HUMO_AUDIO_RENAMES:
        renamed, count = pattern.subn(replacement, key)
        if count:
            return renamed
    return key


def _file_config(config_files: list[Path]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in config_files:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise WeightsError(f"{path}: unreadable config ({error})") from error
        if raw.get("text_len", TEXT_TOKENS) != TEXT_TOKENS:
            raise WeightsError(f"{path}: text_len {raw['text_len']} is not supported (only {TEXT_TOKENS})")
        merged.update({ours: raw[name] for name, ours in _FILE_CONFIG_NAMES.items() if name in raw})
    return merged


@dataclass(frozen=True)
class TransformerLayout:
    """What the caller's family says the checkpoint is: HuMo's audio modules or the a2v ones, and the
    patch embedding's input channels. The loader builds that model and refuses weights of another."""

    humo: bool
    in_channels: int


def _check_layout(expected: TransformerLayout, shapes: dict[str, tuple[int, ...]], source: str) -> None:
    kinds = {True: "HuMo", False: "a2v (SkyReels-V3 / InfiniteTalk)"}
    if is_humo_layout(shapes) != expected.humo:
        raise WeightsError(
            f"{source}: {kinds[is_humo_layout(shapes)]} transformer weights, but the model family is "
            f"{kinds[expected.humo]}"
        )
    in_channels = shapes["patch_embedding.weight"][1]
    if in_channels != expected.in_channels:
        raise WeightsError(
            f"{source}: the transformer takes {in_channels} input channels, but the model family's "
            f"layout has {expected.in_channels}"
        )


def is_humo_layout(shapes: dict[str, tuple[int, ...]]) -> bool:
    """HuMo's single audio MLP has no separate branch for later latent frames (a2v's ``proj1_vf``)."""
    return "audio_proj.proj1.weight" in shapes and "audio_proj.proj1_vf.weight" not in shapes


def infer_config(shapes: dict[str, tuple[int, ...]], hints: dict[str, Any], source: str) -> dict[str, Any]:
    """Model config from tensor shapes (diffusers names); heads, eps and the audio window/stride, which
    shapes cannot tell, from ``hints`` (config.json values or caller overrides) or the release defaults."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in shapes:
            raise WeightsError(f"{source}: missing key for {key!r}")
        return shapes[key]

    audio = _humo_audio_config if is_humo_layout(shapes) else _a2v_audio_config
    return {**_backbone_config(shapes, shape, hints, source), **audio(shape, hints, source)}


def _backbone_config(shapes, shape, hints: dict[str, Any], source: str) -> dict[str, Any]:
    dim, in_channels, *patch_size = shape("patch_embedding.weight")
    heads = hints.get("num_attention_heads", dim // _DEFAULT_HEAD_DIM)
    if heads <= 0 or dim % heads:
        raise WeightsError(f"{source}: cannot split dim {dim} into {heads} heads; set num_attention_heads")
    patch_volume = patch_size[0] * patch_size[1] * patch_size[2]
    image_norm = shapes.get("condition_embedder.image_embedder.norm1.weight")
    added_kv = shapes.get("blocks.0.attn2.add_k_proj.weight")
    return {
        "patch_size": tuple(patch_size),
        "num_attention_heads": heads,
        "attention_head_dim": dim // heads,
        "in_channels": in_channels,
        "out_channels": shape("proj_out.weight")[0] // patch_volume,
        "text_dim": shape("condition_embedder.text_embedder.linear_1.weight")[1],
        "freq_dim": shape("condition_embedder.time_embedder.linear_1.weight")[1],
        "ffn_dim": shape("blocks.0.ffn.net.0.proj.weight")[0],
        "num_layers": len({key.split(".")[1] for key in shapes if key.startswith("blocks.")}),
        "cross_attn_norm": "blocks.0.norm2.weight" in shapes,
        "qk_norm": "rms_norm_across_heads" if "blocks.0.attn1.norm_q.weight" in shapes else None,
        "eps": hints.get("eps", 1e-6),
        "image_dim": image_norm[0] if image_norm else None,
        "added_kv_proj_dim": added_kv[1] if added_kv else None,
        "rope_max_seq_len": hints.get("rope_max_seq_len", 1024),
    }


def _a2v_audio_config(shape, hints: dict[str, Any], source: str) -> dict[str, Any]:
    window = hints.get("audio_window", _DEFAULT_AUDIO_WINDOW)
    vae_scale = hints.get("audio_vae_scale", _DEFAULT_VAE_SCALE)
    hidden, first_inputs = shape("audio_proj.proj1.weight")
    later_inputs = shape("audio_proj.proj1_vf.weight")[1]
    feature_dim = first_inputs // window
    if first_inputs % window or later_inputs != (window + vae_scale - 1) * feature_dim:
        raise WeightsError(
            f"{source}: audio_proj shapes {first_inputs}/{later_inputs} do not fit a {window}-frame window"
            f" and VAE time stride {vae_scale}"
        )
    return {"audio_window": window, "audio_vae_scale": vae_scale, **_audio_mlp_config(shape, feature_dim)}


def _humo_audio_config(shape, hints: dict[str, Any], source: str) -> dict[str, Any]:
    window = hints.get("audio_window", HUMO_AUDIO_CONFIG["audio_window"])
    inputs = shape("audio_proj.proj1.weight")[1]
    if inputs % window:
        raise WeightsError(f"{source}: audio_proj input size {inputs} does not fit a {window}-frame window")
    return {"audio_window": window, **_audio_mlp_config(shape, inputs // window)}


def _audio_mlp_config(shape, feature_dim: int) -> dict[str, Any]:
    token_dim = shape("audio_proj.norm.weight")[0]
    return {
        "audio_feature_dim": feature_dim,
        "audio_hidden_dim": shape("audio_proj.proj2.weight")[0],
        "audio_tokens": shape("audio_proj.proj3.weight")[0] // token_dim,
        "audio_token_dim": token_dim,
    }


def _check_keys_strictly(
    expected: dict[str, torch.Tensor],
    names: dict[str, str],
    located: dict[str, tuple[Any, Path]],
    source: str,
) -> None:
    missing = sorted(set(expected) - set(names))
    if missing:
        listed = ", ".join(repr(key) for key in missing[:3])
        raise WeightsError(f"{source}: {len(missing)} missing key(s), e.g. {listed}")
    unexpected = sorted(set(names) - set(expected))
    if unexpected:
        stored = names[unexpected[0]]
        raise WeightsError(
            f"{located[stored][1]}: {len(unexpected)} unexpected key(s), e.g. {stored!r}"
            + "".join(f", {names[key]!r}" for key in unexpected[1:3])
        )
    for name, parameter in expected.items():
        stored = names[name]
        handle, path = located[stored]
        stored_shape = _stored_shape(handle, stored)
        if stored_shape != tuple(parameter.shape):
            raise WeightsError(
                f"{path}: {stored!r} has shape {stored_shape}, expected {tuple(parameter.shape)}"
            )


def _keeps_fp32(model: AudioWanTransformer3DModel, name: str) -> bool:
    # Same rule as diffusers' loader: a module name listed in _keep_in_fp32_modules is a path component.
    return any(part in model._keep_in_fp32_modules for part in name.split("."))


def declare_storage_dtypes(model: AudioWanTransformer3DModel, dtype: torch.dtype) -> None:
    """Give every (meta) tensor the dtype it will be stored in; the loader then casts to exactly that."""
    for name, tensor in model.state_dict(keep_vars=True).items():
        tensor.data = tensor.data.to(torch.float32 if _keeps_fp32(model, name) else dtype)


def _place(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """One memory-mapped tensor on ``device`` in ``dtype``, cast on whichever side moves fewer bytes."""
    if dtype.itemsize < tensor.dtype.itemsize:
        return tensor.to(dtype=dtype).to(device=device)
    return tensor.to(device=device).to(dtype=dtype)


def _fused(
    tensor: torch.Tensor, name: str, deltas: WeightDeltas | None, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """A stored tensor as the model holds it: with its LoRA deltas added in float32 before the one
    cast to the storage dtype (so FP8 storage quantises the fused weight), else exactly as loaded."""
    if deltas is None or name not in deltas.parts:
        return _place(tensor, device, dtype)
    fused = tensor.to(device=device, dtype=torch.float32) + deltas.delta(name, device)
    return fused.to(dtype)


def _cast_tensors(
    model: AudioWanTransformer3DModel,
    names: dict[str, str],
    located: dict[str, tuple[Any, Path]],
    device: torch.device,
    deltas: WeightDeltas | None,
) -> Iterator[tuple[str, torch.Tensor]]:
    for name, declared in model.state_dict().items():
        handle, _ = located[names[name]]
        yield name, _fused(_stored_tensor(handle, names[name]), name, deltas, device, declared.dtype)


def _parameter_shapes(model: AudioWanTransformer3DModel) -> dict[str, tuple[int, ...]]:
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def load_transformer(
    files: Sequence[Path] | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    config: dict[str, Any] | None = None,
    before_weights: Callable[[AudioWanTransformer3DModel], None] | None = None,
    adapters: Sequence[tuple[Path, float]] = (),
    layout: TransformerLayout | None = None,
) -> AudioWanTransformer3DModel:
    """Build ``AudioWanTransformer3DModel`` from released weights, cast once to ``dtype`` on ``device``.

    ``files``: a folder (its ``*.safetensors.index.json`` shards, else every ``*.safetensors``, plus
    ``config.json``), a single ``.safetensors`` file, or a list of these whose union is the model.
    ``config`` overrides inferred config values (diffusers names). Raises WeightsError naming the file
    and key for anything missing, unexpected, duplicated or mis-shaped.
    ``before_weights`` runs on the empty (meta) model before any tensor is read; the dtypes it leaves
    are the ones tensors are stored in (FP8 layerwise casting declares its storage this way).
    Tensors go one at a time from the memory map to ``device``: host RAM holds at most one cast tensor
    beyond the mapped pages, which the kernel can drop.
    ``adapters``: LoRA files with their scales, fused into the weights as they are read (see
    ``set_adapters`` to change them later).
    ``layout``: the model the family says this is (its class is built, and other weights are refused);
    without it (training, tests) the audio keys tell which class to build.
    """
    weight_files, config_files = resolve_checkpoint(files)
    source = ", ".join(str(path) for path in weight_files)
    device = torch.device(device)
    with ExitStack() as stack:
        located = _open_all(stack, weight_files)
        names = model_key_names(list(located))
        shapes = {name: _stored_shape(located[key][0], key) for name, key in names.items()}
        hints = {**_file_config(config_files), **(config or {})}
        model_config = {**infer_config(shapes, hints, source), **(config or {})}
        if layout is not None:  # after infer_config: it names any key the check would read
            _check_layout(layout, shapes, source)

        humo = is_humo_layout(shapes) if layout is None else layout.humo
        model_class = HumoTransformer3DModel if humo else AudioWanTransformer3DModel
        with torch.device("meta"):
            model = model_class(**model_config)
        _check_keys_strictly(model.state_dict(), names, located, source)
        deltas = combine(adapters, _parameter_shapes(model), original_parameter_name) if adapters else None
        declare_storage_dtypes(model, dtype)
        if before_weights is not None:
            before_weights(model)
        tensors = dict(_cast_tensors(model, names, located, device, deltas))
        model.load_state_dict(tensors, strict=True, assign=True)

    # Non-persistent buffers are not in the checkpoint: rebuild the RoPE tables (angles in fp64) for real.
    model.rope = WanRotaryPosEmbed(
        model.config.attention_head_dim, model.config.patch_size, model.config.rope_max_seq_len
    ).to(device)
    # What set_adapters needs to restore or re-fuse weights later: the sources and what is fused.
    model.checkpoint_files = tuple(weight_files)
    model.fused_adapters = FusedAdapters(tuple(adapters), deltas.names if deltas else frozenset())
    return model.eval()


@dataclass(frozen=True)
class FusedAdapters:
    adapters: tuple[tuple[Path, float], ...]
    parameters: frozenset[str]  # the parameters they changed


def _offloaded_host_copies(model: AudioWanTransformer3DModel) -> dict[torch.nn.Parameter, torch.Tensor]:
    """Block offloading with CUDA streams keeps a pinned host copy of every parameter, which is what
    each onload moves to the GPU (diffusers' ``ModuleGroup.cpu_param_dict``); until a group has been
    offloaded once it is a separate tensor, so a re-fused weight must be written there too."""
    copies: dict[torch.nn.Parameter, torch.Tensor] = {}
    for module in model.modules():
        registry = getattr(module, "_diffusers_hook", None)
        hook = registry.get_hook("group_offloading") if registry is not None else None
        copies.update(getattr(getattr(hook, "group", None), "cpu_param_dict", None) or {})
    return copies


def set_adapters(model: AudioWanTransformer3DModel, adapters: Sequence[tuple[Path, float]]) -> None:
    """Fuse exactly ``adapters`` into a loaded model, in place (``()`` restores the released weights).

    Un-fusing by subtraction is not exact (W + d - d rounds differently in bf16/FP8), so every
    parameter the old or the new adapters touch is re-read from the memory-mapped checkpoint and
    fused again: the result is bit for bit what a fresh load with ``adapters`` gives. The cost is
    reading those parameters once more (page cache or disk), no extra memory. Works under FP8
    storage, block offloading (parameters are written where they live, pinned host copies included)
    and compiled blocks.
    """
    adapters = tuple(adapters)
    current: FusedAdapters = model.fused_adapters
    if adapters == current.adapters:
        return
    shapes = _parameter_shapes(model)
    deltas = combine(adapters, shapes, original_parameter_name) if adapters else None
    rewrite = current.parameters | (deltas.names if deltas else frozenset())
    parameters = dict(model.named_parameters())
    host_copies = _offloaded_host_copies(model)
    with ExitStack() as stack:
        located = _open_all(stack, list(model.checkpoint_files))
        names = model_key_names(list(located))
        for name in sorted(rewrite):
            target = parameters[name]
            handle, _ = located[names[name]]
            value = _fused(_stored_tensor(handle, names[name]), name, deltas, target.device, target.dtype)
            target.data.copy_(value)
            copy = host_copies.get(target)
            if copy is not None and copy.data_ptr() != target.data.data_ptr():
                copy.copy_(value)
    model.fused_adapters = FusedAdapters(adapters, deltas.names if deltas else frozenset())
