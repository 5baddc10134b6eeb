"""`skyaudio train`: the weighted loss, the staged overfit, exact resume (with either optimizer, and its
TensorBoard scalars), bad input, the LoRA in generate."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from .conftest import CLIP_FRAMES


def write_config(folder, data, model, *, stages, extra="", checkpoint_every=100, checkpointing=False):
    text = f'model = "{model}"\ndata = "{data}"\noutput = "{folder / "run"}"\nseed = 3\ndtype = "fp32"\n'
    text += f"gradient_checkpointing = {json.dumps(checkpointing)}\ncheckpoint_every = {checkpoint_every}\n"
    text += extra + "\n"
    for stage in stages:
        text += "[[stages]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in stage.items())
    path = folder / "train.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def one_clip(built_dataset, tmp_path_factory):
    """The dataset cut down to its first clip."""
    source, _ = built_dataset
    data = tmp_path_factory.mktemp("one") / "data"
    shutil.copytree(source, data)
    first = (data / "manifest.jsonl").read_text().splitlines()[0]
    (data / "manifest.jsonl").write_text(first + "\n")
    return data


def test_weighted_flow_loss_is_the_formula():
    from skyaudio_cli.training.loss import weight_map, weighted_flow_loss

    prediction = torch.arange(3 * 2 * 2 * 2, dtype=torch.float32).reshape(1, 3, 2, 2, 2) / 10
    target = torch.ones_like(prediction)
    face = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]]]])
    lip = torch.tensor([[[[0.0, 0.5], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.25]]]])
    total, count = 0.0, 0
    for c in range(3):
        for f in range(2):
            for y in range(2):
                for x in range(2):
                    w = 1 + 2.0 * face[0, f, y, x].item() + 3.0 * lip[0, f, y, x].item()
                    total += w * (prediction[0, c, f, y, x].item() - 1.0) ** 2
                    count += 1
    loss = weighted_flow_loss(prediction, target, weight_map(face, lip, 2.0, 3.0))
    assert loss.item() == pytest.approx(total / count, rel=1e-6)


def test_training_sigmas_follow_the_sampler_shift():
    from skyaudio_cli.sampling.flow_euler import shifted_timesteps
    from skyaudio_cli.training.loss import shifted_sigma

    u = torch.linspace(1.0, 1.0 / 1000, 5, dtype=torch.float64)
    assert torch.allclose(shifted_sigma(u, 5.0) * 1000, shifted_timesteps(5, 5.0)[:-1])


def test_mask_weights_are_drawn_with_the_given_probabilities():
    from skyaudio_cli.training.loss import pick_mask_weights

    generator = torch.Generator().manual_seed(0)
    choices = ((0.4, 1.0, 1.0), (0.1, 1.0, 0.0), (0.5, 0.0, 1.0))
    draws = [pick_mask_weights(choices, (9.0, 9.0), generator) for _ in range(4000)]
    assert draws.count((1.0, 1.0)) / 4000 == pytest.approx(0.4, abs=0.03)
    assert draws.count((1.0, 0.0)) / 4000 == pytest.approx(0.1, abs=0.02)
    assert draws.count((0.0, 1.0)) / 4000 == pytest.approx(0.5, abs=0.03)
    assert pick_mask_weights((), (9.0, 2.0), generator) == (9.0, 2.0)


STAGES = [
    {"name": "audio", "steps": 30, "lr": 1e-3, "frames": 5, "train": "audio"},
    {"name": "lora", "steps": 30, "lr": 3e-2, "frames": CLIP_FRAMES, "train": "lora",
     "conditioning": ["image", "video", "masked"]},
]  # fmt: skip


def test_overfit_lowers_the_loss_in_every_stage_and_switches_stages(tmp_path, one_clip, tiny_model):
    from skyaudio_cli.training.config import load_config
    from skyaudio_cli.training.trainer import Trainer

    config = load_config(
        write_config(tmp_path, one_clip, tiny_model, stages=STAGES, extra="[lora]\nrank = 8\nalpha = 16\n")
    )
    trainer = Trainer(config)
    saved = trainer.generator.get_state()
    # One held-out draw per stage, image-conditioned (a masked draw would score only the mouth).
    fixed = [trainer.batch(dataclasses.replace(stage, conditioning=("image",))) for stage in config.stages]
    trainer.generator.set_state(saved)
    lora = dict(trainer.groups["lora"])
    audio = dict(trainer.groups["audio"])

    def held_loss(index):
        with torch.no_grad():
            return trainer.loss(trainer.model, fixed[index]).item()

    snapshots = {}
    before = {0: held_loss(0)}

    def on_step(step, total, record):
        if step == 30:
            snapshots["after_audio"] = ({n: p.detach().clone() for n, p in lora.items()},
                                        {n: p.detach().clone() for n, p in audio.items()})  # fmt: skip
            before["audio_after"] = held_loss(0)
            before[1] = held_loss(1)

    trainer.run(on_step)
    after_lora = held_loss(1)
    assert before["audio_after"] < 0.95 * before[0]
    assert after_lora < 0.95 * before[1]
    lora_after_audio, audio_after_audio = snapshots["after_audio"]
    # Stage 1 trained the audio layers only (LoRA B stays at its zero init), stage 2 the LoRA only.
    assert all(not p.any() for n, p in lora_after_audio.items() if "lora_B" in n)
    assert all(torch.equal(audio[n], v) for n, v in audio_after_audio.items())
    assert any(p.any() for n, p in lora.items() if "lora_B" in n)
    records = [json.loads(line) for line in (config.output / "loss.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records] == ["audio"] * 30 + ["lora"] * 30
    assert {r["conditioning"] for r in records[:30]} == {"image"}
    assert {r["conditioning"] for r in records[30:]} == {"image", "video", "masked"}
    assert (config.output / "lora.safetensors").is_file()


def tensorboard_scalars(folder):
    """Every scalar in the event files of `folder`, as TensorBoard reads them: {tag: [(step, value)]}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def assert_tensorboard_matches_the_loss_log(output):
    """The event files under output/tensorboard/ hold the loss log's values (as float32), step for step."""
    expected = {}
    for line in (output / "loss.jsonl").read_text().splitlines():
        record = json.loads(line)
        for tag, key in ((f"loss/{record['stage']}", "loss"), ("lr", "lr"), ("mask/face", "w_face"),
                         ("mask/lip", "w_lip")):  # fmt: skip
            expected.setdefault(tag, []).append((record["step"], float(np.float32(record[key]))))
    assert tensorboard_scalars(output / "tensorboard") == expected


