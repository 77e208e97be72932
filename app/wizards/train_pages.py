"""The pages of the training wizard: task, data, settings (with a measured estimate), run."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPainter, QPixmap
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
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from app.dialogs.runs import RunView
from app.errors import ErrorReport, show_error
from app.training_runs import TrainingRun
from app.widgets.image_view import rgb_to_qimage
from app.workers import Job, JobRegistry
from editors.training_tasks import TRAINING_TASKS
from models.training.config import (
    STYLEGAN2_PRESETS,
)
from models.training.estimate import describe_duration, measure_speed
from models.training.images import FolderPreview, preview_images
from models.training.labels import read_csv_header
from models.training.runs import default_runs_root, make_run_name

TASKS = tuple((task.name, task.title, task.description) for task in TRAINING_TASKS.values())
MODEL_TASKS = tuple(task.name for task in TRAINING_TASKS.values() if task.needs_model)
# Rough image counts below which a task gives poor results, and what to say about it.
ENOUGH_IMAGES = {
    "stylegan2": (5000, "a GAN needs about 5,000 images or more (10,000+ for good faces); "
                  "with far fewer it copies the photos or collapses"),
    "progan": (5000, "a GAN needs about 5,000 images or more (10,000+ for good faces); "
               "with far fewer it copies the photos or collapses"),
    "classifier": (1000, "a classifier needs about 1,000 labelled photos or more, with a few "
                   "hundred showing each attribute"),
    "encoder": (500, "refining an encoder on real photos helps from about 500 photos on"),
}  # fmt: skip
SCAN_DELAY_MS = 400  # wait this long after the last keystroke before scanning a typed path


def too_few_images_warning(task: str, count: int) -> str:
    """A warning when ``count`` images are too few for ``task``; empty when they are enough."""
    needed, advice = ENOUGH_IMAGES.get(task, (0, ""))
    if count >= needed:
        return ""
    return f"Only {count:,} images: {advice}. Fine for a quick try, not for a useful model."


RESOLUTIONS = (32, 64, 128, 256, 512, 1024)
IMAGE_FILTER = "Zip archives (*.zip);;All files (*)"
MODEL_FILTER = "Models (*.safetensors *.pt *.pth *.pkl);;All files (*)"


def _browse_row(edit: QLineEdit, button: QPushButton) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    layout.addWidget(button)
    return row


class TaskPage(QWizardPage):
    """What to train."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("taskPage")
        self.setTitle("What do you want to train?")
        self.group = QButtonGroup(self)
        layout = QVBoxLayout(self)
        for index, (key, title, note) in enumerate(TASKS):
            button = QRadioButton(title)
            button.setObjectName(f"task:{key}")
            self.group.addButton(button, index)
            layout.addWidget(button)
            hint = QLabel(note)
            hint.setWordWrap(True)
            hint.setContentsMargins(24, 0, 0, 8)
            hint.setStyleSheet("color: gray")
            layout.addWidget(hint)
        layout.addStretch(1)
        self.group.button(0).setChecked(True)

    def task(self) -> str:
        """The chosen task key."""
        return TASKS[max(self.group.checkedId(), 0)][0]


