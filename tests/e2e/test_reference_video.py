"""Following a reference video (InfiniteTalk's video-to-video mode) on the tiny model.

Real media: the moving astronaut video re-encoded at 25, 30 and 29.97 fps. The window loops and the
transformer run for real around the linear `FastVAE`. Expected source frames are computed here from
time alone: model frame k (25 fps) shows the source frame covering k / 25 s, on a source looped
back and forth (ping-pong) or held on its last frame (freeze).
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from skyaudio_cli.errors import InputError
from skyaudio_cli.long_video.known_latents import KnownLatents
from skyaudio_cli.long_video.reference_video import KEYFRAME_SPACING, ReferenceVideo
from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.media.image import resize_center_crop
from skyaudio_cli.media.video import VideoWriter, iter_frames, probe_video
from skyaudio_cli.tasks.generate import run_generate
from skyaudio_cli.tasks.jobs import GenerateJob, Settings
from skyaudio_cli.tasks.registry import resolve

from .fast_vae import FastVAE
from .synthetic import tone
from .test_long_video import _cache_with

SIZE = 32
AUDIO_FRAMES = 146  # 5.84 s: three windows (starts 0, 64, 128 for skyreels; 0, 76 for infinitetalk)


@pytest.fixture(scope="module")
def videos(tmp_path_factory, moving_face_frames):
    """The 30-frame moving face at each rate (1.2 s at 25 fps, 1.0 s at 30): shorter than the audio."""
    folder = tmp_path_factory.mktemp("followed")
    paths = {}
    for fps in (25, 30, 30000 / 1001):
        paths[fps] = folder / f"face_{fps:.3f}.mp4"
        with VideoWriter(paths[fps], fps=fps, width=320, height=240, crf=12) as writer:
            writer.write(moving_face_frames)
    return paths


def expected_source(k: int, fps: float, num_source: int, loop: str) -> int:
    """Source frame at model frame k, by time: floor(k / 25 s * fps), then looped."""
    i = math.floor(Fraction(k, 25) * Fraction(fps).limit_denominator(1001))
    if i < num_source:
        return i
    if loop == "freeze":
        return num_source - 1
    period = 2 * (num_source - 1)
    phase = i % period
    return phase if phase < num_source else period - phase


def timeline_frame(k: int) -> int:
    """The last window runs past the audio's end; its frames mirror back, as its audio does."""
    return k if k < AUDIO_FRAMES else 2 * AUDIO_FRAMES - 1 - k


def fitted(frame: np.ndarray) -> torch.Tensor:
    """The frame as the pipeline's portrait: cover-resize + centre crop, [3, H, W] in [-1, 1]."""
    pixels = np.asarray(resize_center_crop(Image.fromarray(frame), SIZE, SIZE), dtype=np.float32)
    return torch.from_numpy(pixels).permute(2, 0, 1) / 127.5 - 1.0


def run_spied(pipe, monkeypatch, **kwargs):
    """Run a stream; record the CLIP inputs and the I2V condition videos of every window."""
    clip_inputs, conditions = [], []
    encode_image, prepare_condition = pipe.encode_image, pipe.prepare_condition

    def spy_clip(frames):
        clip_inputs.append(frames.clone())
        return encode_image(frames)

    def spy_condition(video, known):
        conditions.append((video.clone(), known.clone()))
        return prepare_condition(video, known)

    with monkeypatch.context() as patched:
        patched.setattr(pipe, "encode_image", spy_clip)
        patched.setattr(pipe, "prepare_condition", spy_condition)
        stream = pipe.stream(audio=tone(AUDIO_FRAMES), resolution=f"{SIZE}x{SIZE}", steps=1, **kwargs)
        frames = np.concatenate(list(stream.frames))
    return stream, frames, clip_inputs, conditions


