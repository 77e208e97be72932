"""Face identity for the editor: dlib-style face chips, 128-D descriptors, an identity-drift meter.

The chip geometry reproduces dlib 20's ``get_face_chip_details`` (``dlib/image_transforms/
interpolation.h``): a similarity fit (Umeyama, as ``find_similarity_transform``) of the image's
landmarks to dlib's mean-face template, giving a rotated square with ``padding`` around the face.
Descriptors come from :class:`models.face_identity.FaceIdentity`, the torch port of dlib's
face-recognition ResNet; distances below 0.6 mean "same person" by dlib's convention.
dlib is imported inside the functions that need it (face detection and landmarks).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.face_identity import (
    CHIP_PADDING,
    CHIP_SIZE,
    FaceIdentity,
    cut_chips,
    descriptor_distance,
    model_path,
)
from models.jobs import OnStep, Progress, ShouldStop, check_stop, report

LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"

# dlib's mean face for 68-point landmarks 17..67, in [0, 1] chip units (get_face_chip_details).
_MEAN_FACE_X = (
    0.000213256,
    0.0752622,
    0.18113,
    0.29077,
    0.393397,
    0.586856,
    0.689483,
    0.799124,
    0.904991,
    0.98004,
    0.490127,
    0.490127,
    0.490127,
    0.490127,
    0.36688,
    0.426036,
    0.490127,
    0.554217,
    0.613373,
    0.121737,
    0.187122,
    0.265825,
    0.334606,
    0.260918,
    0.182743,
    0.645647,
    0.714428,
    0.793132,
    0.858516,
    0.79751,
    0.719335,
    0.254149,
    0.340985,
    0.428858,
    0.490127,
    0.551395,
    0.639268,
    0.726104,
    0.642159,
    0.556721,
    0.490127,
    0.423532,
    0.338094,
    0.290379,
    0.428096,
    0.490127,
    0.552157,
    0.689874,
    0.553364,
    0.490127,
    0.42689,
)
_MEAN_FACE_Y = (
    0.106454,
    0.038915,
    0.0187482,
    0.0344891,
    0.0773906,
    0.0773906,
    0.0344891,
    0.0187482,
    0.038915,
    0.106454,
    0.203352,
    0.307009,
    0.409805,
    0.515625,
    0.587326,
    0.609345,
    0.628106,
    0.609345,
    0.587326,
    0.216423,
    0.178758,
    0.179852,
    0.231733,
    0.245099,
    0.244077,
    0.231733,
    0.179852,
    0.178758,
    0.216423,
    0.244077,
    0.245099,
    0.780233,
    0.745405,
    0.727388,
    0.742578,
    0.727388,
    0.745405,
    0.780233,
    0.864805,
    0.902192,
    0.909281,
    0.902192,
    0.864805,
    0.784792,
    0.778746,
    0.785343,
    0.778746,
    0.784792,
    0.824182,
    0.831803,
    0.824182,
)
# dlib's template for its 5-point predictor (eye corners and the bottom of the nose).
_MEAN_FACE_5 = (
    (0.8595674595992, 0.2134981538014),
    (0.6460604764104, 0.2289674387677),
    (0.1205750620789, 0.2137274526848),
    (0.3340850613712, 0.2290642403242),
    (0.4901123135679, 0.6277975316475),
)
# Of the 68 points, dlib fits only the eyes, nose and outer/upper lips (no jaw, brows, lower lip).
_FIT_68 = tuple(i for i in range(17, 68) if not (i <= 26 or 55 <= i <= 59 or 65 <= i <= 67))


@dataclass(frozen=True, slots=True)
class ChipDetails:
    """dlib's ``chip_details``: a square ``rect`` rotated by ``angle`` about its centre."""

    rect: tuple[float, float, float, float]  # left, top, right, bottom (inclusive, pixels)
    angle: float  # radians
    rows: int
    cols: int


