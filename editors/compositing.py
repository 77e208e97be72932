"""Put an edited aligned face back into the original photo at its own resolution.

The face goes back through the inverse of the alignment warp, its colours are matched to the photo
(the statistics of the unedited reconstruction against the photo under the face mask, so an edit's
own colour change survives), and a Laplacian pyramid blend joins them: coarse detail mixes over a
wide band, fine detail over a narrow one, which hides the seam without a blurry halo.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from editors.alignment import AlignedFace, invert_affine
from editors.images import ImageSource, load_image

BLEND_LEVELS = 5  # at most this many pyramid levels (fewer when the feather is narrow)
COLOUR_GAIN_RANGE = (0.7, 1.4)  # the colour match may scale contrast only this much
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
    reference: np.ndarray | Image.Image | None = None,
    blend: str = "laplacian",
) -> Image.Image:
    """Blend an edited face crop into the original photo.

    Args:
        photo: the photo the crop was aligned from (path or Pillow image).
        aligned: the alignment result (its ``to_source`` ties the two together).
        face: the edited crop, uint8 [R, R, 3] or a Pillow image, any square size R.
        mask: [M, M] float in [0, 1] over the crop; None = ``face_mask``.
        feather: softness of the default mask, as a fraction of the crop size.
        reference: the unedited reconstruction of the same crop; when given, the face's colours
            are corrected by how the reconstruction differs from the photo under the mask.
        blend: "laplacian" (pyramid blend) or "alpha" (plain feathered alpha).

    Returns:
        The photo with the face replaced, same size as the photo; pixels outside the mask's
        support are the photo's own.
    """
    import cv2

    if blend not in ("laplacian", "alpha"):
        raise ValueError(f"blend must be 'laplacian' or 'alpha', got {blend!r}")
    source = np.asarray(load_image(photo), dtype=np.float32)
    height, width = source.shape[:2]
    if (width, height) != aligned.source_size:
        raise ValueError(
            f"the photo is {width}x{height} but the face was aligned from a "
            f"{aligned.source_size[0]}x{aligned.source_size[1]} image"
        )
    face_rgb = _square_rgb(face, "face")
    if mask is None:
        mask = face_mask(aligned, max(face_rgb.shape[0], MASK_MIN_SIZE), feather=feather)

    def back(image: np.ndarray, border: int, value: float = 0.0) -> np.ndarray:
        # cv2 with WARP_INVERSE_MAP wants destination (photo) pixels -> source (crop) pixels.
        return cv2.warpAffine(
            image.astype(np.float32), invert_affine(face_to_source(aligned, image.shape[0])),
            (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=border, borderValue=value,
        )  # fmt: skip

    face_back = back(face_rgb, cv2.BORDER_REPLICATE)
    mask_back = back(np.asarray(mask, np.float32), cv2.BORDER_CONSTANT)
    if reference is not None:
        reference_back = back(_square_rgb(reference, "reference"), cv2.BORDER_REPLICATE)
        face_back = match_colours(face_back, reference_back, source, mask_back)
    blended = source.copy()
    rows, cols = np.nonzero(mask_back > 0)
    if rows.size:
        # Only the mask's bounding box (plus the coarsest level's reach) is blended.
        levels = blend_levels(feather * aligned.size * _scale(aligned)) if blend != "alpha" else 0
        margin = 2**levels * 2
        top, bottom = max(rows.min() - margin, 0), min(rows.max() + margin + 1, height)
        left, right = max(cols.min() - margin, 0), min(cols.max() + margin + 1, width)
        box = (slice(top, bottom), slice(left, right))
        region = laplacian_blend(source[box], face_back[box], mask_back[box], levels)
        inside = (mask_back[box] > 0)[..., None]
        blended[box] = np.where(inside, region, source[box])
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8), "RGB")


def _square_rgb(image: np.ndarray | Image.Image, what: str) -> np.ndarray:
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if rgb.ndim != 3 or rgb.shape[0] != rgb.shape[1] or rgb.shape[2] != 3:
        raise ValueError(f"{what} must be a square RGB image, got {list(rgb.shape)}")
    return rgb


def _scale(aligned: AlignedFace) -> float:
    """Source pixels per aligned pixel."""
    return float(np.sqrt(abs(np.linalg.det(aligned.to_source[:, :2]))))


def blend_levels(feather_px: float) -> int:
    """Pyramid levels for a feather this wide (source pixels): the coarsest spans about it."""
    return int(np.clip(np.floor(np.log2(max(feather_px, 1.0))), 0, BLEND_LEVELS))


def match_colours(
    face: np.ndarray, reference: np.ndarray, photo: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Shift and scale each channel of ``face`` by how ``reference`` differs from ``photo``.

    Means and standard deviations are weighted by ``mask``; the gain is clamped so a bad
    reconstruction cannot blow up contrast. All arrays are float [H, W, 3] (mask [H, W]).
    """
    weights = mask[..., None].astype(np.float64)
    total = weights.sum()
    if total < 1e-6:
        return face

    def stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = (image * weights).sum(axis=(0, 1)) / total
        var = (((image - mean) ** 2) * weights).sum(axis=(0, 1)) / total
        return mean, np.sqrt(var + 1e-6)

    ref_mean, ref_std = stats(reference)
    photo_mean, photo_std = stats(photo)
    gain = np.clip(photo_std / ref_std, *COLOUR_GAIN_RANGE)
    return ((face - ref_mean) * gain + photo_mean).astype(np.float32)


def laplacian_blend(
    background: np.ndarray, foreground: np.ndarray, mask: np.ndarray, levels: int
) -> np.ndarray:
    """Burt-Adelson blend of float [H, W, 3] images under mask [H, W] with ``levels`` levels."""
    import cv2

    alpha = mask[..., None].astype(np.float32)
    if levels <= 0:
        return background * (1 - alpha) + foreground * alpha
    gaussians_bg, gaussians_fg, masks = [background], [foreground], [mask.astype(np.float32)]
    for _ in range(levels):
        gaussians_bg.append(cv2.pyrDown(gaussians_bg[-1]))
        gaussians_fg.append(cv2.pyrDown(gaussians_fg[-1]))
        masks.append(cv2.pyrDown(masks[-1]))

    def up(image: np.ndarray, like: np.ndarray) -> np.ndarray:
        return cv2.pyrUp(image, dstsize=(like.shape[1], like.shape[0]))

    level_mask = masks[levels][..., None]
    result = gaussians_bg[levels] * (1 - level_mask) + gaussians_fg[levels] * level_mask
    for level in range(levels - 1, -1, -1):
        bg, fg = gaussians_bg[level], gaussians_fg[level]
        detail_bg = bg - up(gaussians_bg[level + 1], bg)
        detail_fg = fg - up(gaussians_fg[level + 1], fg)
        level_mask = masks[level][..., None]
        result = up(result, bg) + detail_bg * (1 - level_mask) + detail_fg * level_mask
    return result
