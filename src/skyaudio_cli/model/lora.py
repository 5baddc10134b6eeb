"""LoRA adapter files: read strictly, map onto the DiT's parameters, and turn into weight deltas.

Every common layout is detected from its keys, per key:

- peft / diffusers: ``transformer.blocks.N.attn1.to_q.lora_A.weight`` / ``lora_B.weight`` [+ ``.alpha``];
- original Wan / ComfyUI: ``diffusion_model.blocks.N.self_attn.q.lora_down.weight`` / ``lora_up.weight``
  + ``.alpha`` (also with ``lora_A`` / ``lora_B``);
- kohya: ``lora_unet_blocks_0_self_attn_q.lora_down.weight`` (module path with ``_`` for ``.``);
- full deltas: ``<module>.diff`` (weight), ``.diff_b`` (bias), ``.diff_m`` (a block's modulation).

A module name is used as is when it names one of our parameters, otherwise it is renamed by the
checkpoint loader's own original-key mapping (passed in as ``rename``), so audio layers
(``audio_cross_attn.*``, ``audio_proj.*``, HuMo's wrapped names) map exactly as in the checkpoints.
Nothing is skipped: a key that maps to no parameter, a shape that does not fit, a rank that differs
between the two halves or a file that is not safetensors is a WeightsError naming key and file.

Delta of one low-rank pair: ``scale * alpha / rank * up @ down`` (alpha = rank when the file has
none, as peft/diffusers files store no alpha), in float32.
"""

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..errors import WeightsError

Shapes = Mapping[str, tuple[int, ...]]
Rename = Callable[[str], str | None]

# Role of a key by its ending, and the parameter (of the key's module) the role changes.
_ROLES = (
    (".lora_down.weight", "down", "weight"),
    (".lora_A.weight", "down", "weight"),
    (".lora_up.weight", "up", "weight"),
    (".lora_B.weight", "up", "weight"),
    (".alpha", "alpha", "weight"),
    (".diff_b", "diff", "bias"),
    (".diff_m", "diff", "modulation"),
    (".diff", "diff", "weight"),
)
_PREFIXES = ("base_model.model.", "model.diffusion_model.", "diffusion_model.", "transformer.")
_KOHYA_PREFIXES = ("lora_unet_", "lora_transformer_")
# A raw pickle (protocol 2+), or torch.save's zip archive.
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")
_MAX_KOHYA_JOINS = 14  # 16384 candidate names; real module paths have at most 9


@dataclass
class _Module:
    """What one file holds for one target parameter."""

    target: str
    keys: dict[str, str] = field(default_factory=dict)  # role -> stored key
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class LoraDelta:
    """One file's change to one parameter: a low-rank pair or a full delta, before scaling."""

    up: torch.Tensor | None = None
    down: torch.Tensor | None = None
    alpha: float | None = None
    diff: torch.Tensor | None = None

    def value(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        if self.diff is not None:
            return self.diff.to(device=device, dtype=torch.float32)
        rank = self.down.shape[0]
        factor = 1.0 if self.alpha is None else self.alpha / rank
        up = self.up.to(device=device, dtype=torch.float32).flatten(1)
        down = self.down.to(device=device, dtype=torch.float32).flatten(1)
        return (factor * (up @ down)).reshape(shape)


@dataclass(frozen=True)
class WeightDeltas:
    """The summed, scaled deltas of several adapters, per parameter name of our model."""

    parts: Mapping[str, tuple[tuple[float, LoraDelta], ...]]
    shapes: Shapes

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.parts)

    def delta(self, name: str, device: torch.device) -> torch.Tensor:
        shape = self.shapes[name]
        return sum(scale * part.value(shape, device) for scale, part in self.parts[name])


