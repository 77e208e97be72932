"""The Inspect tool: feature maps of any synthesis block (channel picker, normalisation, stats).

Like the layer widget of NVIDIA's visualizer, on the CPU: the current picture is rendered once
in the background, keeping every block's features; picking a block, a channel (or the mean) and
a normalisation redraws from those without rendering again. (This is not the Layers && noise tool,
which sets noise strengths.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import ErrorReport
from app.widgets.image_view import rgb_to_qimage
from app.workers import Job
from editors.inspection import (
    NORMALISATIONS,
    BlockFeatures,
    block_features,
    feature_image,
    feature_stats,
)

if TYPE_CHECKING:
    from app.session import Session
    from app.workers import JobRegistry
    from editors.state import EditState

PREVIEW_SIZE = 256


class InspectPanel(QWidget):
    """Shows one block's feature map of the current picture."""

    def __init__(self, session: Session, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspectPanel")
        self.session = session
        self.jobs = jobs
        self.features: BlockFeatures | None = None
        self.job: Job | None = None

        self.block_combo = QComboBox()
        self.block_combo.setObjectName("inspectBlockCombo")
        self.block_combo.currentIndexChanged.connect(self._on_block_changed)
        self.mean_check = QCheckBox("Mean of all channels")
        self.mean_check.setObjectName("inspectMeanCheck")
        self.mean_check.toggled.connect(self.redraw)
        self.channel_spin = QSpinBox()
        self.channel_spin.setObjectName("inspectChannelSpin")
        self.channel_spin.valueChanged.connect(self.redraw)
        self.norm_combo = QComboBox()
        self.norm_combo.setObjectName("inspectNormCombo")
        self.norm_combo.addItems(NORMALISATIONS)
        self.norm_combo.setToolTip(
            "channel: min-max of this map; layer: min-max of the whole block; signed: 0 is grey"
        )
        self.norm_combo.currentIndexChanged.connect(self.redraw)
        self.follow_check = QCheckBox("Follow edits")
        self.follow_check.setObjectName("inspectFollowCheck")
        self.follow_check.setChecked(True)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setObjectName("inspectRefreshButton")
        self.refresh_button.clicked.connect(self.refresh)
        self.preview = QLabel("")
        self.preview.setObjectName("inspectPreview")
        self.preview.setMinimumSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stats = QLabel("")
        self.stats.setObjectName("inspectStats")

        form = QFormLayout()
        form.addRow("Block", self.block_combo)
        form.addRow("Channel", self.channel_spin)
        form.addRow(self.mean_check)
        form.addRow("Normalise", self.norm_combo)
        form.addRow(self.follow_check)
        form.addRow(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.stats)
        session.state_changed.connect(self._on_state_changed)
        session.generator_changed.connect(lambda generator: self._on_state_changed(None))

    def _on_state_changed(self, state: EditState | None) -> None:
        if self.follow_check.isChecked() and self.isVisible():
            self.refresh()

    def showEvent(self, event: object) -> None:
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> Job | None:
        """Render the current state's features in the background."""
        generator = self.session.generator
        if generator is None:
            return None
        if not hasattr(generator, "style_layers"):
            self.stats.setText("Layer inspection needs a StyleGAN2 model.")
            return None
        if self.job is not None and self.job.is_running:
            self.job.request_stop()
        job = Job("Could not read the layer", block_features, generator, self.session.state)
        job.succeeded.connect(self._on_features)
        job.failed.connect(self._on_failed)
        self.job = job
        return self.jobs.submit(job)

    def _on_failed(self, report: ErrorReport) -> None:
        self.stats.setText(report.message)

    def _on_features(self, features: BlockFeatures) -> None:
        if self.sender() is not self.job:
            return
        self.features = features
        labels = [f"block {i}: {r}×{r}" for i, r in enumerate(features.resolutions)]
        current = [self.block_combo.itemText(i) for i in range(self.block_combo.count())]
        if current != labels:
            with QSignalBlocker(self.block_combo):
                self.block_combo.clear()
                self.block_combo.addItems(labels)
                self.block_combo.setCurrentIndex(len(labels) // 2)
        self._on_block_changed()

    def _on_block_changed(self) -> None:
        if self.features is None:
            return
        block = max(0, self.block_combo.currentIndex())
        with QSignalBlocker(self.channel_spin):
            self.channel_spin.setRange(0, self.features.maps[block].shape[0] - 1)
        self.redraw()

    def redraw(self) -> None:
        """Draw the chosen map from the features already rendered."""
        if self.features is None:
            return
        block = max(0, self.block_combo.currentIndex())
        maps = self.features.maps[block]
        channel = None if self.mean_check.isChecked() else self.channel_spin.value()
        self.channel_spin.setEnabled(channel is not None)
        grey = feature_image(maps, channel, NORMALISATIONS[self.norm_combo.currentIndex()])
        rgb = grey[..., None].repeat(3, axis=2)
        pixmap = QPixmap.fromImage(rgb_to_qimage(rgb)).scaled(
            PREVIEW_SIZE,
            PREVIEW_SIZE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
        self.preview.setPixmap(pixmap)
        stats = feature_stats(maps, channel)
        what = "mean map" if channel is None else f"channel {channel}"
        self.stats.setText(
            f"{what} of {int(stats['channels'])}: mean {stats['mean']:.3f}, "
            f"std {stats['std']:.3f}, min {stats['min']:.3f}, max {stats['max']:.3f}"
        )