# Every rate with the ping-pong loop; freeze at one (the loop only changes the index arithmetic).
@pytest.mark.parametrize(
    ("fps", "loop"), [(25, "pingpong"), (30, "pingpong"), (30000 / 1001, "pingpong"), (30, "freeze")]
)
def test_each_window_is_conditioned_on_the_source_frame_at_its_time(
    fast_pipe, videos, monkeypatch, fps, loop
):
    decoded = np.stack(list(iter_frames(videos[fps])))
    assert len(decoded) == 30
    stream, frames, clip_inputs, conditions = run_spied(
        fast_pipe, monkeypatch, reference_video=ReferenceVideo.open(videos[fps], loop=loop),
        long_video_mode="infinitetalk",
    )  # fmt: skip
    assert frames.shape == (AUDIO_FRAMES, SIZE, SIZE, 3)
    starts = [0, 76]  # infinitetalk windows: 81 frames, 5 motion frames, no drop
    # The first CLIP input is the portrait (the video's first frame); then one per window.
    assert len(clip_inputs) == 1 + len(starts) == 1 + len(conditions)
    for start, tokens_of, (video, known) in zip(starts, clip_inputs[1:], conditions, strict=True):
        want = fitted(decoded[expected_source(start, fps, 30, loop)])
        torch.testing.assert_close(tokens_of[0], want, rtol=0, atol=1e-6)
        torch.testing.assert_close(video[0, :, 0], want, rtol=0, atol=1e-6)  # the I2V condition frame
        assert known[0] and not known[1:].any()
    # The window at 76 (3.04 s) is past the source's end: looped, not the last frame, unless frozen.
    late = expected_source(76, fps, 30, loop)
    assert (late == 29) == (loop == "freeze")


def test_skyreels_windows_end_on_the_source_frame_at_their_end(fast_pipe, videos, monkeypatch):
    decoded = np.stack(list(iter_frames(videos[30])))
    stream, _, clip_inputs, conditions = run_spied(
        fast_pipe, monkeypatch, reference_video=ReferenceVideo.open(videos[30]), long_video_mode="skyreels"
    )
    starts = [0, 64, 128]  # 81 frames, 5 motion frames, 12 dropped: no preview window when following
    assert stream.windows == len(conditions) == len(starts) == len(clip_inputs) - 1
    for start, tokens_of, (video, known) in zip(starts, clip_inputs[1:], conditions, strict=True):
        torch.testing.assert_close(tokens_of[0], fitted(decoded[expected_source(start, 30, 30, "pingpong")]))
        end = fitted(decoded[expected_source(timeline_frame(start + 80), 30, 30, "pingpong")])
        torch.testing.assert_close(video[0, :, -1], end, rtol=0, atol=1e-6)
        assert known[-5:].all()  # the release's 5-frame keyframe slot holds the source's frame


def test_keyframe_latents_are_the_encoded_source_noised_to_every_step(fast_pipe, videos, monkeypatch):
    fps, loop, steps = 30, "pingpong", 3
    decoded = np.stack(list(iter_frames(videos[fps])))
    imposed = []  # (known latents, t, noise it drew, result)
    impose = KnownLatents.impose

    def spy(self, latents, t):
        state = self.generator.get_state() if self.generator is not None else None
        result = impose(self, latents, t)
        noise = None
        if state is not None:
            noise = torch.randn(self.clean.shape, generator=torch.Generator().set_state(state))
        imposed.append((self, t, noise, result))
        return result

    monkeypatch.setattr(KnownLatents, "impose", spy)
    stream = fast_pipe.stream(
        reference_video=ReferenceVideo.open(videos[fps], loop=loop), audio=tone(AUDIO_FRAMES),
        resolution=f"{SIZE}x{SIZE}", steps=steps, long_video_mode="infinitetalk",
    )  # fmt: skip
    list(stream.frames)
    keyframes = [j for j in range(1, 21) if (4 * j) % KEYFRAME_SPACING == 0]
    assert keyframes == [5, 10, 15, 20]  # every 5th latent of the 21
    followed = {}
    for held, t, noise, result in imposed:
        if held.noised and held.mask.flatten().tolist() == [float(j in keyframes) for j in range(21)]:
            followed.setdefault(id(held), (held, []))[1].append((t, noise, result))
    assert len(followed) == 2  # one per window
    for start, (held, calls) in zip([0, 76], followed.values(), strict=True):
        clip = torch.stack(
            [
                fitted(decoded[expected_source(timeline_frame(k), fps, 30, loop)])
                for k in range(start, start + 81)
            ]
        )
        encoded = FastVAE().encode(clip.transpose(0, 1)[None])
        torch.testing.assert_close(held.clean[:, :, keyframes], encoded[:, :, keyframes], rtol=0, atol=1e-6)
        timesteps = [t for t, _, _ in calls]
        assert len(timesteps) == steps + 1 and timesteps[-1] == 0  # before the first step, after each
        for t, noise, result in calls:
            sigma = t / 1000
            want = (1 - sigma) * encoded + sigma * noise
            torch.testing.assert_close(result[:, :, keyframes], want[:, :, keyframes], rtol=0, atol=1e-5)