def read_lora(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a LoRA safetensors file; WeightsError for an unreadable file, saying so when it
    is a pickle (torch.save), which is never unpickled."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not iterable
    except (SafetensorError, OSError, ValueError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        failure = error
    if _is_pickle(path):
        raise WeightsError(
            f"--lora {path}: this is a pickle (torch.save) file, which is never loaded; convert it to "
            ".safetensors"
        )
    raise WeightsError(f"--lora {path}: not a readable safetensors file ({first})") from failure


def _is_pickle(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(_PICKLE_MAGIC)


def lora_deltas(path: Path, shapes: Shapes, rename: Rename) -> dict[str, LoraDelta]:
    """Read one file and map it onto the parameters in ``shapes`` (our names); strict."""
    tensors = read_lora(path)
    if not tensors:
        raise WeightsError(f"--lora {path}: the file holds no tensors")
    modules: dict[str, _Module] = {}
    for key, tensor in tensors.items():
        module_name, role, parameter = _split_key(key, path)
        target = _resolve(module_name, parameter, shapes, rename)
        if target is None:
            raise WeightsError(f"--lora {path}: key {key!r} maps to no parameter of the model")
        entry = modules.setdefault(target, _Module(target))
        if role in entry.keys:
            raise WeightsError(f"--lora {path}: keys {entry.keys[role]!r} and {key!r} both change {target!r}")
        entry.keys[role] = key
        entry.tensors[role] = tensor
    return {target: _delta(entry, shapes[target], path) for target, entry in modules.items()}


def combine(adapters: Sequence[tuple[Path, float]], shapes: Shapes, rename: Rename) -> WeightDeltas:
    """Several files with their scales (in order); deltas on one parameter add up."""
    parts: dict[str, list[tuple[float, LoraDelta]]] = {}
    for path, scale in adapters:
        for name, delta in lora_deltas(path, shapes, rename).items():
            parts.setdefault(name, []).append((scale, delta))
    return WeightDeltas({name: tuple(entries) for name, entries in parts.items()}, shapes)


def _split_key(key: str, path: Path) -> tuple[str, str, str]:
    """-> (module name as stored, role, which parameter of the module it changes)."""
    for suffix, role, parameter in _ROLES:
        if key.endswith(suffix):
            return key[: -len(suffix)], role, parameter
    raise WeightsError(
        f"--lora {path}: key {key!r} is not a LoRA key (expected .lora_down/.lora_up, .lora_A/.lora_B,"
        " .alpha, .diff, .diff_b or .diff_m)"
    )


def _resolve(module: str, parameter: str, shapes: Shapes, rename: Rename) -> str | None:
    for prefix in _KOHYA_PREFIXES:
        if module.startswith(prefix):
            return _resolve_kohya(module.removeprefix(prefix), parameter, shapes, rename)
    for prefix in _PREFIXES:
        module = module.removeprefix(prefix)
    return _resolve_dotted(f"{module}.{parameter}", shapes, rename)


def _resolve_dotted(key: str, shapes: Shapes, rename: Rename) -> str | None:
    if key in shapes:
        return key
    renamed = rename(key)
    return renamed if renamed in shapes else None


def _resolve_kohya(module: str, parameter: str, shapes: Shapes, rename: Rename) -> str | None:
    """Kohya writes every ``.`` of the module path as ``_``: try each way of joining the words back
    with ``.`` or ``_`` and accept the one that names a parameter (none or several: unknown)."""
    words = module.split("_")
    if len(words) - 1 > _MAX_KOHYA_JOINS:
        return None
    found = set()
    for separators in itertools.product((".", "_"), repeat=len(words) - 1):
        dotted = words[0] + "".join(s + w for s, w in zip(separators, words[1:], strict=True))
        target = _resolve_dotted(f"{dotted}.{parameter}", shapes, rename)
        if target is not None:
            found.add(target)
    return found.pop() if len(found) == 1 else None


def _delta(entry: _Module, shape: tuple[int, ...], path: Path) -> LoraDelta:
    keys, tensors = entry.keys, entry.tensors
    any_key = next(iter(keys.values()))
    if "diff" in tensors:
        if len(tensors) > 1:
            raise WeightsError(f"--lora {path}: {any_key!r} mixes a full delta with low-rank keys")
        if tuple(tensors["diff"].shape) != shape:
            raise WeightsError(
                f"--lora {path}: {keys['diff']!r} has shape {tuple(tensors['diff'].shape)}, "
                f"expected {shape} ({entry.target})"
            )
        return LoraDelta(diff=tensors["diff"])
    for needed, other in (("down", "up"), ("up", "down")):
        if needed not in tensors:
            raise WeightsError(f"--lora {path}: {keys.get(other, any_key)!r} has no matching {needed} half")
    up, down = tensors["up"], tensors["down"]
    if up.ndim < 2 or down.ndim < 2 or up.shape[1] != down.shape[0]:
        raise WeightsError(
            f"--lora {path}: rank mismatch: {keys['up']!r} {tuple(up.shape)} and {keys['down']!r} "
            f"{tuple(down.shape)}"
        )
    # Linear [out, in]; a convolution [out, in, *kernel] takes [rank, in, *kernel] and [out, rank, 1...].
    fits = up.shape[0] == shape[0] and tuple(down.shape[1:]) == shape[1:]
    if not fits or any(size != 1 for size in up.shape[2:]):
        raise WeightsError(
            f"--lora {path}: {keys['down']!r} {tuple(down.shape)} / {keys['up']!r} {tuple(up.shape)} do "
            f"not fit {entry.target!r} of shape {shape}"
        )
    alpha = None
    if "alpha" in tensors:
        if tensors["alpha"].numel() != 1:
            raise WeightsError(f"--lora {path}: {keys['alpha']!r} must be one number")
        alpha = float(tensors["alpha"].float().item())
    return LoraDelta(up=up, down=down, alpha=alpha)
