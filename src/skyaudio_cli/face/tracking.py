"""Turn per-frame detections into one smooth face track with gaps where there is no face.

The whole video is analysed before anything is generated, so smoothing can look both ways
(zero-phase): a causal filter (EMA, one-euro) lags behind a moving head, which would slide the mask
off the mouth. Short gaps (missed detections) are interpolated; longer ones stay faceless, and those
frames pass through the edit unchanged. Neither gap filling nor smoothing crosses a scene cut: a
face is not carried into a shot where it is not.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from skyaudio_cli.face.geometry import Box

# A detection continues the track if its centre is within this many face widths of the last one;
# anything further is another face or a false positive.
MAX_JUMP_FACE_WIDTHS = 0.5
# Gaps up to this many frames (0.2 s at 25 fps) are blinks of the detector, not a face leaving.
MAX_GAP_FRAMES = 5
# Temporal smoothing, in frames: removes the cascade's few-pixel jitter, keeps real head motion.
SMOOTHING_SIGMA_FRAMES = 2.0
# Mean absolute change (0-255) of a 16x16 grey thumbnail above which a frame starts a new shot;
# head motion and lighting drift change it by a few levels, cuts and blank frames by tens.
CUT_THRESHOLD = 25.0
THUMBNAIL = (16, 16)


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """A tiny grey summary of an RGB frame, for `is_scene_cut`."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)


def is_scene_cut(previous: np.ndarray | None, current: np.ndarray) -> bool:
    return previous is not None and float(np.abs(current - previous).mean()) > CUT_THRESHOLD


def track_faces(
    detections: list[list[Box]],
    *,
    cuts: list[bool] | None = None,
    max_gap: int = MAX_GAP_FRAMES,
    sigma: float = SMOOTHING_SIGMA_FRAMES,
) -> list[Box | None]:
    """One box per frame (None where there is no face), from each frame's candidate faces.

    cuts[i] is True when frame i starts a new shot.
    """
    starts_shot = np.zeros(len(detections), bool) if cuts is None else np.asarray(cuts, bool)
    chosen = _follow_one_face(detections, max_gap)
    present = np.array([box is not None for box in chosen])
    values = np.array([box.as_array() if box is not None else np.full(4, np.nan) for box in chosen])
    present = _fill_short_gaps(values, present, starts_shot, max_gap)
    for start, stop in _runs(present):
        for piece_start, piece_stop in _split_at(start, stop, starts_shot):
            if sigma > 0 and piece_stop - piece_start > 1:
                piece = values[piece_start:piece_stop]
                values[piece_start:piece_stop] = gaussian_filter1d(piece, sigma, axis=0, mode="nearest")
    return [Box.from_array(v) if ok else None for v, ok in zip(values, present, strict=True)]


def _follow_one_face(detections: list[list[Box]], max_gap: int) -> list[Box | None]:
    """Start on the largest face; then take the candidate nearest the last accepted box.

    After more than `max_gap` frames without it, the face may come back anywhere: start afresh.
    """
    track: list[Box | None] = []
    last: Box | None = None
    missed = 0
    for candidates in detections:
        pick = None
        if candidates and last is None:
            pick = max(candidates, key=lambda c: c.w * c.h)
        elif candidates:
            nearest = min(candidates, key=lambda c: _distance(c, last))
            if _distance(nearest, last) <= MAX_JUMP_FACE_WIDTHS * last.w:
                pick = nearest
        track.append(pick)
        missed = 0 if pick is not None else missed + 1
        if pick is not None:
            last = pick
        elif missed > max_gap:
            last = None
    return track


def _distance(a: Box, b: Box) -> float:
    (ax, ay), (bx, by) = a.centre, b.centre
    return float(np.hypot(ax - bx, ay - by))


def _fill_short_gaps(
    values: np.ndarray, present: np.ndarray, starts_shot: np.ndarray, max_gap: int
) -> np.ndarray:
    """Interpolate interior gaps of at most `max_gap` frames within one shot, in place.

    Returns the new presence mask.
    """
    filled = present.copy()
    for start, stop in _runs(~present):
        at_edge = start == 0 or stop == len(present)
        if at_edge or stop - start > max_gap or starts_shot[start : stop + 1].any():
            continue
        before, after = values[start - 1], values[stop]
        weights = np.arange(1, stop - start + 1)[:, None] / (stop - start + 1)
        values[start:stop] = before + weights * (after - before)
        filled[start:stop] = True
    return filled


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _split_at(start: int, stop: int, starts_shot: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) cut into pieces at the frames that start a new shot."""
    bounds = [start, *(i for i in range(start + 1, stop) if starts_shot[i]), stop]
    return list(zip(bounds[:-1], bounds[1:], strict=True))
