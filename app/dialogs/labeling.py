"""Manual labelling: tag a grid of samples as has / hasn't an attribute, then fit its direction.

Clicking a sample cycles untagged -> has -> hasn't -> untagged. A few dozen tags (at least
``MIN_PER_CLASS`` of each kind) are enough for a usable direction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import ErrorReport, show_error
from app.widgets.image_view import rgb_to_qimage
from app.workers import Job
from editors.direction_fitting import DirectionFitConfig, fit_directions
from editors.labelers import ManualLabeler
from editors.mixing import LatentSource
from editors.rendering import render_thumbnails

if TYPE_CHECKING:
    from app.session import Session
    from app.workers import JobRegistry
    from editors.directions import DirectionSet

MIN_PER_CLASS = 5  # tags of each kind needed before fitting
BATCH = 24  # samples added per "More samples"
COLUMNS = 6
THUMBNAIL = 80
TAG_STYLES = {
    None: "",
    True: "QToolButton { border: 3px solid #2e9d47; }",
    False: "QToolButton { border: 3px solid #c8382c; }",
}
TAG_TEXT = {None: "", True: "has", False: "hasn't"}


class LabelingDialog(QDialog):
    """A grid of seeds to tag; fits one direction from the tags with ``fit_directions``."""

    fitted = Signal(object)  # DirectionSet

    def __init__(self, session: Session, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("labelingDialog")
        self.setWindowTitle("Tag samples")
        self.session = session
        self.jobs = jobs
        self.tags: dict[int, bool | None] = {}
        self.buttons: dict[int, QToolButton] = {}
        self.thumbnail_job: Job | None = None
        self.fit_job: Job | None = None

        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("labelName")
        self.name_edit.setPlaceholderText("attribute, e.g. glasses")
        self.name_edit.textChanged.connect(self._update_counts)
        self.seed_start = QSpinBox()
        self.seed_start.setObjectName("labelSeedStart")
        self.seed_start.setRange(0, 2**31 - 1 - 10_000)
        self.seed_start.setToolTip("First seed of the grid")
        self.seed_start.valueChanged.connect(self._on_seed_start_changed)
        self.more_button = QPushButton("More samples")
        self.more_button.setObjectName("moreSamplesButton")
        self.more_button.clicked.connect(self.add_samples)
        top = QHBoxLayout()
        top.addWidget(QLabel("Attribute"))
        top.addWidget(self.name_edit, 1)
        top.addWidget(QLabel("from seed"))
        top.addWidget(self.seed_start)
        top.addWidget(self.more_button)

        self.grid_widget = QWidget()
        self.grid = QGridLayout(self.grid_widget)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_widget)
        scroll.setMinimumSize(COLUMNS * (THUMBNAIL + 14) + 24, 3 * (THUMBNAIL + 30) + 20)

        self.counts = QLabel()
        self.counts.setObjectName("tagCounts")
        self.progress = QProgressBar()
        self.progress.setObjectName("labelProgress")
        self.fit_button = QPushButton("Fit direction")
        self.fit_button.setObjectName("fitTaggedButton")
        self.fit_button.clicked.connect(self.fit)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.counts, 1)
        bottom.addWidget(self.progress)
        bottom.addWidget(self.fit_button)
        bottom.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel("Click a sample: once = has it, twice = hasn't, three times = untagged.")
        )
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        layout.addLayout(bottom)
        self.add_samples()
        self._update_counts()

    # -- grid ---------------------------------------------------------------------------------
    def seeds(self) -> list[int]:
        """Seeds currently in the grid, in order."""
        return list(self.buttons)

    def add_samples(self) -> None:
        """Add ``BATCH`` more seeds to the grid and render their thumbnails."""
        start = self.seed_start.value() + len(self.buttons)
        new = list(range(start, start + BATCH))
        for seed in new:
            button = QToolButton()
            button.setObjectName(f"tag:{seed}")
            button.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setText(f"{seed}")
            button.setToolTip(f"seed {seed}")
            button.clicked.connect(lambda checked=False, s=seed: self.cycle(s))
            index = len(self.buttons)
            self.grid.addWidget(button, index // COLUMNS, index % COLUMNS)
            self.buttons[seed] = button
            self.tags[seed] = None
        self._render(new)

    def _on_seed_start_changed(self, _value: int) -> None:
        for button in self.buttons.values():
            self.grid.removeWidget(button)
            button.deleteLater()
        self.buttons.clear()
        self.tags.clear()
        self.add_samples()
        self._update_counts()

    def _render(self, seeds: list[int]) -> None:
        generator = self.session.generator
        if generator is None:
            return
        psi = self.session.state.truncation_psi
        sources = [LatentSource(seed=s, truncation_psi=psi) for s in seeds]
        job = Job("Could not render samples", render_thumbnails, generator, sources, size=THUMBNAIL)
        job.succeeded.connect(lambda images: self._on_thumbnails_rendered(seeds, images))
        job.failed.connect(lambda report: show_error(self, report))
        self.thumbnail_job = job
        self.jobs.submit(job)

    def _on_thumbnails_rendered(self, seeds: list[int], images: list[np.ndarray]) -> None:
        for seed, rgb in zip(seeds, images, strict=True):
            button = self.buttons.get(seed)
            if button is not None:
                button.setIcon(QIcon(QPixmap.fromImage(rgb_to_qimage(rgb))))

    def cycle(self, seed: int) -> None:
        """Untagged -> has -> hasn't -> untagged."""
        current = self.tags.get(seed)
        self.set_tag(seed, True if current is None else (False if current else None))

    def set_tag(self, seed: int, value: bool | None) -> None:
        """Tag ``seed`` (None = untagged)."""
        self.tags[seed] = value
        button = self.buttons[seed]
        button.setStyleSheet(TAG_STYLES[value])
        button.setText(f"{seed} {TAG_TEXT[value]}".strip())
        self._update_counts()

    def counts_by_tag(self) -> tuple[int, int]:
        """(has, hasn't) counts."""
        values = list(self.tags.values())
        return values.count(True), values.count(False)

    def _update_counts(self) -> None:
        has, hasnt = self.counts_by_tag()
        name = self.name_edit.text().strip() or "the attribute"
        self.counts.setText(f"{has} with {name}, {hasnt} without (need {MIN_PER_CLASS} of each)")
        ready = (
            has >= MIN_PER_CLASS and hasnt >= MIN_PER_CLASS and bool(self.name_edit.text().strip())
        )
        running = self.fit_job is not None and self.fit_job.is_running
        self.fit_button.setEnabled(ready and not running and self.session.generator is not None)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self) -> Job | None:
        """Fit the tagged attribute's direction in the background."""
        generator = self.session.generator
        if generator is None:
            return None
        tags = {seed: value for seed, value in self.tags.items() if value is not None}
        try:
            labeler = ManualLabeler(self.name_edit.text(), tags)
            config = DirectionFitConfig(
                seeds=labeler.seeds,
                truncation_psi=self.session.state.truncation_psi,
                min_per_class=MIN_PER_CLASS,
                cv=3,
            )
        except ValueError as exc:
            show_error(self, ErrorReport.from_exception("Cannot fit the direction", exc))
            return None
        job = Job("Could not fit the direction", fit_directions, generator, labeler, config)
        job.succeeded.connect(self._on_fit_succeeded)
        job.failed.connect(lambda report: show_error(self, report))
        job.done.connect(self._on_fit_done)
        self.fit_job = job
        self.progress.setRange(0, 0)
        self.fit_button.setEnabled(False)
        return self.jobs.submit(job)

    def _on_fit_succeeded(self, directions: DirectionSet) -> None:
        direction = directions.directions[0]
        accuracy = direction.metrics.get("heldout_accuracy")
        note = f" (held-out accuracy {accuracy:.0%})" if accuracy is not None else ""
        self.counts.setText(f"fitted {direction.name}{note}")
        self.fitted.emit(directions)

    def _on_fit_done(self) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        has, hasnt = self.counts_by_tag()
        self.fit_button.setEnabled(has >= MIN_PER_CLASS and hasnt >= MIN_PER_CLASS)
