"""Offline face detection with the Haar cascades that opencv-python-headless ships in cv2.data.

No model is downloaded at run time. Frames are detected on a downscaled grey copy (the cascade
needs ~40 px faces, not 4K ones). A frame with no upright face is retried rotated by a few
degrees, since the frontal cascade misses heads tilted more than ~15 degrees, then framed by a
plain border, since it also misses faces the frame edge cuts (a close-up's forehead, a face half
out of shot): its window must fit the whole face.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import cv2
import numpy as np

from skyaudio_cli.errors import RuntimeFailure
from skyaudio_cli.face.geometry import Box

DEFAULT_CASCADE = "haarcascade_frontalface_alt2.xml"
# Long side of the copy the cascade scans: faces that matter for lip-sync are at least ~1/12 of the
# frame, i.e. >= 40 px here, which the 20x20 cascade window finds reliably and quickly.
DETECTION_LONG_SIDE = 480
MIN_FACE_FRACTION = 1 / 12
# Tried in order after an upright miss; degrees counter-clockwise.
RETRY_ANGLES = (-20.0, 20.0)
# Border added on each side for the edge retry, as a fraction of the frame's short side.
EDGE_BORDER_FRACTION = 0.15


class FaceDetector:
    def __init__(
        self, cascade: str = DEFAULT_CASCADE, retry_angles: tuple[float, ...] = RETRY_ANGLES
    ) -> None:
        path = Path(cv2.data.haarcascades) / cascade
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeFailure(
                f"OpenCV could not load its face cascade {path}; reinstall opencv-python-headless"
            )
        self._retry_angles = retry_angles

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Faces in an HxWx3 uint8 RGB frame, in frame pixels, largest first."""
        scale = min(1.0, DETECTION_LONG_SIDE / max(frame.shape[:2]))
        small = (
            cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame
        )
        grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        faces = self._scan(grey)
        retries = [partial(self._scan_rotated, grey, angle) for angle in self._retry_angles]
        for retry in [*retries, partial(self._scan_framed, grey)]:
            if faces:
                break
            faces = retry()
        return sorted((face.scaled(1 / scale) for face in faces), key=lambda b: -b.w * b.h)

    def _scan(self, grey: np.ndarray) -> list[Box]:
        smallest = max(20, round(min(grey.shape) * MIN_FACE_FRACTION))
        found = self._cascade.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest)
        )
        return [Box(*map(float, face)) for face in found]

    def _scan_rotated(self, grey: np.ndarray, angle: float) -> list[Box]:
        """Scan a copy rotated by `angle` and map each face's centre back; the size is kept."""
        height, width = grey.shape
        centre = (width / 2, height / 2)
        rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
        rotated = cv2.warpAffine(grey, rotation, (width, height), borderMode=cv2.BORDER_REPLICATE)
        back = cv2.invertAffineTransform(rotation)
        faces = []
        for face in self._scan(rotated):
            cx, cy = back @ np.array([*face.centre, 1.0])
            faces.append(Box(float(cx) - face.w / 2, float(cy) - face.h / 2, face.w, face.h))
        return faces

    def _scan_framed(self, grey: np.ndarray) -> list[Box]:
        """Scan a copy inside a mean-grey border and keep the faces that reach past the frame.

        A flat border adds no texture the cascade could take for a face (a replicated or mirrored
        edge would). A face found wholly inside the frame here was missed by the plain scan for a
        reason, so it is more likely a false positive than a face: only edge-cut faces count.
        """
        height, width = grey.shape
        border = round(EDGE_BORDER_FRACTION * min(height, width))
        framed = cv2.copyMakeBorder(
            grey, border, border, border, border, cv2.BORDER_CONSTANT, value=int(grey.mean())
        )
        faces = [Box(face.x - border, face.y - border, face.w, face.h) for face in self._scan(framed)]
        return [
            face
            for face in faces
            if face.x < 0 or face.y < 0 or face.x + face.w > width or face.y + face.h > height
        ]
