"""Fine-tuning the HuMo families (tiny humo-1.7b and humo-17b): what `dataset build` caches per clip,
checked against `HumoPipeline`'s own conditioning, an overfit, exact resume, the refusals, and the
trained LoRA in `generate`."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from .conftest import CLIP_FRAMES
from .test_train import write_config

LAYOUTS = ["humo-1.7b", "humo-17b"]


@pytest.fixture(scope="module", params=LAYOUTS)
def humo(request, tmp_path_factory, talking_video):
    """(layout, tiny model, dataset built from the talking video) for each HuMo layout."""
    from skyaudio_cli.tiny import make_tiny
    from skyaudio_cli.training.dataset import BuildOptions, build_dataset

    root = tmp_path_factory.mktemp(request.param)
    model = make_tiny(root / "model", layout=request.param)
    report = build_dataset([talking_video], root / "data", BuildOptions(model=str(model), clip_frames=CLIP_FRAMES))
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
