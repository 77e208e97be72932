"""Image files for the CLI and the GUI: photos read safely (size limits, EXIF orientation, one
clear error per bad file), atomic PNG/JPEG writing, and grids."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from editors.errors import ImageLoadError
from models.formats.native import atomic_write

log = logging.getLogger(__name__)

MIN_IMAGE_SIDE = 16  # smaller images cannot hold a detectable face
MAX_IMAGE_PIXELS = 150_000_000  # larger than any camera photo; bigger declared sizes are refused
_EXIF_ORIENTATION = 0x0112

ImageSource = str | Path | Image.Image


def load_image(source: ImageSource) -> Image.Image:
    """Read a photo as an upright RGB image.

    EXIF orientation is applied; every Pillow mode (L, LA, P, RGBA, CMYK, I;16, ...) becomes RGB,
    transparency composited onto white; animated files give their first frame.

    Args:
        source: a file path, or an already opened Pillow image.

    Returns:
        A loaded RGB ``PIL.Image.Image``.

    Raises:
        ImageLoadError: missing file, not an image, corrupt data, fewer than 16 pixels on a side,
            or a declared size over ``MAX_IMAGE_PIXELS`` (a decompression bomb).
    """
    if isinstance(source, Image.Image):
        path = image_path(source)
        _check_size(source, path)
        if source.mode == "RGB" and source.getexif().get(_EXIF_ORIENTATION, 1) == 1:
            return source  # already upright RGB (e.g. our own output): no copy
        return _upright_rgb(source, path)
    path = Path(source)
    if not path.exists():
        raise ImageLoadError(path, "no such file")
    if not path.is_file():
        raise ImageLoadError(path, "not a file")
    try:
        with warnings.catch_warnings():
            # Sizes between Pillow's warning and our limit are fine; our limit is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(path, f"refused as a possible decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image (no image format recognised)") from None
    except OSError as exc:
        raise ImageLoadError(path, f"corrupt or unreadable image file ({exc})") from None
    with image:
        _check_size(image, path)
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            log.info("%s has %d frames; using the first", path, frames)
            image.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageLoadError(path, f"corrupt or truncated image data ({exc})") from None
        return _upright_rgb(image, path)


def image_path(image: Image.Image) -> Path | None:
    """The file a Pillow image was opened from, if it was."""
    name = getattr(image, "filename", "")
    return Path(name) if name else None


def _check_size(image: Image.Image, path: Path | None) -> None:
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageLoadError(
            path,
            f"declared size {width}x{height} ({width * height / 1e6:.0f} megapixels) is over the "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixel limit; refused as a possible "
            "decompression bomb",
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ImageLoadError(
            path,
            f"{width}x{height} pixels is too small to hold a face (at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} needed)",
        )


def _upright_rgb(image: Image.Image, path: Path | None) -> Image.Image:
    try:
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, TypeError, KeyError) as exc:
        log.warning("%s: ignoring unreadable EXIF orientation (%s)", path, exc)
    return to_rgb(image, path)


def to_rgb(image: Image.Image, path: Path | None = None) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (16/32-bit scaled down, alpha composited onto white).

    Raises:
        ImageLoadError: a mode Pillow cannot convert to RGB.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image, dtype=np.float64)
        values = np.clip(values, 0, 65535) / 257.0  # 16-bit full range -> 8-bit
        gray = np.rint(values).astype(np.uint8)
        return Image.fromarray(np.repeat(gray[..., None], 3, axis=2), "RGB")
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if np.nanmax(values) <= 1.0 else 1.0
        gray = np.rint(np.clip(np.nan_to_num(values) * scale, 0, 255)).astype(np.uint8)
        return Image.fromarray(np.repeat(gray[..., None], 3, axis=2), "RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    try:
        if has_alpha:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageLoadError(path, f"cannot convert colour mode {mode} to RGB ({exc})") from None


def is_image_file(path: str | Path) -> bool:
    """True when Pillow recognises the file's content as an image (header only, no decoding)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path):
                return True
    except Image.DecompressionBombError:
        return True  # an image, refused later by load_image with a clear message
    except (UnidentifiedImageError, OSError, ValueError):
        return False


# -- writing ---------------------------------------------------------------------------------


def save_rgb(rgb: np.ndarray, path: str | Path) -> Path:
    """Write a ``uint8`` [H, W, 3] image atomically; the format follows the file extension.

    Raises:
        ValueError: the extension is not an image format Pillow can write.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    formats = {
        ".png": "PNG",
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".webp": "WEBP",
        ".bmp": "BMP",
        ".tif": "TIFF",
        ".tiff": "TIFF",
    }
    if suffix not in formats:
        raise ValueError(f"{path}: unsupported image type {suffix or '(none)'}; use .png or .jpg")
    image = Image.fromarray(np.ascontiguousarray(rgb))
    atomic_write(path, lambda tmp: image.save(tmp, format=formats[suffix]))
    return path


def make_grid(images: Sequence[np.ndarray], columns: int, padding: int = 2) -> np.ndarray:
    """Tile equally sized ``uint8`` [H, W, 3] images into one grid image (row-major)."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    height, width = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    grid = np.zeros(
        (rows * height + (rows + 1) * padding, columns * width + (columns + 1) * padding, 3),
        np.uint8,
    )
    for index, image in enumerate(images):
        row, col = divmod(index, columns)
        top = padding + row * (height + padding)
        left = padding + col * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid
