"""Per source frame: the crop the model sees and the mask of what to regenerate.

Three ways to get them, one interface (`crops`, `has_face`, `masks(indices)`):
- TrackedFaces: the Haar detector on every frame, tracked and smoothed, lower-face ellipse masks;
- UserMasks from `--mask-video` (bright = edit) or `--face-box x,y,w,h` (a fixed rectangle).
Frames without a face (or with an empty user mask) keep the crop of the nearest frame that has
one, so the model's view stays continuous, and get an all-zero mask: they pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from skyaudio_cli.face.detector import FaceDetector
from skyaudio_cli.face.geometry import Box, crop_box_around
from skyaudio_cli.face.mask import lower_face_mask, mask_bounding_box, soften_user_mask
from skyaudio_cli.face.tracking import is_scene_cut, thumbnail, track_faces

# A user region is the part to regenerate (about mouth-to-chin), smaller than a face box, so its
# crop takes more widths of it and is centred on it.
USER_REGION_CROP_WIDTHS = 2.6


@dataclass(frozen=True)
class TrackedFaces:
    faces: list[Box | None]
    crops: list[Box]

    @cached_property  # indexed per output frame: build the list once
    def has_face(self) -> list[bool]:
        return [face is not None for face in self.faces]

    def masks(self, indices: Iterable[int]) -> Iterator[np.ndarray]:
        """Crop-sized uint8 masks (source resolution) for the given source frames, in order."""
        for index in indices:
            face, crop = self.faces[index], self.crops[index]
            if face is None:
                yield np.zeros((int(crop.h), int(crop.w)), np.uint8)
            else:
                shifted = Box(face.x - crop.x, face.y - crop.y, face.w, face.h)
                yield lower_face_mask(shifted, int(crop.w), int(crop.h))


@dataclass(frozen=True)
class UserMasks:
    """`read_masks(indices)` yields the user's full-frame mask frames for those source frames."""

    present: list[bool]
    crops: list[Box]
    read_masks: Callable[[list[int]], Iterator[np.ndarray]]

    @property
    def has_face(self) -> list[bool]:
        return self.present

    def masks(self, indices: Iterable[int]) -> Iterator[np.ndarray]:
        indices = list(indices)
        for index, frame_mask in zip(indices, self.read_masks(indices), strict=True):
            left, top, right, bottom = self.crops[index].pixel_bounds()
            yield soften_user_mask(frame_mask)[top:bottom, left:right]


def detect_faces(
    frames: Iterable[np.ndarray], aspect_ratio: float, detector: FaceDetector | None = None
) -> TrackedFaces:
    """Detect on every frame (one pass, boxes only kept), track, and place the crops."""
    detector = detector or FaceDetector()
    detections, cuts, size, previous = [], [], None, None
    for frame in frames:
        size = (frame.shape[1], frame.shape[0])
        detections.append(detector.detect(frame))
        current = thumbnail(frame)
        cuts.append(is_scene_cut(previous, current))
        previous = current
    faces = track_faces(detections, cuts=cuts)
    crops = [None if face is None else crop_box_around(face, *size, aspect_ratio) for face in faces]
    return TrackedFaces(faces=faces, crops=_hold_nearest(crops, size, aspect_ratio))


def user_mask_regions(
    mask_frames: Iterable[np.ndarray],
    aspect_ratio: float,
    read_masks: Callable[[list[int]], Iterator[np.ndarray]],
) -> UserMasks:
    """Regions from a user's mask frames: crops around each softened mask's (smoothed) bounding box."""
    boxes, size = [], None
    for frame_mask in mask_frames:
        size = (frame_mask.shape[1], frame_mask.shape[0])
        box = mask_bounding_box(soften_user_mask(frame_mask))
        boxes.append([] if box is None else [box])
    present = [bool(candidates) for candidates in boxes]
    # Gap filling is off: a frame the user left unmasked must stay untouched.
    smoothed = track_faces(boxes, max_gap=0)
    crops = [
        None
        if box is None
        else crop_box_around(box, *size, aspect_ratio, widths=USER_REGION_CROP_WIDTHS, drop=0.0)
        for box in smoothed
    ]
    return UserMasks(present=present, crops=_hold_nearest(crops, size, aspect_ratio), read_masks=read_masks)


def face_box_regions(box: Box, width: int, height: int, num_frames: int, aspect_ratio: float) -> UserMasks:
    """`--face-box`: the same rectangle to regenerate on every frame."""
    rectangle = np.zeros((height, width), np.uint8)
    left, top, right, bottom = box.pixel_bounds()
    rectangle[max(top, 0) : bottom, max(left, 0) : right] = 255
    crop = crop_box_around(box, width, height, aspect_ratio, widths=USER_REGION_CROP_WIDTHS, drop=0.0)
    return UserMasks(
        present=[True] * num_frames,
        crops=[crop] * num_frames,
        read_masks=lambda indices: (rectangle for _ in indices),
    )


def _hold_nearest(crops: list[Box | None], size: tuple[int, int] | None, aspect_ratio: float) -> list[Box]:
    """Fill frames without a crop with the nearest frame's crop (earlier wins ties).

    With no crop at all (no face anywhere) every frame gets a centred crop: nothing is edited then,
    but callers still have a well-formed plan.
    """
    known = [i for i, crop in enumerate(crops) if crop is not None]
    if not known:
        width, height = size or (2, 2)
        whole = Box(0.0, 0.0, float(width), float(height))
        centred = crop_box_around(whole, width, height, aspect_ratio, widths=1.0, drop=0.0)
        return [centred] * len(crops)
    positions = np.array(known)
    filled = []
    for i, crop in enumerate(crops):
        if crop is None:
            nearest = positions[np.argmin(np.abs(positions - i))]
            crop = crops[nearest]
        filled.append(crop)
    return filled
