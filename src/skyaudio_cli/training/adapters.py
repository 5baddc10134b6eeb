"""What trains: peft LoRA layers on chosen module groups and/or the audio layers in full, and how
the result is written as a `--lora` file (model/lora.py reads it back).

The file uses the peft/diffusers names `transformer.<module>.lora_A.weight` / `lora_B.weight`, with
`transformer.<module>.alpha` when alpha differs from the rank, and full audio-layer training as full
deltas `transformer.<module>.diff` (weight) / `.diff_b` (bias) against the released weights.
"""

from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file

from skyaudio_cli.media.atomic import atomic_write_path
from skyaudio_cli.model.checkpoint import is_audio_key
from skyaudio_cli.training.config import TARGET_MODULES, LoraConfig

PEFT_PREFIX = "transformer."
_BASE_LAYER = ".base_layer"


def add_lora(model: torch.nn.Module, lora: LoraConfig) -> None:
    """Inject zero-initialised (B = 0) LoRA layers: the model's output is unchanged until trained."""
    pattern = "|".join(f"({TARGET_MODULES[target]})" for target in lora.targets)
    model.add_adapter(
        PeftLoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=pattern, lora_dropout=0.0)
    )


def plain_name(name: str) -> str:
    """A parameter's released name (peft wraps a targeted layer's own weight as `base_layer`)."""
    return name.replace(_BASE_LAYER, "")


def trainable_groups(model: torch.nn.Module) -> dict[str, list[tuple[str, torch.nn.Parameter]]]:
    """{"lora": LoRA parameters, "audio": the audio layers' own parameters}, by name, in model order."""
    groups: dict[str, list[tuple[str, torch.nn.Parameter]]] = {"lora": [], "audio": []}
    for name, parameter in model.named_parameters():
        if ".lora_" in name:
            groups["lora"].append((name, parameter))
        elif is_audio_key(plain_name(name)):
            groups["audio"].append((name, parameter))
    return groups


def adapter_tensors(
    model: torch.nn.Module, lora: LoraConfig | None, originals: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The --lora file's tensors: the LoRA pairs, and a full delta for every audio parameter that
    changed. A weight trained both ways becomes one full delta (its change + alpha / rank * B A): a
    file holds either kind per parameter."""
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    if lora is not None:
        for key, value in get_peft_model_state_dict(model).items():
            module, half = key.rsplit(".lora_", 1)
            pairs.setdefault(module, {})[half.removesuffix(".weight")] = value.detach().float().cpu()
    tensors: dict[str, torch.Tensor] = {}
    parameters = dict(model.named_parameters())
    for name, original in originals.items():
        delta = parameters[name].detach().float().cpu() - original
        module, kind = plain_name(name).rsplit(".", 1)
        if kind == "weight" and module in pairs:
            pair = pairs.pop(module)
            delta = delta + lora.alpha / lora.rank * (pair["B"] @ pair["A"])
        if delta.any():
            suffix = {"weight": "diff", "bias": "diff_b"}[kind]
            tensors[f"{PEFT_PREFIX}{module}.{suffix}"] = delta.contiguous()
    for module, pair in pairs.items():
        tensors[f"{PEFT_PREFIX}{module}.lora_A.weight"] = pair["A"].contiguous()
        tensors[f"{PEFT_PREFIX}{module}.lora_B.weight"] = pair["B"].contiguous()
        if lora.alpha != lora.rank:
            tensors[f"{PEFT_PREFIX}{module}.alpha"] = torch.tensor(float(lora.alpha))
    return tensors


def save_adapter(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    with atomic_write_path(path) as partial:
        save_file(tensors, str(partial), metadata={"format": "pt", "written_by": "skyaudio train"})
