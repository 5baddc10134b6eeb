"""`generate` end to end on the tiny random model: real portrait, real speech, real mp4."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.media.video import probe_video
from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline
from skyaudio_cli.sampling.guidance import GuidanceScales


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return TalkingVideoPipeline.from_pretrained(tiny_model, device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def portrait(portrait_png):
    return Image.open(portrait_png).convert("RGB")


def small(pipe, portrait, audio, **kwargs):
    return pipe(portrait=portrait, audio=audio, resolution="64x64", **kwargs).frames


@pytest.fixture(scope="module")
def speech(speech_wav):
    return load_audio(speech_wav)[:8000]  # 0.5 s -> 13 frames


def test_generate_writes_mp4_matching_audio(tmp_path, run_cli, tiny_model, portrait_png, speech_wav):
    out = tmp_path / "talk.mp4"
    code, stdout, stderr = run_cli(
        ["generate", "-p", portrait_png, "-a", speech_wav, "-m", tiny_model, "-o", out, "--json",
         "--device", "cpu", "--dtype", "fp32"])  # fmt: skip
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["status"] == "ok" and result["random_weights"] is True
    assert "RANDOM weights" in stderr
    audio_seconds = load_audio(speech_wav).size / 16000
    info = probe_video(out)
    assert info.fps == 25 and info.has_audio
    assert info.num_frames == math.ceil(audio_seconds * 25) == result["frames"]
    assert 0 <= info.duration - audio_seconds < 1 / 25
    assert (info.width, info.height) == (128, 128)
    assert [p.name for p in tmp_path.iterdir()] == ["talk.mp4"]


def test_output_frame_rate_option(tmp_path, run_cli, tiny_model, portrait_png, make_wav):
    audio = make_wav(tmp_path / "a.wav", 0.3 * np.sin(np.linspace(0, 800, 16000)))  # 1.0 s
    out = tmp_path / "talk30.mp4"
    code, _, err = run_cli(
        ["generate", "-p", portrait_png, "-a", audio, "-m", tiny_model, "-o", out, "--fps", "30",
         "--resolution", "64x64", "--dtype", "fp32"])  # fmt: skip
    assert code == 0, err
    info = probe_video(out)
    assert info.fps == 30 and info.num_frames == 30


def test_same_seed_same_video_other_seed_differs(pipe, portrait, speech):
    first = small(pipe, portrait, speech, seed=3)
    again = small(pipe, portrait, speech, seed=3)
    other = small(pipe, portrait, speech, seed=4)
    assert first.shape == (13, 64, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_audio_drives_the_output(pipe, portrait, speech):
    with_speech = small(pipe, portrait, speech)
    with_silence = small(pipe, portrait, np.zeros_like(speech))
    assert not np.array_equal(with_speech, with_silence)


@pytest.mark.parametrize(
    ("text_scale", "audio_scale", "batch"), [(1.0, 1.0, 1), (1.0, 4.0, 2), (5.0, 4.0, 3)]
)
def test_guidance_passes_run_as_one_batched_forward(
    pipe, portrait, speech, monkeypatch, text_scale, audio_scale, batch
):
    batches = []
    forward = pipe.transformer.forward

    def spy(*args, **kwargs):
        batches.append(kwargs["hidden_states"].shape[0])
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipe.transformer, "forward", spy)
    small(pipe, portrait, speech, steps=3, text_scale=text_scale, audio_scale=audio_scale)
    assert len(GuidanceScales(text_scale, audio_scale).passes()) == batch
    assert batches == [batch] * 3


def test_guidance_changes_the_result(pipe, portrait, speech):
    plain = small(pipe, portrait, speech)
    guided = small(pipe, portrait, speech, text_scale=5.0, audio_scale=4.0)
    assert not np.array_equal(plain, guided)


def test_portrait_drives_the_output(pipe, portrait, speech):
    flipped = portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert not np.array_equal(small(pipe, portrait, speech), small(pipe, flipped, speech))


def test_zero_length_audio_is_refused(tmp_path, run_cli, tiny_model, portrait_png, make_wav):
    audio = make_wav(tmp_path / "empty.wav", np.zeros(0))
    code, _, err = run_cli(
        ["generate", "-p", portrait_png, "-a", audio, "-m", tiny_model, "-o", tmp_path / "o.mp4"]
    )
    assert code == 2 and "empty.wav" in err


def test_infinitetalk_layout_base_plus_adapter_runs(tmp_path_factory, portrait, speech):
    from skyaudio_cli.tiny import make_tiny

    folder = make_tiny(tmp_path_factory.mktemp("it") / "tiny-it", layout="infinitetalk")
    description = json.loads((folder / "skyaudio_model.json").read_text())
    assert description["components"]["transformer_adapter"].endswith("infinitetalk.safetensors")
    frames = small(TalkingVideoPipeline.from_pretrained(folder, device="cpu", dtype="fp32"), portrait, speech)
    assert frames.shape == (13, 64, 64, 3)