class DataPage(QWizardPage):
    """Images (and labels) or a model, depending on the task."""

    def __init__(self, jobs: JobRegistry, model_path: Path | None) -> None:
        super().__init__()
        self.setObjectName("dataPage")
        self.jobs = jobs
        self.preview: FolderPreview | None = None
        self._scan: Job | None = None
        self._scanned_text: str | None = None  # the path the last scan looked at
        self.columns: list[str] = []

        self.data_edit = QLineEdit()
        self.data_edit.setObjectName("dataEdit")
        self.data_edit.setPlaceholderText("a folder (or .zip) of photos")
        # Scan shortly after typing stops, so a typed or pasted path enables Next by itself.
        self._scan_timer = QTimer(self)
        self._scan_timer.setSingleShot(True)
        self._scan_timer.setInterval(SCAN_DELAY_MS)
        self._scan_timer.timeout.connect(self._scan_if_changed)
        self.data_edit.textChanged.connect(self._scan_timer.start)
        self.data_browse = QPushButton("Browse…")
        self.data_browse.setObjectName("dataBrowseButton")
        self.data_browse.clicked.connect(self._on_data_browse_clicked)
        self.count_label = QLabel("")
        self.count_label.setObjectName("dataCount")
        self.few_label = QLabel("")
        self.few_label.setObjectName("tooFewImages")
        self.few_label.setWordWrap(True)
        self.few_label.setStyleSheet("color: #e8a04c")
        self.thumbnails = QLabel("")
        self.thumbnails.setObjectName("thumbnails")
        self.thumbnails.setMinimumHeight(68)
        self.align_check = QCheckBox(
            "Align faces first (detect, rotate and crop like FFHQ; slower to prepare)"
        )
        self.align_check.setObjectName("alignCheck")

        self.labels_edit = QLineEdit()
        self.labels_edit.setObjectName("labelsEdit")
        self.labels_edit.setPlaceholderText("CSV: a file-name column and one column per attribute")
        self.labels_edit.textChanged.connect(self._read_columns)
        self.labels_browse = QPushButton("Browse…")
        self.labels_browse.clicked.connect(self._on_labels_browse_clicked)
        self.columns_list = QListWidget()
        self.columns_list.setObjectName("labelColumns")
        self.columns_list.setMaximumHeight(130)
        self.group_combo = QComboBox()
        self.group_combo.setObjectName("groupCombo")

        self.model_edit = QLineEdit(str(model_path) if model_path else "")
        self.model_edit.setObjectName("modelEdit")
        self.model_edit.textChanged.connect(self.completeChanged)
        self.model_browse = QPushButton("Browse…")
        self.model_browse.clicked.connect(self._on_model_browse_clicked)
        self.labeler_combo = QComboBox()
        self.labeler_combo.setObjectName("labelerCombo")
        self.labeler_combo.addItem("Face landmarks (head pose, smile, mouth, eyes)", "landmarks")
        self.labeler_combo.addItem("An attribute classifier file", "classifier")
        self.classifier_edit = QLineEdit()
        self.classifier_edit.setObjectName("classifierEdit")
        self.classifier_edit.textChanged.connect(self.completeChanged)

        self.model_row = _browse_row(self.model_edit, self.model_browse)
        self.data_row = _browse_row(self.data_edit, self.data_browse)
        self.labels_row = _browse_row(self.labels_edit, self.labels_browse)
        self.form = QFormLayout(self)
        self.form.addRow("Model", self.model_row)
        self.form.addRow("Labels from", self.labeler_combo)
        self.form.addRow("Classifier", self.classifier_edit)
        self.form.addRow("Photos", self.data_row)
        self.form.addRow("", self.count_label)
        self.form.addRow("", self.few_label)
        self.form.addRow("", self.thumbnails)
        self.form.addRow("", self.align_check)
        self.form.addRow("Labels CSV", self.labels_row)
        self.form.addRow("Attributes", self.columns_list)
        self.form.addRow("Split by", self.group_combo)

    def initializePage(self) -> None:
        task = self.wizard().task()
        titles = {
            "encoder": "Which model, and (optionally) real photos to refine on?",
            "directions": "Which model, and where do the labels come from?",
        }
        self.setTitle(titles.get(task, "Which photos?"))
        photos = task != "directions"
        visible = {
            self.model_row: task in MODEL_TASKS,
            self.labeler_combo: task == "directions",
            self.classifier_edit: task == "directions",
            self.data_row: photos,
            self.count_label: photos,
            self.few_label: photos,
            self.thumbnails: photos,
            self.align_check: photos,
            self.labels_row: task == "classifier",
            self.columns_list: task == "classifier",
            self.group_combo: task == "classifier",
        }
        for widget, shown in visible.items():
            self.form.setRowVisible(widget, shown)
        if self.preview is not None:  # the task may have changed since the folder was scanned
            self.few_label.setText(too_few_images_warning(task, self.preview.count))

    # -- browsing ---------------------------------------------------------------------------
    def _on_data_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of photos")
        if folder:
            self.data_edit.setText(folder)
            self._scan_timer.stop()
            self.scan()

    def _on_labels_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Labels", "", "CSV files (*.csv);;All files (*)"
        )
        if path:
            self.labels_edit.setText(path)

    def _on_model_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model", "", MODEL_FILTER)
        if path:
            self.model_edit.setText(path)

    # -- scanning ---------------------------------------------------------------------------
    def _scan_if_changed(self) -> None:
        if self.data_edit.text().strip() != self._scanned_text:
            self.scan()

    def scan(self) -> Job | None:
        """Count the images and make thumbnails in the background."""
        text = self.data_edit.text().strip()
        self._scanned_text = text
        self.preview = None
        self.few_label.setText("")
        self.completeChanged.emit()
        if not text:
            self.count_label.setText("")
            self.thumbnails.clear()
            return None
        self.count_label.setText("looking…")
        job = Job("Could not read the folder", preview_images, Path(text))
        job.succeeded.connect(self._on_scan_succeeded)
        job.failed.connect(self._on_scan_failed)
        self._scan = job
        return self.jobs.submit(job)

    def _on_scan_succeeded(self, preview: FolderPreview) -> None:
        if self.sender() is not self._scan:
            return
        self.preview = preview
        note = (
            f", {preview.unreadable} unreadable among the first few" if preview.unreadable else ""
        )
        self.count_label.setText(f"{preview.count:,} images{note}")
        task = self.wizard().task() if self.wizard() else "stylegan2"
        self.few_label.setText(too_few_images_warning(task, preview.count))
        if preview.thumbnails:
            strip = QPixmap(68 * len(preview.thumbnails), 64)
            strip.fill(Qt.GlobalColor.transparent)
            painter = QPainter(strip)
            for index, rgb in enumerate(preview.thumbnails):
                painter.drawImage(index * 68, 0, rgb_to_qimage(rgb))
            painter.end()
            self.thumbnails.setPixmap(strip)
        self.completeChanged.emit()

    def _on_scan_failed(self, report: ErrorReport) -> None:
        if self.sender() is self._scan:
            self.count_label.setText(report.message)
            self.thumbnails.clear()

    def _read_columns(self) -> None:
        self.columns_list.clear()
        self.group_combo.clear()
        self.group_combo.addItem("random split", "")
        path = Path(self.labels_edit.text().strip())
        try:
            self.columns = read_csv_header(path) if path.is_file() else []
        except (OSError, UnicodeDecodeError):
            self.columns = []
        for name in self.columns[1:]:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.columns_list.addItem(item)
            self.group_combo.addItem(f"by {name} (e.g. a person id)", name)
        self.completeChanged.emit()

    def chosen_columns(self) -> tuple[str, ...]:
        """Ticked attribute columns (the group column excluded)."""
        group = self.group_combo.currentData() or ""
        items = (self.columns_list.item(i) for i in range(self.columns_list.count()))
        return tuple(
            i.text() for i in items if i.checkState() == Qt.CheckState.Checked and i.text() != group
        )

    def isComplete(self) -> bool:
        task = self.wizard().task() if self.wizard() else "stylegan2"
        if task in MODEL_TASKS and not Path(self.model_edit.text().strip()).is_file():
            return False
        if task == "directions":
            return self.labeler_combo.currentData() == "landmarks" or bool(
                self.classifier_edit.text().strip()
            )
        if task == "encoder" and not self.data_edit.text().strip():
            return True  # real photos are optional
        if self.preview is None or self.preview.count == 0:
            return False
        return task != "classifier" or bool(self.columns)


