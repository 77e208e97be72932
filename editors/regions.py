"""Face regions from dlib's 68 landmarks, and measures of where an edit acts.

No face-parsing network is available offline, so the landmarks define the regions: mouth, eyes,
brows and nose are hulls of their points; jaw/cheeks is the rest of the lower face (the hull of the
jaw line, the nose base and the mouth); hair/top is an area above and around the face scaled from
the face's own size; everything else is background. Small generated faces are upscaled before
detection (dlib's HOG detector misses faces under about 80 px).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

# 68-point indices (iBUG layout).
JAW = tuple(range(0, 17))
BROWS = tuple(range(17, 27))
NOSE = tuple(range(27, 36))
NOSE_BASE = tuple(range(31, 36))
LEFT_EYE = tuple(range(36, 42))
RIGHT_EYE = tuple(range(42, 48))
MOUTH = tuple(range(48, 68))
MOUTH_CORNERS = (48, 54)
LOWER_FACE = JAW + NOSE_BASE + MOUTH  # the hull the locality goals are measured in

# Label map order: earlier regions win where hulls overlap.
REGION_NAMES = ("mouth", "eyes", "brows", "nose", "jaw/cheeks", "hair/top", "background")
DETECTION_SIZE = 256  # small images are upscaled to this before detection


def face_landmarks(rgb: np.ndarray) -> np.ndarray | None:
    """68 landmarks [68, 2] (x, y in ``rgb``'s pixels) of the largest face, or None.

    Images under ``DETECTION_SIZE`` are upscaled (bicubic) first and the points scaled back.
    """
    import cv2

    from editors.identity import detect_landmarks

    height, width = rgb.shape[:2]
    factor = max(1.0, DETECTION_SIZE / min(height, width))
    image = np.ascontiguousarray(rgb, dtype=np.uint8)
    if factor > 1.0:
        size = (round(width * factor), round(height * factor))
        image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    points = detect_landmarks(image, upsample=0)
    if points is None:
        return None
    # Pixel centres: x_small = (x_big + 0.5) / factor - 0.5
    return (points + 0.5) / factor - 0.5


def hull_mask(points: npt.ArrayLike, size: int | tuple[int, int]) -> np.ndarray:
    """Boolean [H, W] mask of the convex hull of ``points`` (x, y pixels)."""
    import cv2

    height, width = (size, size) if isinstance(size, int) else size
    mask = np.zeros((height, width), np.uint8)
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    # Sub-pixel hull: cv2 fills with 4 fractional bits (the shift argument).
    hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def lower_face_mask(landmarks: npt.ArrayLike, size: int | tuple[int, int]) -> np.ndarray:
    """The hull of the jaw line, the nose base and the mouth (where a smile should act)."""
    return hull_mask(np.asarray(landmarks)[list(LOWER_FACE)], size)


def _scaled_hull(points: np.ndarray, size: tuple[int, int], grow: float) -> np.ndarray:
    centre = points.mean(axis=0)
    return hull_mask(centre + (points - centre) * grow, size)


def region_masks(landmarks: npt.ArrayLike, size: int | tuple[int, int]) -> dict[str, np.ndarray]:
    """Disjoint boolean masks [H, W] for ``REGION_NAMES`` (together they cover the image).

    Small features (eyes, brows, mouth) are grown a little around their hulls so a change at
    their edge still counts as theirs.
    """
    points = np.asarray(landmarks, np.float64)
    shape = (size, size) if isinstance(size, int) else tuple(size)
    eye_distance = float(
        np.linalg.norm(points[list(LEFT_EYE)].mean(0) - points[list(RIGHT_EYE)].mean(0))
    )
    raw = {
        "mouth": _scaled_hull(points[list(MOUTH)], shape, 1.25),
        "eyes": _scaled_hull(points[list(LEFT_EYE)], shape, 1.6)
        | _scaled_hull(points[list(RIGHT_EYE)], shape, 1.6),
        "brows": _scaled_hull(points[list(BROWS[:5])], shape, 1.3)
        | _scaled_hull(points[list(BROWS[5:])], shape, 1.3),
        "nose": hull_mask(points[list(NOSE)], shape),
        "jaw/cheeks": hull_mask(points[list(LOWER_FACE)], shape) | hull_mask(points, shape),
    }
    # Hair and the top of the head: the face hull lifted by one eye distance and widened.
    top = points[list(JAW + BROWS)].copy()
    lifted = top.copy()
    lifted[:, 1] -= 1.2 * eye_distance
    head = _scaled_hull(np.concatenate([top, lifted]), shape, 1.15)
    # Hair beside the face, but not the neck and shoulders below the mouth.
    rows = np.arange(shape[0])[:, None] < points[list(MOUTH_CORNERS), 1].mean()
    raw["hair/top"] = head & rows
    masks: dict[str, np.ndarray] = {}
    taken = np.zeros(shape, bool)
    for name in REGION_NAMES[:-1]:
        masks[name] = raw[name] & ~taken
        taken |= masks[name]
    masks["background"] = ~taken
    return masks


def label_map(landmarks: npt.ArrayLike, size: int | tuple[int, int]) -> np.ndarray:
    """int8 [H, W]: the index into ``REGION_NAMES`` of each pixel's region."""
    masks = region_masks(landmarks, size)
    labels = np.zeros(next(iter(masks.values())).shape, np.int8)
    for index, name in enumerate(REGION_NAMES):
        labels[masks[name]] = index
    return labels


def change_map(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-pixel amount of change [H, W] (sum of absolute RGB differences)."""
    return np.abs(np.asarray(after, np.float64) - np.asarray(before, np.float64)).sum(axis=-1)


def share_inside(change: np.ndarray, mask: np.ndarray) -> float:
    """Fraction of the total ``change`` [H, W] that lies inside ``mask`` (NaN for no change)."""
    total = float(change.sum())
    return float(change[mask].sum()) / total if total > 0 else float("nan")


def region_shares(change: np.ndarray, landmarks: npt.ArrayLike) -> dict[str, float]:
    """The share of ``change`` [H, W] in each region of ``REGION_NAMES``."""
    masks = region_masks(landmarks, change.shape)
    return {name: share_inside(change, mask) for name, mask in masks.items()}


def mouth_width(landmarks: npt.ArrayLike) -> float:
    """Mouth-corner distance divided by the distance between the eye centres."""
    points = np.asarray(landmarks, np.float64)
    eyes = float(np.linalg.norm(points[list(LEFT_EYE)].mean(0) - points[list(RIGHT_EYE)].mean(0)))
    corners = float(np.linalg.norm(points[MOUTH_CORNERS[0]] - points[MOUTH_CORNERS[1]]))
    return corners / eyes if eyes > 0 else float("nan")


def intended_region(name: str) -> str:
    """The region an attribute named ``name`` should act in (for locality read-outs)."""
    lowered = name.lower()
    for words, region in _INTENDED:
        if any(word in lowered for word in words):
            return region
    return "face"


_INTENDED: tuple[tuple[tuple[str, ...], str], ...] = (
    (("smil", "mouth", "lip", "teeth"), "lower face"),
    (("beard", "jaw", "chin", "mustache", "moustache"), "lower face"),
    (("eye", "glass"), "eyes"),
    (("brow",), "brows"),
    (("nose",), "nose"),
    (("hair", "bang", "blond", "bald"), "hair/top"),
)


def intended_mask(region: str, landmarks: npt.ArrayLike, size: int | tuple[int, int]) -> np.ndarray:
    """Boolean mask for ``intended_region``'s answer: a region name, "lower face" or "face"."""
    points = np.asarray(landmarks, np.float64)
    if region == "lower face":
        return lower_face_mask(points, size)
    if region == "face":
        return hull_mask(points, size) | region_masks(points, size)["brows"]
    masks: Mapping[str, np.ndarray] = region_masks(points, size)
    if region == "eyes":
        return masks["eyes"] | masks["brows"]
    return masks[region]


def region_mask(
    region: str, landmarks: npt.ArrayLike, size: int | tuple[int, int], grow: float = 1.0
) -> np.ndarray:
    """Boolean mask of ``region`` ("mouth", "eyes", "lower face", ...) with its hull grown.

    ``grow`` scales the hull of the region's own points about their centre ("mouth", "eyes",
    "nose"); the composite regions ("lower face", "face", "hair/top") ignore it.
    """
    points = np.asarray(landmarks, np.float64)
    shape = (size, size) if isinstance(size, int) else tuple(size)
    own = {"mouth": (MOUTH,), "eyes": (LEFT_EYE, RIGHT_EYE), "nose": (NOSE,)}
    if region in own:
        mask = np.zeros(shape, bool)
        for group in own[region]:
            mask |= _scaled_hull(points[list(group)], shape, grow)
        return mask
    return intended_mask(region, points, shape)


_warming: list[object] = []


def warm_up_in_background() -> None:
    """Load dlib's detector and landmark model on a daemon thread (once per process).

    Their first load takes seconds; a region-localized slider needs them on its first frame.
    """
    import threading

    if _warming:
        return

    def load() -> None:
        from editors.identity import _detector, _dlib_lock, _predictor

        with _dlib_lock:
            _detector()
            _predictor()

    thread = threading.Thread(target=load, name="dlib warm-up", daemon=True)
    _warming.append(thread)
    thread.start()