def test_motion_frames_still_chain_what_was_generated(fast_pipe, videos, monkeypatch):
    """Later windows re-impose the generated tail as motion latents, not the source's frames."""
    imposed = []
    impose = KnownLatents.impose

    def spy(self, latents, t):
        imposed.append(self)
        return impose(self, latents, t)

    monkeypatch.setattr(KnownLatents, "impose", spy)
    stream = fast_pipe.stream(
        reference_video=ReferenceVideo.open(videos[25]), audio=tone(AUDIO_FRAMES),
        resolution=f"{SIZE}x{SIZE}", steps=1, long_video_mode="infinitetalk",
    )  # fmt: skip
    frames = np.concatenate(list(stream.frames))
    motion = [held for held in imposed if not held.noised]  # infinitetalk's clean motion latents
    last_motion = motion[-1].clean[:, :, :2]
    # The second window's motion frames are output frames 76..80, the first window's last five
    # (written as uint8: rounding moves the linear latents by < 0.02).
    tail = torch.from_numpy(frames[76:81]).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    torch.testing.assert_close(last_motion, FastVAE().encode(tail), rtol=0, atol=0.02)
    decoded = np.stack(list(iter_frames(videos[25])))
    source = torch.stack([fitted(decoded[expected_source(k, 25, 30, "pingpong")]) for k in range(76, 81)])
    assert (FastVAE().encode(source.transpose(0, 1)[None]) - last_motion).abs().max() > 0.1


def test_in_memory_frames_and_refusals(fast_pipe, moving_face_frames, portrait_png):
    video = ReferenceVideo.from_frames(list(moving_face_frames[:4]), fps=25, loop="freeze")
    stream = fast_pipe.stream(reference_video=video, audio=tone(9), resolution=f"{SIZE}x{SIZE}", steps=1)
    assert np.concatenate(list(stream.frames)).shape == (9, SIZE, SIZE, 3)
    assert video.model_frame_sources(9, 25, 9 / 25) == [0, 1, 2, 3, 3, 3, 3, 3, 3]
    with pytest.raises(InputError, match="exactly one of portrait"):
        fast_pipe.stream(reference_video=video, portrait=Image.open(portrait_png), audio=tone(9))
    with pytest.raises(InputError, match="fusion"):
        fast_pipe.stream(reference_video=video, audio=tone(9), long_video_mode="fusion")
    with pytest.raises(InputError, match="uint8 RGB frames"):
        ReferenceVideo.from_frames(np.zeros((2, 8, 8), np.uint8))


HUMO_FRAMES = 97 + 60  # two fused windows: latents [0, 25) and [20, 40), i.e. frames 0 and 80 on


def test_humo_fused_windows_take_their_reference_latent_from_the_source(humo_pipe, videos, monkeypatch):
    decoded = np.stack(list(iter_frames(videos[30])))
    calls = []
    forward = humo_pipe.transformer.forward

    def spy(*args, **kwargs):
        calls.append(kwargs["hidden_states"])
        return forward(*args, **kwargs)

    monkeypatch.setattr(humo_pipe.transformer, "forward", spy)
    stream = humo_pipe.stream(
        reference_video=ReferenceVideo.open(videos[30]), audio=tone(HUMO_FRAMES), resolution="64x64", steps=1
    )
    assert np.concatenate(list(stream.frames)).shape == (HUMO_FRAMES, 64, 64, 3)
    assert stream.windows == len(calls) == 2
    # 3.2 s into a 1 s source at 30 fps: frame 96 of the ping-pong timeline, i.e. source frame 20.
    assert expected_source(80, 30, 30, "pingpong") == 20
    for start, hidden in zip([0, 80], calls, strict=True):
        frame = Image.fromarray(decoded[expected_source(start, 30, 30, "pingpong")])
        reference = humo_pipe.encode_portrait(frame, 64, 64)[0, :, 0]
        # humo-17b: after 16 noise + 4 mask channels; humo-1.7b: the extra latent frame itself.
        extra = hidden[:, 20:, -1] if humo_pipe.architecture.masked_condition else hidden[:, :, -1]
        assert any(torch.equal(e, reference) for e in extra), f"window at frame {start}"
    other = humo_pipe.encode_portrait(Image.fromarray(decoded[0]), 64, 64)[0, :, 0]
    assert not torch.equal(other, humo_pipe.encode_portrait(Image.fromarray(decoded[20]), 64, 64)[0, :, 0])


