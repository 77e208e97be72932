"""Face alignment to the FFHQ template: NVIDIA's crop recipe on dlib's 68 landmarks.

The crop follows FFHQ's ``recreate_aligned_images`` (also Puzer's ``face_alignment``) step by step:
eye and mouth centres -> oriented square -> shrink large inputs -> crop with a border -> reflect-pad
and blur -> quad transform -> resize (``../shared/reference/formats.md`` §5, relative to the
project). Points use pixel centres at integers, as dlib, OpenCV and numpy indexing do. cv2 and
scipy load lazily. Reading photos is ``editors.images``; finding faces ``editors.face_detection``;
aligning folders ``editors.alignment_batch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from editors.errors import AlignmentError, NoFaceFound
from editors.face_detection import FaceRect, detect_faces
from editors.images import ImageSource, image_path, load_image

MAX_TRANSFORM_SIZE = 4096  # FFHQ's supersampled quad-transform size
SUPERSAMPLE = 4  # quad transform at SUPERSAMPLE x output size (capped), then Lanczos down

# dlib 68-point indices (iBUG 300-W): image-left eye, image-right eye, mouth corners.
EYE_LEFT = slice(36, 42)
EYE_RIGHT = slice(42, 48)
MOUTH_LEFT, MOUTH_RIGHT = 48, 54


@dataclass(frozen=True, slots=True, eq=False)
class AlignedFace:
    """An aligned face crop and the geometry tying it to the source photo."""

    image: Image.Image  # [size, size] RGB crop
    to_source: np.ndarray  # [2, 3] affine: aligned pixel (x, y, 1) -> source pixel (x, y)
    quad: np.ndarray  # [4, 2] source-pixel centres of the crop corners: UL, LL, LR, UR
    source_size: tuple[int, int]  # (width, height) of the upright source photo
    landmarks: np.ndarray | None = None  # [68, 2] source pixels; None for a centre crop
    rect: FaceRect | None = None  # detector box; None when landmarks were given or for a crop
    source_path: Path | None = None  # the photo's file, when it came from one
    method: Literal["ffhq", "center-crop"] = "ffhq"
    faces_found: int = 1  # faces detected in the photo (the GUI offers a choice when > 1)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form facts for reports

    @property
    def size(self) -> int:
        """Side of the aligned square in pixels."""
        return self.image.width

    @property
    def from_source(self) -> np.ndarray:
        """[2, 3] affine: source pixel -> aligned pixel (inverse of ``to_source``)."""
        return invert_affine(self.to_source)

    def aligned_to_source(self, points: np.ndarray) -> np.ndarray:
        """Map aligned-image points [..., 2] to source-photo points [..., 2]."""
        return apply_affine(self.to_source, points)

    def source_to_aligned(self, points: np.ndarray) -> np.ndarray:
        """Map source-photo points [..., 2] to aligned-image points [..., 2]."""
        return apply_affine(self.from_source, points)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a [2, 3] affine to points [..., 2]."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of an invertible [2, 3] affine."""
    linear = np.linalg.inv(matrix[:, :2])
    return np.concatenate([linear, -linear @ matrix[:, 2:]], axis=1)


def affine_from_quad(quad: np.ndarray, size: int) -> np.ndarray:
    """The [2, 3] affine taking aligned pixels of a ``size`` square to source pixels.

    ``quad`` holds the source pixel centres of the square's corners (UL, LL, LR, UR) in the
    recipe's convention: the square's outer corner (-0.5, -0.5) lands on ``quad[0]``.
    """
    quad = np.asarray(quad, dtype=np.float64)
    axis_x = (quad[3] - quad[0]) / size
    axis_y = (quad[1] - quad[0]) / size
    linear = np.stack([axis_x, axis_y], axis=1)
    offset = quad[0] + linear @ np.array([0.5, 0.5])
    return np.concatenate([linear, offset[:, None]], axis=1)


