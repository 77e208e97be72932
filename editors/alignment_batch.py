"""Aligning many photos: a folder job that resumes, and the aligner the training data cache uses."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from editors.alignment import align_face, align_landmarks
from editors.errors import AlignmentError, ImageLoadError, NoFaceFound
from editors.face_detection import detect_faces
from editors.images import load_image
from models.jobs import OnStep, Progress, ShouldStop, check_stop, report


@dataclass(frozen=True, slots=True)
class AlignmentReport:
    """What ``align_files`` did."""

    written: tuple[Path, ...]  # aligned images written by this run
    skipped: tuple[Path, ...]  # outputs already present from an earlier run
    failed: tuple[tuple[Path, str], ...]  # (photo, reason) that could not be aligned

    @property
    def total(self) -> int:
        """Photos looked at."""
        return len(self.written) + len(self.skipped) + len(self.failed)


def aligned_name(path: str | Path) -> str:
    """The output file name ``align_files`` uses for a photo: its stem plus ``.png``."""
    return Path(path).stem + ".png"


def align_files(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    size: int,
    *,
    transform_size: int | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> AlignmentReport:
    """Align many photos into ``out_dir`` as ``<stem>.png`` (largest face of each).

    Photos whose output exists are skipped, so an interrupted run resumes where it stopped.
    Unreadable photos and photos without a face are counted in ``failed`` and retried on the
    next run.

    Args:
        paths: photo files; their stems must be unique.
        out_dir: output folder (created).
        size: output side in pixels.
        transform_size: see ``align_landmarks``.
        on_step: progress after each photo (metrics: written, skipped, failed).
        should_stop: polled before each photo.

    Returns:
        The report.

    Raises:
        Cancelled: ``should_stop()`` became true; ``partial`` is the report so far.
        ValueError: two photos share a stem.
    """
    from editors.images import save_rgb

    sources = [Path(p) for p in paths]
    seen: dict[str, Path] = {}
    for source in sources:
        name = aligned_name(source)
        if name in seen:
            raise ValueError(f"{source} and {seen[name]} would both be written as {name}")
        seen[name] = source
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    skipped: list[Path] = []
    failed: list[tuple[Path, str]] = []

    def so_far() -> AlignmentReport:
        return AlignmentReport(tuple(written), tuple(skipped), tuple(failed))

    for index, source in enumerate(sources):
        check_stop(should_stop, so_far())
        target = out / aligned_name(source)
        if target.exists():
            skipped.append(target)
        else:
            try:
                rgb = load_image(source)
                faces = detect_faces(rgb)
                if not faces:
                    raise NoFaceFound(source)
                aligned = align_landmarks(
                    rgb, faces[0].landmarks, size, transform_size=transform_size
                )
                save_rgb(np.asarray(aligned.image), target)
                written.append(target)
            except (ImageLoadError, AlignmentError) as exc:
                failed.append((source, exc.reason))
        report(
            on_step,
            Progress(
                step=index + 1,
                total=len(sources),
                message=source.name,
                metrics={"written": len(written), "skipped": len(skipped), "failed": len(failed)},
            ),
        )
    return so_far()


def face_aligner(resolution: int) -> Any:
    """A training ``Preprocess`` that aligns each image's largest face FFHQ-style (None when no
    face, so the image is skipped)."""
    from models.training.images import Preprocess

    lock = threading.Lock()  # dlib's detector and predictor are shared; call them one at a time

    def align(image: Any) -> Any:
        with lock:
            try:
                return align_face(image, resolution).image
            except NoFaceFound:
                return None

    return Preprocess(key=f"ffhq-align-v1-{resolution}", fn=align)