class SettingsPage(QWizardPage):
    """Size, length, device and output folder, with a measured time estimate."""

    def __init__(self, jobs: JobRegistry) -> None:
        super().__init__()
        self.setObjectName("settingsPage")
        self.setTitle("Settings")
        self.jobs = jobs
        self._estimate: Job | None = None
        self.images_per_s: float | None = None
        self.preset_combo = QComboBox()
        self.preset_combo.setObjectName("presetCombo")
        for name, preset in STYLEGAN2_PRESETS.items():
            self.preset_combo.addItem(name, name)
            self.preset_combo.setItemData(
                self.preset_combo.count() - 1, preset.note, Qt.ItemDataRole.ToolTipRole
            )
        self.preset_combo.setCurrentText("small")
        self.preset_note = QLabel("")
        self.preset_note.setObjectName("presetNote")
        self.preset_note.setWordWrap(True)
        self.resolution_combo = QComboBox()
        self.resolution_combo.setObjectName("resolutionCombo")
        for resolution in RESOLUTIONS:
            self.resolution_combo.addItem(f"{resolution} × {resolution}", resolution)
        self.resolution_combo.setCurrentIndex(RESOLUTIONS.index(64))
        self.length_spin = QDoubleSpinBox()
        self.length_spin.setObjectName("lengthSpin")
        self.length_spin.setDecimals(1)
        self.length_spin.setRange(0.1, 100000)
        self.samples_spin = QSpinBox()
        self.samples_spin.setObjectName("samplesSpin")
        self.samples_spin.setRange(16, 100000)
        self.samples_spin.setValue(2000)
        self.device_combo = QComboBox()
        self.device_combo.setObjectName("deviceCombo")
        for text, value in (
            ("automatic (GPU if there is one)", None),
            ("CPU", "cpu"),
            ("GPU (CUDA)", "cuda"),
        ):
            self.device_combo.addItem(text, value)
        self.out_edit = QLineEdit()
        self.out_edit.setObjectName("outEdit")
        self.estimate_label = QLabel("")
        self.estimate_label.setObjectName("estimateLabel")
        self.estimate_label.setWordWrap(True)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(400)
        self._timer.timeout.connect(self.estimate)
        for signal in (
            self.preset_combo.currentIndexChanged,
            self.resolution_combo.currentIndexChanged,
            self.device_combo.currentIndexChanged,
        ):
            signal.connect(self._on_settings_changed)
        self.length_spin.valueChanged.connect(self._update_estimate_text)

        self.form = QFormLayout(self)
        self.form.addRow("Size preset", self.preset_combo)
        self.form.addRow("", self.preset_note)
        self.form.addRow("Resolution", self.resolution_combo)
        self.form.addRow("Length", self.length_spin)
        self.form.addRow("Samples", self.samples_spin)
        self.form.addRow("Device", self.device_combo)
        self.form.addRow("Run folder", self.out_edit)
        self.form.addRow("", self.estimate_label)

    def initializePage(self) -> None:
        task = self.wizard().task()
        gan = task in ("stylegan2", "progan")
        self.form.setRowVisible(self.preset_combo, task == "stylegan2")
        self.form.setRowVisible(self.preset_note, task == "stylegan2")
        self.form.setRowVisible(
            self.resolution_combo, task in ("stylegan2", "progan", "classifier")
        )
        self.form.setRowVisible(self.length_spin, task != "directions")
        self.form.setRowVisible(self.samples_spin, task == "directions")
        label = self.form.labelForField(self.length_spin)
        if isinstance(label, QLabel):
            label.setText(
                "Epochs"
                if task == "classifier"
                else "Thousands of images"
                if gan or task == "encoder"
                else "Length"
            )
        defaults = {"stylegan2": 500.0, "progan": 30.0, "classifier": 10.0, "encoder": 50.0}
        if task in defaults:
            self.length_spin.setValue(defaults[task])
        if task == "classifier":
            self.resolution_combo.setCurrentIndex(RESOLUTIONS.index(64))
        source = (
            self.wizard().data_page.data_edit.text() or self.wizard().data_page.model_edit.text()
        )
        self.out_edit.setText(str(default_runs_root() / make_run_name(task, Path(source).stem)))
        self._on_settings_changed()

    def validatePage(self) -> bool:
        self.cancel_estimate()  # the measurement would compete with the run for the CPU
        return True

    def cancel_estimate(self) -> None:
        """Stop a pending or running speed measurement."""
        self._timer.stop()
        if self._estimate is not None:
            self._estimate.request_stop()

    def _on_settings_changed(self) -> None:
        preset = STYLEGAN2_PRESETS.get(self.preset_combo.currentData())
        self.preset_note.setText(preset.note if preset else "")
        self.images_per_s = None
        self.estimate_label.setText("measuring the speed of this machine…")
        self._timer.start()

    def estimate(self) -> Job | None:
        """Time a few steps of this config in the background (supersedes a running estimate)."""
        wizard = self.wizard()
        task = wizard.task()
        if task == "directions":
            self.estimate_label.setText(
                "Fitting takes minutes: most of it is rendering and labelling the samples."
            )
            return None
        try:
            config = wizard.config()
        except (OSError, ValueError) as exc:
            self.estimate_label.setText(str(exc))
            return None
        if self._estimate is not None:
            self._estimate.request_stop()
        job = Job("Could not measure the speed", measure_speed, task, config)
        job.succeeded.connect(self._on_estimate_succeeded)
        job.failed.connect(self._on_estimate_failed)
        self._estimate = job
        return self.jobs.submit(job)

    def _on_estimate_succeeded(self, images_per_s: float) -> None:
        if self.sender() is self._estimate:
            self.images_per_s = images_per_s
            self._update_estimate_text()

    def _on_estimate_failed(self, report: ErrorReport) -> None:
        if self.sender() is self._estimate:
            self.estimate_label.setText(f"Could not measure the speed: {report.message}")

    def _update_estimate_text(self) -> None:
        if self.images_per_s is None:
            return
        task = self.wizard().task()
        images = self.length_spin.value() * 1000
        if task == "classifier":
            preview = self.wizard().data_page.preview
            images = self.length_spin.value() * (preview.count if preview else 1000)
        elif task == "progan":
            doublings = int(self.resolution_combo.currentData()).bit_length() - 3
            images *= 1 + 2 * doublings
        self.estimate_label.setText(describe_duration(self.images_per_s, images).capitalize() + ".")


class RunPage(QWizardPage):
    """Starts the run and shows it live; closing the wizard leaves it running."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("runPage")
        self.setTitle("Training")
        self.setSubTitle(
            "You can close this window: training goes on, and Train > Runs shows it again."
        )
        self.view = RunView()
        self.training: TrainingRun | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)

    def initializePage(self) -> None:
        wizard = self.wizard()
        if self.training is not None:
            return
        try:
            config = wizard.config()
            training = TrainingRun(Path(wizard.settings_page.out_edit.text()), wizard)
            training.start(wizard.task(), config)
        except (OSError, ValueError) as exc:
            show_error(self, ErrorReport.from_exception("Could not start training", exc))
            return
        self.training = training
        self.view.set_run(training, wizard.task(), config.to_dict())
        wizard.run_started.emit(training)
