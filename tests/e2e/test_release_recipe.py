"""The releases' per-window recipe on the tiny pipeline: which text each window hears, what the
first window holds, and the guidance scales each family accepts."""

import math

import numpy as np
import pytest
import torch

from skyaudio_cli.conditioning.frames import frames_to_tensor
from skyaudio_cli.errors import InputError
from skyaudio_cli.media.image import resize_center_crop
from skyaudio_cli.pipeline.family import family_defaults

from .synthetic import tone


def texts_per_window(pipe, monkeypatch, **kwargs) -> list[torch.Tensor]:
    heard = []
    velocity_function = pipe.velocity_function

    def spy(conditions):
        heard.append(conditions.text)
        return velocity_function(conditions)

    with monkeypatch.context() as patched:
        patched.setattr(pipe, "velocity_function", spy)
        list(pipe.stream(resolution="32x32", steps=1, **kwargs).frames)
    return heard


def test_skyreels_windows_after_the_preview_hear_the_connection_prompt(
    fast_pipe, portrait_image, monkeypatch
):
    prompt = "A woman in a red coat talks"
    user, _ = fast_pipe.encode_prompt(prompt, "x")
    connection = fast_pipe.encode_text("a person is talking")
    assert not torch.equal(user, connection)

    heard = texts_per_window(fast_pipe, monkeypatch, portrait=portrait_image, audio=tone(146), prompt=prompt)
    assert len(heard) >= 3  # the preview, then the windows
    assert torch.equal(heard[0], user)
    assert all(torch.equal(text, connection) for text in heard[1:])

    kept = texts_per_window(
        fast_pipe, monkeypatch, portrait=portrait_image, audio=tone(146), prompt=prompt, keep_prompt=True
    )
    assert len(kept) == len(heard) and all(torch.equal(text, user) for text in kept)


def test_one_window_and_infinitetalk_windows_hear_the_users_prompt(fast_pipe, portrait_image, monkeypatch):
    user, _ = fast_pipe.encode_prompt("A man talks", "x")
    single = texts_per_window(
        fast_pipe, monkeypatch, portrait=portrait_image, audio=tone(60), prompt="A man talks"
    )
    assert len(single) == 1 and torch.equal(single[0], user)
    chained = texts_per_window(
        fast_pipe, monkeypatch, portrait=portrait_image, audio=tone(146), prompt="A man talks",
        long_video_mode="infinitetalk",
    )  # fmt: skip
    assert len(chained) >= 2 and all(torch.equal(text, user) for text in chained)


def first_window_latents(pipe, portrait_image, monkeypatch, mode: str) -> torch.Tensor:
    windows = []
    denoise = pipe.denoise

    def spy(*args, **kwargs):
        windows.append(denoise(*args, **kwargs))
        return windows[-1]

    monkeypatch.setattr(pipe, "denoise", spy)
    list(
        pipe.stream(
            portrait=portrait_image, audio=tone(100), resolution="32x32", steps=2, long_video_mode=mode
        ).frames
    )
    return windows[0]


def test_infinitetalk_holds_the_clean_reference_latent_in_its_first_window(
    fast_pipe, portrait_image, monkeypatch
):
    reference = frames_to_tensor(np.asarray(resize_center_crop(portrait_image, 32, 32))[None], 32, 32)
    encoded = fast_pipe.vae.encode(reference.transpose(0, 1)[None])
    held = first_window_latents(fast_pipe, portrait_image, monkeypatch, "infinitetalk")
    torch.testing.assert_close(held[:, :, :1], encoded, rtol=0, atol=0)
    # SkyReels-V3's first window only conditions on the reference; its latent 0 is sampled.
    sampled = first_window_latents(fast_pipe, portrait_image, monkeypatch, "skyreels")
    assert (sampled[:, :, :1] - encoded).abs().max() > 1e-3


@pytest.mark.parametrize(("text", "audio"), [(0.5, None), (None, 0.99), (0.0, 2.0)])
def test_skyreels_refuses_scales_its_release_would_not_run(text, audio):
    with pytest.raises(InputError, match="turns the term off"):
        family_defaults("skyreels-v3-a2v").check_scales(text, audio)


def test_other_families_accept_any_scale_their_release_runs():
    family_defaults("skyreels-v3-a2v").check_scales(1.0, 4.0)
    family_defaults("infinitetalk").check_scales(0.5, 0.0)  # InfiniteTalk runs its formula with them
    family_defaults("humo-17b").check_scales(0.5, 0.5)  # HuMo runs every pass whatever the scale


def test_cli_refuses_a_skyreels_scale_below_one_before_loading(
    run_cli, tiny_model, portrait_png, speech_wav, tmp_path
):
    out = tmp_path / "x.mp4"
    code, _, stderr = run_cli(
        ["generate", "--model", tiny_model, "--portrait", portrait_png, "--audio", speech_wav, "-o", out,
         "--text-scale", "0.5", "--device", "cpu"]
    )  # fmt: skip
    assert code == 2 and "--text-scale 0.5" in stderr and not out.exists()


def test_release_settings_per_family():
    infinitetalk = family_defaults("infinitetalk")
    assert infinitetalk.shift_for(None) == infinitetalk.shift_for("480p") == 7.0
    assert infinitetalk.shift_for("720p") == 11.0
    assert family_defaults("skyreels-v3-a2v").shift_for("480p") == 11.0
    for family in ("skyreels-v3-a2v", "infinitetalk"):
        assert family_defaults(family).negative_prompt.startswith("bright tones, overexposed, static")
    assert family_defaults("humo-17b").negative_prompt.startswith("色调艳丽")
    assert family_defaults("skyreels-v3-a2v").audio_frames == "ceil"
    assert infinitetalk.audio_frames == "floor"
    assert math.isclose(family_defaults("skyreels-v3-a2v").loudness_lufs, -23.0)
    assert family_defaults("humo-1.7b").loudness_lufs is None
