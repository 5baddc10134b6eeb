"""Haar detection on the real portrait and the per-frame regions built from it or from the user."""

import numpy as np
import pytest
from skimage import data

from skyaudio_cli.face.detector import FaceDetector
from skyaudio_cli.face.geometry import Box
from skyaudio_cli.face.regions import detect_faces, face_box_regions, user_mask_regions

# Hand-located features of skimage's astronaut (512x512): mouth centre and both eyes.
MOUTH = (224, 145)
EYES = ((202, 100), (246, 102))


def contains(box: Box, point) -> bool:
    return box.x <= point[0] <= box.x + box.w and box.y <= point[1] <= box.y + box.h


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def test_detects_the_astronaut_face(detector):
    faces = detector.detect(data.astronaut())
    assert len(faces) == 1
    assert contains(faces[0], MOUTH) and all(contains(faces[0], eye) for eye in EYES)


def test_detects_a_tilted_head_and_a_4k_frame(detector):
    import cv2

    tilted = cv2.warpAffine(data.astronaut(), cv2.getRotationMatrix2D((256, 256), 25, 1.0), (512, 512))
    assert len(detector.detect(tilted)) == 1
    big = cv2.resize(data.astronaut(), (2048, 2048))
    (face,) = detector.detect(big)
    assert contains(face, (MOUTH[0] * 4, MOUTH[1] * 4))


@pytest.mark.parametrize(
    ("name", "top", "left"),
    [("forehead cut by the top edge", 90, 0), ("left eye cut by the left edge", 0, 200)],
)
def test_detects_a_face_the_frame_edge_cuts(detector, name, top, left):
    frame = np.ascontiguousarray(data.astronaut()[top:, left:])
    (face,) = detector.detect(frame)
    assert contains(face, (MOUTH[0] - left, MOUTH[1] - top)), name
    assert face.x < 0 or face.y < 0  # the box reaches past the edge, where the rest of the face is


def test_blank_frame_has_no_face(detector):
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []


def test_regions_of_the_moving_face_video(moving_face_frames):
    regions = detect_faces(moving_face_frames, aspect_ratio=1.0)
    has_face = regions.has_face
    assert has_face[:12] == [True] * 12 and has_face[15:] == [True] * 15
    assert has_face[12:15] == [False] * 3  # blank frames: a cut, not a detector blink
    masks = list(regions.masks(range(30)))
    for index in (0, 20):
        crop, mask = regions.crops[index], masks[index]
        assert mask.shape == (crop.h, crop.w)
        # The astronaut is drawn at ~0.47 scale + shift: map the hand-located points into the crop.
        scale = 0.47 * (1 + 0.02 * np.sin(index / 6))
        offset = np.array([40 + 3 * np.sin(index / 4), -2 + 2 * np.cos(index / 5)])
        mouth = np.array(MOUTH) * scale + offset - (crop.x, crop.y)
        assert mask[round(mouth[1]), round(mouth[0])] == 255
        for eye in EYES:
            at = np.array(eye) * scale + offset - (crop.x, crop.y)
            assert mask[round(at[1]), round(at[0])] == 0
    assert all(masks[i].max() == 0 for i in (12, 13, 14))
    assert regions.crops[13] in (regions.crops[11], regions.crops[15])


def test_crops_are_stable_over_the_slowly_moving_video(moving_face_frames):
    regions = detect_faces(moving_face_frames, aspect_ratio=1.0)
    xs = np.array([crop.x for crop in regions.crops[:12]])
    assert np.abs(np.diff(xs)).max() <= 2  # the head moves < 1 px per frame


def test_user_mask_video_regions():
    masks = np.zeros((4, 120, 160, 3), np.uint8)
    masks[0:3, 60:90, 50:100] = 255  # frame 3 left empty: it must pass through
    regions = user_mask_regions(masks, 1.0, read_masks=lambda indices: (masks[i] for i in indices))
    assert regions.has_face == [True, True, True, False]
    crops_masks = list(regions.masks([0, 3]))
    assert crops_masks[0].max() == 255 and crops_masks[1].max() == 0
    assert regions.crops[3] == regions.crops[2]


def test_face_box_regions_are_fixed():
    regions = face_box_regions(Box(50, 60, 40, 30), 160, 120, 5, 1.0)
    assert regions.has_face == [True] * 5
    (mask,) = regions.masks([2])
    crop = regions.crops[2]
    assert mask[round(75 - crop.y), round(70 - crop.x)] == 255
