"""HuMo beyond one window: sliding-window latent fusion on tiny models in both release layouts."""

import json
import math

import numpy as np
import pytest
import torch

from skyaudio_cli.conditioning.audio_stream import WhisperFeatureStream
from skyaudio_cli.conditioning.audio_windows import humo_latent_windows
from skyaudio_cli.long_video.windows import plan_latent_windows
from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.media.video import probe_video
from skyaudio_cli.pipeline.family import GenerationOptions
from skyaudio_cli.sampling.flow_euler import sample_euler
from skyaudio_cli.sampling.unipc import unipc_timesteps

FRAMES = 97 + 60  # two fused windows: latents [0, 25) and [20, 40)
SHORT_FRAMES = 13  # 4 latents, one window


def speech_of(speech_wav, num_frames: int) -> np.ndarray:
    """Speech tiled to exactly `num_frames` video frames at 25 fps."""
    speech = load_audio(speech_wav)
    return np.resize(speech, num_frames * 640).astype(np.float32)


# One layout is enough for the CLI path; the layouts differ only in conditioning (tested below).
@pytest.mark.parametrize("humo_model", ["humo-1.7b"], indirect=True)
def test_cli_long_audio_writes_every_frame_with_sound(tmp_path, run_cli, humo_model, speech_wav, make_wav):
    audio = make_wav(tmp_path / "long.wav", speech_of(speech_wav, FRAMES)[:-100])
    out = tmp_path / "long.mp4"
    code, stdout, stderr = run_cli(
        ["generate", "--model", humo_model, "--prompt", "A man talks", "--audio", audio, "-o", out,
         "--json", "--device", "cpu", "--dtype", "fp32", "--resolution", "64x64", "--steps", "1"]
    )  # fmt: skip
    assert code == 0, stderr
    result = json.loads(stdout)
    seconds = (FRAMES * 640 - 100) / 16000
    assert result["windows"] == 2 and result["long_video_mode"] == "fusion"
    info = probe_video(out)
    assert info.has_audio
    assert info.num_frames == math.ceil(seconds * 25) == FRAMES == result["frames"]


def test_every_window_sees_the_reference_and_its_global_audio_windows(
    humo_pipe, portrait_image, speech_wav, monkeypatch
):
    audio = speech_of(speech_wav, FRAMES)
    calls = []
    forward = humo_pipe.transformer.forward

    def spy(*args, **kwargs):
        calls.append((kwargs["hidden_states"], kwargs["audio_embeds"]))
        return forward(*args, **kwargs)

    monkeypatch.setattr(humo_pipe.transformer, "forward", spy)
    stream = humo_pipe.stream(portrait=portrait_image, audio=audio, resolution="64x64", steps=1)
    frames = np.concatenate(list(stream.frames))
    assert frames.shape == (FRAMES, 64, 64, 3)

    stream_features = WhisperFeatureStream(humo_pipe.audio_encoder, audio, 25.0)
    assert stream_features.num_frames == FRAMES  # the audio is a whole number of frames long
    features = stream_features.rows(range(FRAMES))
    everywhere = humo_latent_windows(features, 40)
    reference = humo_pipe.encode_portrait(portrait_image, 64, 64)[0, :, 0]
    windows = plan_latent_windows(40, window=25, overlap=5)
    assert [(w.start, w.stop) for w in windows] == [(0, 25), (20, 40)]
    assert len(calls) == len(windows)  # one step: one batched forward per window
    for window, (hidden, audio_embeds) in zip(windows, calls, strict=True):
        length = window.stop - window.start
        assert hidden.shape[2] == audio_embeds.shape[1] == length + 1
        heard = [a for a in audio_embeds if a.abs().max() > 0]
        assert heard, "no pass heard the audio"
        for a in heard:
            torch.testing.assert_close(a[:-1], everywhere[window.start : window.stop], rtol=0, atol=0)
            assert a[-1].abs().max() == 0  # the reference frame hears silence
        if (
            humo_pipe.architecture.masked_condition
        ):  # 4 mask channels (1 on the reference frame), then latents
            mask = hidden[:, 16:20]
            assert mask[:, :, :-1].abs().max() == 0 and (mask[:, :, -1] == 1).all()
            extra = hidden[:, 20:, -1]
        else:  # the reference is the extra latent frame itself
            extra = hidden[:, :, -1]
        assert any(torch.equal(e, reference) for e in extra)


def test_fusing_a_single_window_is_plain_euler_on_the_same_conditions(humo_pipe, portrait_image, speech_wav):
    # Audio that fits one window: the fused sampler (with its per-window reference latent) must
    # reduce to Euler over [video latents, reference latent] conditioned exactly like one window.
    audio = speech_of(speech_wav, SHORT_FRAMES)
    features = WhisperFeatureStream(humo_pipe.audio_encoder, audio, 25.0)
    text, negative = humo_pipe.encode_prompt("A woman talks", "")
    reference = humo_pipe.encode_portrait(portrait_image, 64, 64)
    guidance = humo_pipe.guidance(GenerationOptions().merged(humo_pipe.defaults), with_image=True)
    timesteps = unipc_timesteps(3, 5.0)
    (window,) = plan_latent_windows(4, window=25, overlap=5)

    def conditions(w):
        return humo_pipe.window_conditions(
            text,
            negative,
            reference,
            humo_pipe.window_audio(features, w),
            lambda n: humo_pipe.masked_conditions(reference, n),
        )

    seeded = torch.Generator().manual_seed(7)
    fused = torch.cat(
        list(humo_pipe.fused_latents((window,), conditions, guidance, timesteps, seeded)), dim=2
    )

    generator = torch.Generator().manual_seed(7)
    noise = torch.cat(
        [torch.randn(1, 16, 4, 8, 8, generator=generator), torch.randn(1, 16, 1, 8, 8, generator=generator)],
        2,
    )
    one_window = humo_pipe.window_conditions(
        text, negative, reference,
        humo_pipe.with_reference_window(humo_latent_windows(features.rows(range(SHORT_FRAMES)), 4)),
        lambda n: humo_pipe.masked_conditions(reference, n),
    )  # fmt: skip
    expected = sample_euler(humo_pipe.guided_velocity(one_window, guidance), noise, timesteps)[:, :, :-1]
    torch.testing.assert_close(fused, expected, rtol=0, atol=0)
