"""The photo pipeline the window and ``main.py project`` share: align, crop, paste back, export.

Every function here is Qt-free and may run in a background job.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from editors.alignment import AlignedFace, align_landmarks, center_crop
from editors.face_detection import DetectedFace
from editors.face_detection import detect_faces as _detect_faces
from editors.images import load_image
from editors.compositing import composite
from editors.errors import AlignmentError, NoFaceFound
from editors.images import save_rgb


@dataclass(frozen=True, slots=True, eq=False)
class PhotoAlignment:
    """The outcome of aligning a photo."""

    path: Path
    faces: tuple[DetectedFace, ...]  # largest first; empty when none was found
    aligned: AlignedFace | None  # the chosen face, or None when there is no face

    def require_face(self) -> AlignedFace:
        """The aligned face; ``NoFaceFound`` (naming the photo) when there is none."""
        if self.aligned is None:
            raise NoFaceFound(
                self.path, "no face found (dlib's frontal face detector); use a centre crop instead"
            )
        return self.aligned


def align_photo(path: str | Path, size: int, face_index: int = 0) -> PhotoAlignment:
    """Load a photo, detect its faces and align face ``face_index`` (largest first) to ``size``.

    A photo without a face gives ``aligned=None`` (offer ``crop_photo``), not an error.

    Raises:
        ImageLoadError: the photo cannot be read.
        AlignmentError: ``face_index`` is out of range.
    """
    path = Path(path)
    photo = load_image(path)
    faces = tuple(_detect_faces(photo))
    if not faces:
        return PhotoAlignment(path, faces, None)
    if not 0 <= face_index < len(faces):
        raise AlignmentError(path, f"face {face_index} asked for, but {len(faces)} found")
    face = faces[face_index]
    aligned = align_landmarks(photo, face.landmarks, size, rect=face.rect, faces_found=len(faces))
    # The decoded photo no longer knows its file; paste-back and reports need it.
    return PhotoAlignment(path, faces, dataclasses.replace(aligned, source_path=path))


def crop_photo(path: str | Path, size: int) -> PhotoAlignment:
    """The centre-crop fallback for a photo without a detectable face."""
    path = Path(path)
    return PhotoAlignment(path, (), center_crop(path, size))


def export_composite(
    photo: str | Path, aligned: AlignedFace, face: np.ndarray, out: str | Path
) -> tuple[Path, Path]:
    """Write the edited face pasted back into the full photo, and the aligned face beside it.

    Returns:
        (the full photo written to ``out``, the aligned face ``<out stem>-aligned<suffix>``).
    """
    out = Path(out)
    merged = composite(photo, aligned, face)
    save_rgb(np.asarray(merged), out)
    aligned_out = out.with_name(f"{out.stem}-aligned{out.suffix}")
    save_rgb(face, aligned_out)
    return out, aligned_out
