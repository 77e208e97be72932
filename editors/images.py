"""Image file helpers shared by the CLI and the GUI: atomic PNG/JPEG writing and grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from models.formats.native import atomic_write


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