# -- generate jobs with a video portrait ----------------------------------------------------


@pytest.mark.parametrize(("reference_mode", "windows"), [(None, 2), ("first-frame", 3)])
def test_generate_lasts_as_long_as_the_audio_at_the_output_fps(
    tmp_path, fast_pipe, tiny_model, videos, make_wav, reference_mode, windows
):
    audio = make_wav(tmp_path / "speech.wav", tone(100)[:-123])  # 3.99 s
    settings = Settings(
        model=str(tiny_model), device="cpu", dtype="fp32", resolution="32x32", steps=1, fps=30
    )
    job = GenerateJob(
        audio=audio, output=tmp_path / "o.mp4", portrait=videos[30], reference_mode=reference_mode,
        loop_mode="freeze", settings=settings,
    )  # fmt: skip
    result = run_generate(resolve("generate", job), pipelines=_cache_with(fast_pipe, settings))
    seconds = (100 * 640 - 123) / 16000
    info = probe_video(job.output)
    assert info.fps == 30 and info.has_audio
    assert info.num_frames == math.ceil(seconds * 30) == result["frames"]
    assert abs(load_audio(job.output).size / 16000 - seconds) < 0.05
    # skyreels' preview window is made only from a single portrait; a followed video gives keyframes.
    assert result["windows"] == windows
    assert result["reference_mode"] == (reference_mode or "follow")


def test_image_portrait_defaults_to_first_frame_and_refuses_follow(
    tmp_path, run_cli, tiny_model, portrait_png, speech_wav
):
    job = GenerateJob(audio=speech_wav, output=tmp_path / "o.mp4", portrait=portrait_png)
    assert not job.follows_video and not job.portrait_is_video
    out = tmp_path / "x.mp4"
    code, _, err = run_cli(
        ["generate", "-p", portrait_png, "-a", speech_wav, "-m", tiny_model, "-o", out, "--reference-mode",
         "follow"]
    )  # fmt: skip
    assert code == 2 and "--reference-mode follow" in err and "is not a video" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_follow_with_latent_fusion_is_refused_before_loading(
    tmp_path, run_cli, tiny_model, videos, speech_wav, monkeypatch
):
    from skyaudio_cli.tasks import generate as run

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(run, "load_pipeline", no_loading)
    out = tmp_path / "x.mp4"
    code, _, err = run_cli(
        ["generate", "-p", videos[30], "-a", speech_wav, "-m", tiny_model, "-o", out, "--long-video-mode",
         "fusion", "--device", "cpu"]
    )  # fmt: skip
    assert code == 2 and "--long-video-mode fusion" in err and not out.exists()
    code, _, err = run_cli(
        ["generate", "-p", videos[30], "-a", speech_wav, "-m", tiny_model, "-o", out, "--reference-mode",
         "sideways"]
    )  # fmt: skip
    assert code == 2 and "--reference-mode" in err


def test_edit_lipsync_refuses_humo_before_loading(
    tmp_path, run_cli, humo_model, videos, speech_wav, monkeypatch
):
    from skyaudio_cli.tasks import edit_lipsync as run_lipsync

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(run_lipsync, "load_pipeline", no_loading)
    out = tmp_path / "x.mp4"
    for mode in ("mask", "full-frame"):
        code, _, err = run_cli(
            ["edit-lipsync", "--mode", mode, "-v", videos[25], "-a", speech_wav, "-m", humo_model, "-o", out]
        )
        assert code == 2 and "conditioned on a reference image" in err and len(err.strip().splitlines()) == 1
