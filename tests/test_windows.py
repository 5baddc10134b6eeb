"""Window planner: every frame produced exactly once, motion frames are written frames, audio padding."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyaudio_cli.long_video.windows import (
    audio_frame_indices,
    keyframe_source_index,
    mirrored_index,
    plan_latent_windows,
    plan_windows,
)

windows_ = st.integers(1, 30).map(lambda k: 1 + 4 * k)


@st.composite
def motion_plans(draw):
    window = draw(windows_)
    motion = draw(st.integers(1, window - 1))
    drop = draw(st.integers(0, window - motion - 1))
    first_motion = draw(st.sampled_from([0, motion]))
    num_frames = draw(st.one_of(st.integers(1, 3 * window), st.integers(1, 20_000)))
    return num_frames, dict(window=window, motion=motion, drop=drop, first_motion=first_motion)


@settings(max_examples=300, deadline=None)
@given(motion_plans())
def test_every_frame_written_once_in_order(case):
    num_frames, options = case
    plan = plan_windows(num_frames, **options)
    written = [frame for w in plan.windows for frame in w.emitted]
    assert written == list(range(num_frames))
    first = plan.windows[0]
    assert first.start == -options["first_motion"] and first.motion == options["first_motion"]
    for w in plan.windows:
        assert (w.length - 1) % 4 == 0 and w.length <= options["window"]
        assert w.motion < w.emit_stop <= w.length  # at least one new frame, inside the window
    written_so_far = list(range(-options["first_motion"], 0))
    for before, after in zip(plan.windows, plan.windows[1:], strict=False):
        written_so_far += before.emitted
        # The motion frames are the last frames written so far (usually all by the previous window).
        assert after.motion == options["motion"]
        assert list(range(after.start, after.start + after.motion)) == written_so_far[-after.motion :]
        assert before.emit_stop == options["window"] - options["drop"]
    if not plan.single:
        assert all(w.length == options["window"] for w in plan.windows)
        assert plan.padded_frames >= num_frames


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 50_000))
def test_released_skyreels_and_infinitetalk_strides(num_frames):
    skyreels = plan_windows(num_frames, window=81, motion=5, drop=12)
    assert [w.start for w in skyreels.windows] == [64 * k for k in range(len(skyreels.windows))]
    infinitetalk = plan_windows(num_frames, window=81, motion=9)
    assert [w.start for w in infinitetalk.windows] == [72 * k for k in range(len(infinitetalk.windows))]


@pytest.mark.parametrize(
    ("num_frames", "windows", "padded"),
    [(1, 1, 1), (80, 1, 81), (81, 1, 81), (82, 2, 145), (145, 2, 145), (146, 3, 209), (1000, 16, 1041)],
)
def test_planner_edge_cases_skyreels(num_frames, windows, padded):
    plan = plan_windows(num_frames, window=81, motion=5, drop=12)
    assert len(plan.windows) == windows and plan.padded_frames == padded


def test_hours_of_audio_plan_quickly():
    plan = plan_windows(25 * 3600 * 3, window=81, motion=5, drop=12)
    assert len(plan.windows) == -(-(25 * 3600 * 3 - 81) // 64) + 1


def test_invalid_plans_are_refused():
    with pytest.raises(ValueError, match="num_frames"):
        plan_windows(0)
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        plan_windows(10, window=80)
    with pytest.raises(ValueError, match="no new frames"):
        plan_windows(10, window=9, motion=5, drop=4)


def test_mirrored_index_plays_backwards_then_forwards():
    assert [mirrored_index(i, 3) for i in range(10)] == [0, 1, 2, 2, 1, 0, 0, 1, 2, 2]
    assert [mirrored_index(i, 1) for i in range(3)] == [0, 0, 0]


def test_audio_indices_clamp_context_and_mirror_the_tail():
    plan = plan_windows(90, window=81, motion=5, drop=12)
    first, last = plan.windows
    assert audio_frame_indices(first, plan, 90)[:5] == [0, 0, 0, 1, 2]
    indices = audio_frame_indices(last, plan, 90)
    assert len(indices) == 81 + 4
    # Timeline frame 90 is the first past the end: it hears frame 89, then 88, ...
    frame = 90 - last.start + 2
    assert indices[frame - 2 : frame + 3] == [88, 89, 89, 88, 87]
    # SkyReels-V3 clamps the context at its padded end (frame 144) ...
    assert plan.padded_frames == 145
    assert indices[-2:] == [mirrored_index(144, 90)] * 2
    # ... InfiniteTalk's reflected tail reaches 3 frames past the window, so it keeps mirroring.
    unclamped = audio_frame_indices(last, plan, 90, clamp_to_padded=False)
    assert unclamped[:-2] == indices[:-2]
    assert unclamped[-2:] == [2 * 90 - 1 - 145, 2 * 90 - 1 - 146]


def test_audio_rows_past_fewer_feature_frames_mirror_into_them():
    # InfiniteTalk's floor grid can hold one feature row fewer than the video has frames.
    plan = plan_windows(50, window=81, motion=9, drop=0)
    indices = audio_frame_indices(plan.windows[0], plan, 49)
    assert indices[2 + 49] == 48 and indices[2 + 50] == 47


def test_extend_motion_frames_hear_the_first_new_audio_frame():
    plan = plan_windows(30, window=81, motion=5, drop=12, first_motion=5)
    # Context starts 2 frames before the 5 motion frames: all of those hear frame 0.
    assert audio_frame_indices(plan.windows[0], plan, 30)[:9] == [0] * 8 + [1]


def test_keyframes_stretch_the_timeline_onto_the_preview():
    plan = plan_windows(300, window=81, motion=5, drop=12)
    keys = [keyframe_source_index(w, plan, 81) for w in plan.windows]
    assert keys[-1] == 80 and keys == sorted(keys)
    assert keys[0] == round(80 * 80 / (plan.padded_frames - 1))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 2000), st.integers(1, 40), st.data())
def test_latent_windows_cover_everything_at_most_twice(num_latents, window, data):
    overlap = data.draw(st.integers(0, window // 2))
    plan = plan_latent_windows(num_latents, window=window, overlap=overlap)
    coverage = [0] * num_latents
    for w in plan:
        assert 0 <= w.start < w.stop <= num_latents and w.stop - w.start <= window
        for i in range(w.start, w.stop):
            coverage[i] += 1
    assert min(coverage) >= 1 and max(coverage) <= 2
    for before, after in zip(plan, plan[1:], strict=False):
        assert after.start == before.start + window - overlap and after.stop > before.stop