def similarity_transform(
    source: npt.ArrayLike, target: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity ``target ≈ m @ source + t`` (Umeyama 1991, eqs. 34–43).

    Args:
        source, target: [P, 2] points, P >= 2.

    Returns:
        ``(m [2, 2], t [2])``, m = scale * rotation.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    sigma_src = (src_c**2).sum(axis=1).mean()
    cov = dst_c.T @ src_c / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.ones(2)
    if np.linalg.det(cov) < 0 or (
        np.linalg.det(cov) == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0
    ):
        s[1 if d[1] < d[0] else 0] = -1.0
    rotation = u @ np.diag(s) @ vt
    scale = (d * s).sum() / sigma_src if sigma_src != 0 else 1.0
    m = scale * rotation
    return m, mean_dst - m @ mean_src


def face_chip_details(
    landmarks: npt.ArrayLike, size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> ChipDetails:
    """dlib's ``get_face_chip_details`` for 68-point or 5-point landmarks.

    Args:
        landmarks: [68, 2] or [5, 2] (x, y) image pixels, in dlib's predictor order.
        size: chip side in pixels.
        padding: border around the template face, as a fraction of its size.

    Raises:
        ValueError: not 68 or 5 points, or a negative padding.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) not in (68, 5):
        raise ValueError(f"landmarks must be [68, 2] or [5, 2], got {list(points.shape)}")
    if padding < 0 or size <= 0:
        raise ValueError(f"need padding >= 0 and size > 0, got {padding} and {size}")
    if len(points) == 5:
        template, image_points = np.array(_MEAN_FACE_5), points
    else:
        index = np.array(_FIT_68)
        template = np.stack(
            [np.array(_MEAN_FACE_X)[index - 17], np.array(_MEAN_FACE_Y)[index - 17]], axis=1
        )
        image_points = points[index]
    chip_points = (padding + template) / (2 * padding + 1) * size
    m, t = similarity_transform(chip_points, image_points)
    angle = math.atan2(m[1, 0], m[0, 0])
    scale = math.hypot(m[0, 0], m[1, 0])
    centre = m @ np.array([size / 2.0, size / 2.0]) + t
    # centered_drect(p, w, h) spans w - 1 between its inclusive edges.
    half = (size * scale - 1.0) / 2.0
    rect = (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)
    return ChipDetails(tuple(float(v) for v in rect), angle, size, size)  # type: ignore[arg-type]


def details_transform(details: ChipDetails) -> np.ndarray:
    """The chip pixel -> image pixel map dlib samples with (``extract_image_chips``).

    Chip corners (0, 0), (cols-1, 0), (0, rows-1) go to the rect's top-left, top-right and
    bottom-left corners rotated by ``angle`` about its centre.

    Returns:
        [2, 3] float64 affine map of (x, y).
    """
    left, top, right, bottom = details.rect
    centre = np.array([(left + right) / 2.0, (top + bottom) / 2.0])
    cos, sin = math.cos(details.angle), math.sin(details.angle)
    rotation = np.array([[cos, -sin], [sin, cos]])

    def rotated(x: float, y: float) -> np.ndarray:
        return rotation @ (np.array([x, y]) - centre) + centre

    origin = rotated(left, top)
    x_axis = (rotated(right, top) - origin) / max(details.cols - 1, 1)
    y_axis = (rotated(left, bottom) - origin) / max(details.rows - 1, 1)
    return np.stack([x_axis, y_axis, origin], axis=1)


def chip_transform(
    landmarks: npt.ArrayLike, size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> np.ndarray:
    """[2, 3] chip pixel -> image pixel map of dlib's face chip for these landmarks.

    Pass it to :func:`models.face_identity.cut_chips` to cut what ``dlib.get_face_chip(image,
    landmarks, size, padding)`` cuts.
    """
    return details_transform(face_chip_details(landmarks, size, padding))


def scale_transform(
    transform: npt.ArrayLike, from_size: tuple[int, int], to_size: tuple[int, int]
) -> np.ndarray:
    """Re-express a chip transform for the same picture at another resolution.

    Args:
        transform: [2, 3] for an image of ``from_size`` (H, W).
        to_size: (H, W) of the resized image (pixel centres kept aligned).
    """
    t = np.asarray(transform, dtype=np.float64).reshape(2, 3)
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    scale = np.diag([sx, sy])
    out = scale @ t
    out[:, 2] += np.array([0.5 * (sx - 1.0), 0.5 * (sy - 1.0)])
    return out


# ---------------------------------------------------------------------------------------------
# dlib detection and landmarks (loaded once; dlib calls are serialised).

_dlib_lock = threading.Lock()


@lru_cache(maxsize=1)
def _detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _predictor() -> Any:
    import dlib

    return dlib.shape_predictor(str(model_path(LANDMARK_MODEL)))


_model_lock = threading.Lock()


@lru_cache(maxsize=1)
def _default_model() -> FaceIdentity:
    return FaceIdentity()


def default_model() -> FaceIdentity:
    """The shared CPU :class:`FaceIdentity` (loaded on first use; do not move it)."""
    with _model_lock:
        return _default_model()


def _check_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected an RGB uint8 image [H, W, 3], got {image.dtype} {list(image.shape)}"
        )
    return np.ascontiguousarray(image)


def detect_landmarks(image: np.ndarray, *, upsample: int | None = None) -> np.ndarray | None:
    """68 landmarks of the largest face dlib's HOG detector finds.

    Args:
        image: uint8 [H, W, 3] RGB.
        upsample: detector upsampling steps (each halves the smallest face found, about 80 px
            without); None = 1 for images under 400 px on their short side, else 0 (upsampling
            a large photo costs seconds).

    Returns:
        float64 [68, 2] (x, y) pixels, or None when no face is found.
    """
    image = _check_rgb(image)
    if upsample is None:
        upsample = 1 if min(image.shape[:2]) < 400 else 0
    with _dlib_lock:
        faces = _detector()(image, upsample)
        if len(faces) == 0:
            return None
        face = max(faces, key=lambda r: r.width() * r.height())
        shape = _predictor()(image, face)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def _image_tensor(image: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    if isinstance(image, np.ndarray):
        # converted in numpy: torch warns about sharing read-only arrays (PIL's)
        pixels = torch.from_numpy(_check_rgb(image).astype(np.float32))
        image = pixels.permute(2, 0, 1)[None]
    elif image.ndim == 3:
        image = image[None]
    return image.to(device)


def face_descriptors(
    images: Sequence[np.ndarray],
    model: FaceIdentity | None = None,
    *,
    landmarks: Sequence[npt.ArrayLike | None] | None = None,
) -> list[np.ndarray | None]:
    """Descriptors of the largest face in each image, in one network pass.

    Equal to dlib's ``compute_face_descriptor(image, shape)`` within 1e-4: same detector,
    landmarks and chip (bit-exact), and our port of the network.

    Args:
        images: uint8 [H, W, 3] RGB images (sizes may differ).
        model: the network to use; None = :func:`default_model`.
        landmarks: per image, [68, 2] or [5, 2] to skip detection (None entries are detected).

    Returns:
        float32 [128] per image, None where no face is found.
    """
    model = model or default_model()
    marks = list(landmarks) if landmarks is not None else [None] * len(images)
    if len(marks) != len(images):
        raise ValueError(f"{len(images)} images but {len(marks)} landmark sets")
    chips, found = [], []
    for index, (image, points) in enumerate(zip(images, marks, strict=True)):
        if points is None:
            points = detect_landmarks(image)
        if points is None:
            continue
        pixels = _image_tensor(image, model.device)
        chips.append(cut_chips(pixels, chip_transform(points), quantize=True))
        found.append(index)
    results: list[np.ndarray | None] = [None] * len(images)
    if chips:
        with torch.no_grad():
            descriptors = model.embed(torch.cat(chips)).cpu().numpy()
        for index, descriptor in zip(found, descriptors, strict=True):
            results[index] = descriptor
    return results


def face_descriptor(
    image: np.ndarray, model: FaceIdentity | None = None, *, landmarks: npt.ArrayLike | None = None
) -> np.ndarray | None:
    """128-D descriptor of the largest face (see :func:`face_descriptors`).

    Args:
        image: uint8 [H, W, 3] RGB.
        model: the network to use; None = :func:`default_model`.
        landmarks: [68, 2] or [5, 2] to skip detection.

    Returns:
        float32 [128], or None when no face is found.
    """
    return face_descriptors([image], model, landmarks=[landmarks])[0]


def identity_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Euclidean distance of two descriptors; below 0.6 = same person (dlib's convention)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


class IdentityMeter:
    """Distance of edited images to a reference face, for an "identity drift" read-out.

    The reference's chip transform is kept and reused for every image, so a measurement is one
    chip cut and one network pass (no detection), and it works when the edit defeats the
    detector. Images of another resolution are handled by rescaling the transform.

    Args:
        reference: uint8 [H, W, 3] RGB reference image.
        model: the network; None = :func:`default_model` (CPU).
        landmarks: [68, 2] or [5, 2] for the reference, to skip detection.

    Raises:
        ValueError: no face found in the reference.
    """

    def __init__(
        self,
        reference: np.ndarray,
        model: FaceIdentity | None = None,
        *,
        landmarks: npt.ArrayLike | None = None,
    ) -> None:
        reference = _check_rgb(reference)
        if landmarks is None:
            landmarks = detect_landmarks(reference)
            if landmarks is None:
                raise ValueError("no face found in the reference image")
        self.model = model or default_model()
        self.reference_size: tuple[int, int] = (reference.shape[0], reference.shape[1])
        self.transform: np.ndarray = chip_transform(landmarks)  # [2, 3] for reference_size
        descriptor = self.descriptors(_image_tensor(reference, self.model.device), quantize=True)
        self.reference_descriptor: torch.Tensor = descriptor[0].detach()  # [128]

    def transform_for(self, size: tuple[int, int]) -> np.ndarray:
        """The chip transform for an image of ``size`` (H, W)."""
        if size == self.reference_size:
            return self.transform
        return scale_transform(self.transform, self.reference_size, size)

    def descriptors(self, images: torch.Tensor, *, quantize: bool = False) -> torch.Tensor:
        """Descriptors of images [N, 3, H, W] (0–255 RGB) at the reference's face position.

        Differentiable with respect to ``images`` unless ``quantize``. Returns [N, 128].
        """
        transform = self.transform_for((images.shape[-2], images.shape[-1]))
        chips = cut_chips(images.to(self.model.device), transform, quantize=quantize)
        return self.model.embed(chips)

    def distances(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable distances [N] of images [N, 3, H, W] (0–255) to the reference.

        For an identity loss: ``meter.distances(generator_to_pixels(G.synthesis(ws))).mean()``.
        """
        return descriptor_distance(
            self.descriptors(images), self.reference_descriptor.to(images.device)
        )

    def distance(self, image: np.ndarray) -> float:
        """Distance of a uint8 [H, W, 3] RGB image to the reference (dlib-exact chip)."""
        with torch.no_grad():
            descriptor = self.descriptors(_image_tensor(image, self.model.device), quantize=True)
        return float(descriptor_distance(descriptor[0], self.reference_descriptor))


@dataclass(frozen=True, slots=True)
class IdentityStep:
    """Result of :func:`preserve_identity_step`."""

    amount: float  # the step to take (same sign as asked, possibly 0)
    distance: float  # identity distance at that amount
    evaluations: int  # calls made to distance_for
    shrunk: bool  # True when the asked amount drifted too far


def preserve_identity_step(
    distance_for: Callable[[float], float],
    amount: float,
    threshold: float,
    *,
    iterations: int = 8,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> IdentityStep:
    """Shrink an edit step so the identity drift stays at or under ``threshold``.

    Tries the full ``amount``; if it drifts too far, bisects the fraction of it in [0, 1] and
    returns the largest tried amount whose distance is within the threshold (drift is assumed to
    grow with the amount, as it does for small steps along a direction).

    Args:
        distance_for: identity distance of the image rendered with a step of ``a`` (e.g.
            ``lambda a: meter.distance(render(w + a * direction))``).
        amount: the desired step (any sign).
        threshold: the largest acceptable distance (dlib's same-person boundary is 0.6).
        iterations: bisection steps (the answer is within ``amount / 2**iterations``).
        on_step, should_stop: progress and cancellation (see ``models.jobs``).

    Returns:
        The step to take; ``amount == 0`` when even a tiny step drifts too far.

    Raises:
        Cancelled: ``should_stop`` returned True; ``partial`` is the best step so far.
    """
    check_stop(should_stop)
    full = float(distance_for(amount))
    evaluations = 1
    report(on_step, Progress(1, iterations + 1, "full step", {"distance": full}))
    if full <= threshold:
        return IdentityStep(amount, full, evaluations, shrunk=False)
    best = IdentityStep(0.0, math.nan, evaluations, shrunk=True)
    low, high = 0.0, 1.0
    for i in range(iterations):
        check_stop(should_stop, best)
        middle = (low + high) / 2.0
        distance = float(distance_for(amount * middle))
        evaluations += 1
        if distance <= threshold:
            low = middle
            best = IdentityStep(amount * middle, distance, evaluations, shrunk=True)
        else:
            high = middle
        report(
            on_step,
            Progress(i + 2, iterations + 1, f"step {amount * middle:.3g}", {"distance": distance}),
        )
    if best.amount == 0.0:
        # Nothing tried was close enough: report the drift of not moving at all.
        evaluations += 1
        return IdentityStep(0.0, float(distance_for(0.0)), evaluations, shrunk=True)
    return IdentityStep(best.amount, best.distance, evaluations, shrunk=True)
