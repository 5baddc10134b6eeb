"""A batch whose jobs ask for different LoRAs: each job runs with exactly the weights it asked for.

The transformer's weights are captured at the moment each job starts denoising and compared bit for
bit with a fresh load of the tiny model with that job's adapters.
"""

import torch
from safetensors.torch import save_file

from skyaudio_cli.model.checkpoint import load_transformer
from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline
from skyaudio_cli.weights import resolve_model


def _loras(folder):
    generator = torch.Generator().manual_seed(11)
    first = folder / "first.safetensors"
    save_file(
        {
            "diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.randn(2, 64, generator=generator),
            "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.randn(64, 2, generator=generator),
            "diffusion_model.blocks.0.self_attn.q.alpha": torch.tensor(1.0),
        },
        str(first),
    )
    second = folder / "second.safetensors"
    save_file(
        {
            "lora_unet_blocks_1_audio_cross_attn_proj.lora_down.weight": torch.randn(
                4, 64, generator=generator
            ),
            "lora_unet_blocks_1_audio_cross_attn_proj.lora_up.weight": torch.randn(
                64, 4, generator=generator
            ),
            "diffusion_model.blocks.0.self_attn.q.diff_b": torch.randn(64, generator=generator),
        },
        str(second),
    )
    return first, second


def test_each_job_gets_exactly_its_loras(
    tmp_path, clips, job_line, write_manifest, batch_cli, tiny_model, monkeypatch
):
    first, second = _loras(tmp_path)
    asked = [[f"{first}"], [f"{second}:0.5", f"{first}:-2"], [], [f"{first}"]]
    expected_adapters = [[(first, 1.0)], [(second, 0.5), (first, -2.0)], [], [(first, 1.0)]]
    lines = [job_line(clips[0], tmp_path / f"out{n}.mp4", lora=loras) for n, loras in enumerate(asked)]
    manifest = write_manifest(tmp_path / "jobs.jsonl", lines)

    seen = []
    original_stream = TalkingVideoPipeline.stream

    def recording_stream(self, **kwargs):
        seen.append({name: value.detach().clone() for name, value in self.transformer.state_dict().items()})
        return original_stream(self, **kwargs)

    monkeypatch.setattr(TalkingVideoPipeline, "stream", recording_stream)
    code, results, stderr = batch_cli(manifest)

    assert code == 0, stderr
    assert [result["status"] for result in results] == ["ok"] * 4
    assert [result["load_seconds"] > 0 for result in results] == [True, False, False, False]  # one load
    sources = resolve_model(str(tiny_model)).components["transformer"]
    for weights, adapters in zip(seen, expected_adapters, strict=True):
        fresh = load_transformer(sources, dtype=torch.float32, adapters=adapters).state_dict()
        assert weights.keys() == fresh.keys()
        assert all(torch.equal(weights[name], fresh[name]) for name in fresh)
    assert not torch.equal(seen[0]["blocks.0.attn1.to_q.weight"], seen[2]["blocks.0.attn1.to_q.weight"])
