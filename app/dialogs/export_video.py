"""Export: the current picture at full resolution, or a video (slider sweep or interpolation).

Both render in a ``Job``; the video dialog shows progress and can cancel (nothing is written then).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.dialogs.job_dialog import JobDialog
from app.errors import ErrorReport, show_error
from app.progress import show_progress
from app.workers import Job
from editors.export import InterpolationSpec, SweepSpec, VideoConfig, export_image, export_video
from editors.rendering import Renderer

if TYPE_CHECKING:
    from app.session import Session
    from app.workers import JobRegistry
    from editors.state import EditState
    from models.generator import Generator
    from models.jobs import Progress

VIDEO_FILTER = "MP4 video (*.mp4);;GIF animation (*.gif)"
IMAGE_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg)"


def render_and_save(generator: Generator, state: EditState, path: Path) -> Path:
    """Render ``state`` at full resolution (never a draft) and save it atomically."""
    return export_image(Renderer(generator).render(state.render_args()).rgb, path)


def export_image_job(session: Session, path: str | Path) -> Job | None:
    """A Job that saves the current state's picture at full resolution (not yet started)."""
    if session.generator is None:
        return None
    return Job(
        "Could not export the image", render_and_save, session.generator, session.state, Path(path)
    )


class ExportVideoDialog(JobDialog):
    """Choose a sweep or an interpolation, frames and file, then render it with progress."""

    exported = Signal(object)  # Path

    def __init__(self, session: Session, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(jobs, parent)
        self.setObjectName("exportVideoDialog")
        self.setWindowTitle("Export video")
        self.session = session
        self._sliders: list[tuple[str, str, float]] = []  # (kind, name, scale)
        self._entries: list[EditState] = []

        self.sweep_radio = QRadioButton("Sweep a slider")
        self.sweep_radio.setObjectName("sweepRadio")
        self.interpolate_radio = QRadioButton("Blend between two history entries")
        self.interpolate_radio.setObjectName("interpolateRadio")
        group = QButtonGroup(self)
        group.addButton(self.sweep_radio)
        group.addButton(self.interpolate_radio)
        self.sweep_radio.setChecked(True)

        self.slider_combo = QComboBox()
        self.slider_combo.setObjectName("sweepSlider")
        self.sweep_from = self._sigma_spin("sweepFrom", -2.0)
        self.sweep_to = self._sigma_spin("sweepTo", 2.0)
        self.start_combo = QComboBox()
        self.start_combo.setObjectName("interpStart")
        self.end_combo = QComboBox()
        self.end_combo.setObjectName("interpEnd")

        self.frames_spin = QSpinBox()
        self.frames_spin.setObjectName("videoFrames")
        self.frames_spin.setRange(2, 2000)
        self.frames_spin.setValue(60)
        self.fps_spin = QDoubleSpinBox()
        self.fps_spin.setObjectName("videoFps")
        self.fps_spin.setRange(1.0, 120.0)
        self.fps_spin.setValue(30.0)
        self.size_spin = QSpinBox()
        self.size_spin.setObjectName("videoSize")
        self.size_spin.setRange(16, 4096)
        self.ping_pong = QCheckBox("Go back to the start (loop)")
        self.ping_pong.setObjectName("videoPingPong")
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("videoPath")
        self.path_edit.setPlaceholderText("edit.mp4 or edit.gif")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_path)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)

        form = QFormLayout()
        form.addRow(self.sweep_radio)
        form.addRow("Slider", self.slider_combo)
        form.addRow("From (σ)", self.sweep_from)
        form.addRow("To (σ)", self.sweep_to)
        form.addRow(self.interpolate_radio)
        form.addRow("From entry", self.start_combo)
        form.addRow("To entry", self.end_combo)
        form.addRow("Frames", self.frames_spin)
        form.addRow("Frames per second", self.fps_spin)
        form.addRow("Size (px)", self.size_spin)
        form.addRow("", self.ping_pong)
        form.addRow("File", path_row)

        self.progress = QProgressBar()
        self.progress.setObjectName("exportProgress")
        self.status = QLabel("")
        self.status.setObjectName("exportStatus")
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("exportVideoButton")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Close")
        self.cancel_button.setObjectName("cancelExportButton")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addLayout(buttons)
        self.refresh()

    def _sigma_spin(self, name: str, value: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setObjectName(name)
        spin.setRange(-10.0, 10.0)
        spin.setSingleStep(0.5)
        spin.setValue(value)
        return spin

    def refresh(self) -> None:
        """Fill the slider and history choices from the session (call before showing)."""
        state = self.session.state
        self._sliders = []
        self.slider_combo.clear()
        for kind, directions in (("attribute", state.directions), ("component", state.components)):
            for direction in directions or ():
                self._sliders.append((kind, direction.name, direction.scale))
                self.slider_combo.addItem(
                    direction.name if kind == "attribute" else f"{direction.name}"
                )
        self.sweep_radio.setEnabled(bool(self._sliders))
        self._entries = []
        for combo in (self.start_combo, self.end_combo):
            combo.clear()
        for text, entry in self.session.history.entries():
            self._entries.append(entry)
            self.start_combo.addItem(text)
            self.end_combo.addItem(text)
        self.start_combo.setCurrentIndex(0)
        self.end_combo.setCurrentIndex(self.end_combo.count() - 1)
        if not self._sliders:
            self.interpolate_radio.setChecked(True)
        generator = self.session.generator
        if generator is not None:
            self.size_spin.setValue(generator.resolution)

    def _choose_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export video", self.path_edit.text() or "edit.mp4", VIDEO_FILTER
        )
        if path:
            self.path_edit.setText(path)

    def spec(self) -> SweepSpec | InterpolationSpec:
        """What to render, from the dialog's choices."""
        if self.sweep_radio.isChecked():
            index = self.slider_combo.currentIndex()
            if index < 0:
                raise ValueError("there is no slider to sweep")
            kind, name, scale = self._sliders[index]
            return SweepSpec(
                self.session.state,
                kind,  # type: ignore[arg-type]
                name,
                self.sweep_from.value() * scale,
                self.sweep_to.value() * scale,
            )
        start, end = self.start_combo.currentIndex(), self.end_combo.currentIndex()
        if start < 0 or end < 0:
            raise ValueError("choose two history entries")
        return InterpolationSpec(self._entries[start], self._entries[end])

    def start(self) -> Job | None:
        """Start rendering the video; returns the job (None after a validation error)."""
        generator = self.session.generator
        if generator is None or self.job_busy():
            return None
        try:
            text = self.path_edit.text().strip()
            if not text:
                raise ValueError("choose a file name ending in .mp4 or .gif")
            path = Path(text)
            if path.suffix.lower() not in (".mp4", ".gif"):
                raise ValueError(f"{path.name}: use .mp4 or .gif")
            config = VideoConfig(
                frames=self.frames_spin.value(),
                fps=self.fps_spin.value(),
                size=self.size_spin.value(),
                ping_pong=self.ping_pong.isChecked(),
            )
            spec = self.spec()
        except ValueError as exc:
            show_error(self, ErrorReport.from_exception("Cannot export the video", exc))
            return None
        job = Job("Could not export the video", export_video, generator, spec, path, config)
        return self._submit(job, self.export_button, "rendering…")

    def _on_job_progressed(self, progress: Progress) -> None:
        if self.sender() is self.job and progress.total:
            show_progress(self.progress, progress)
            self.status.setText(progress.message)

    def _on_job_succeeded(self, path: Path) -> None:
        if self.sender() is self.job:
            self.status.setText(f"saved {path.name}")
            self.exported.emit(path)

    def _on_job_done(self) -> None:
        if self.sender() is self.job:
            self.export_button.setEnabled(True)
            self.cancel_button.setText("Close")
            if not self.status.text().startswith("saved"):
                self.progress.setRange(0, 1)
                self.progress.setValue(0)
