"""The "Fit directions…" dialog: choose a labeler and settings, run ``fit_directions`` as a Job."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.dialogs.job_dialog import JobDialog
from app.errors import ErrorReport, show_error
from app.progress import show_progress
from app.workers import Job
from editors.direction_files import default_directions_path, save_directions
from editors.direction_fitting import DirectionFitConfig, fit_directions
from editors.labelers import ClassifierLabeler, Labeler, LandmarkLabeler
from editors.mixing import group_layers

if TYPE_CHECKING:
    from app.session import Session
    from app.workers import JobRegistry
    from editors.directions import DirectionSet
    from models.jobs import Progress

CLASSIFIER_FILTER = "Attribute classifiers (*.safetensors);;All files (*)"
LAYER_CHOICES = (
    ("All rows", None),
    ("Coarse (4–8 px)", "coarse"),
    ("Middle (16–32 px)", "middle"),
    ("Fine (64 px and up)", "fine"),
)


class FitDirectionsDialog(JobDialog):
    """Runs the TL-GAN recipe (sample -> render -> label -> fit) in the background."""

    fitted = Signal(object)  # DirectionSet

    def __init__(self, session: Session, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(jobs, parent)
        self.setObjectName("fitDirectionsDialog")
        self.setWindowTitle("Fit attribute directions")
        self.session = session
        self._labelers: list[Labeler | None] = []  # None = build on start (classifier file)

        self.labeler_combo = QComboBox()
        self.labeler_combo.setObjectName("labelerCombo")
        self.labeler_combo.currentIndexChanged.connect(self._on_labeler_combo_changed)
        self.classifier_path = QLineEdit()
        self.classifier_path.setObjectName("classifierPath")
        self.classifier_path.setPlaceholderText("attribute classifier file (.safetensors)")
        self.classifier_path.editingFinished.connect(self._on_classifier_path_edited)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_classifier)
        classifier_row = QHBoxLayout()
        classifier_row.addWidget(self.classifier_path, 1)
        classifier_row.addWidget(browse)
        self.classifier_row = QWidget()
        self.classifier_row.setLayout(classifier_row)
        classifier_row.setContentsMargins(0, 0, 0, 0)

        self.attribute_list = QListWidget()
        self.attribute_list.setObjectName("attributeList")
        self.attribute_list.setMaximumHeight(140)
        self.samples_spin = QSpinBox()
        self.samples_spin.setObjectName("samplesSpin")
        self.samples_spin.setRange(20, 1_000_000)
        self.samples_spin.setValue(2000)
        self.samples_spin.setToolTip(
            "Latents sampled, rendered and labelled (more = steadier directions)"
        )
        self.truncation_spin = QDoubleSpinBox()
        self.truncation_spin.setObjectName("fitTruncationSpin")
        self.truncation_spin.setRange(0.1, 1.0)
        self.truncation_spin.setSingleStep(0.05)
        self.truncation_spin.setValue(0.7)
        self.truncation_spin.setToolTip(
            "Truncation of the samples: lower = more typical faces, easier to label"
        )
        self.layers_combo = QComboBox()
        self.layers_combo.setObjectName("layersCombo")
        for text, _ in LAYER_CHOICES:
            self.layers_combo.addItem(text)
        self.save_check = QCheckBox("Save beside the model")
        self.save_check.setObjectName("saveBesideModel")
        self.save_check.setChecked(True)

        form = QFormLayout()
        form.addRow("Labels from", self.labeler_combo)
        form.addRow("", self.classifier_row)
        form.addRow("Attributes", self.attribute_list)
        form.addRow("Samples", self.samples_spin)
        form.addRow("Truncation ψ", self.truncation_spin)
        form.addRow("Apply to", self.layers_combo)
        form.addRow("", self.save_check)

        self.progress = QProgressBar()
        self.progress.setObjectName("fitProgress")
        self.status = QLabel("")
        self.status.setObjectName("fitStatus")
        self.status.setWordWrap(True)
        self.start_button = QPushButton("Fit")
        self.start_button.setObjectName("startFitButton")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Close")
        self.cancel_button.setObjectName("cancelFitButton")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

        self.add_labeler("Face landmarks (dlib: pose, smile, mouth, eyes)", LandmarkLabeler())
        self._classifier_index = self.add_labeler("Attribute classifier…", None)

    # -- labelers -----------------------------------------------------------------------------
    def add_labeler(self, title: str, labeler: Labeler | None) -> int:
        """Offer another label source; returns its index in the combo."""
        self._labelers.append(labeler)
        self.labeler_combo.addItem(title)
        return self.labeler_combo.count() - 1

    def current_labeler(self) -> Labeler | None:
        """The chosen labeler (a classifier is loaded from its file when needed)."""
        index = self.labeler_combo.currentIndex()
        labeler = self._labelers[index] if index >= 0 else None
        if labeler is None and index == self._classifier_index:
            path = self.classifier_path.text().strip()
            if not path:
                return None
            labeler = ClassifierLabeler.from_file(path)
            self._labelers[index] = labeler
        return labeler

    def _on_labeler_combo_changed(self, index: int) -> None:
        self.classifier_row.setVisible(index == getattr(self, "_classifier_index", -1))
        self._fill_attributes()

    def _choose_classifier(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Attribute classifier", "", CLASSIFIER_FILTER)
        if path:
            self.classifier_path.setText(path)
            self._on_classifier_path_edited()

    def _on_classifier_path_edited(self) -> None:
        if self.labeler_combo.currentIndex() != self._classifier_index:
            return
        self._labelers[self._classifier_index] = None  # load the new file
        try:
            self.current_labeler()
        except (OSError, ValueError) as exc:
            self.status.setText(str(exc))
        self._fill_attributes()

    def _fill_attributes(self) -> None:
        self.attribute_list.clear()
        index = self.labeler_combo.currentIndex()
        labeler = self._labelers[index] if index >= 0 else None
        for name in labeler.attributes if labeler is not None else ():
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.attribute_list.addItem(item)

    def chosen_attributes(self) -> tuple[str, ...]:
        """Ticked attributes."""
        items = (self.attribute_list.item(i) for i in range(self.attribute_list.count()))
        return tuple(item.text() for item in items if item.checkState() == Qt.CheckState.Checked)

    # -- running ------------------------------------------------------------------------------
    def config(self) -> DirectionFitConfig:
        """The settings as a ``DirectionFitConfig``."""
        generator = self.session.generator
        group = LAYER_CHOICES[self.layers_combo.currentIndex()][1]
        layers = group_layers(group, generator.num_ws) if group and generator is not None else None
        return DirectionFitConfig(
            num_samples=self.samples_spin.value(),
            truncation_psi=self.truncation_spin.value(),
            attributes=self.chosen_attributes() or None,
            layers=layers,
        )

    def start(self) -> Job | None:
        """Start fitting; returns the job (None when something is missing)."""
        generator = self.session.generator
        if generator is None or self.job_busy():
            return None
        try:
            labeler = self.current_labeler()
            if labeler is None:
                raise ValueError("choose an attribute classifier file first")
            if not self.chosen_attributes():
                raise ValueError("tick at least one attribute")
            config = self.config()
        except (OSError, ValueError) as exc:
            show_error(self, ErrorReport.from_exception("Cannot fit directions", exc))
            return None
        job = Job("Could not fit directions", fit_directions, generator, labeler, config)
        return self._submit(job, self.start_button, "starting…")

    def _on_job_progressed(self, progress: Progress) -> None:
        if self.sender() is not self.job:
            return
        show_progress(self.progress, progress)
        self.status.setText(progress.message)

    def _on_job_succeeded(self, directions: DirectionSet) -> None:
        if self.sender() is not self.job:
            return
        text = f"fitted {', '.join(directions.names)}"
        if directions.notes:
            text += "\nskipped: " + "\n".join(directions.notes)
        self.status.setText(text)
        self.fitted.emit(directions)
        if self.save_check.isChecked() and self.session.model_path is not None:
            self._save_beside_model()

    def _save_beside_model(self) -> None:
        directions = self.session.state.directions
        model_path = self.session.model_path
        if directions is None or model_path is None:
            return
        path: Path = default_directions_path(model_path)
        try:
            save_directions(directions, path)
            self.status.setText(self.status.text() + f"\nsaved {path.name}")
        except (OSError, ValueError) as exc:
            show_error(self, ErrorReport.from_exception("Could not save directions", exc))

    def _on_job_done(self) -> None:
        if self.sender() is not self.job:
            return
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if self.status.text().startswith("fitted") else 0)
        self.start_button.setEnabled(True)
        self.cancel_button.setText("Close")
