"""edit-lipsync end to end on the tiny random model and a real face video (the astronaut, moving)."""

import json

import numpy as np
import pytest

from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.media.video import iter_frames, probe_video
from skyaudio_cli.pipeline.cache import PipelineCache
from skyaudio_cli.tasks.edit_lipsync import prepare_edit
from skyaudio_cli.tasks.jobs import EditLipsyncJob, Settings
from skyaudio_cli.tasks.registry import resolve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipelines():
    return PipelineCache()


def write_tone(folder, make_wav, seconds):
    t = np.arange(round(seconds * 16000)) / 16000
    return make_wav(
        folder / f"tone{seconds}.wav", 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(9 * t)) / 2
    )


@pytest.fixture(scope="module")
def tone(tmp_path_factory, make_wav):
    """0.3 s (8 frames): shorter than the 30-frame video."""
    return write_tone(tmp_path_factory.mktemp("audio"), make_wav, 0.3)


@pytest.fixture(scope="module")
def long_tone(tmp_path_factory, make_wav):
    """1.4 s (35 frames): longer than the 30-frame video."""
    return write_tone(tmp_path_factory.mktemp("audio"), make_wav, 1.4)


def job_for(video, audio, out, tiny_model, **kwargs):
    settings = Settings(model=str(tiny_model), device="cpu", dtype="fp32", resolution="64x64")
    return EditLipsyncJob(video=video, audio=audio, output=out, settings=settings, **kwargs)


def full_frame_mask(shape, crop, mask):
    full = np.zeros(shape[:2], np.uint8)
    left, top, right, bottom = crop.pixel_bounds()
    full[top:bottom, left:right] = mask
    return full


def test_only_the_masked_lower_face_changes(tmp_path, face_video, long_tone, tiny_model, pipelines):
    job = job_for(face_video, long_tone, tmp_path / "o.mp4", tiny_model)
    edit = prepare_edit(resolve("edit-lipsync", job), pipelines)
    decoded = list(iter_frames(face_video, fps=25))
    source = [decoded[i] for i in [*range(30), 28, 27, 26, 25, 24]]  # ping-pong past the end
    outputs = list(edit.frames)
    assert len(outputs) == 35 == edit.summary["frames"]  # follows the 1.4 s audio
    changed_inside = 0
    for i, (frame, crop, mask) in enumerate(outputs):
        full = full_frame_mask(frame.shape, crop, mask)
        assert frame.shape == source[i].shape
        assert np.array_equal(frame[full == 0], source[i][full == 0]), f"frame {i} changed outside the mask"
        changed_inside += int(not np.array_equal(frame[full > 0], source[i][full > 0]))
    faceless = [12, 13, 14]
    for i in faceless:
        assert np.array_equal(outputs[i][0], source[i])
    assert changed_inside == 35 - len(faceless)  # random weights: every face frame's mouth changed
    assert edit.stats["faceless"] == 3


