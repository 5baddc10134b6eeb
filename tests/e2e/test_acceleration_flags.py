"""`generate` with the acceleration flags: they reach the pipeline, and unusable ones fail early."""

import json

import numpy as np
import pytest
from PIL import Image

from skyaudio_cli.errors import EXIT_NOT_AVAILABLE
from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.model.acceleration import FP8_STORAGE, Acceleration
from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline

from .synthetic import tone


def test_cache_mag_is_refused_before_loading(tmp_path, run_cli, portrait_png, speech_wav):
    args = ["generate", "-p", portrait_png, "-a", speech_wav, "-m", tmp_path / "no-such-model"]
    code, stdout, _ = run_cli([*args, "-o", tmp_path / "out.mp4", "--cache", "mag", "--json"])
    assert code == EXIT_NOT_AVAILABLE
    assert "--cache mag" in json.loads(stdout)["error"]


def test_fp8_and_first_block_cache_run_the_whole_pipeline(tiny_model, portrait_png, speech_wav):
    portrait = Image.open(portrait_png).convert("RGB")
    speech = load_audio(speech_wav)[:8000]
    plain = TalkingVideoPipeline.from_pretrained(tiny_model, device="cpu", dtype="fp32")
    cached = TalkingVideoPipeline.from_pretrained(
        tiny_model,
        device="cpu",
        dtype="fp32",
        acceleration=Acceleration(cache="first-block", cache_threshold=0.0),
    )
    fp8 = TalkingVideoPipeline.from_pretrained(
        tiny_model, device="cpu", dtype="fp32", acceleration=Acceleration(fp8=True)
    )
    assert fp8.transformer.blocks[0].ffn.net[2].weight.dtype == FP8_STORAGE

    def frames(pipe):
        return pipe(portrait=portrait, audio=speech, resolution="64x64").frames

    expected = frames(plain)
    np.testing.assert_array_equal(frames(cached), expected)
    assert frames(fp8).shape == expected.shape


def plain_and_cached(pipeline_class, model):
    """The pipeline without and with the first-block cache at threshold 0, which never skips: the
    cached output must be the plain one exactly."""
    plain = pipeline_class.from_pretrained(model, device="cpu", dtype="fp32")
    cached = pipeline_class.from_pretrained(
        model, device="cpu", dtype="fp32", acceleration=Acceleration(cache="first-block", cache_threshold=0.0)
    )
    return plain, cached


@pytest.mark.parametrize("num_frames", [13, 157])  # HuMo: one UniPC window; two fused windows
def test_first_block_cache_runs_humo_and_fused_windows(humo_model, portrait_image, num_frames):
    from skyaudio_cli.pipeline.humo import HumoPipeline

    plain, cached = plain_and_cached(HumoPipeline, humo_model)  # each fused window has its own context

    def frames(pipe):
        return pipe(portrait=portrait_image, audio=tone(num_frames), resolution="64x64", steps=2).frames

    np.testing.assert_array_equal(frames(cached), frames(plain))


def test_first_block_cache_runs_the_a2v_fusion_mode(tiny_model, portrait_image):
    plain, cached = plain_and_cached(TalkingVideoPipeline, tiny_model)

    def frames(pipe):
        return pipe(
            portrait=portrait_image, audio=tone(146), resolution="32x32", steps=1, long_video_mode="fusion"
        ).frames

    np.testing.assert_array_equal(frames(cached), frames(plain))