@pytest.mark.parametrize("optimizer", ["adamw", "adamw8bit"])
def test_resume_gives_the_same_losses(optimizer, tmp_path, one_clip, tiny_model):
    from skyaudio_cli.training.config import load_config
    from skyaudio_cli.training.trainer import Trainer

    stages = [
        {"name": "a", "steps": 5, "lr": 1e-3, "frames": 5, "train": ["audio", "lora"]},
        # both trained in the stage resumed, so its 8-bit optimizer state (audio layers) is restored
        {"name": "b", "steps": 5, "lr": 1e-3, "frames": CLIP_FRAMES, "conditioning": ["image", "video"],
         "train": ["audio", "lora"]},
    ]  # fmt: skip
    extra = f'optimizer = "{optimizer}"\ntensorboard = true\n'
    extra += "[lora]\nrank = 2\n[loss]\nmask_choices = [[0.4, 1, 1], [0.1, 1, 0], [0.5, 0, 1]]\n"
    whole_dir, parts_dir = tmp_path / "whole", tmp_path / "parts"
    whole_dir.mkdir(), parts_dir.mkdir()
    whole = load_config(write_config(whole_dir, one_clip, tiny_model, stages=stages, extra=extra))
    Trainer(whole).run()
    parts = load_config(
        write_config(parts_dir, one_clip, tiny_model, stages=stages, extra=extra, checkpoint_every=3)
    )

    def stop_at_8(step, total, record):
        if step == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(parts).run(stop_at_8)
    assert sorted(p.name for p in parts.output.glob("checkpoint-*")) == [
        "checkpoint-0000003", "checkpoint-0000005", "checkpoint-0000006"
    ]  # fmt: skip
    stale = parts.output / ".checkpoint-0000009.partial"  # as a run killed while saving leaves it
    stale.mkdir()
    result = Trainer(parts, resume=True).run()
    assert not stale.exists()
    assert result.resumed_from == 6

    def losses(config):
        return [json.loads(line)["loss"] for line in (config.output / "loss.jsonl").read_text().splitlines()]

    assert len(losses(whole)) == 10 and all(np.isfinite(losses(whole)))
    assert losses(parts) == losses(whole)
    # The interrupted run logged steps 7 and 8 too; TensorBoard shows the resumed run's instead.
    assert_tensorboard_matches_the_loss_log(whole.output)
    assert_tensorboard_matches_the_loss_log(parts.output)
    moments = load_file(str(parts.output / "checkpoint-0000010" / "optimizer.safetensors"))
    # bitsandbytes: blockwise 8-bit moments (state1, state2) for the tensors of >= 4096 elements.
    dtypes = {moments[key].dtype for key in moments if key.endswith((".exp_avg", ".state1", ".state2"))}
    assert dtypes == ({torch.uint8, torch.float32} if optimizer == "adamw8bit" else {torch.float32})
    resumed, uninterrupted = (load_file(str(c.output / "lora.safetensors")) for c in (parts, whole))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in resumed)


