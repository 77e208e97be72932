"""The photo pipeline the window and ``main.py project`` share: align, crop, paste back, export.

Every function here is Qt-free and may run in a background job.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from editors.alignment import AlignedFace, align_landmarks, center_crop
from editors.compositing import composite
from editors.directions import DirectionSet
from editors.errors import AlignmentError, NoFaceFound
from editors.face_detection import DetectedFace
from editors.face_detection import detect_faces as _detect_faces
from editors.images import load_image, save_rgb
from editors.pivotal import TuningConfig, TuningResult, protected_channels, tune
from editors.projection import ProjectionConfig, ProjectionResult, project
from models.generator import Generator
from models.jobs import Cancelled, OnStep, Progress, ShouldStop, report

# The default photo pipeline (encoder init, a short W pivot search, a short tuning): about a
# minute per photo for the 64 px demo model on a 2-core CPU, seconds on a GPU.
PIVOT = ProjectionConfig(steps=80, space="w", preview_every=5)
TUNING = TuningConfig()
# PSNR and editability trade against each other (bench/README.md, twelve portraits): "faithful"
# (the default) 30.3 dB with the smile at 0.62x its effect on generated faces; "editable" tunes
# every layer gently and keeps nearly all of the pivot's editability (0.78x) at 28.8 dB.
TUNING_PRESETS = {
    "faithful": TUNING,
    "editable": TuningConfig(
        steps=200, tuned_from=0.0, detail_rank=4, tune_biases=True, learning_rate=0.01,
        final_lr_fraction=1.0, identity_every=1, locality_every=5, edit_weight=0.0,
    ),
}  # fmt: skip


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


@dataclass(frozen=True, slots=True, eq=False)
class PhotoInversion:
    """A photo found in latent space: the pivot projection and, with PTI, the tuning around it."""

    projection: ProjectionResult
    tuning: TuningResult | None = None

    @property
    def generator(self) -> Generator | None:
        """The tuned generator (None without tuning: use the original)."""
        return self.tuning.generator if self.tuning is not None else None

    @property
    def ws(self) -> np.ndarray:
        """[num_ws, w_dim] the latent to edit."""
        return self.projection.ws

    @property
    def image(self) -> np.ndarray:
        """The reconstruction (tuned when tuned)."""
        return self.tuning.image if self.tuning is not None else self.projection.image

    @property
    def psnr(self) -> float:
        """dB, reconstruction vs the aligned photo."""
        return self.tuning.psnr if self.tuning is not None else self.projection.psnr

    @property
    def seconds(self) -> float:
        """Wall time of both stages."""
        return self.projection.seconds + (self.tuning.seconds if self.tuning else 0.0)


def invert_photo(
    generator: Generator,
    aligned: AlignedFace,
    *,
    projection: ProjectionConfig = PIVOT,
    tuning: TuningConfig | None = TUNING,
    discriminator: object | None = None,
    directions: DirectionSet | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> PhotoInversion:
    """Project the aligned photo (the pivot), then tune the generator around it (``tuning``).

    ``directions``: the sliders the result will be edited with; tuning leaves the weights their
    localized versions read as they were (``pivotal.protected_channels``).

    Progress counts the steps of both stages; each report's message names its stage
    ("pivot 10/100", "tuning 5/150").

    Raises:
        Cancelled: stopped; ``partial`` is the ``PhotoInversion`` so far (the best pivot, and
            the tuning of the steps done when tuning had started).
    """
    tuning_steps = tuning.steps if tuning is not None else 0
    total = projection.steps + tuning_steps

    def relay(stage: str, offset: int) -> OnStep:
        def forward(progress: Progress) -> None:
            report(
                on_step,
                Progress(
                    step=offset + progress.step, total=total,
                    message=f"{stage} {progress.step}/{progress.total}",
                    metrics=progress.metrics, preview=progress.preview,
                ),
            )  # fmt: skip

        return forward

    try:
        pivot = project(
            generator, aligned, config=projection, discriminator=discriminator,  # type: ignore[arg-type]
            on_step=relay("pivot", 0), should_stop=should_stop,
        )  # fmt: skip
    except Cancelled as stopped:
        partial = stopped.partial
        raise Cancelled(PhotoInversion(partial) if partial is not None else None) from None
    if tuning is None or tuning.steps == 0:
        return PhotoInversion(pivot)
    try:
        tuned = tune(
            generator, aligned, pivot.ws, config=tuning,
            protect=protected_channels(directions),
            on_step=relay("tuning", projection.steps), should_stop=should_stop,
        )  # fmt: skip
    except Cancelled as stopped:
        raise Cancelled(PhotoInversion(pivot, stopped.partial)) from None  # type: ignore[arg-type]
    return PhotoInversion(pivot, tuned)


def export_composite(
    photo: str | Path,
    aligned: AlignedFace,
    face: np.ndarray,
    out: str | Path,
    reference: np.ndarray | None = None,
) -> tuple[Path, Path]:
    """Write the edited face pasted back into the full photo, and the aligned face beside it.

    ``reference`` (the unedited reconstruction) lets the paste-back match the photo's colours.

    Returns:
        (the full photo written to ``out``, the aligned face ``<out stem>-aligned<suffix>``).
    """
    out = Path(out)
    merged = composite(photo, aligned, face, reference=reference)
    save_rgb(np.asarray(merged), out)
    aligned_out = out.with_name(f"{out.stem}-aligned{out.suffix}")
    save_rgb(face, aligned_out)
    return out, aligned_out