def ffhq_quad(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The FFHQ crop square for 68 landmarks.

    Args:
        landmarks: [68, 2] (x, y) source pixels.

    Returns:
        ``(quad, qsize)``: corners [4, 2] (UL, LL, LR, UR) and the square's side in pixels.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"landmarks must have shape [68, 2], got {list(points.shape)}")
    eye_left = points[EYE_LEFT].mean(axis=0)
    eye_right = points[EYE_RIGHT].mean(axis=0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (points[MOUTH_LEFT] + points[MOUTH_RIGHT]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    # The square's x axis bisects eye line and the normal of the eye-mouth line.
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    center = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([center - x - y, center - x + y, center + x + y, center + x - y])
    return quad, float(np.hypot(*x) * 2)


def align_landmarks(
    image: ImageSource,
    landmarks: np.ndarray,
    size: int,
    *,
    rect: FaceRect | None = None,
    transform_size: int | None = None,
    faces_found: int = 1,
) -> AlignedFace:
    """Crop and rotate a photo to the FFHQ template given its 68 landmarks.

    Args:
        image: a path or a Pillow image.
        landmarks: [68, 2] source pixels (dlib's order).
        size: output side in pixels.
        rect: the detector box, kept in the result for display.
        transform_size: size of the supersampled quad transform; None = min(4096, 4 * size).
            FFHQ itself uses 4096, which costs far more for small outputs and changes nothing
            measurable after the Lanczos reduction.
        faces_found: recorded in the result.

    Returns:
        The aligned face.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    rgb = load_image(image)
    quad, qsize = ffhq_quad(landmarks)
    transform_size = transform_size or min(MAX_TRANSFORM_SIZE, SUPERSAMPLE * size)
    transform_size = max(transform_size, size)
    aligned = _ffhq_warp(rgb, quad, qsize, size, transform_size)
    return AlignedFace(
        image=aligned,
        to_source=affine_from_quad(quad, size),
        quad=quad,
        source_size=rgb.size,
        landmarks=np.asarray(landmarks, dtype=np.float64).copy(),
        rect=rect,
        source_path=_source_path(image),
        method="ffhq",
        faces_found=faces_found,
    )


def _source_path(image: ImageSource) -> Path | None:
    return image_path(image) if isinstance(image, Image.Image) else Path(image)


def _ffhq_warp(
    img: Image.Image, quad: np.ndarray, qsize: float, size: int, transform_size: int
) -> Image.Image:
    """Steps 4-7 of the FFHQ recipe; ``quad`` in source pixel centres."""
    quad = quad.copy()
    # 4. Shrink large inputs so the quad is at most about 4x the output (cheap antialiasing).
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        new_size = (int(np.rint(img.width / shrink)), int(np.rint(img.height / shrink)))
        scale = np.array([new_size[0] / img.width, new_size[1] / img.height])
        img = img.resize(new_size, Image.Resampling.LANCZOS)
        # The recipe divides by `shrink`; scaling by the real size ratio keeps the geometry exact.
        quad = (quad + 0.5) * scale - 0.5
        qsize /= shrink

    # 5. Crop to the quad's bounding box plus a border.
    border = max(int(np.rint(qsize * 0.1)), 3)
    left, top = int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min()))
    right, bottom = int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max()))
    crop = (
        max(left - border, 0),
        max(top - border, 0),
        min(right + border, img.width),
        min(bottom + border, img.height),
    )
    if crop[2] - crop[0] < img.width or crop[3] - crop[1] < img.height:
        img = img.crop(crop)
        quad -= crop[:2]

    # 6. Pad outside the photo with its reflection, blurred and faded to the median colour.
    left, top = int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min()))
    right, bottom = int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max()))
    pad = np.array(
        [
            max(-left + border, 0),
            max(-top + border, 0),
            max(right - img.width + border, 0),
            max(bottom - img.height + border, 0),
        ]
    )
    if pad.max() > border - 4:
        pad = np.maximum(pad, max(int(np.rint(qsize * 0.3)), 1))
        pixels = np.pad(
            np.asarray(img, dtype=np.float32),
            ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)),
            "reflect",
        )
        height, width, _ = pixels.shape
        y, x, _ = np.ogrid[:height, :width, :1]
        mask = np.maximum(
            1.0 - np.minimum(np.float32(x) / pad[0], np.float32(width - 1 - x) / pad[2]),
            1.0 - np.minimum(np.float32(y) / pad[1], np.float32(height - 1 - y) / pad[3]),
        )
        blurred = gaussian_blur(pixels, qsize * 0.02)
        pixels += (blurred - pixels) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        pixels += (np.median(pixels.reshape(-1, 3), axis=0) - pixels) * np.clip(mask, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(pixels), 0, 255)), "RGB")
        quad += pad[:2]

    # 7. Quad transform (pixel centres -> continuous coordinates: +0.5), then reduce.
    img = img.transform(
        (transform_size, transform_size),
        Image.Transform.QUAD,
        tuple((quad + 0.5).flatten()),
        Image.Resampling.BILINEAR,
    )
    if size < transform_size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return img


def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Blur [H, W, C] float32 over H and W like ``scipy.ndimage.gaussian_filter(sigma=[s, s, 0])``.

    OpenCV with the same kernel radius (4 sigma) and border (mirror including the edge pixel)
    gives the same result about ten times faster, which matters for data-set alignment.
    """
    import cv2

    if sigma <= 0:
        return pixels.copy()
    radius = int(4.0 * sigma + 0.5)
    return cv2.GaussianBlur(
        pixels,
        (2 * radius + 1, 2 * radius + 1),
        sigmaX=sigma,
        sigmaY=sigma,
        borderType=cv2.BORDER_REFLECT,
    ).reshape(pixels.shape)


def align_face(
    image: ImageSource,
    size: int,
    *,
    face_index: int | None = None,
    transform_size: int | None = None,
) -> AlignedFace:
    """Detect faces in a photo and align one to the FFHQ template.

    Args:
        image: a path or a Pillow image.
        size: output side in pixels (usually the generator's resolution).
        face_index: which face of ``detect_faces`` (largest first); None = the largest.
        transform_size: see ``align_landmarks``.

    Returns:
        The aligned face.

    Raises:
        ImageLoadError: the photo cannot be read.
        NoFaceFound: the detector found no face (``center_crop`` is the fallback).
        AlignmentError: ``face_index`` is out of range.
    """
    rgb = load_image(image)
    path = _source_path(image)
    faces = detect_faces(rgb)
    if not faces:
        raise NoFaceFound(
            path, "no face found (dlib's frontal face detector); use a centre crop instead"
        )
    index = 0 if face_index is None else face_index
    if not 0 <= index < len(faces):
        raise AlignmentError(path, f"face {index} asked for, but {len(faces)} found")
    face = faces[index]
    aligned = align_landmarks(
        rgb,
        face.landmarks,
        size,
        rect=face.rect,
        transform_size=transform_size,
        faces_found=len(faces),
    )
    return _with_path(aligned, path)


def _with_path(aligned: AlignedFace, path: Path | None) -> AlignedFace:
    import dataclasses

    return dataclasses.replace(aligned, source_path=path)


def center_crop(image: ImageSource, size: int) -> AlignedFace:
    """The fallback when no face is found: the central square, resized to ``size``.

    Returns:
        An ``AlignedFace`` with ``method == "center-crop"`` and no landmarks.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    rgb = load_image(image)
    side = min(rgb.size)
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    crop = rgb.crop((left, top, left + side, top + side)).resize(
        (size, size), Image.Resampling.LANCZOS
    )
    # Corner pixel centres of the square [left, left + side) in the recipe's convention.
    lo_x, lo_y, hi_x, hi_y = left - 0.5, top - 0.5, left + side - 0.5, top + side - 0.5
    quad = np.array([[lo_x, lo_y], [lo_x, hi_y], [hi_x, hi_y], [hi_x, lo_y]])
    return AlignedFace(
        image=crop,
        to_source=affine_from_quad(quad, size),
        quad=quad,
        source_size=rgb.size,
        source_path=_source_path(image),
        method="center-crop",
        faces_found=0,
    )
