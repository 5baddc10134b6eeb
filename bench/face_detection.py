"""Face detection on the real astronaut portrait: detection rate under rotation/scale/crop, box
jitter over a slowly moving sequence (raw detector vs tracked), and time per frame.

python bench/face_detection.py [--json out.json]
"""

import argparse
import json
import time

import cv2
import numpy as np
from skimage import data

from skyaudio_cli.face.detector import FaceDetector
from skyaudio_cli.face.geometry import Box
from skyaudio_cli.face.tracking import track_faces

MOUTH = np.array([224.0, 145.0])  # hand-located in the 512x512 astronaut
CANVAS = (640, 480)


def place(
    portrait: np.ndarray, scale: float, angle: float, shift=(0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """The portrait rotated/scaled about its mouth, mouth put at the canvas centre + shift.
    Returns the frame and where the mouth lands."""
    target = np.array(CANVAS, float) / 2 + shift
    warp = cv2.getRotationMatrix2D(tuple(MOUTH), angle, scale)
    warp[:, 2] += target - MOUTH
    return cv2.warpAffine(portrait, warp, CANVAS, borderMode=cv2.BORDER_REPLICATE), target


def hit(faces: list[Box], mouth: np.ndarray) -> bool:
    """Detected if the largest face's box (extended to the chin) holds the mouth."""
    if not faces:
        return False
    face = faces[0]
    return bool(face.x <= mouth[0] <= face.x + face.w and face.y <= mouth[1] <= face.y + 1.2 * face.h)


def variant_rates(detector: FaceDetector, portrait: np.ndarray) -> dict:
    rotations = {
        f"rotate {a:+d} deg": place(portrait, 0.9, a) for a in (-40, -30, -20, -10, 0, 10, 20, 30, 40)
    }
    scales = {
        f"scale {s:g} (face ~{round(96 * s)} px)": place(portrait, s, 0) for s in (0.3, 0.45, 0.7, 1.0, 1.6)
    }
    # Faces at 1.6x (~150 px) pushed against an edge so part of the face is outside the frame.
    edges = {
        "crop: left edge cuts the face": (-CANVAS[0] / 2 + 50, 0),
        "crop: right edge cuts the face": (CANVAS[0] / 2 - 50, 0),
        "crop: top edge cuts the forehead": (0, -CANVAS[1] / 2 + 100),
    }
    crops = {name: place(portrait, 1.6, 0, shift) for name, shift in edges.items()}
    return {
        name: hit(detector.detect(frame), mouth)
        for name, (frame, mouth) in {**rotations, **scales, **crops}.items()
    }


def jitter(detector: FaceDetector, portrait: np.ndarray, frames: int = 100) -> dict:
    """Sub-pixel drift + slow zoom: the truth is known, so box error = detection - truth motion."""
    truth, detections = [], []
    for t in range(frames):
        shift = (4 * np.sin(t / 15), 2 * np.cos(t / 11))
        frame, mouth = place(portrait, 0.9 * (1 + 0.03 * np.sin(t / 20)), 0, shift)
        truth.append(mouth)
        detections.append(detector.detect(frame))
    tracked = track_faces(detections)
    truth = np.array(truth)

    def centre_error(boxes):
        centres = np.array([[b.x + b.w / 2, b.y + b.h / 2] for b in boxes])
        offset = centres - truth
        return float(np.sqrt(((offset - offset.mean(0)) ** 2).sum(1)).mean())

    def frame_to_frame(boxes):
        centres = np.array([[b.x + b.w / 2, b.y + b.h / 2] for b in boxes])
        return float(np.abs(np.diff(centres - truth, axis=0)).max())

    raw = [d[0] for d in detections if d]
    return {
        "frames": frames,
        "detected": len(raw),
        "raw_centre_error_px": round(centre_error(raw), 2) if len(raw) == frames else None,
        "raw_max_step_error_px": round(frame_to_frame(raw), 2) if len(raw) == frames else None,
        "tracked_centre_error_px": round(centre_error(tracked), 2),
        "tracked_max_step_error_px": round(frame_to_frame(tracked), 2),
    }


def seconds_per_frame(
    detector: FaceDetector, portrait: np.ndarray, size: tuple[int, int], runs: int = 10
) -> float:
    frame = cv2.resize(place(portrait, 1.0, 0)[0], size)
    detector.detect(frame)
    started = time.perf_counter()
    for _ in range(runs):
        detector.detect(frame)
    return (time.perf_counter() - started) / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    detector, portrait = FaceDetector(), data.astronaut()
    rates = variant_rates(detector, portrait)
    results = {
        "variants": rates,
        "detection_rate": f"{sum(rates.values())}/{len(rates)}",
        "jitter": jitter(detector, portrait),
        "ms_per_frame": {
            f"{w}x{h}": round(1000 * seconds_per_frame(detector, portrait, (w, h)), 1)
            for w, h in ((640, 480), (1920, 1080), (3840, 2160))
        },
    }
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
