"""Fine-tuning the HuMo families (tiny humo-1.7b and humo-17b): what `dataset build` caches per clip,
checked against `HumoPipeline`'s own conditioning, an overfit, exact resume, the refusals, and the
trained LoRA in `generate`."""

import json
import shutil

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from .conftest import CLIP_FRAMES
from .test_train import write_config
from .test_train_cli import _one_error_line, assert_lora_changes_generate

LAYOUTS = ["humo-1.7b", "humo-17b"]


@pytest.fixture(scope="module", params=LAYOUTS)
def humo(request, tmp_path_factory, talking_video):
    """(layout, tiny model, dataset built from the talking video) for each HuMo layout."""
    from skyaudio_cli.tiny import make_tiny
    from skyaudio_cli.training.dataset import BuildOptions, build_dataset

    root = tmp_path_factory.mktemp(request.param)
    model = make_tiny(root / "model", layout=request.param)
    report = build_dataset(
        [talking_video], root / "data", BuildOptions(model=str(model), clip_frames=CLIP_FRAMES)
    )
    return request.param, model, root / "data", report


def _pipeline(model):
    from skyaudio_cli.pipeline.humo import HumoPipeline

    return HumoPipeline.from_pretrained(model, device="cpu", dtype="fp32")


def test_cached_tensors_are_what_humo_inference_conditions_on(humo, talking_video):
    from skyaudio_cli.conditioning.audio_features import SAMPLE_RATE
    from skyaudio_cli.conditioning.audio_stream import feature_stream
    from skyaudio_cli.media.audio import load_audio, normalize_loudness
    from skyaudio_cli.media.video import iter_frames

    layout, model, data, report = humo
    assert report.new_clips >= 2
    entries = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    pipe = _pipeline(model)
    frames = list(iter_frames(talking_video, fps=pipe.defaults.fps))
    speech = load_audio(talking_video, SAMPLE_RATE)
    if pipe.defaults.loudness_lufs is not None:
        speech = normalize_loudness(speech, SAMPLE_RATE, target_lufs=pipe.defaults.loudness_lufs)
    rows = feature_stream(pipe.audio_encoder, speech, pipe.defaults.fps)
    table = rows.rows(range(rows.num_frames))
    for entry in entries:
        clip = load_file(str(data / entry["file"]))
        start, width, height = entry["start_frame"], entry["width"], entry["height"]
        latent_frames = (CLIP_FRAMES - 1) // 4 + 1
        assert "image_tokens" not in clip and "cond_image" not in clip
        assert clip["latents"].shape == (16, latent_frames, height // 8, width // 8)
        reference = pipe.encode_portrait(Image.fromarray(frames[start]), width, height)[0]
        assert torch.allclose(clip["reference"], reference, atol=1e-5)
        # The audio windows, written out from HuMo's rule: latent 0 hears 3 blanks then frames
        # s-2..s+2, latent i >= 1 frames s+4i-5 .. s+4i+2; rows outside the audio are zeros.
        expected = torch.zeros(latent_frames, 8, *table.shape[1:])
        for i in range(latent_frames):
            for slot in range(8):
                frame = start + 4 * i - 5 + slot
                if (i > 0 or slot >= 3) and 0 <= frame < table.shape[0]:
                    expected[i, slot] = table[frame]
        assert torch.equal(clip["audio"], expected)
        if start == 0:
            # A clip at the video's start hears what inference gives that clip as its own video.
            whole = pipe.encode_audio_windows(rows, latent_frames)[0]
            assert torch.equal(clip["audio"], whole[:latent_frames])
        assert clip["face"].shape == clip["lip"].shape == (latent_frames, height // 8, width // 8)
        if layout == "humo-17b":
            zero = pipe.zero_video_latents(reference[None], latent_frames)[0]
            assert torch.allclose(clip["zero_latents"], zero, atol=1e-5)
            # causal VAE: a shorter stage's zero video is the first latents of the cached one
            shorter = pipe.zero_video_latents(reference[None], 1)[0]
            assert torch.allclose(clip["zero_latents"][:, :2], shorter, atol=1e-5)
        else:
            assert "zero_latents" not in clip


STAGES = [
    {"name": "audio", "steps": 10, "lr": 1e-3, "frames": 5, "train": "audio"},
    {"name": "lora", "steps": 20, "lr": 3e-2, "frames": CLIP_FRAMES, "train": "lora",
     "conditioning": ["image", "text"]},
]  # fmt: skip
LORA = '[lora]\nrank = 4\nalpha = 8\ntargets = ["self_attn", "audio_attn"]\n'


def test_overfit_lowers_the_loss_and_scores_only_the_video_latents(humo, tmp_path):
    from skyaudio_cli.training.config import load_config
    from skyaudio_cli.training.trainer import Trainer

    layout, model, source, _ = humo
    data = one_clip(source, tmp_path)
    trainer = Trainer(load_config(write_config(tmp_path, data, model, stages=STAGES, extra=LORA)))
    # HuMo's audio attention is q/k/v/o: the audio_attn target found it.
    assert any(".audio_cross_attn.q.lora_A" in name for name, _ in trainer.groups["lora"])
    saved = trainer.generator.get_state()
    stages = trainer.config.stages
    fixed = [trainer.batch(stage) for stage in stages]
    text_only = trainer.batch(dataclasses_replace(stages[1], conditioning=("text",)))
    trainer.generator.set_state(saved)
    latents = (CLIP_FRAMES - 1) // 4 + 1
    batch = fixed[1]
    assert batch["clean"].shape[2] == latents + 1 and batch["weights"].shape[1] == latents
    assert batch["audio"].shape[1] == latents + 1 and not batch["audio"][:, -1].any()
    assert not text_only["clean"][:, :, -1].any()  # no reference: zeros, as without a portrait
    clip = trainer._clip(0)
    condition = batch["condition"][0]
    if layout == "humo-17b":
        # mask 1 on the extra frame only; the zero-video latents with the reference in that frame
        assert condition.shape[:2] == (20, latents + 1)
        assert (condition[:4, -1] == 1).all() and not condition[:4, :-1].any()
        assert torch.equal(condition[4:, :-1], clip["zero_latents"][:, :latents])
        expected_reference = (
            clip["zero_latents"][:, latents:] if text_only_drawn(batch) else clip["reference"]
        )
        assert torch.equal(condition[4:, -1:], expected_reference)
        assert torch.equal(text_only["condition"][0, 4:], clip["zero_latents"])
    else:
        assert torch.equal(condition, torch.zeros_like(clip["reference"]) if text_only_drawn(batch)
                           else clip["reference"])  # fmt: skip

    def held_loss(index):
        with torch.no_grad():
            return trainer.loss(trainer.model, fixed[index]).item()

    # The extra frame's target is not scored: changing it leaves the loss as it is.
    with torch.no_grad():
        changed = dict(batch, noise=batch["noise"].clone())
        changed["noise"][:, :, -1] += 5.0
        if layout == "humo-1.7b":  # its extra frame is replaced by the reference in the input
            assert trainer.loss(trainer.model, changed).item() == pytest.approx(held_loss(1), rel=1e-6)
    # The loss written out: HumoPipeline.model_input's layout, the video latents scored only.
    with torch.no_grad():
        s = batch["sigma"][:, None, None, None, None]
        x_t = (1 - s) * batch["clean"] + s * batch["noise"]
        if layout == "humo-17b":
            model_input = torch.cat([x_t, batch["condition"]], dim=1)
        else:
            model_input = torch.cat([x_t[:, :, :latents], batch["condition"]], dim=2)
        prediction = trainer.model(
            hidden_states=model_input, timestep=batch["sigma"] * 1000, encoder_hidden_states=batch["text"],
            audio_embeds=batch["audio"], return_dict=False,
        )[0]  # fmt: skip
        target = (batch["noise"] - batch["clean"])[:, :, :latents]
        expected = (batch["weights"][:, None] * (prediction[:, :, :latents] - target) ** 2).mean().item()
    assert held_loss(1) == pytest.approx(expected, rel=1e-5)
    before = [held_loss(0), held_loss(1)]
    trainer.run()
    after = [held_loss(0), held_loss(1)]
    assert after[0] < 0.95 * before[0] and after[1] < 0.95 * before[1]
    records = [json.loads(line) for line in (trainer.config.output / "loss.jsonl").read_text().splitlines()]
    assert {r["conditioning"] for r in records[10:]} == {"image", "text"}


def text_only_drawn(batch) -> bool:
    return batch["mode"] == "text" or not batch["clean"][:, :, -1].any()


def one_clip(source, tmp_path):
    """The dataset cut down to its first clip (a held-out draw then is that clip)."""
    data = tmp_path / "one"
    shutil.copytree(source, data)
    first = (data / "manifest.jsonl").read_text().splitlines()[0]
    (data / "manifest.jsonl").write_text(first + "\n")
    return data


def dataclasses_replace(stage, **changes):
    import dataclasses

    return dataclasses.replace(stage, **changes)


@pytest.mark.parametrize("mode", ["video", "masked"])
def test_video_and_masked_conditioning_are_refused_for_humo(mode, humo, tmp_path, run_cli):
    layout, model, data, _ = humo
    stages = [{"name": "s", "steps": 2, "lr": 1e-3, "frames": CLIP_FRAMES, "conditioning": ["image", mode]}]
    code, _, err = run_cli(["train", write_config(tmp_path, data, model, stages=stages)])
    assert code == 2
    family = json.loads((data / "dataset.json").read_text())["family"]
    assert _one_error_line(err) == (
        f"error: {tmp_path / 'train.toml'}: stages[0] (s) has conditioning '{mode}', which family "
        f"{family} cannot train (it can: image, text)"
    )
    assert not (tmp_path / "run").exists()


def test_text_only_conditioning_is_refused_for_a2v(built_dataset, tiny_model, tmp_path, run_cli):
    stages = [{"name": "s", "steps": 2, "lr": 1e-3, "frames": CLIP_FRAMES, "conditioning": "text"}]
    code, _, err = run_cli(["train", write_config(tmp_path, built_dataset[0], tiny_model, stages=stages)])
    assert code == 2
    assert "has conditioning 'text', which family" in _one_error_line(err)
    assert "(it can: image, video, masked)" in _one_error_line(err)
    assert not (tmp_path / "run").exists()


def test_resume_gives_the_same_losses(humo, tmp_path):
    from skyaudio_cli.training.config import load_config
    from skyaudio_cli.training.trainer import Trainer

    _, model, data, _ = humo
    stages = [{"name": "a", "steps": 6, "lr": 1e-3, "frames": CLIP_FRAMES, "conditioning": ["image", "text"],
               "train": ["audio", "lora"]}]  # fmt: skip
    whole_dir, parts_dir = tmp_path / "whole", tmp_path / "parts"
    whole_dir.mkdir(), parts_dir.mkdir()
    whole = load_config(write_config(whole_dir, data, model, stages=stages, extra=LORA))
    Trainer(whole).run()
    parts = load_config(write_config(parts_dir, data, model, stages=stages, extra=LORA, checkpoint_every=3))

    def stop_at_4(step, total, record):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(parts).run(stop_at_4)
    assert Trainer(parts, resume=True).run().resumed_from == 3

    def losses(config):
        return [json.loads(line)["loss"] for line in (config.output / "loss.jsonl").read_text().splitlines()]

    assert len(losses(whole)) == 6 and losses(parts) == losses(whole)
    resumed, uninterrupted = (load_file(str(c.output / "lora.safetensors")) for c in (parts, whole))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in resumed)


def test_cli_train_validates_and_its_lora_changes_generate(humo, tmp_path, run_cli, portrait_png, speech_wav):
    from skyaudio_cli.media.video import iter_frames

    _, model, data, _ = humo
    stages = [{"name": "lora", "steps": 3, "lr": 1e-2, "frames": CLIP_FRAMES, "train": ["lora", "audio"]}]
    validation = f'[validation]\nevery = 3\nportrait = "{portrait_png}"\naudio = "{speech_wav}"\nsteps = 2\n'
    code, out, err = run_cli(
        ["train", write_config(tmp_path, data, model, stages=stages, extra=LORA + validation), "--json"]
    )
    assert code == 0, err
    run = tmp_path / "run"
    assert json.loads(out)["status"] == "ok"
    assert [p.name for p in run.glob("validation-*")] == ["validation-0000003.mp4"]
    assert len(list(iter_frames(run / "validation-0000003.mp4"))) > 0
    tensors = load_file(str(run / "lora.safetensors"))
    assert "transformer.blocks.0.audio_cross_attn.q.diff" in tensors  # trained both ways: a full delta
    assert "transformer.blocks.0.attn1.to_q.lora_A.weight" in tensors

    assert_lora_changes_generate(run_cli, model, run / "lora.safetensors", portrait_png, speech_wav, tmp_path)
