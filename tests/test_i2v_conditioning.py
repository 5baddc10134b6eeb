import numpy as np
import pytest
import torch

from skyaudio_cli.conditioning.frames import (
    known_frames_mask,
    latent_frame_count,
    padded_frame_count,
    reference_video,
    to_signed,
    to_uint8,
)


def test_reference_frame_mask_marks_all_four_channels_of_latent_zero_only():
    known = torch.zeros(81, dtype=torch.bool)
    known[0] = True
    mask = known_frames_mask(known, 2, 3)
    assert mask.shape == (1, 4, 21, 2, 3)
    assert torch.all(mask[:, :, 0] == 1)
    assert torch.all(mask[:, :, 1:] == 0)


def test_mask_is_frame_major():
    # Pixel frames 1..5 known: latent 1 covers pixel frames 1-4 (all four channels), latent 2
    # covers 5-8 and only its first channel (frame 5) is known.
    known = torch.zeros(9, dtype=torch.bool)
    known[1:6] = True
    mask = known_frames_mask(known, 1, 1)[0, :, :, 0, 0]
    assert mask[:, 0].tolist() == [0, 0, 0, 0]
    assert mask[:, 1].tolist() == [1, 1, 1, 1]
    assert mask[:, 2].tolist() == [1, 0, 0, 0]


@pytest.mark.parametrize(("frames", "padded"), [(1, 1), (2, 5), (5, 5), (6, 9), (80, 81), (81, 81)])
def test_padded_frame_count(frames, padded):
    assert padded_frame_count(frames) == padded
    assert latent_frame_count(padded) == (padded - 1) // 4 + 1


def test_latent_frame_count_rejects_invalid_lengths():
    with pytest.raises(ValueError):
        latent_frame_count(4)


def test_reference_video_zero_after_first_frame():
    ref = torch.rand(1, 3, 1, 4, 4)
    video = reference_video(ref, 5)
    assert torch.equal(video[:, :, 0], ref[:, :, 0])
    assert torch.count_nonzero(video[:, :, 1:]) == 0


def test_pixel_conversions_are_x_over_127_5_minus_1_and_its_rounded_inverse():
    values = torch.arange(256, dtype=torch.uint8)
    signed = to_signed(values)
    expected = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
    assert signed.dtype == torch.float32 and np.array_equal(signed.numpy(), expected)
    # The other op order differs in the last bit for some values: the pipelines' numbers depend on it.
    assert not np.array_equal((np.arange(256, dtype=np.float32) - 127.5) / np.float32(127.5), expected)
    frames = signed.view(1, 1, 16, 16).expand(2, 3, 16, 16)  # [n, 3, H, W]
    back = to_uint8(frames)
    assert back.shape == (2, 16, 16, 3) and back.dtype == np.uint8
    assert np.array_equal(back[1, :, :, 2].ravel(), np.arange(256))  # exact round trip
    assert to_uint8(torch.tensor([-3.0, 3.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2))[0, 0].tolist() == [
        [0, 0, 0],
        [255, 255, 255],
    ]
