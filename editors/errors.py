"""Exceptions raised by the editors for bad user input; each message names the file and the problem.

They subclass ``ValueError`` so that the CLI's error edge (one line on stderr, exit code 2) and the
GUI's job boundary report them without special cases.
"""

from __future__ import annotations

from pathlib import Path


def _name(path: str | Path | None) -> str:
    return str(path) if path is not None else "<image>"


class ImageLoadError(ValueError):
    """A file could not be read as a usable image (not an image, corrupt, too small, too large)."""

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{_name(path)}: {reason}")


class AlignmentError(ValueError):
    """A photo could not be aligned to the FFHQ face template."""

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{_name(path)}: {reason}")


class NoFaceFound(AlignmentError):
    """The face detector found no face in the photo (offer a centre crop instead)."""

    def __init__(self, path: str | Path | None, reason: str = "no face found") -> None:
        super().__init__(path, reason)


class LatentFileError(ValueError):
    """A latent file could not be read, or does not fit the model it is opened with."""

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{_name(path)}: {reason}")


class DragError(ValueError):
    """A drag edit cannot run: points outside the image, unpaired points, or a model without W+."""
