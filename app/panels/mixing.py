"""The Style mixing tab: a donor latent blended in by layer range (coarse/middle/fine or per row).

The donor is a seed chosen here, or any history entry / projected photo (set elsewhere through
the session). Both sources are shown as thumbnails; the donor's is rendered in a Job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import show_error
from app.panels.rows import clear_layout, drag_slider
from app.widgets.image_view import rgb_to_qimage
from app.workers import Job
from editors.mixing import GROUPS, LatentSource, StyleMix, layer_groups, row_resolution
from editors.rendering import render_thumbnails
from editors.state import EditState

if TYPE_CHECKING:
    from app.render_service import RenderedFrame
    from app.session import Session
    from app.workers import JobRegistry
    from models.generator import Generator

STEPS = 100  # slider units per 1.0 of weight
THUMBNAIL = 112
GROUP_TITLES = {
    "coarse": "Coarse (pose, shape)",
    "middle": "Middle (features)",
    "fine": "Fine (colour, texture)",
}


def _pixmap(rgb: np.ndarray, size: int) -> QPixmap:
    return QPixmap.fromImage(rgb_to_qimage(rgb)).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


class MixingPanel(QWidget):
    """Donor choice, one 0…1 slider per layer group, and an expandable per-row grid."""

    def __init__(self, session: Session, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mixingPanel")
        self.session = session
        self.jobs = jobs
        self._donor_shown: LatentSource | None = None
        self._thumbnail_job: Job | None = None
        self.group_sliders: dict[str, QSlider] = {}
        self.row_sliders: list[QSlider] = []

        self.current_thumb = QLabel("current")
        self.current_thumb.setObjectName("mixCurrentThumb")
        self.donor_thumb = QLabel("no donor")
        self.donor_thumb.setObjectName("mixDonorThumb")
        for thumb in (self.current_thumb, self.donor_thumb):
            thumb.setFixedSize(THUMBNAIL, THUMBNAIL)
            thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
            thumb.setStyleSheet("QLabel { border: 1px solid palette(mid); }")
        self.donor_label = QLabel("Donor: none")
        self.donor_label.setObjectName("mixDonorLabel")
        self.donor_label.setWordWrap(True)
        thumbs = QGridLayout()
        thumbs.addWidget(QLabel("Current"), 0, 0, Qt.AlignmentFlag.AlignCenter)
        thumbs.addWidget(QLabel("Donor"), 0, 1, Qt.AlignmentFlag.AlignCenter)
        thumbs.addWidget(self.current_thumb, 1, 0)
        thumbs.addWidget(self.donor_thumb, 1, 1)

        self.donor_seed = QSpinBox()
        self.donor_seed.setObjectName("mixDonorSeed")
        self.donor_seed.setRange(0, 2**31 - 1)
        self.donor_seed.setKeyboardTracking(False)
        self.use_seed_button = QPushButton("Use seed")
        self.use_seed_button.setObjectName("mixUseSeedButton")
        self.use_seed_button.setToolTip(
            "Mix with the latent of this seed (at the current truncation)"
        )
        self.use_seed_button.clicked.connect(self._on_use_seed_clicked)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("mixClearButton")
        self.clear_button.setToolTip("Stop mixing")
        self.clear_button.clicked.connect(self._on_clear_clicked)
        donor_row = QHBoxLayout()
        donor_row.addWidget(QLabel("Donor seed"))
        donor_row.addWidget(self.donor_seed, 1)
        donor_row.addWidget(self.use_seed_button)
        donor_row.addWidget(self.clear_button)

        groups = QGridLayout()
        for index, group in enumerate(GROUPS):
            slider = drag_slider(
                self.session,
                f"mix:{group}",
                0,
                STEPS,
                lambda value, g=group: self._on_group_slider_changed(g, value),
            )
            slider.setToolTip(f"How much of the donor's {group} rows to take (0 = none, 1 = all)")
            value = QLabel("0.00")
            value.setObjectName(f"mixValue:{group}")
            value.setMinimumWidth(36)
            groups.addWidget(QLabel(GROUP_TITLES[group]), index, 0)
            groups.addWidget(slider, index, 1)
            groups.addWidget(value, index, 2)
            self.group_sliders[group] = slider
            setattr(self, f"_{group}_value", value)
        groups.setColumnStretch(1, 1)

        self.rows_toggle = QToolButton()
        self.rows_toggle.setObjectName("mixRowsToggle")
        self.rows_toggle.setText("Per-layer weights")
        self.rows_toggle.setCheckable(True)
        self.rows_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.rows_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.rows_toggle.toggled.connect(self._on_rows_toggle_toggled)
        self.rows_widget = QWidget()
        self.rows_layout = QGridLayout(self.rows_widget)
        self.rows_layout.setColumnStretch(1, 1)
        self.rows_widget.hide()
        self.note = QLabel("")
        self.note.setObjectName("mixNote")
        self.note.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(thumbs)
        layout.addWidget(self.donor_label)
        layout.addLayout(donor_row)
        layout.addLayout(groups)
        layout.addWidget(self.rows_toggle)
        layout.addWidget(self.rows_widget)
        layout.addWidget(self.note)
        layout.addStretch(1)

        session.state_changed.connect(self._on_session_state_changed)
        session.generator_changed.connect(self._on_session_generator_changed)
        session.frame_ready.connect(self._on_session_frame_ready)
        self._build_rows(0)
        self._on_session_state_changed(session.state)

    # -- layout -------------------------------------------------------------------------------
    def _num_ws(self) -> int:
        generator = self.session.generator
        return generator.num_ws if generator is not None else 0

    def _build_rows(self, num_ws: int) -> None:
        clear_layout(self.rows_layout)
        self.row_sliders = []
        for row in range(num_ws):
            slider = drag_slider(
                self.session,
                f"mixRow:{row}",
                0,
                STEPS,
                lambda value, r=row: self._on_row_slider_changed(r, value),
            )
            self.rows_layout.addWidget(QLabel(f"row {row} · {row_resolution(row)} px"), row, 0)
            self.rows_layout.addWidget(slider, row, 1)
            self.row_sliders.append(slider)

    def _on_rows_toggle_toggled(self, shown: bool) -> None:
        self.rows_widget.setVisible(shown)
        self.rows_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _on_session_generator_changed(self, generator: Generator) -> None:
        self._build_rows(generator.num_ws)
        self._donor_shown = None
        self.current_thumb.setText("current")
        self._on_session_state_changed(self.session.state)

    # -- state -> widgets ---------------------------------------------------------------------
    def _on_session_state_changed(self, state: EditState) -> None:
        num_ws = self._num_ws()
        groups = layer_groups(num_ws)
        mixable = num_ws > 1
        mix = state.mix
        self.use_seed_button.setEnabled(mixable)
        self.donor_seed.setEnabled(mixable)
        self.clear_button.setEnabled(mix is not None)
        for group, slider in self.group_sliders.items():
            weight = mix.group_weight(group) if mix is not None else 0.0
            with QSignalBlocker(slider):
                slider.setValue(round(weight * STEPS))
            slider.setEnabled(mix is not None and len(groups[group]) > 0)
            slider.setToolTip(
                f"rows {groups[group].start}–{groups[group].stop - 1}"
                if len(groups[group])
                else f"this model has no {group} rows"
            )
            getattr(self, f"_{group}_value").setText(f"{weight:.2f}")
        for row, slider in enumerate(self.row_sliders):
            with QSignalBlocker(slider):
                slider.setValue(round((mix.row_weights[row] if mix is not None else 0.0) * STEPS))
            slider.setEnabled(mix is not None)
        if not mixable and self.session.generator is not None:
            self.note.setText(
                "This model has a single latent row (ProGAN): there is nothing to mix by layer."
            )
        elif mix is None:
            self.note.setText("Choose a donor: a seed here, or right-click a history entry.")
        else:
            self.note.setText("")
        self._show_donor(mix.donor if mix is not None else None)

    def _show_donor(self, donor: LatentSource | None) -> None:
        if donor is self._donor_shown or (donor is not None and donor.same_as(self._donor_shown)):
            return
        self._donor_shown = donor
        if donor is None:
            self.donor_label.setText("Donor: none")
            self.donor_thumb.clear()
            self.donor_thumb.setText("no donor")
            return
        self.donor_label.setText(f"Donor: {donor.label}")
        generator = self.session.generator
        if generator is None:
            return
        job = Job(
            "Could not render the donor", render_thumbnails, generator, [donor], size=THUMBNAIL
        )
        job.succeeded.connect(lambda images, d=donor: self._on_donor_rendered(d, images))
        job.failed.connect(lambda report: show_error(self, report))
        self._thumbnail_job = job
        self.jobs.submit(job)

    def _on_donor_rendered(self, donor: LatentSource, images: list[np.ndarray]) -> None:
        if donor is self._donor_shown:
            self.donor_thumb.setPixmap(_pixmap(images[0], THUMBNAIL))

    def _on_session_frame_ready(self, frame: RenderedFrame) -> None:
        if not frame.result.draft:
            self.current_thumb.setPixmap(_pixmap(frame.result.rgb, THUMBNAIL))

    # -- widgets -> session -------------------------------------------------------------------
    def set_donor(self, donor: LatentSource) -> None:
        """Mix with ``donor`` (keeps the current weights; all zero for a first donor)."""
        state = self.session.state
        num_ws = self._num_ws()
        weights = state.mix.row_weights if state.mix is not None else (0.0,) * num_ws
        self.session.propose(
            state.replace(mix=StyleMix(donor, weights)), f"Mixing donor: {donor.label}"
        )
        self.session.seal()

    def _on_use_seed_clicked(self) -> None:
        seed = self.donor_seed.value()
        self.set_donor(LatentSource(seed=seed, truncation_psi=self.session.state.truncation_psi))

    def _on_clear_clicked(self) -> None:
        if self.session.state.mix is not None:
            self.session.propose(self.session.state.replace(mix=None), "Clear style mixing")
            self.session.seal()

    def _on_group_slider_changed(self, group: str, value: int) -> None:
        mix = self.session.state.mix
        if mix is None:
            return
        weight = value / STEPS
        getattr(self, f"_{group}_value").setText(f"{weight:.2f}")
        self.session.propose(
            self.session.state.replace(mix=mix.with_group(group, weight)),
            f"Mix {group} {weight:.2f}",
            f"mix:{group}",
        )  # consecutive steps of one slider merge into one history entry

    def _on_row_slider_changed(self, row: int, value: int) -> None:
        mix = self.session.state.mix
        if mix is None:
            return
        weight = value / STEPS
        self.session.propose(
            self.session.state.replace(mix=mix.with_rows([row], weight)),
            f"Mix row {row} {weight:.2f}",
            f"mixRow:{row}",
        )  # consecutive steps of one slider merge into one history entry
