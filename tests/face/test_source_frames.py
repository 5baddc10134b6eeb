"""Source frames in timeline order: forward streaming and the ping-pong spill give exact frames."""

import numpy as np

from skyaudio_cli.long_video.source_frames import frames_in_order
from skyaudio_cli.long_video.timeline import plan_timeline
from skyaudio_cli.media.video import iter_frames


def test_forward_and_pingpong_orders_match_the_decoded_frames(face_video):
    decoded = np.stack(list(iter_frames(face_video, fps=25)))
    trimmed = plan_timeline(len(decoded), 20).source_indices
    looped = plan_timeline(len(decoded), 70).source_indices
    assert np.array_equal(np.stack(list(frames_in_order(face_video, trimmed, fps=25))), decoded[trimmed])
    assert np.array_equal(np.stack(list(frames_in_order(face_video, looped, fps=25))), decoded[looped])


def test_indices_past_the_end_repeat_the_last_frame(face_video):
    decoded = np.stack(list(iter_frames(face_video, fps=25)))
    frames = list(frames_in_order(face_video, [28, 29, 30, 31], fps=25))
    assert all(np.array_equal(f, decoded[-1]) for f in frames[1:])
