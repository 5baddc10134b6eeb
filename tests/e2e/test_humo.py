"""HuMo end to end on tiny models in both release layouts: text-only and portrait modes, conditioning."""

import json
import math

import numpy as np
import pytest
import torch

from skyaudio_cli.conditioning.audio_stream import WhisperFeatureStream
from skyaudio_cli.conditioning.audio_windows import humo_latent_windows
from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.media.video import probe_video
from skyaudio_cli.pipeline.humo import HumoConditions
from skyaudio_cli.sampling.humo_guidance import TA, TIA

SHORT = 8000  # 0.5 s at 16 kHz -> 13 frames -> 4 latent frames (+1 for the reference)


@pytest.fixture(scope="module")
def speech(speech_wav):
    return load_audio(speech_wav)[:SHORT]


def test_cli_text_only_and_portrait_modes_write_mp4_matching_audio(
    tmp_path, run_cli, humo_model, portrait_png, speech_wav, make_wav
):
    audio = make_wav(tmp_path / "short.wav", load_audio(speech_wav)[:SHORT])
    for extra in ([], ["--portrait", portrait_png]):
        out = tmp_path / f"talk{len(extra)}.mp4"
        code, stdout, stderr = run_cli(
            ["generate", "--model", humo_model, "--prompt", "A woman in a red coat talks", "--audio", audio,
             "-o", out, "--json", "--device", "cpu", "--dtype", "fp32", "--resolution", "64x64",
             "--steps", "2", *extra])  # fmt: skip
        assert code == 0, stderr
        result = json.loads(stdout)
        # Each layout is written as the tiny family of its architecture.
        assert result["model"] == {"humo-17b": "tiny-humo", "humo-1.7b": "tiny-humo-1.7b"}[humo_model.name]
        info = probe_video(out)
        assert info.has_audio and info.fps == 25 and (info.width, info.height) == (64, 64)
        assert info.num_frames == math.ceil(SHORT / 16000 * 25) == result["frames"]


def test_audio_windows_are_humos_per_latent_windows_then_a_zero_reference_window(humo_pipe, speech):
    # 8000 samples: HuMo keeps 2 x floor(8000 / 640) = 24 rows at 50 Hz -> 12 frames; the video's
    # 13th frame (ceil) lies past them and hears silence, as the release's windows do.
    stream = WhisperFeatureStream(humo_pipe.audio_encoder, speech, 25.0)
    assert stream.num_frames == 12
    windows = humo_pipe.encode_audio_windows(stream, 4)[0]
    features = humo_pipe.audio_encoder.encode(speech, 12)
    assert windows.shape == (5, 8, *features.shape[1:])
    # The stream interpolates row by row: equal to the one-shot interpolation to float rounding.
    torch.testing.assert_close(windows[:4], humo_latent_windows(features, 4), rtol=0, atol=1e-6)
    assert windows[4].abs().max() == 0


def test_reference_enters_as_the_layout_requires(humo_pipe, portrait_image):
    reference = humo_pipe.encode_portrait(portrait_image, 64, 64)
    latents = torch.randn(1, 16, 5, 8, 8)
    # humo-17b: concat(mask4, zero-video latents with the reference last)
    if humo_pipe.architecture.masked_condition:
        with_reference, without = humo_pipe.masked_conditions(reference, 4)
        zero_video = humo_pipe.vae.encode(torch.zeros(1, 3, 17, 64, 64))
        for condition in (with_reference, without):
            assert condition[0, :4, :-1].abs().max() == 0 and (condition[0, :4, -1] == 1).all()
        torch.testing.assert_close(without[:, 4:], zero_video)
        torch.testing.assert_close(with_reference[:, 4:, :-1], zero_video[:, :, :-1])
        torch.testing.assert_close(with_reference[:, 4:, -1:], reference)
        model_input = humo_pipe.model_input(latents, TIA, _conditions(reference, with_reference, without))
        torch.testing.assert_close(model_input, torch.cat([latents, with_reference], dim=1))
    else:  # humo-1.7b: the reference (or zeros) overwrites the extra latent frame
        conditions = _conditions(reference)
        with_reference = humo_pipe.model_input(latents, TIA, conditions)
        torch.testing.assert_close(with_reference[:, :, :-1], latents[:, :, :-1])
        torch.testing.assert_close(with_reference[:, :, -1:], reference)
        assert humo_pipe.model_input(latents, TA, conditions)[:, :, -1].abs().max() == 0


def _conditions(reference, condition=None, without=None):
    empty = torch.zeros(1)
    return HumoConditions(empty, empty, empty, reference, condition, without)


def test_passes_of_a_step_run_as_one_batched_forward(humo_pipe, portrait_image, speech, monkeypatch):
    batches, timesteps = [], []
    forward = humo_pipe.transformer.forward

    def spy(*args, **kwargs):
        batches.append(kwargs["hidden_states"].shape[0])
        timesteps.append(float(kwargs["timestep"][0]))
        return forward(*args, **kwargs)

    monkeypatch.setattr(humo_pipe.transformer, "forward", spy)
    with_portrait = humo_pipe(portrait=portrait_image, audio=speech, resolution="64x64", steps=2).frames
    text_only = humo_pipe(portrait=None, audio=speech, resolution="64x64", steps=2).frames
    passes_with_portrait = 3 if humo_pipe.architecture.masked_condition else 4
    assert batches == [passes_with_portrait] * 2 + [3] * 2
    assert timesteps == [999.0, 833.0] * 2  # UniPC's integer timesteps; the first is above the switch
    assert with_portrait.shape == text_only.shape == (13, 64, 64, 3)
    assert (with_portrait.astype(int) - text_only).any()


@pytest.mark.parametrize(
    ("source", "target"), [((300, 200), (128, 64)), ((200, 301), (64, 128)), ((97, 97), (64, 48))]
)
def test_reference_is_letterboxed_as_humo_fits_it(source, target):
    # generate.py: the long side to the frame, the other int()-truncated, Lanczos, white bars of
    # (excess // 2) before and the rest after.
    from PIL import Image

    from skyaudio_cli.pipeline.humo import letterbox

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (*source[::-1], 3), dtype=np.uint8))
    width, height = target
    if image.width / image.height > width / height:
        size = (width, int(width / (image.width / image.height)))
    else:
        size = (int(height * (image.width / image.height)), height)
    expected = np.full((height, width, 3), 255, np.uint8)
    left, top = (width - size[0]) // 2, (height - size[1]) // 2
    expected[top : top + size[1], left : left + size[0]] = np.asarray(image.resize(size, Image.LANCZOS))
    np.testing.assert_array_equal(np.asarray(letterbox(image, width, height)), expected)
