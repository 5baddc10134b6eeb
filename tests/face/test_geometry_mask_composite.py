"""Crop geometry, lower-face masks and the paste-back: exact arithmetic on synthetic inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyaudio_cli.face.composite import crop_for_model, paste_back
from skyaudio_cli.face.geometry import Box, crop_box_around
from skyaudio_cli.face.mask import latent_mask, lower_face_mask, mask_bounding_box, soften_user_mask


@settings(max_examples=200, deadline=None)
@given(
    x=st.floats(-50, 400), y=st.floats(-50, 300), w=st.floats(8, 500),
    aspect=st.sampled_from([1.0, 0.75, 16 / 9]), frame_w=st.integers(32, 640), frame_h=st.integers(32, 480),
)  # fmt: skip
def test_crop_is_whole_pixels_inside_the_frame(x, y, w, aspect, frame_w, frame_h):
    crop = crop_box_around(Box(x, y, w, w), frame_w, frame_h, aspect)
    assert all(float(v).is_integer() for v in (crop.x, crop.y, crop.w, crop.h))
    assert crop.x >= 0 and crop.y >= 0 and crop.x + crop.w <= frame_w and crop.y + crop.h <= frame_h
    assert crop.w / crop.h == pytest.approx(aspect, rel=0.05, abs=2 / crop.h)


def test_crop_is_centred_below_the_face_with_room():
    crop = crop_box_around(Box(400, 300, 100, 100), 1920, 1080, 1.0)
    assert (crop.w, crop.h) == (200, 200)
    assert crop.centre == (450, 365)  # 0.15 face heights below the box centre


def test_crop_slides_inward_at_the_edge_and_keeps_its_size():
    crop = crop_box_around(Box(0, 0, 100, 100), 1920, 1080, 1.0)
    assert (crop.x, crop.y, crop.w, crop.h) == (0, 0, 200, 200)


def test_lower_face_mask_covers_mouth_and_chin_not_eyes():
    face = Box(100, 100, 200, 200)  # Haar geometry: eyes at ~0.4, mouth ~0.78, chin ~1.15 of the box
    mask = lower_face_mask(face, 500, 500)
    assert mask[100 + 156, 200] == 255  # mouth
    assert mask[100 + 220, 200] == 255  # chin
    assert mask[100 + 80, 160] == 0 and mask[100 + 80, 240] == 0  # eyes
    assert mask[100 + 88, 200] == 0  # 0.44 box heights, just below the eyes: untouched
    assert mask[:, :100].max() == 0 and mask[:, 301:].max() == 0  # never wider than the face
    assert 0 < mask[100 + 96, 200] < 255  # soft upper edge, between 0.45 and 0.53 box heights


def test_lower_face_mask_moves_smoothly_with_sub_pixel_motion():
    a = lower_face_mask(Box(100, 100, 200, 200), 400, 400).astype(int)
    b = lower_face_mask(Box(100.25, 100, 200, 200), 400, 400).astype(int)
    assert 0 < np.abs(a - b).max() <= 16  # moves, without whole-pixel jumps


def test_user_mask_is_grown_and_feathered():
    user = np.zeros((200, 200), np.uint8)
    user[80:120, 80:120] = 255
    soft = soften_user_mask(np.repeat(user[..., None], 3, axis=2))
    assert soft[80:120, 80:120].min() == 255
    assert soft[79, 100] == 255  # grown by 1 px (0.5% of 200)
    assert 0 < soft[77, 100] < 255  # then faded out over 3 px
    assert soft[:75].max() == 0
    box = mask_bounding_box(soft)
    assert box.x < 80 and box.x + box.w > 120


def test_latent_mask_covers_every_masked_pixel_and_frame_group():
    masks = np.zeros((9, 64, 64), np.uint8)
    masks[6, 33, 17] = 1  # pixel frame 6 -> latent frame 2 (frames 5-8), cell (4, 2)
    latent = latent_mask(masks)
    assert latent.shape == (3, 8, 8)
    assert not latent[0].any() and not latent[1].any()
    assert latent[2, 3:6, 1:4].all() and latent[2].sum() == 9  # the cell grown by one
    with pytest.raises(ValueError):
        latent_mask(np.zeros((8, 64, 64), np.uint8))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), crop_side=st.integers(16, 90))
def test_paste_back_leaves_every_unmasked_pixel_bit_identical(seed, crop_side):
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (101, 123, 3), dtype=np.uint8)
    crop = Box(7.0, 5.0, float(crop_side), float(crop_side))
    generated = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = lower_face_mask(
        Box(crop_side * 0.25, crop_side * 0.2, crop_side * 0.5, crop_side * 0.5), crop_side, crop_side
    )
    result = paste_back(frame, generated, crop, mask)
    full_mask = np.zeros(frame.shape[:2], np.uint8)
    full_mask[5 : 5 + crop_side, 7 : 7 + crop_side] = mask
    assert np.array_equal(result[full_mask == 0], frame[full_mask == 0])
    assert not np.array_equal(result[full_mask == 255], frame[full_mask == 255])


def test_paste_back_full_mask_shows_the_generated_crop():
    frame = np.zeros((40, 40, 3), np.uint8)
    generated = np.full((16, 16, 3), 200, np.uint8)
    result = paste_back(frame, generated, Box(4, 4, 32, 32), np.full((32, 32), 255, np.uint8))
    assert (result[4:36, 4:36] == 200).all() and result[:4].max() == 0


def test_crop_for_model_resizes_the_crop():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[10:60, 20:70] = 255
    crop = crop_for_model(frame, Box(20, 10, 50, 50), 32, 32)
    assert crop.shape == (32, 32, 3) and crop.min() == 255
