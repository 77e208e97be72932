"""Put an edited aligned face back into the original photo (inverse alignment, feathered mask)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from editors.alignment import AlignedFace, invert_affine
from editors.images import ImageSource, load_image

MASK_MIN_SIZE = 256  # masks are drawn at least this large, then warped (smooth edges on big photos)
# Landmark groups whose hull bounds the face (jaw, brows); the brows are raised for the forehead.
JAW = slice(0, 17)
BROWS = slice(17, 27)


def face_to_source(aligned: AlignedFace, face_size: int) -> np.ndarray:
    """[2, 3] affine: pixels of a ``face_size`` image of the aligned crop -> source photo pixels."""
    scale = aligned.size / face_size
    # Pixel centres: aligned = (face + 0.5) * scale - 0.5.
    to_aligned = np.array([[scale, 0.0, 0.5 * scale - 0.5], [0.0, scale, 0.5 * scale - 0.5]])
    return _compose(aligned.to_source, to_aligned)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The affine ``outer(inner(p))``."""
    linear = outer[:, :2] @ inner[:, :2]
    offset = outer[:, :2] @ inner[:, 2] + outer[:, 2]
    return np.concatenate([linear, offset[:, None]], axis=1)


def face_mask(aligned: AlignedFace, size: int, *, feather: float = 0.05) -> np.ndarray:
    """A soft mask [size, size] float32 in [0, 1] of the face in the aligned crop.

    With landmarks: the hull of jaw and brows (brows raised by half the eye-to-mouth distance
    to keep the forehead), feathered by a Gaussian of ``feather * size``. Without (a centre
    crop): the whole square, faded towards its border.
    """
    import cv2

    if aligned.landmarks is None:
        ramp = np.minimum(np.arange(size) + 0.5, size - np.arange(size) - 0.5) / max(
            feather * size, 1
        )
        edge = np.clip(ramp, 0, 1).astype(np.float32)
        return np.minimum(edge[:, None], edge[None, :])
    points = aligned.source_to_aligned(aligned.landmarks)
    points = (points + 0.5) * (size / aligned.size) - 0.5
    eyes = points[36:48].mean(axis=0)
    mouth = (points[48] + points[54]) / 2
    lift = (eyes - mouth) * 0.5
    hull = np.concatenate([points[JAW], points[BROWS] + lift])
    mask = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(
        mask, cv2.convexHull(np.round(hull * 16).astype(np.int32)), 1.0, cv2.LINE_AA, 4
    )
    sigma = max(feather * size, 0.5)
    # Shrink a little before blurring so the feather ends near the hull, not far outside it.
    kernel = np.ones((3, 3), np.uint8)
    mask = cv2.erode(mask, kernel, iterations=max(1, int(sigma)))
    return cv2.GaussianBlur(mask, (0, 0), sigma).clip(0, 1)


def composite(
    photo: ImageSource,
    aligned: AlignedFace,
    face: np.ndarray | Image.Image,
    *,
    mask: np.ndarray | None = None,
    feather: float = 0.05,
) -> Image.Image:
    """Blend an edited face crop into the original photo.

    Args:
        photo: the photo the crop was aligned from (path or Pillow image).
        aligned: the alignment result (its ``to_source`` ties the two together).
        face: the edited crop, uint8 [R, R, 3] or a Pillow image, any square size R.
        mask: [M, M] float in [0, 1] over the crop; None = ``face_mask``.
        feather: softness of the default mask, as a fraction of the crop size.

    Returns:
        The photo with the face replaced, same size as the photo.
    """
    import cv2

    source = np.asarray(load_image(photo), dtype=np.float32)
    height, width = source.shape[:2]
    if (width, height) != aligned.source_size:
        raise ValueError(
            f"the photo is {width}x{height} but the face was aligned from a "
            f"{aligned.source_size[0]}x{aligned.source_size[1]} image"
        )
    face_rgb = np.asarray(face.convert("RGB") if isinstance(face, Image.Image) else face)
    if face_rgb.ndim != 3 or face_rgb.shape[0] != face_rgb.shape[1] or face_rgb.shape[2] != 3:
        raise ValueError(f"face must be a square RGB image, got {list(face_rgb.shape)}")
    if mask is None:
        mask = face_mask(aligned, max(face_rgb.shape[0], MASK_MIN_SIZE), feather=feather)
    # cv2 with WARP_INVERSE_MAP wants destination (photo) pixels -> source (crop) pixels.
    face_back = cv2.warpAffine(
        face_rgb.astype(np.float32), invert_affine(face_to_source(aligned, face_rgb.shape[0])),
        (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    mask_back = cv2.warpAffine(
        np.asarray(mask, np.float32), invert_affine(face_to_source(aligned, mask.shape[0])),
        (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )[..., None]  # fmt: skip
    blended = source * (1.0 - mask_back) + face_back * mask_back
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8), "RGB")
