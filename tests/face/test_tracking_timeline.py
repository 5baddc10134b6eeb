"""Face tracking (selection, gaps, cuts, smoothing) and the edit's length policy."""

import numpy as np
import pytest

from skyaudio_cli.face.geometry import Box
from skyaudio_cli.face.tracking import is_scene_cut, thumbnail, track_faces
from skyaudio_cli.long_video.timeline import loop_index, plan_timeline
from skyaudio_cli.modes import LoopMode


def jittery_track(n=60, jitter=3.0, seed=0):
    rng = np.random.default_rng(seed)
    truth = [Box(100 + 0.5 * i, 80, 60, 60) for i in range(n)]
    noisy = [[Box(b.x + rng.normal(0, jitter), b.y + rng.normal(0, jitter), b.w, b.h)] for b in truth]
    return truth, noisy


def test_smoothing_removes_jitter_but_follows_motion():
    truth, noisy = jittery_track()
    tracked = track_faces(noisy)
    raw_error = np.std([d[0].x - t.x for d, t in zip(noisy, truth, strict=True)])
    error = np.std([b.x - t.x for b, t in zip(tracked, truth, strict=True)])
    assert error < raw_error / 2
    assert tracked[-1].x - tracked[0].x == pytest.approx(29.5, abs=3)  # the head really moved


def test_short_gaps_are_interpolated_long_ones_stay_empty():
    _, noisy = jittery_track(jitter=0)
    detections = [d if not (10 <= i < 13 or 30 <= i < 40) else [] for i, d in enumerate(noisy)]
    tracked = track_faces(detections, sigma=0)
    assert all(tracked[i] is not None for i in range(10, 13))
    assert tracked[11].x == pytest.approx(105.5)
    assert all(tracked[i] is None for i in range(30, 40))


def test_gaps_at_a_scene_cut_are_not_filled():
    _, noisy = jittery_track(jitter=0)
    detections = [d if not 10 <= i < 13 else [] for i, d in enumerate(noisy)]
    cuts = [i in (10, 13) for i in range(len(detections))]
    tracked = track_faces(detections, cuts=cuts)
    assert all(tracked[i] is None for i in range(10, 13))


def test_follows_the_largest_face_and_ignores_far_false_positives():
    face, small, far = Box(100, 100, 80, 80), Box(300, 100, 30, 30), Box(400, 300, 90, 90)
    detections = [[small, face], [face], [far], [face]]
    tracked = track_faces(detections, sigma=0)
    assert tracked[0] == face and tracked[2] == face  # the far box is not taken; the gap is filled


def test_scene_cut_detection():
    frame = np.full((48, 64, 3), 90, np.uint8)
    shifted = np.roll(frame, 2, axis=1)
    assert not is_scene_cut(thumbnail(frame), thumbnail(shifted))
    assert is_scene_cut(thumbnail(frame), thumbnail(np.full_like(frame, 200)))
    assert not is_scene_cut(None, thumbnail(frame))


def test_pingpong_loop_reverses_without_repeating_the_turn_frame():
    assert [loop_index(i, 4, LoopMode.pingpong) for i in range(10)] == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert [loop_index(i, 1, LoopMode.pingpong) for i in range(3)] == [0, 0, 0]
    assert [loop_index(i, 3, LoopMode.freeze) for i in range(5)] == [0, 1, 2, 2, 2]


def test_timeline_follows_the_audio():
    longer_audio = plan_timeline(5, 12)
    assert longer_audio.num_frames == 12 and longer_audio.edited_frames == 12
    trimmed = plan_timeline(50, 12)
    assert trimmed.source_indices == list(range(12))
    kept = plan_timeline(50, 12, keep_original_audio=True)
    assert kept.source_indices == list(range(50)) and kept.edited_frames == 12
    ten_times = plan_timeline(8, 80)
    assert ten_times.num_frames == 80 and max(ten_times.source_indices) == 7
