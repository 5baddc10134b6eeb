"""`skyaudio train CONFIG.toml`: the config, read strictly (an unknown key is an error, not ignored).

Layout (README "Fine-tuning" documents every key)::

    model = "skyreels-v3-a2v"      # family or folder, as for `generate`
    data = "data/"                 # what `skyaudio dataset build` wrote
    output = "runs/me/"            # checkpoints, loss log, final LoRA
    seed = 0
    checkpoint_every = 500
    dtype = "bf16"                 # compute dtype of the frozen base (fp32 on the CPU)
    gradient_checkpointing = true
    fp8_base = false               # frozen base weights stored in FP8
    optimizer = "adamw"            # or "adamw8bit" (bitsandbytes)
    tensorboard = false            # true: output/tensorboard/ event files too (needs tensorboard)
    [lora]      rank, alpha, targets = ["self_attn", "cross_attn", "ffn", "audio_attn", "audio_proj"]
    [loss]      face, lip, mask_choices = [[probability, face, lip], ...]
    [dropout]   text, audio, image
    [validation] every, portrait, audio, steps = 4, prompt (optional): a video every N steps
    [[stages]]  name, steps, lr, frames, warmup_steps, resolution (one the dataset was built at),
                batch_size (clips of one size bucket per step),
                conditioning = "image"|"video"|"masked" (a2v) or "image"|"text" (HuMo), or a list,
                train = "audio"|"lora" (or both)
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyaudio_cli.errors import InputError

# Groups of linear layers a LoRA can target, as regexes over the DiT's module names.
TARGET_MODULES = {
    "self_attn": r"blocks\.\d+\.attn1\.(to_q|to_k|to_v|to_out\.0)",
    "cross_attn": r"blocks\.\d+\.attn2\.(to_q|to_k|to_v|to_out\.0|add_k_proj|add_v_proj)",
    "ffn": r"blocks\.\d+\.ffn\.net\.(0\.proj|2)",
    # a2v: q_linear, stacked kv_linear, proj; HuMo: separate q, k, v, o (model/humo_transformer.py).
    "audio_attn": r"blocks\.\d+\.audio_cross_attn\.(q_linear|kv_linear|proj|q|k|v|o)",
    "audio_proj": r"audio_proj\.(proj1|proj1_vf|proj2|proj3)",
}
CONDITIONINGS = ("image", "video", "masked", "text")
# What each kind of family can train: HuMo has no motion frames and no masked edit, but renders from
# text + audio alone (a zero reference); the a2v families always have their first frame.
A2V_CONDITIONINGS = ("image", "video", "masked")
HUMO_CONDITIONINGS = ("image", "text")
TRAINABLE = ("lora", "audio")
DTYPES = ("bf16", "fp16", "fp32")
OPTIMIZERS = ("adamw", "adamw8bit")
_TOP_KEYS = {
    "model", "data", "output", "seed", "checkpoint_every", "log_every", "dtype", "gradient_checkpointing",
    "max_grad_norm", "fp8_base", "optimizer", "tensorboard", "lora", "loss", "dropout", "validation",
    "stages",
}  # fmt: skip
_STAGE_KEYS = {
    "name", "steps", "lr", "frames", "conditioning", "train", "warmup_steps", "resolution", "batch_size",
}  # fmt: skip


@dataclass(frozen=True)
class LoraConfig:
    rank: int = 32
    alpha: float = 32.0
    targets: tuple[str, ...] = ("self_attn", "cross_attn", "ffn")


@dataclass(frozen=True)
class LossConfig:
    """Weight map 1 + face * face_mask + lip * lip_mask; `mask_choices` (probability, face, lip)
    replaces the fixed pair by one drawn per step (StableAvatar's scheme)."""

    face: float = 1.0
    lip: float = 1.0
    mask_choices: tuple[tuple[float, float, float], ...] = ()


@dataclass(frozen=True)
class DropoutConfig:
    text: float = 0.1
    audio: float = 0.1
    image: float = 0.05


@dataclass(frozen=True)
class ValidationConfig:
    every: int
    portrait: Path
    audio: Path
    steps: int = 4
    prompt: str | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    steps: int
    lr: float
    frames: int
    conditioning: tuple[str, ...] = ("image",)
    train: tuple[str, ...] = ("lora",)
    warmup_steps: int = 0
    resolution: str | None = None  # None: the first resolution the dataset was built at
    batch_size: int = 1  # clips per step, all of one size (a bucket of the stage's resolution)


@dataclass(frozen=True)
class TrainConfig:
    source: Path
    model: str
    data: Path
    output: Path
    stages: tuple[Stage, ...]
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 1
    dtype: str = "bf16"
    gradient_checkpointing: bool = True
    max_grad_norm: float = 1.0
    # The frozen base's big Linear weights stored in FP8 (half of bf16), cast per layer as it runs.
    fp8_base: bool = False
    optimizer: str = "adamw"
    tensorboard: bool = False
    lora: LoraConfig = field(default_factory=LoraConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    dropout: DropoutConfig = field(default_factory=DropoutConfig)
    validation: ValidationConfig | None = None

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)

    def stage_at(self, step: int) -> tuple[int, Stage, int]:
        """(stage index, stage, step within it) of global step `step` (0-based)."""
        for index, stage in enumerate(self.stages):
            if step < stage.steps:
                return index, stage, step
            step -= stage.steps
        raise IndexError(step)


def load_config(path: Path) -> TrainConfig:
    """Parse and check CONFIG.toml; InputError naming the file and the key for any mistake."""
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid TOML ({error})") from error
    reader = _Reader(path)
    base = path.parent
    top = reader.section(raw, "", _TOP_KEYS)
    for key in ("model", "data", "output", "stages"):
        if key not in top:
            raise InputError(f"{path}: missing key '{key}'")
    stages_raw = top["stages"]
    if not isinstance(stages_raw, list) or not stages_raw:
        raise InputError(f"{path}: 'stages' must be a non-empty [[stages]] list")
    stages = tuple(reader.stage(entry, i) for i, entry in enumerate(stages_raw))
    model = reader.string(top, "model", "")
    # A model folder given relative to the config; a family name stays as it is.
    model = str(base / model) if (base / model).is_dir() else model
    dtype = reader.choice(top.get("dtype", "bf16"), "dtype", DTYPES)
    return TrainConfig(
        source=path,
        model=model,
        data=base / reader.string(top, "data", ""),
        output=base / reader.string(top, "output", ""),
        stages=stages,
        seed=reader.integer(top.get("seed", 0), "seed", minimum=0),
        checkpoint_every=reader.integer(top.get("checkpoint_every", 500), "checkpoint_every", minimum=1),
        log_every=reader.integer(top.get("log_every", 1), "log_every", minimum=1),
        dtype=dtype,
        gradient_checkpointing=reader.boolean(
            top.get("gradient_checkpointing", True), "gradient_checkpointing"
        ),
        max_grad_norm=reader.number(top.get("max_grad_norm", 1.0), "max_grad_norm", minimum=0.0),
        fp8_base=reader.boolean(top.get("fp8_base", False), "fp8_base"),
        optimizer=reader.choice(top.get("optimizer", "adamw"), "optimizer", OPTIMIZERS),
        tensorboard=reader.boolean(top.get("tensorboard", False), "tensorboard"),
        lora=reader.lora(top.get("lora", {})),
        loss=reader.loss(top.get("loss", {})),
        dropout=reader.dropout(top.get("dropout", {})),
        validation=reader.validation(top["validation"], base) if "validation" in top else None,
    )


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str) -> InputError:
        return InputError(f"{self.path}: {message}")

    def section(self, raw: Any, name: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(f"'{name}' must be a table")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            where = f" in [{name}]" if name else ""
            raise self.fail(f"unknown key '{unknown[0]}'{where} (known: {', '.join(sorted(allowed))})")
        return raw

    def string(self, raw: dict[str, Any], key: str, where: str) -> str:
        value = raw[key]
        if not isinstance(value, str) or not value:
            raise self.fail(f"'{where}{key}' must be a non-empty string")
        return value

    def integer(self, value: Any, key: str, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"'{key}' must be an integer >= {minimum}, got {value!r}")
        return value

    def number(self, value: Any, key: str, *, minimum: float, maximum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.fail(f"'{key}' must be a number >= {minimum:g}, got {value!r}")
        if maximum is not None and value > maximum:
            raise self.fail(f"'{key}' must be at most {maximum:g}, got {value!r}")
        return float(value)

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"'{key}' must be true or false, got {value!r}")
        return value

    def choice(self, value: Any, key: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.fail(f"'{key}' must be one of {', '.join(choices)}, got {value!r}")
        return value

    def choices(self, value: Any, key: str, choices: tuple[str, ...]) -> tuple[str, ...]:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values:
            raise self.fail(f"'{key}' must be a non-empty list of {', '.join(choices)}")
        return tuple(self.choice(v, key, choices) for v in values)

    def lora(self, raw: Any) -> LoraConfig:
        raw = self.section(raw, "lora", {"rank", "alpha", "targets"})
        rank = self.integer(raw.get("rank", 32), "lora.rank", minimum=1)
        return LoraConfig(
            rank=rank,
            alpha=self.number(raw.get("alpha", rank), "lora.alpha", minimum=0.0),
            targets=self.choices(
                raw.get("targets", list(LoraConfig.targets)), "lora.targets", tuple(TARGET_MODULES)
            ),
        )

    def loss(self, raw: Any) -> LossConfig:
        raw = self.section(raw, "loss", {"face", "lip", "mask_choices"})
        choices = raw.get("mask_choices", [])
        if not isinstance(choices, list) or any(not isinstance(c, list) or len(c) != 3 for c in choices):
            raise self.fail("'loss.mask_choices' must be a list of [probability, face, lip] triples")
        parsed = tuple(
            (
                self.number(p, "loss.mask_choices probability", minimum=0.0, maximum=1.0),
                self.number(f, "loss.mask_choices face", minimum=0.0),
                self.number(lip, "loss.mask_choices lip", minimum=0.0),
            )
            for p, f, lip in choices
        )
        if parsed and abs(sum(p for p, _, _ in parsed) - 1.0) > 1e-6:
            raise self.fail("'loss.mask_choices' probabilities must add up to 1")
        return LossConfig(
            face=self.number(raw.get("face", 1.0), "loss.face", minimum=0.0),
            lip=self.number(raw.get("lip", 1.0), "loss.lip", minimum=0.0),
            mask_choices=parsed,
        )

    def dropout(self, raw: Any) -> DropoutConfig:
        raw = self.section(raw, "dropout", {"text", "audio", "image"})
        defaults = DropoutConfig()
        return DropoutConfig(
            **{
                key: self.number(
                    raw.get(key, getattr(defaults, key)), f"dropout.{key}", minimum=0.0, maximum=1.0
                )
                for key in ("text", "audio", "image")
            }
        )

    def validation(self, raw: Any, base: Path) -> ValidationConfig:
        raw = self.section(raw, "validation", {"every", "portrait", "audio", "steps", "prompt"})
        for key in ("every", "portrait", "audio"):
            if key not in raw:
                raise self.fail(f"missing key '{key}' in [validation]")
        files = {}
        for key in ("portrait", "audio"):
            files[key] = base / self.string(raw, key, "validation.")
            if not files[key].is_file():
                raise self.fail(f"validation.{key} {files[key]}: file not found")
        prompt = raw.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise self.fail("'validation.prompt' must be a string")
        return ValidationConfig(
            every=self.integer(raw["every"], "validation.every", minimum=1),
            portrait=files["portrait"],
            audio=files["audio"],
            steps=self.integer(raw.get("steps", 4), "validation.steps", minimum=1),
            prompt=prompt,
        )

    def stage(self, raw: Any, index: int) -> Stage:
        name = f"stages[{index}]"
        raw = self.section(raw, name, _STAGE_KEYS)
        for key in ("steps", "lr", "frames"):
            if key not in raw:
                raise self.fail(f"missing key '{key}' in {name}")
        frames = self.integer(raw["frames"], f"{name}.frames", minimum=1)
        if (frames - 1) % 4:
            raise self.fail(f"'{name}.frames' must be 1 + 4k (the VAE's frame grouping), got {frames}")
        return Stage(
            name=str(raw.get("name", f"stage{index + 1}")),
            steps=self.integer(raw["steps"], f"{name}.steps", minimum=1),
            lr=self.number(raw["lr"], f"{name}.lr", minimum=0.0),
            frames=frames,
            conditioning=self.choices(
                raw.get("conditioning", "image"), f"{name}.conditioning", CONDITIONINGS
            ),
            train=self.choices(raw.get("train", "lora"), f"{name}.train", TRAINABLE),
            warmup_steps=self.integer(raw.get("warmup_steps", 0), f"{name}.warmup_steps", minimum=0),
            resolution=self.string(raw, "resolution", f"{name}.") if "resolution" in raw else None,
            batch_size=self.integer(raw.get("batch_size", 1), f"{name}.batch_size", minimum=1),
        )
