"""Photo projection panel: align a photo, watch the model find it, then edit it like any latent.

One job runs the photo pipeline of ``editors.photo``: the encoder's guess, a short W pivot search
and (by default) pivotal tuning around it, with per-stage progress; Cancel keeps the best so far.

Alignment and projection run as ``Job``s. The projection uses the session's generator object from
its worker thread while the render thread keeps rendering with it: ``editors.projection`` never
writes to the generator (gradients only for its own latent, no synthesis cache, own noise
tensors), so sharing it is safe and saves a second copy of the weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import ErrorReport, show_error
from app.widgets.image_view import ImageView
from app.workers import Job, JobRegistry
from editors.face_detection import DetectedFace
from editors.photo import (
    PIVOT,
    TUNING,
    TUNING_PRESETS,
    PhotoAlignment,
    PhotoInversion,
    align_photo,
    crop_photo,
    export_composite,
    invert_photo,
)
from editors.pivotal import TuningConfig
from editors.projection import ProjectionConfig
from editors.state import reset_edits
from models.jobs import Progress

if TYPE_CHECKING:
    from app.session import Session

log = logging.getLogger(__name__)

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
PHOTO_FILTER = "Photos (*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"
VGG_HINT = (
    "VGG16 is not downloaded: projection uses the offline loss (pixel, SSIM, face identity). "
    "File → Get models… fetches VGG16 (and LPIPS's weights) for sharper results."
)


class ProjectionPanel(QWidget):
    """Side-by-side aligned target and live projection, with settings, progress and cancel."""

    compare_changed = Signal(object)  # np.ndarray target to show on the canvas, or None to stop

    def __init__(self, session: Session, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("projectionPanel")
        self.session = session
        self.jobs = jobs
        self.photo: PhotoAlignment | None = None
        self.result: PhotoInversion | None = None
        self.align_job: Job | None = None
        self.project_job: Job | None = None
        self._build()
        self.refresh()

    # -- construction -----------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        views = QHBoxLayout()
        self.target_view = ImageView(preferred_size=180)
        self.target_view.setObjectName("projectionTarget")
        self.target_view.set_placeholder("Drop a photo")
        self.live_view = ImageView(preferred_size=180)
        self.live_view.setObjectName("projectionLive")
        self.live_view.set_placeholder("Projection")
        for view, title in ((self.target_view, "Aligned photo"), (self.live_view, "Projection")):
            column = QVBoxLayout()
            column.addWidget(QLabel(title), alignment=Qt.AlignmentFlag.AlignHCenter)
            view.setMinimumSize(140, 140)
            column.addWidget(view)
            views.addLayout(column)
        layout.addLayout(views)

        self.progress = QProgressBar()
        self.progress.setObjectName("projectionProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.step_label = QLabel("")
        self.step_label.setObjectName("projectionStep")
        self.step_label.setWordWrap(True)  # error messages are long: show them whole
        layout.addWidget(self.step_label)

        form = QFormLayout()
        defaults = ProjectionConfig()
        self.steps_spin = QSpinBox()
        self.steps_spin.setObjectName("projectionSteps")
        self.steps_spin.setRange(1, 100000)
        self.steps_spin.setValue(PIVOT.steps)
        self.steps_spin.setToolTip(
            f"Latent search steps (without tuning {defaults.steps} is usual)"
        )
        form.addRow("Steps", self.steps_spin)
        self.tune_check = QCheckBox("Tune the model to the photo (PTI)")
        self.tune_check.setObjectName("projectionTune")
        self.tune_check.setChecked(True)
        self.tune_check.setToolTip(
            "Pivotal tuning: after an editable W latent is found, adjust the model a little so "
            "it draws the photo faithfully; edits keep working."
        )
        self.tune_check.toggled.connect(self.refresh)
        form.addRow(self.tune_check)
        self.tune_preset_combo = QComboBox()
        self.tune_preset_combo.setObjectName("projectionTunePreset")
        self.tune_preset_combo.addItem("Faithful (sharpest likeness)", "faithful")
        self.tune_preset_combo.addItem("Editable (edits act more strongly)", "editable")
        self.tune_preset_combo.setToolTip(
            "Likeness and editability trade against each other: Editable tunes the model more "
            "gently, so sliders act on the photo almost as on the untuned latent, with a "
            "slightly softer likeness."
        )
        self.tune_preset_combo.currentIndexChanged.connect(self._on_tune_preset_changed)
        form.addRow("Tuning", self.tune_preset_combo)
        self.tune_spin = QSpinBox()
        self.tune_spin.setObjectName("projectionTuneSteps")
        self.tune_spin.setRange(1, 100000)
        self.tune_spin.setValue(TUNING.steps)
        form.addRow("Tuning steps", self.tune_spin)
        self.space_combo = QComboBox()
        self.space_combo.setObjectName("projectionSpace")
        self.space_combo.addItem("W (one latent: easier to edit)", "w")
        self.space_combo.addItem("W+ (one latent per layer: closer)", "w+")
        form.addRow("Space", self.space_combo)
        self.loss_combo = QComboBox()
        self.loss_combo.setObjectName("projectionLossChoice")
        self.loss_combo.addItem("Automatic", "auto")
        self.loss_combo.addItem("VGG16 perceptual", "vgg16")
        self.loss_combo.addItem("Offline (pixel, SSIM, identity)", "offline")
        form.addRow("Loss", self.loss_combo)
        self.face_combo = QComboBox()
        self.face_combo.setObjectName("projectionFace")
        self.face_combo.currentIndexChanged.connect(self._on_face_combo_changed)
        form.addRow("Face", self.face_combo)
        layout.addLayout(form)

        self.loss_hint = QLabel("")
        self.loss_hint.setObjectName("projectionLossHint")
        self.loss_hint.setWordWrap(True)
        layout.addWidget(self.loss_hint)

        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open photo…")
        self.open_button.setObjectName("projectionOpen")
        self.open_button.clicked.connect(self.choose_photo)
        self.start_button = QPushButton("Project")
        self.start_button.setObjectName("projectionStart")
        self.start_button.clicked.connect(self.start_projection)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("projectionCancel")
        self.cancel_button.clicked.connect(self.cancel)
        for button in (self.open_button, self.start_button, self.cancel_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)

        more = QHBoxLayout()
        self.crop_button = QPushButton("Use centre crop")
        self.crop_button.setObjectName("projectionCenterCrop")
        self.crop_button.setToolTip("No face was found: project the photo's central square instead")
        self.crop_button.clicked.connect(self.use_center_crop)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setObjectName("projectionCompare")
        self.compare_button.setCheckable(True)
        self.compare_button.setToolTip("Show the photo instead of the edit on the canvas")
        self.compare_button.toggled.connect(self._on_compare_toggled)
        self.recon_button = QPushButton("Reconstruction")
        self.recon_button.setObjectName("projectionReconstruction")
        self.recon_button.setCheckable(True)
        self.recon_button.setToolTip("Show the unedited reconstruction on the canvas")
        self.recon_button.toggled.connect(self._on_reconstruction_toggled)
        self.export_button = QPushButton("Export into photo…")
        self.export_button.setObjectName("projectionExport")
        self.export_button.setToolTip("Save the edited face blended into the original photo")
        self.export_button.clicked.connect(self.choose_export_destination)
        for button in (
            self.crop_button,
            self.compare_button,
            self.recon_button,
            self.export_button,
        ):
            more.addWidget(button)
        layout.addLayout(more)
        layout.addStretch(1)

    # -- state ------------------------------------------------------------------------------
    def busy(self) -> bool:
        """True while aligning or projecting."""
        return any(job is not None and job.is_running for job in (self.align_job, self.project_job))

    def refresh(self) -> None:
        """Enable the controls that make sense now."""
        busy = self.busy()
        has_face = self.photo is not None and self.photo.aligned is not None
        self.open_button.setEnabled(not busy)
        self.start_button.setEnabled(not busy and has_face and self.session.generator is not None)
        self.cancel_button.setEnabled(self.project_job is not None and self.project_job.is_running)
        self.crop_button.setVisible(self.photo is not None and not self.photo.faces)
        self.crop_button.setEnabled(not busy)
        self.face_combo.setEnabled(not busy and self.face_combo.count() > 1)
        self.compare_button.setEnabled(has_face)
        self.recon_button.setEnabled(self.result is not None)
        self.export_button.setEnabled(self.result is not None and not busy)
        for widget in (self.steps_spin, self.space_combo, self.loss_combo, self.tune_check):
            widget.setEnabled(not busy)
        tuning = self.tune_check.isChecked()  # the tuning settings mean nothing without it
        self.tune_preset_combo.setEnabled(not busy and tuning)
        self.tune_spin.setEnabled(not busy and tuning)

    def config(self) -> ProjectionConfig:
        """The latent-search settings shown in the panel."""
        return PIVOT.replace(
            steps=self.steps_spin.value(),
            space=self.space_combo.currentData(),
            loss=self.loss_combo.currentData(),
        )

    def tuning(self) -> TuningConfig | None:
        """The tuning settings, or None when tuning is off (or the model cannot be tuned)."""
        generator = self.session.generator
        if not self.tune_check.isChecked() or getattr(generator, "kind", "") != "stylegan2":
            return None
        preset = TUNING_PRESETS[self.tune_preset_combo.currentData()]
        return preset.replace(steps=self.tune_spin.value(), loss=self.loss_combo.currentData())

    def _on_tune_preset_changed(self) -> None:
        self.tune_spin.setValue(TUNING_PRESETS[self.tune_preset_combo.currentData()].steps)

    # -- photo ------------------------------------------------------------------------------
    def choose_photo(self) -> None:
        """Ask for a photo and open it."""
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", "", PHOTO_FILTER)
        if path:
            self.open_photo(Path(path))

    def open_photo(
        self, path: str | Path, *, start: bool = True, face_index: int = 0
    ) -> Job | None:
        """Align the photo's face in the background; then project it when ``start``."""
        generator = self.session.generator
        if generator is None:
            show_error(self, ErrorReport("Cannot project a photo", "Open a model first."))
            return None
        if self.busy():
            self.cancel()
        self._forget_photo()
        path = Path(path)
        job = Job(
            f"Could not open photo {path.name}", align_photo, path, generator.resolution, face_index
        )
        job.succeeded.connect(lambda photo: self._on_aligned(photo, start))
        return self._submit_align(job, f"Finding the face in {path.name}…")

    def _forget_photo(self) -> None:
        """Clear what the previous photo left (pictures, progress, scores) before the next one."""
        self.photo, self.result = None, None
        self.target_view.set_rgb(None)
        self.target_view.set_placeholder("Finding the face…")
        self.live_view.set_rgb(None)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.loss_hint.setText("")

    def use_center_crop(self) -> Job | None:
        """Project the photo's central square (the fallback when no face is found)."""
        generator = self.session.generator
        if self.photo is None or generator is None:
            return None
        job = Job(
            f"Could not crop {self.photo.path.name}",
            crop_photo,
            self.photo.path,
            generator.resolution,
        )
        job.succeeded.connect(lambda photo: self._on_aligned(photo, True))
        return self._submit_align(job, "Cropping…")

    def _submit_align(self, job: Job, message: str) -> Job:
        job.failed.connect(self._on_job_failed)
        job.done.connect(self.refresh)
        self.align_job = job
        self.step_label.setText(message)
        self.jobs.submit(job)
        self.refresh()
        return job

    def _on_aligned(self, photo: PhotoAlignment, start: bool) -> None:
        self.photo = photo
        self.result = None
        self._fill_face_combo(photo.faces)
        if photo.aligned is None:
            self.target_view.set_rgb(None)
            self.target_view.set_placeholder("No face found")
            self.step_label.setText(f"No face found in {photo.path.name}: use the centre crop?")
            self.refresh()
            return
        self.target_view.set_rgb(np.asarray(photo.aligned.image))
        self.live_view.set_rgb(None)
        if len(photo.faces) > 1:
            self.step_label.setText(f"{len(photo.faces)} faces found: pick one under Face.")
        else:
            self.step_label.setText(f"Aligned {photo.path.name}.")
        self.refresh()
        if start:
            self.start_projection()

    def _fill_face_combo(self, faces: tuple[DetectedFace, ...]) -> None:
        self.face_combo.blockSignals(True)
        self.face_combo.clear()
        for index, face in enumerate(faces):
            rect = face.rect
            label = f"Face {index + 1}" + (" (largest)" if index == 0 else "")
            self.face_combo.addItem(f"{label} at {rect.left:.0f}, {rect.top:.0f}", index)
        self.face_combo.blockSignals(False)

    def _on_face_combo_changed(self, index: int) -> None:
        if self.photo is not None and index >= 0:
            self.open_photo(self.photo.path, face_index=index)
            self.face_combo.blockSignals(True)
            self.face_combo.setCurrentIndex(index)
            self.face_combo.blockSignals(False)

    # -- projection -------------------------------------------------------------------------
    def start_projection(self) -> Job | None:
        """Start projecting the aligned photo with the panel's settings."""
        generator = self.session.generator
        if self.photo is None or self.photo.aligned is None or generator is None:
            return None
        if self.project_job is not None and self.project_job.is_running:
            return self.project_job
        config, tuning = self.config(), self.tuning()
        self.progress.setRange(0, config.steps + (tuning.steps if tuning is not None else 0))
        self.progress.setValue(0)
        self.loss_hint.setText("")
        # Tuning starts from the model as loaded, not from an earlier photo's tuning.
        generator = self.session.base_generator or generator
        job = Job(
            f"Projection of {self.photo.path.name} failed", invert_photo, generator,
            self.photo.aligned, projection=config, tuning=tuning,
            directions=self.session.state.directions,
        )  # fmt: skip
        job.progressed.connect(self._on_progress)
        job.succeeded.connect(lambda result: self._on_projected(result, generator))
        job.cancelled.connect(lambda partial: self._on_cancelled(partial, generator))
        job.failed.connect(self._on_job_failed)
        job.done.connect(self.refresh)
        self.project_job = job
        self.step_label.setText("Starting…")
        self.jobs.submit(job)
        self.refresh()
        return job

    def cancel(self) -> None:
        """Stop the running projection (within one step) or alignment."""
        for job in (self.align_job, self.project_job):
            if job is not None and job.is_running:
                job.request_stop()

    def _on_progress(self, progress: Progress) -> None:
        self.progress.setValue(progress.step)
        loss = progress.metrics.get("loss")
        text = f"{progress.message.capitalize()} (step {progress.step} / {progress.total})"
        if loss is not None:
            text += f" — loss {loss:.4f}"
        self.step_label.setText(text)
        if progress.preview is not None:
            self.live_view.set_rgb(progress.preview)

    def _on_projected(self, result: PhotoInversion, generator: object) -> None:
        projection = result.projection
        hint = VGG_HINT if not projection.loss_name.startswith("vgg16") else ""
        tuned = f" (pivot {projection.psnr:.1f} dB, tuned)" if result.tuning is not None else ""
        self.loss_hint.setText(
            f"Loss: {projection.loss_name}. PSNR {result.psnr:.1f} dB{tuned}. {hint}".strip()
        )
        steps = projection.steps + (result.tuning.steps if result.tuning is not None else 0)
        self.step_label.setText(f"Done: {steps} steps in {result.seconds:.0f} s.")
        self._apply(result, generator)

    def _apply(self, result: PhotoInversion, generator: object) -> None:
        if (self.session.base_generator or self.session.generator) is not generator:
            self.step_label.setText("The model changed during projection; result not applied.")
            return
        self.result = result
        self.live_view.set_rgb(result.image)
        tuning = result.tuning
        self.session.set_tuning(result.generator, tuning.delta if tuning is not None else None)
        name = self.photo.path.name if self.photo is not None else "photo"
        # A new photo starts from clean sliders (one undo step brings the old edits back).
        self.session.propose(
            reset_edits(self.session.state).replace(base_ws=result.ws, seed=None),
            f"Projected {name}",
        )
        self.session.seal()

    def _on_cancelled(self, partial: object, generator: object) -> None:
        if not isinstance(partial, PhotoInversion):
            self.step_label.setText("Cancelled; the edit is unchanged.")
            return
        projection = partial.projection
        steps = projection.steps + (partial.tuning.steps if partial.tuning is not None else 0)
        self._apply(partial, generator)
        self.step_label.setText(f"Cancelled after {steps} steps; kept the best so far.")

    def _on_job_failed(self, report: ErrorReport) -> None:
        self.step_label.setText(report.message)
        if self.photo is None:
            self.target_view.set_placeholder("Drop a photo")
        show_error(self, report)

    # -- compare and export -----------------------------------------------------------------
    def _on_compare_toggled(self, checked: bool) -> None:
        if checked and self.photo is not None and self.photo.aligned is not None:
            self.recon_button.setChecked(False)
            self.compare_changed.emit(np.asarray(self.photo.aligned.image))
        elif not self.recon_button.isChecked():
            self.compare_changed.emit(None)

    def _on_reconstruction_toggled(self, checked: bool) -> None:
        if checked and self.result is not None:
            self.compare_button.setChecked(False)
            self.compare_changed.emit(self.result.image)
        elif not self.compare_button.isChecked():
            self.compare_changed.emit(None)

    def choose_export_destination(self) -> None:
        """Ask where to save the edited face composited into the photo."""
        if self.photo is None:
            return
        default = str(self.photo.path.with_name(f"{self.photo.path.stem}-edited.png"))
        path, _ = QFileDialog.getSaveFileName(
            self, "Export into photo", default, "Images (*.png *.jpg)"
        )
        if path:
            self.export(Path(path))

    def export(self, path: Path) -> Job | None:
        """Composite the current frame into the photo (and save the aligned face beside it)."""
        frame = self.session.last_frame
        if self.photo is None or self.photo.aligned is None or frame is None:
            return None
        reference = self.result.image if self.result is not None else None
        job = Job(
            f"Could not export {path.name}", export_composite, self.photo.path, self.photo.aligned,
            np.asarray(frame.result.rgb), path, reference,
        )  # fmt: skip
        job.succeeded.connect(lambda paths: self.step_label.setText(f"Exported {paths[0].name}"))
        job.failed.connect(self._on_job_failed)
        return self.jobs.submit(job)