@pytest.fixture(scope="module")
def two_resolutions(tmp_path_factory, tiny_model, talking_video):
    """The talking video cached at two resolutions: 32x32 and 48x32 (another size bucket)."""
    from skyaudio_cli.training.dataset import BuildOptions, build_dataset

    out = tmp_path_factory.mktemp("two") / "data"
    options = BuildOptions(model=str(tiny_model), clip_frames=CLIP_FRAMES, resolutions=("32x32", "48x32"))
    build_dataset([talking_video], out, options)
    return out


def test_stages_train_at_their_resolution_in_batches_of_one_size(tmp_path, two_resolutions, tiny_model):
    from skyaudio_cli.training.config import load_config
    from skyaudio_cli.training.dataset import read_manifest
    from skyaudio_cli.training.trainer import Trainer

    info, clips = read_manifest(two_resolutions)
    assert info["resolutions"] == ["32x32", "48x32"]
    by_resolution = {r: [c for c in clips if c["resolution"] == r] for r in info["resolutions"]}
    # Every clip is cached at both: the same clips, at each size.
    assert [c["start_frame"] for c in by_resolution["32x32"]] == [
        c["start_frame"] for c in by_resolution["48x32"]
    ]
    assert {(c["width"], c["height"]) for c in by_resolution["48x32"]} == {(48, 32)}
    stages = [
        {"name": "small", "steps": 2, "lr": 1e-3, "frames": 5},
        {"name": "wide", "steps": 2, "lr": 1e-3, "frames": 9, "resolution": "48x32", "batch_size": 3},
    ]
    config = load_config(write_config(tmp_path, two_resolutions, tiny_model, stages=stages))
    trainer = Trainer(config)
    small, wide = (trainer.batch(stage) for stage in config.stages)
    # Latents [B, 16, F_lat, H/8, W/8]: the first stage at the dataset's first resolution, one clip.
    assert small["clean"].shape == (1, 16, 2, 4, 4) and small["sigma"].shape == (1,)
    assert wide["clean"].shape == (3, 16, 3, 4, 6) and wide["sigma"].shape == (3,)
    for key, rest in (("condition", (20, 3, 4, 6)), ("weights", (3, 4, 6)), ("audio", (9,))):
        assert wide[key].shape[0] == 3 and wide[key].shape[1 : 1 + len(rest)] == rest
    # Each sample is one of the wide clips, cut to the stage's latents.
    cached = [trainer._clip(i)["latents"][:, :3] for i in trainer.at_resolution["48x32"]]
    for sample in wide["clean"]:
        assert any(torch.equal(sample, latents) for latents in cached)
    trainer.run()
    records = [json.loads(line) for line in (config.output / "loss.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records] == ["small", "small", "wide", "wide"]
    assert all(r["loss"] == r["loss"] for r in records)  # finite, not NaN


def test_a_stage_at_a_resolution_the_dataset_lacks_is_refused(tmp_path, two_resolutions, tiny_model, run_cli):
    stages = [{"name": "big", "steps": 1, "lr": 1e-3, "frames": 5, "resolution": "720p"}]
    code, _, stderr = run_cli(["train", write_config(tmp_path, two_resolutions, tiny_model, stages=stages)])
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "trains at 720p" in stderr and "32x32, 48x32" in stderr


def test_fp8_base_stores_the_frozen_weights_in_fp8_and_trains(tmp_path, one_clip, tiny_model):
    from skyaudio_cli.training.config import load_config
    from skyaudio_cli.training.trainer import Trainer

    stages = [
        {"name": "audio", "steps": 3, "lr": 1e-3, "frames": 5, "train": "audio"},
        {"name": "lora", "steps": 3, "lr": 1e-3, "frames": 5, "train": "lora"},
    ]
    config = load_config(
        write_config(tmp_path, one_clip, tiny_model, stages=stages, extra="fp8_base = true\n")
    )
    trainer = Trainer(config)
    weights = dict(trainer.model.named_parameters())
    frozen = next(p for n, p in weights.items() if n.endswith("attn1.to_q.base_layer.weight"))
    assert frozen.dtype == torch.float8_e4m3fn  # half of bf16, a quarter of fp32
    # What trains stays in fp32: the audio cross-attention (trained in full) and the LoRA.
    trained = {n: p for n, p in trainer.groups["audio"] + trainer.groups["lora"]}
    assert trained and all(p.dtype == torch.float32 for p in trained.values())
    assert any("audio_cross_attn" in n for n in trained)
    before = {n: p.detach().clone() for n, p in trained.items()}
    frozen_before = frozen.detach().clone()
    trainer.run()
    records = [json.loads(line) for line in (config.output / "loss.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(0 < r["loss"] < float("inf") for r in records)
    assert any(not torch.equal(before[n], p) for n, p in trained.items() if "audio_cross_attn" in n)
    assert any(not torch.equal(before[n], p) for n, p in trained.items() if "lora_B" in n)
    assert torch.equal(frozen.view(torch.uint8), frozen_before.view(torch.uint8))  # the base never moves
    # No casting hook on the trained layers: they are still fp32 after forward passes.
    assert all(p.dtype == torch.float32 for p in trained.values())


def test_gradient_checkpointing_recomputes_the_blocks_and_gives_the_same_gradients(
    tmp_path, one_clip, tiny_model
):
    from skyaudio_cli.training.config import load_config
    from skyaudio_cli.training.trainer import Trainer

    stages = [{"name": "lora", "steps": 1, "lr": 1e-3, "frames": 5, "train": ["lora", "audio"]}]
    gradients, calls = [], []
    for checkpointing in (False, True):
        folder = tmp_path / str(checkpointing)
        folder.mkdir()
        path = write_config(folder, one_clip, tiny_model, stages=stages, checkpointing=checkpointing)
        trainer = Trainer(load_config(path))
        trainer.model.train()
        block = trainer.model.blocks[0]
        counted, forward = [], block.forward

        def counting(*args, counted=counted, forward=forward, **kwargs):
            counted.append(1)
            return forward(*args, **kwargs)

        block.forward = counting
        trained = [p for _, p in trainer.groups["lora"] + trainer.groups["audio"]]
        for p in trained:
            p.requires_grad_(True)
        trainer.loss(trainer.model, trainer.batch(trainer.config.stages[0])).backward()
        gradients.append([p.grad.clone() for p in trained])
        calls.append(len(counted))
    assert calls == [1, 2]  # checkpointed: the block runs again during backward
    for plain, checkpointed in zip(*gradients, strict=True):
        torch.testing.assert_close(checkpointed, plain, rtol=1e-5, atol=1e-7)
