"""Per-frame audio windows, pinned with features that carry their own frame number (row i = i + 1)."""

import pytest
import torch

from skyaudio_cli.conditioning.audio_windows import frame_windows, humo_latent_windows, humo_window_frames


def numbered(num_frames: int, layers: int = 2, channels: int = 3) -> torch.Tensor:
    """features[i] == i + 1 everywhere, so 0 can only mean "zero padding"."""
    return (
        (torch.arange(num_frames, dtype=torch.float32) + 1)[:, None, None]
        .expand(-1, layers, channels)
        .clone()
    )


def frame_numbers(windows: torch.Tensor) -> list[list[int]]:
    """Read each window slot's frame number back (and check the slot is uniform)."""
    assert torch.equal(windows, windows[..., :1, :1].expand_as(windows))
    return windows[..., 0, 0].long().tolist()


def test_frame_windows_clamp_at_both_ends():
    windows = frame_windows(numbered(10))
    assert windows.shape == (10, 5, 2, 3)
    assert frame_numbers(windows) == [
        [1, 1, 1, 2, 3],
        [1, 1, 2, 3, 4],
        [1, 2, 3, 4, 5],
        [2, 3, 4, 5, 6],
        [3, 4, 5, 6, 7],
        [4, 5, 6, 7, 8],
        [5, 6, 7, 8, 9],
        [6, 7, 8, 9, 10],
        [7, 8, 9, 10, 10],
        [8, 9, 10, 10, 10],
    ]


def test_frame_windows_single_frame():
    assert frame_numbers(frame_windows(numbered(1))) == [[1, 1, 1, 1, 1]]


def test_frame_windows_other_radius():
    assert frame_numbers(frame_windows(numbered(3), radius=1)) == [[1, 1, 2], [1, 2, 3], [2, 3, 3]]
    assert frame_numbers(frame_windows(numbered(3), radius=0)) == [[1], [2], [3]]


@pytest.mark.parametrize(("start", "stop"), [(0, 4), (3, 9), (7, 12), (11, 12)])
def test_frame_windows_of_a_slice_equal_the_slice_of_all_windows(start, stop):
    features = numbered(12)
    assert torch.equal(frame_windows(features, start=start, stop=stop), frame_windows(features)[start:stop])


def test_humo_windows_table():
    # 17 video frames -> 5 latents; frames 0..16 carry numbers 1..17, 0 = zero padding.
    windows = humo_latent_windows(numbered(17), 5)
    assert windows.shape == (5, 8, 2, 3)
    assert frame_numbers(windows) == [
        [0, 0, 0, 0, 0, 1, 2, 3],  # 3 zeros, then frames -2..2
        [0, 1, 2, 3, 4, 5, 6, 7],  # frames -1..6
        [4, 5, 6, 7, 8, 9, 10, 11],  # frames 3..10
        [8, 9, 10, 11, 12, 13, 14, 15],  # frames 7..14
        [12, 13, 14, 15, 16, 17, 0, 0],  # frames 11..18, past the end -> 0
    ]


def reference_humo_windows(features: torch.Tensor, num_latent_frames: int, first_frame: int) -> torch.Tensor:
    """HuMo's get_audio_emb_window rule, written as its loop (latent 0: -2..+2; latent i: 4i-5..4i+2)."""

    def frame(i: int) -> torch.Tensor:
        return features[i] if 0 <= i < features.shape[0] else torch.zeros_like(features[0])

    latents = []
    for latent in range(num_latent_frames):
        if latent == 0:
            rows = [torch.zeros_like(features[0])] * 3 + [frame(first_frame + k) for k in range(-2, 3)]
        else:
            start = first_frame + 1 + 4 * (latent - 1) - 2
            rows = [frame(i) for i in range(start, start + 8)]
        latents.append(torch.stack(rows))
    return torch.stack(latents)


@pytest.mark.parametrize(
    ("num_frames", "num_latents", "first_frame"), [(97, 25, 0), (40, 12, 0), (50, 6, 9), (5, 3, 2)]
)
def test_humo_windows_follow_the_reference_rule(num_frames, num_latents, first_frame):
    features = torch.randn(num_frames, 2, 3, generator=torch.Generator().manual_seed(num_frames))
    expected = reference_humo_windows(features, num_latents, first_frame)
    assert torch.equal(humo_latent_windows(features, num_latents, first_frame=first_frame), expected)


def test_humo_windows_first_frame_reaches_back_into_real_audio():
    assert frame_numbers(humo_latent_windows(numbered(20), 2, first_frame=4)) == [
        [0, 0, 0, 3, 4, 5, 6, 7],
        [4, 5, 6, 7, 8, 9, 10, 11],
    ]


def test_humo_windows_single_frame():
    assert frame_numbers(humo_latent_windows(numbered(1), 2)) == [
        [0, 0, 0, 0, 0, 1, 0, 0],
        [0, 1, 0, 0, 0, 0, 0, 0],
    ]


@pytest.mark.parametrize(("start", "stop"), [(0, 25), (20, 45), (40, 47)])
def test_humo_windows_of_a_latent_range_from_only_its_rows_equal_the_slice_of_all(start, stop):
    # A long video's window passes only the feature rows its latents reach (frames 4*start-5 ..
    # 4*(stop-1)+2, clamped to the audio) and gets the same windows as the whole video's table.
    features = numbered(185)
    reach = humo_window_frames(start, stop)
    assert reach == range(4 * start - 5, 4 * (stop - 1) + 3)
    first_row = max(0, reach.start)
    rows = features[first_row : reach.stop]
    windows = humo_latent_windows(rows, stop - start, first_frame=-first_row, first_latent=start)
    assert torch.equal(windows, humo_latent_windows(features, 47)[start:stop])