def test_cli_writes_source_size_and_fps_for_the_audio_length(tmp_path, run_cli, face_video, tone, tiny_model):
    out, debug = tmp_path / "dub.mp4", tmp_path / "mask.mp4"
    code, stdout, err = run_cli(
        ["edit-lipsync", "-v", face_video, "-a", tone, "-o", out, "-m", tiny_model, "--resolution",
         "64x64", "--device", "cpu", "--dtype", "fp32", "--debug-mask", debug, "--json"],
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(stdout)
    seconds = load_audio(tone).size / 16000
    info = probe_video(out)
    assert (info.width, info.height, info.fps) == (320, 240, 25) and info.has_audio
    assert 0 <= info.duration - seconds < 1 / 25 and info.num_frames == result["frames"]
    assert not result["looped"] and result["source_frames"] == 30 and result["faceless_frames"] == 0
    assert probe_video(debug).num_frames == info.num_frames


def test_odd_source_size_loses_its_last_column_and_row_and_says_so(tmp_path, run_cli, tone, tiny_model):
    """H.264 yuv420p cannot store 641x479 (nor crop to it: display crops count in 2-pixel units)."""
    import subprocess

    from skyaudio_cli.media.ffmpeg import ffmpeg_command

    odd = tmp_path / "odd.mkv"
    subprocess.run(
        ffmpeg_command(["-f", "lavfi", "-i", "testsrc=size=641x479:rate=25", "-frames:v", "10",
                        "-c:v", "ffv1", str(odd)]),
        check=True,
    )  # fmt: skip
    out = tmp_path / "dub.mp4"
    code, stdout, err = run_cli(
        ["edit-lipsync", "-v", odd, "-a", tone, "-o", out, "-m", tiny_model, "--resolution", "64x64",
         "--device", "cpu", "--dtype", "fp32", "--face-box", "300,200,120,120", "--json"]
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(stdout)
    assert (result["width"], result["height"]) == (640, 478)
    assert (result["source_width"], result["source_height"]) == (641, 479)
    info = probe_video(out)
    assert (info.width, info.height) == (640, 478)
    # Outside the edited box, the written pixels are the source's top-left 640x478 (H.264 noise only).
    written = next(iter_frames(out)).astype(int)
    source = next(iter_frames(odd)).astype(int)[:478, :640]
    assert np.abs(written - source)[:150].mean() < 3


def test_video_without_a_face(tmp_path, run_cli, tone, tiny_model):
    from skyaudio_cli.media.video import VideoWriter

    blank = tmp_path / "blank.mp4"
    with VideoWriter(blank, fps=25, width=96, height=64) as writer:
        writer.write(np.full((10, 64, 96, 3), 90, np.uint8))
    args = ["edit-lipsync", "-v", blank, "-a", tone, "-m", tiny_model, "--device", "cpu", "--json"]
    code, stdout, _ = run_cli([*args, "-o", tmp_path / "a.mp4"])
    assert code == 2 and "no face found" in json.loads(stdout)["error"]
    code, stdout, err = run_cli([*args, "-o", tmp_path / "b.mp4", "--allow-no-face"])
    assert code == 0, err
    assert json.loads(stdout)["faceless_frames"] == 8
    written = np.stack(list(iter_frames(tmp_path / "b.mp4"))).astype(int)
    assert written.shape[0] == 8  # trimmed to the audio
    assert np.abs(written - np.stack(list(iter_frames(blank)))[:8]).max() <= 2  # H.264 re-encode only


def test_keep_original_audio_plays_the_source_sound_from_where_the_speech_ends(
    tmp_path, run_cli, moving_face_frames, tone, tiny_model
):
    from skyaudio_cli.media.video import VideoWriter

    # The source's own sound: a chirp, so a misplaced offset would decorrelate it.
    t = np.arange(30 * 640) / 16000  # 1.2 s, the video's 30 frames
    chirp = (0.4 * np.sin(2 * np.pi * (300 * t + 600 * t**2))).astype(np.float32)
    source = tmp_path / "with_sound.mp4"
    with VideoWriter(source, fps=25, width=320, height=240, audio=chirp, audio_sample_rate=16000) as writer:
        writer.write(moving_face_frames)
    out = tmp_path / "kept.mp4"
    code, stdout, err = run_cli(
        ["edit-lipsync", "-v", source, "-a", tone, "-o", out, "-m", tiny_model, "--resolution", "64x64",
         "--device", "cpu", "--dtype", "fp32", "--keep-original-audio", "--json"],
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["frames"] == 30 == probe_video(out).num_frames
    sound, speech = load_audio(out), load_audio(tone)
    edited = round(8 / 25 * 16000)  # the 0.3 s of speech covers 8 frames
    assert abs(sound.size - chirp.size) <= 640
    # The new speech first, then the source's sound from the same instant on.
    head = slice(800, speech.size - 800)
    assert np.corrcoef(sound[head], speech[head])[0, 1] > 0.9
    tail = slice(edited + 800, chirp.size - 1600)
    assert np.corrcoef(sound[tail], chirp[tail])[0, 1] > 0.9


def test_new_mouth_follows_the_light_of_each_source_frame(
    tmp_path, moving_face_frames, long_tone, tiny_model, pipelines
):
    from skyaudio_cli.media.video import VideoWriter

    # The light rises by 80 % over the clip (an auto-exposure ramp): the regenerated mouth must
    # brighten with it instead of keeping the first frame's colours.
    gain = np.linspace(0.55, 1.0, len(moving_face_frames))
    frames = (moving_face_frames * gain[:, None, None, None]).round().astype(np.uint8)
    video = tmp_path / "ramp.mp4"
    with VideoWriter(video, fps=25, width=320, height=240, crf=12) as writer:
        writer.write(frames)

    job = job_for(video, long_tone, tmp_path / "o.mp4", tiny_model)
    edit = prepare_edit(resolve("edit-lipsync", job), pipelines)
    relative = []  # the new mouth's brightness over the source's at the same place
    for i, (frame, crop, mask) in enumerate(list(edit.frames)[:30]):
        if i in (12, 13, 14):  # blank frames: nothing regenerated
            continue
        inside = full_frame_mask(frame.shape, crop, mask) == 255
        relative.append(frame[inside].mean() / frames[i][inside].mean())
    # Random weights draw noise, so single frames vary; but the level must not trend with the light
    # (matched to the first frame only, the last frames' mouths read ~35 % darker than the first's).
    trend = np.mean(relative[-8:]) / np.mean(relative[:8])
    assert 0.85 < trend < 1.2, relative
