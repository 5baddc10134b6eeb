"""`skyaudio train`: the training loop, on accelerate.

One process, or many under `accelerate launch` / `torchrun` (DDP; FSDP through an accelerate
config): accelerate sets up the process group, wraps the model and averages gradients. Each
process draws its own clips, noise, timesteps and dropout from its own seeded generator (seed +
rank), whose state goes into every checkpoint, so `--resume` continues exactly: the same draws,
the same optimizer and scheduler state, the same trained values, hence the same losses.

Per step: a clip, cut to the stage's frames; one conditioning of the stage's mix (image: the first
frame known; video: the first motion frames known, as long-video windows start; masked: the image
condition with the loss only on the lower face, the region edit-lipsync regenerates); condition
dropout; then the facial-mask-weighted flow-matching loss (loss.py).

HuMo families (`HumoPipeline`'s layout): the clip's latents plus one extra latent frame for the
reference (image: the cached first-frame reference; text: zeros, as without a portrait), noised like
the rest; humo-17b sees concat(mask4, condition16) beside them, humo-1.7b has the clean reference
written into the extra frame; the audio windows get the reference frame's zero window. The loss
scores the video latents only.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from skyaudio_cli.conditioning.frames import known_frames_mask, latent_frame_count, padded_frame_count
from skyaudio_cli.errors import InputError
from skyaudio_cli.media.atomic import atomic_write_path
from skyaudio_cli.pipeline.family import family_defaults
from skyaudio_cli.pipeline.humo import masked_condition
from skyaudio_cli.training import adapters, optional, state
from skyaudio_cli.training.config import A2V_CONDITIONINGS, HUMO_CONDITIONINGS, Stage, TrainConfig
from skyaudio_cli.training.dataset import NULL_TEXT, read_manifest
from skyaudio_cli.training.loss import (
    noised,
    pick_mask_weights,
    shifted_sigma,
    timestep_of,
    weight_map,
    weighted_flow_loss,
)

LOSS_LOG = "loss.jsonl"
FINAL_LORA = "lora.safetensors"
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
_MIXED_PRECISION = {"bf16": "bf16", "fp16": "fp16", "fp32": "no"}
StepFn = Callable[[int, int, dict], None]


@dataclass(frozen=True)
class TrainResult:
    steps: int
    resumed_from: int
    lora: Path
    log: Path
    final_loss: float


def check_inputs(config: TrainConfig, *, resume: bool) -> tuple[dict, list[dict]]:
    """Everything a mistake can be caught in before any model loads (one-line InputError)."""
    info, clips = read_manifest(config.data)
    humo = family_defaults(info["family"]).variant.is_humo
    allowed = HUMO_CONDITIONINGS if humo else A2V_CONDITIONINGS
    for index, stage in enumerate(config.stages):
        refused = [mode for mode in stage.conditioning if mode not in allowed]
        if refused:
            raise InputError(
                f"{config.source}: stages[{index}] ({stage.name}) has conditioning '{refused[0]}', which "
                f"family {info['family']} cannot train (it can: {', '.join(allowed)})"
            )
        if stage.frames > info["clip_frames"]:
            raise InputError(
                f"{config.source}: stages[{index}] ({stage.name}) asks for {stage.frames} frames; "
                f"the clips in {config.data} have {info['clip_frames']}"
            )
        if "video" in stage.conditioning and stage.frames <= info["motion_frames"]:
            raise InputError(
                f"{config.source}: stages[{index}] ({stage.name}) has video conditioning with "
                f"{stage.frames} frames; it needs more than the {info['motion_frames']} motion frames"
            )
        if stage.resolution is not None and stage.resolution not in info["resolutions"]:
            raise InputError(
                f"{config.source}: stages[{index}] ({stage.name}) trains at {stage.resolution}; the dataset "
                f"in {config.data} was built at {', '.join(info['resolutions'])} (dataset build --resolution)"
            )
    has_checkpoint = config.output.is_dir() and state.latest_checkpoint(config.output) is not None
    if resume and not has_checkpoint:
        raise InputError(f"--resume: {config.output} holds no checkpoint to resume from")
    if not resume and config.output.is_dir() and (has_checkpoint or (config.output / LOSS_LOG).exists()):
        raise InputError(f"{config.output}: holds an earlier run; pass --resume or choose another output")
    optional.check(config)  # last: it imports bitsandbytes and runs a step to see it works here
    return info, clips


class Trainer:
    def __init__(self, config: TrainConfig, *, resume: bool = False, accelerator=None) -> None:
        from accelerate import Accelerator

        self.config = config
        self.info, self.clips = check_inputs(config, resume=resume)
        self.resume = resume
        # Without a GPU accelerate forms a process group (gloo) only when told the run is on the CPU.
        self.accelerator = accelerator or Accelerator(
            mixed_precision=_MIXED_PRECISION[config.dtype], cpu=not torch.cuda.is_available(),
            log_with="tensorboard" if config.tensorboard else None, project_dir=config.output,
        )  # fmt: skip
        self.device = self.accelerator.device
        self.rank = self.accelerator.process_index
        self.architecture = family_defaults(self.info["family"]).variant
        self.model = self._load_model()
        self.uses_lora = any("lora" in stage.train for stage in config.stages)
        if self.uses_lora:
            # Every process must start from the same LoRA initialisation.
            torch.manual_seed(config.seed)
            adapters.add_lora(self.model, config.lora)
        self.groups = adapters.trainable_groups(self.model)
        for _, parameter in self.groups["lora"] + self.groups["audio"]:
            parameter.data = parameter.data.float()  # trained values in fp32 whatever the base dtype
        self.originals = {name: p.detach().float().cpu().clone() for name, p in self.groups["audio"]}
        if config.gradient_checkpointing:
            self.model.enable_gradient_checkpointing()
        self.null_text = state.read_tensors(config.data / NULL_TEXT)["text"]
        self.generator = torch.Generator("cpu").manual_seed(config.seed + self.rank)
        self._cache: dict[str, dict[str, torch.Tensor]] = {}
        # resolution -> the clips cached at it, and each clip's size bucket (the clips of its size).
        self.at_resolution: dict[str, list[int]] = {}
        self.bucket: dict[int, list[int]] = {}
        sizes: dict[tuple, list[int]] = {}
        for index, clip in enumerate(self.clips):
            self.at_resolution.setdefault(clip["resolution"], []).append(index)
            self.bucket[index] = sizes.setdefault((clip["resolution"], clip["width"], clip["height"]), [])
            self.bucket[index].append(index)
        self.validator = None
        if config.validation is not None and self.accelerator.is_main_process:
            from skyaudio_cli.training.validation import Validator

            resolution = self.info["resolutions"][0]
            self.validator = Validator(config.validation, config.model, resolution, self.device,
                                       _DTYPES[config.dtype])  # fmt: skip

    def _load_model(self):
        from skyaudio_cli.model.checkpoint import TransformerLayout, load_transformer
        from skyaudio_cli.weights import resolve_model

        resolved = resolve_model(self.config.model)
        if resolved.family != self.info["family"]:
            raise InputError(
                f"{self.config.source}: model '{self.config.model}' is family {resolved.family}, but the "
                f"dataset in {self.config.data} was built for {self.info['family']}"
            )
        parts = resolved.components
        files = [parts["transformer"]] + (
            [parts["transformer_adapter"]] if "transformer_adapter" in parts else []
        )
        dtype = _DTYPES[self.config.dtype]
        before_weights = None
        if self.config.fp8_base:
            from skyaudio_cli.model.acceleration import fp8_storage

            # The audio layers a stage trains in full stay in the compute dtype; LoRA is added later.
            trains_audio = any("audio" in stage.train for stage in self.config.stages)
            before_weights = fp8_storage(dtype, keep=("audio_cross_attn",) if trains_audio else ())
        # The family's layout, as the pipelines load it (pipeline/base.py): HuMo's audio modules.
        layout = TransformerLayout(
            humo=self.architecture.is_humo, in_channels=self.architecture.transformer_in_channels
        )
        model = load_transformer(
            files, device=self.device, dtype=dtype, before_weights=before_weights, layout=layout
        )
        model.requires_grad_(False)
        return model

    # -- one step ---------------------------------------------------------------------------

    def _clip(self, index: int) -> dict[str, torch.Tensor]:
        entry = self.clips[index]
        if entry["id"] not in self._cache:
            self._cache[entry["id"]] = state.read_tensors(self.config.data / entry["file"])
        return self._cache[entry["id"]]

    def batch(self, stage: Stage) -> dict:
        """Draw this step's clips (`stage.batch_size` of one size bucket at the stage's resolution),
        conditioning, dropout, mask weights, noise and timesteps."""
        g, config = self.generator, self.config
        pool = self.at_resolution[stage.resolution or self.info["resolutions"][0]]
        first = pool[int(torch.randint(len(pool), (), generator=g))]
        bucket = self.bucket[first]
        chosen = [first] + [
            bucket[int(torch.randint(len(bucket), (), generator=g))] for _ in range(stage.batch_size - 1)
        ]
        clips = [self._clip(index) for index in chosen]
        mode = stage.conditioning[int(torch.randint(len(stage.conditioning), (), generator=g))]
        frames = stage.frames
        latents = latent_frame_count(frames)
        known = torch.zeros(frames, dtype=torch.bool)
        extra = torch.ones(latents, *clips[0]["face"].shape[1:])
        if mode == "video":
            motion = self.info["motion_frames"]
            known[:motion] = True
            # The motion latents are given at inference (imposed): nothing to learn there.
            extra[: latent_frame_count(padded_frame_count(motion))] = 0.0
        else:
            known[0] = True
        rates = (config.dropout.text, config.dropout.audio, config.dropout.image)
        drops = [[float(torch.rand((), generator=g)) < rate for rate in rates] for _ in clips]
        w_face, w_lip = pick_mask_weights(config.loss.mask_choices, (config.loss.face, config.loss.lip), g)
        samples = []
        for clip, (drop_text, drop_audio, drop_image) in zip(clips, drops, strict=True):
            if self.architecture.is_humo:
                sample = self._humo_sample(clip, frames, mode == "text" or drop_image, drop_audio)
                samples.append({
                    **sample, "noise": torch.randn(sample["clean"].shape, generator=g),
                    "text": self.null_text if drop_text else clip["text"],
                    "weights": weight_map(clip["face"][:latents], clip["lip"][:latents], w_face, w_lip),
                })  # fmt: skip
                continue
            condition = clip["cond_video" if mode == "video" else "cond_image"][:, :latents]
            weights = extra * clip["edit"][:latents].float() if mode == "masked" else extra
            clean = clip["latents"][:, :latents]
            audio = clip["audio"][:frames]
            samples.append({
                "clean": clean,
                "noise": torch.randn(clean.shape, generator=g),
                "condition": torch.cat([known_frames_mask(known, *clean.shape[-2:])[0], condition]),
                "text": self.null_text if drop_text else clip["text"],
                "image": torch.zeros_like(clip["image_tokens"]) if drop_image else clip["image_tokens"],
                "audio": torch.zeros_like(audio) if drop_audio else audio,
                "weights": weight_map(clip["face"][:latents], clip["lip"][:latents], w_face, w_lip) * weights,
            })  # fmt: skip
        sigma = shifted_sigma(torch.rand(len(clips), generator=g, dtype=torch.float64), self.info["shift"])
        batch = {key: torch.stack([sample[key] for sample in samples]) for key in samples[0]}
        return {**batch, "mode": mode, "sigma": sigma.float(), "w_face": w_face, "w_lip": w_lip}

    def _humo_sample(self, clip: dict, frames: int, no_image: bool, no_audio: bool) -> dict:
        """One clip's HuMo tensors for `frames` frames: "clean" = the video latents and the extra
        reference frame (zeros without an image), "condition" = what `HumoPipeline.model_input` puts
        beside or into them, "audio" = the latents' windows and the reference frame's zero window."""
        latents = latent_frame_count(frames)
        reference = torch.zeros_like(clip["reference"]) if no_image else clip["reference"]
        if self.architecture.masked_condition:
            # The zero video of 1 + 4 * latents frames: the cached one's first latents (causal VAE).
            zero = clip["zero_latents"][:, : latents + 1]
            condition = masked_condition(zero, None if no_image else reference)
        else:
            condition = reference
        audio = clip["audio"][:latents]
        audio = torch.cat([torch.zeros_like(audio) if no_audio else audio, torch.zeros_like(audio[:1])])
        return {"clean": torch.cat([clip["latents"][:, :latents], reference], dim=1),
                "condition": condition, "audio": audio}  # fmt: skip

    def loss(self, model, batch: dict) -> torch.Tensor:
        dtype = _DTYPES[self.config.dtype]
        to = {"device": self.device}
        clean, noise, sigma = batch["clean"].to(**to), batch["noise"].to(**to), batch["sigma"].to(**to)
        x_t = noised(clean, noise, sigma)
        condition = batch["condition"].to(**to)
        extra = {}
        if not self.architecture.is_humo:
            extra["encoder_hidden_states_image"] = batch["image"].to(device=self.device, dtype=dtype)
        if self.architecture.is_humo and not self.architecture.masked_condition:
            model_input = torch.cat([x_t[:, :, :-1], condition], dim=2)  # the reference, unnoised
        else:
            model_input = torch.cat([x_t, condition], dim=1)
        with self.accelerator.autocast():
            prediction = model(
                hidden_states=model_input.to(dtype),
                timestep=timestep_of(sigma),
                encoder_hidden_states=batch["text"].to(device=self.device, dtype=dtype),
                audio_embeds=batch["audio"].to(device=self.device, dtype=dtype),
                return_dict=False,
                **extra,
            )[0]
        # HuMo's extra reference frame is not scored: the weights cover the video latents only.
        scored = batch["weights"].shape[1]
        target = (noise - clean)[:, :, :scored]
        return weighted_flow_loss(prediction[:, :, :scored], target, batch["weights"].to(**to))

    # -- the run ----------------------------------------------------------------------------

    def _stage_setup(self, stage: Stage):
        """The stage's trainable parameters, optimizer and warm-up schedule, wrapped by accelerate."""
        for _, parameter in self.groups["lora"] + self.groups["audio"]:
            parameter.requires_grad_(False)
        trained = [(n, p) for group in stage.train for n, p in self.groups[group]]
        for _, parameter in trained:
            parameter.requires_grad_(True)
        self.accelerator.free_memory()  # drop the previous stage's wrappers
        optimizer = optional.make_optimizer(self.config.optimizer, [p for _, p in trained], stage.lr)
        warmup = stage.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
        )
        model, optimizer = self.accelerator.prepare(self.model, optimizer)
        return model, optimizer, scheduler

    def run(self, on_step: StepFn | None = None) -> TrainResult:
        config, acc = self.config, self.accelerator
        output = config.output
        if acc.is_main_process:
            output.mkdir(parents=True, exist_ok=True)
            state.remove_partials(output)
        acc.wait_for_everyone()
        start, restored = 0, None
        if self.resume:
            start, restored = self._restore(state.latest_checkpoint(output))
        if config.tensorboard:
            # On resume, TensorBoard hides the steps the interrupted run logged past the checkpoint.
            writer = {"purge_step": start + 1} if self.resume else {}
            acc.init_trackers(optional.TENSORBOARD_DIR, init_kwargs={"tensorboard": writer})
        log = output / LOSS_LOG
        stage_index, model, optimizer, scheduler = None, None, None, None
        loss_value = float("nan")
        for step in range(start, config.total_steps):
            index, stage, _ = config.stage_at(step)
            if index != stage_index:
                model, optimizer, scheduler = self._stage_setup(stage)
                if restored is not None:
                    optimizer.load_state_dict(restored["optimizer"])
                    scheduler.load_state_dict(restored["scheduler"])
                    restored = None
                stage_index = index
            batch = self.batch(stage)
            model.train()
            loss = self.loss(model, batch)
            acc.backward(loss)
            if config.max_grad_norm > 0:
                acc.clip_grad_norm_(
                    [p for group in stage.train for _, p in self.groups[group]], config.max_grad_norm
                )
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = float(acc.reduce(loss.detach(), reduction="mean"))
            record = {
                "step": step + 1, "stage": stage.name, "loss": loss_value, "lr": lr,
                "conditioning": batch["mode"], "w_face": batch["w_face"], "w_lip": batch["w_lip"],
            }  # fmt: skip
            if acc.is_main_process and (step + 1) % config.log_every == 0:
                with log.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record, sort_keys=True) + "\n")
                if config.tensorboard:
                    acc.log(optional.tensorboard_scalars(record), step=step + 1)
            if on_step is not None:
                on_step(step + 1, config.total_steps, record)
            next_stage_differs = step + 1 == config.total_steps or config.stage_at(step + 1)[0] != index
            if (step + 1) % config.checkpoint_every == 0 or next_stage_differs:
                self._save(step + 1, index, optimizer, scheduler)
            if config.validation is not None and (step + 1) % config.validation.every == 0:
                if self.validator is not None:
                    self.validator.render(acc.unwrap_model(model), output, step + 1)
                acc.wait_for_everyone()
        lora = output / FINAL_LORA
        if acc.is_main_process:
            adapters.save_adapter(lora, self._adapter())
        acc.wait_for_everyone()
        acc.end_training()
        return TrainResult(
            steps=config.total_steps, resumed_from=start, lora=lora, log=log, final_loss=loss_value
        )

    def _adapter(self) -> dict[str, torch.Tensor]:
        return adapters.adapter_tensors(
            self.model, self.config.lora if self.uses_lora else None, self.originals
        )

    def _save(self, step: int, stage_index: int, optimizer, scheduler) -> None:
        acc, output = self.accelerator, self.config.output
        folder = state.partial_dir(output, step)
        if acc.is_main_process:
            folder.mkdir(parents=True, exist_ok=True)
        acc.wait_for_everyone()
        rng = {"generator": self.generator.get_state(), "torch": torch.get_rng_state()}
        save_file(rng, str(state.rng_file(folder, self.rank)))
        if acc.is_main_process:
            tensors, data = state.split_optimizer_state(optimizer.state_dict())
            trainable = {n: p.detach().float().cpu().contiguous() for g in self.groups.values() for n, p in g}
            files = {
                state.TRAINABLE: trainable,
                state.ADAPTER: self._adapter(),
                state.OPTIMIZER_TENSORS: tensors,
            }
            meta = {
                "step": step, "stage": stage_index, "optimizer": data, "scheduler": scheduler.state_dict(),
                "processes": acc.num_processes,
            }  # fmt: skip
            state.write_main_files(folder, files, meta)
        acc.wait_for_everyone()
        if acc.is_main_process:
            state.finish(output, step)
        acc.wait_for_everyone()

    def _restore(self, folder: Path) -> tuple[int, dict | None]:
        acc, config = self.accelerator, self.config
        meta = state.read_state(folder)
        if meta["processes"] != acc.num_processes:
            raise InputError(
                f"--resume: {folder} was written by {meta['processes']} processes; resume with as many "
                f"(now {acc.num_processes}), or the random draws cannot continue exactly"
            )
        trained = state.read_tensors(folder / state.TRAINABLE)
        parameters = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in trained.items():
                parameters[name].copy_(value.to(parameters[name].device))
        rng = state.read_tensors(state.rng_file(folder, self.rank))
        self.generator.set_state(rng["generator"])
        torch.set_rng_state(rng["torch"])
        step = int(meta["step"])
        if acc.is_main_process:
            _truncate_log(config.output / LOSS_LOG, step)
        acc.wait_for_everyone()
        if step >= config.total_steps or config.stage_at(step)[0] != meta["stage"]:
            return step, None  # the next step starts a new stage: fresh optimizer and schedule
        optimizer = state.join_optimizer_state(
            state.read_tensors(folder / state.OPTIMIZER_TENSORS), meta["optimizer"]
        )
        return step, {"optimizer": optimizer, "scheduler": meta["scheduler"]}


def _truncate_log(log: Path, step: int) -> None:
    """Keep the loss log's records up to the checkpoint's step: the resumed run writes the rest."""
    if not log.is_file():
        return
    kept = [
        line for line in log.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step
    ]
    with atomic_write_path(log) as partial:
        partial.write_text("".join(line + "\n" for line in kept))


def train(config: TrainConfig, *, resume: bool = False, on_step: StepFn | None = None) -> TrainResult:
    return Trainer(config, resume=resume).run(on_step)
