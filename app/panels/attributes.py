"""The Attributes tab: a slider per attribute direction, with lock and reset; direction files.

Sliders are in σ (the spread of sampled latents along the direction); the state stores latent
units (σ × ``Direction.scale``). Every change goes through ``Session.propose``; a drag is one undo
entry (merge key ``attr:<name>``, sealed on release).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.dialogs.fit_directions import FitDirectionsDialog
from app.dialogs.labeling import LabelingDialog
from app.errors import ErrorReport, show_error
from app.panels.rows import scrolling_grid
from app.widgets.side_effects import SideEffectReadout
from app.widgets.value_label import ValueLabel
from app.workers import Job
from editors.direction_files import default_directions_path, load_directions, save_directions
from editors.direction_fitting import latent_space
from editors.directions import DirectionSet, check_compatible
from editors.rendering import limit_identity_drift
from editors.state import EditState, with_amount, with_directions, with_lock

if TYPE_CHECKING:
    from app.render_service import RenderedFrame
    from app.session import Session
    from app.workers import JobRegistry
    from models.generator import Generator

log = logging.getLogger(__name__)

STEPS_PER_SIGMA = 100  # slider units per σ
SIGMA_RANGE = 3.0  # sliders span ±3σ
DIRECTION_FILTER = "Direction sets (*.directions.json *.json);;All files (*)"
SAME_PERSON_DISTANCE = 0.6  # dlib's face-recognition boundary
AUTO_READOUT_UP_TO = 256  # px: side effects measured by default (larger models take seconds)


def has_identity_support() -> bool:
    """True when the face-identity module is installed (identity drift and preservation)."""
    return importlib.util.find_spec("editors.identity") is not None


def describe_direction(direction: object) -> str:
    """Tooltip text: quality metrics and how the direction was made."""
    metrics = getattr(direction, "metrics", {})
    fitted = getattr(direction, "fitted_with", {})
    parts = []
    if "heldout_accuracy" in metrics:
        parts.append(f"held-out accuracy {metrics['heldout_accuracy']:.0%}")
    if "r2" in metrics:
        parts.append(f"held-out R² {metrics['r2']:.2f}")
    if "n_samples" in metrics:
        parts.append(f"{int(metrics['n_samples'])} samples")
    if fitted.get("labeler"):
        parts.append(f"labels: {fitted['labeler']}")
    layers = getattr(direction, "layers", None)
    parts.append(f"rows {layers[0]}–{layers[1] - 1}" if layers else "all rows")
    return ", ".join(parts)


class _AttributeRow:
    """The widgets of one attribute: name, slider, value, lock, reset."""

    def __init__(self, panel: AttributesPanel, name: str, tooltip: str) -> None:
        self.name = name
        self.label = QLabel(name)
        self.label.setToolTip(tooltip)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName(f"attr:{name}")
        limit = int(SIGMA_RANGE * STEPS_PER_SIGMA)
        self.slider.setRange(-limit, limit)
        self.slider.setSingleStep(5)
        self.slider.setPageStep(25)
        self.slider.setToolTip(f"{name}: {tooltip}")
        self.value = ValueLabel("0.00σ")
        self.value.setObjectName(f"attrValue:{name}")
        self.value.setMinimumWidth(52)
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value.value_entered.connect(lambda sigma: panel._on_attribute_typed(name, sigma))
        self.lock = QCheckBox()
        self.lock.setObjectName(f"lock:{name}")
        self.lock.setToolTip(f"Lock {name}: other sliders move without changing it")
        self.reset = QToolButton()
        self.reset.setObjectName(f"reset:{name}")
        self.reset.setText("↺")
        self.reset.setToolTip(f"Reset {name} to 0")
        self.slider.valueChanged.connect(
            lambda value: panel._on_attribute_slider_changed(name, value)
        )
        self.slider.sliderPressed.connect(panel._on_attribute_slider_pressed)
        self.slider.sliderReleased.connect(lambda: panel._on_attribute_slider_released(name))
        self.lock.toggled.connect(lambda checked: panel._on_lock_toggled(name, checked))
        self.reset.clicked.connect(lambda: panel._on_reset_clicked(name))

    def widgets(self) -> tuple[QWidget, ...]:
        return (self.label, self.slider, self.value, self.lock, self.reset)

    def show_amount(self, sigma: float, locked: bool) -> None:
        with QSignalBlocker(self.slider):
            self.slider.setValue(round(sigma * STEPS_PER_SIGMA))
        with QSignalBlocker(self.lock):
            self.lock.setChecked(locked)
        self.value.setText(f"{sigma:+.2f}σ")


class AttributesPanel(QWidget):
    """Attribute sliders (TL-GAN directions), direction files, fitting and identity drift."""

    def __init__(self, session: Session, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attributesPanel")
        self.session = session
        self.jobs = jobs
        self._rows: dict[str, _AttributeRow] = {}
        self._shown_set: DirectionSet | None = None
        self._lock_header: QLabel | None = None
        self._pending_set: DirectionSet | None = None  # a foreign set waiting for "use anyway"
        self._drag_start: EditState | None = None
        self._preserve_job: Job | None = None
        self.mismatch_box: QMessageBox | None = None
        self.fit_dialog: FitDirectionsDialog | None = None
        self.labeling_dialog: LabelingDialog | None = None

        self.set_label = QLabel("No directions")
        self.set_label.setObjectName("directionSetLabel")
        self.set_label.setWordWrap(True)
        buttons = QGridLayout()
        self.load_button = self._button(
            "Load…",
            "loadDirectionsButton",
            self.choose_directions_file,
            "Open a direction set (.directions.json + .npz)",
        )
        self.save_button = self._button(
            "Save…",
            "saveDirectionsButton",
            self.choose_save_destination,
            "Save these directions beside the model or elsewhere",
        )
        self.fit_button = self._button(
            "Fit directions…",
            "fitDirectionsButton",
            self.open_fit_dialog,
            "Sample, render, label and fit attribute directions (TL-GAN)",
        )
        self.tag_button = self._button(
            "Tag samples…",
            "labelSamplesButton",
            self.open_labeling_dialog,
            "Make a direction from your own has / hasn't tags",
        )
        for index, button in enumerate(
            (self.load_button, self.save_button, self.fit_button, self.tag_button)
        ):
            buttons.addWidget(button, index // 2, index % 2)

        self.notice = QLabel()
        self.notice.setObjectName("directionsNotice")
        self.notice.setWordWrap(True)
        self.notice.hide()
        self.use_anyway_button = QPushButton("Use anyway")
        self.use_anyway_button.setObjectName("useDirectionsAnywayButton")
        self.use_anyway_button.clicked.connect(self._on_use_anyway_clicked)
        self.use_anyway_button.hide()

        self.empty_label = QLabel(
            "No attribute directions for this model yet.\n"
            "Load a direction set, fit directions from labelled samples, or tag samples yourself."
        )
        self.empty_label.setObjectName("attributesEmpty")
        self.empty_label.setWordWrap(True)
        self.rows_widget, self.rows_layout, self.rows_scroll = scrolling_grid()
        self.rows_layout.setContentsMargins(2, 2, 2, 2)

        identity_supported = has_identity_support()
        self.identity_check = QCheckBox("Show identity drift")
        self.identity_check.setObjectName("identityDriftCheck")
        self.identity_check.setEnabled(identity_supported)
        self.identity_check.setToolTip(
            "Distance of the edited face from the unedited one (dlib face descriptors; "
            "below 0.6 = same person). Measured after each full frame."
            if identity_supported
            else "Needs the face-identity module"
        )
        self.identity_check.toggled.connect(self.session.set_measure_identity)
        self.identity_label = QLabel("")
        self.identity_label.setObjectName("identityDrift")
        self.preserve_check = QCheckBox("Preserve identity")
        self.preserve_check.setObjectName("preserveIdentity")
        self.preserve_check.setEnabled(identity_supported)
        self.preserve_check.setToolTip(
            "After each slider release, shorten the edit if the face would no longer read as "
            "the same person (drift above 0.6)"
        )
        self.side_effects = SideEffectReadout(
            session,
            jobs,
            "Side effects of the last slider",
            hint="Release a slider to see its side effects.",
            off_hint="Side effects are off: measuring takes seconds on large models.",
            auto_up_to=AUTO_READOUT_UP_TO,
        )
        self.side_effects.setObjectName("attributeSideEffects")
        identity_row = QHBoxLayout()
        identity_row.addWidget(self.identity_check)
        identity_row.addWidget(self.identity_label, 1)
        identity_row.addWidget(self.preserve_check)

        layout = QVBoxLayout(self)
        layout.addWidget(self.set_label)
        layout.addLayout(buttons)
        layout.addWidget(self.notice)
        layout.addWidget(self.use_anyway_button)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.rows_scroll, 1)
        layout.addWidget(self.side_effects)
        layout.addStretch()  # takes only what the list (stretch 1, capped) leaves
        layout.addLayout(identity_row)

        session.state_changed.connect(self._on_session_state_changed)
        session.generator_changed.connect(self._on_session_generator_changed)
        session.frame_ready.connect(self._on_session_frame_ready)
        self._on_session_state_changed(session.state)

    def _button(self, text: str, name: str, slot: object, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    # -- state -> widgets ---------------------------------------------------------------------
    def _on_session_state_changed(self, state: EditState) -> None:
        if state.directions is not self._shown_set:
            self._rebuild(state.directions)
        directions = state.directions
        for name, row in self._rows.items():
            assert directions is not None
            amount = state.attribute_amounts.get(name, 0.0)
            row.show_amount(amount / directions[name].scale, name in state.locked)
        has_model = self.session.generator is not None
        for button in (self.load_button, self.fit_button, self.tag_button):
            button.setEnabled(has_model)
        self.save_button.setEnabled(has_model and directions is not None and len(directions) > 0)

    def _rebuild(self, directions: DirectionSet | None) -> None:
        for row in self._rows.values():
            for widget in row.widgets():
                self.rows_layout.removeWidget(widget)
                widget.setParent(None)  # gone from findChild at once, freed later
                widget.deleteLater()
        self._rows.clear()
        self._shown_set = directions
        if directions is None or not len(directions):
            self.set_label.setText("No directions")
            self.empty_label.show()
            self._fit_rows_height()
            return
        self.empty_label.hide()
        origin = (
            directions.source.name if directions.source is not None else "fitted in this session"
        )
        self.set_label.setText(f"{len(directions)} directions ({origin})")
        self.set_label.setToolTip(str(directions.source) if directions.source else "")
        if self._lock_header is None:
            self._lock_header = QLabel("lock")
            self._lock_header.setToolTip("Locked attributes stay put while other sliders move")
            self.rows_layout.addWidget(self._lock_header, 0, 3)
        for index, direction in enumerate(directions):
            row = _AttributeRow(self, direction.name, describe_direction(direction))
            for column, widget in enumerate(row.widgets()):
                self.rows_layout.addWidget(widget, index + 1, column)
            self._rows[direction.name] = row
        self.rows_layout.setRowStretch(len(directions) + 1, 1)
        self._fit_rows_height()
        # New rows in a shown panel count for the size only once Qt shows them (queued).
        QTimer.singleShot(0, self._fit_rows_height)

    def _fit_rows_height(self) -> None:
        # The list grows no taller than its rows (it scrolls when space is short), so the
        # side-effect readout sits right under the sliders, not at the bottom of the panel.
        frame = 2 * self.rows_scroll.frameWidth()
        self.rows_scroll.setMaximumHeight(self.rows_widget.sizeHint().height() + frame)

    def slider(self, name: str) -> QSlider:
        """The slider of attribute ``name``."""
        return self._rows[name].slider

    # -- widgets -> session -------------------------------------------------------------------
    def _on_attribute_slider_changed(self, name: str, value: int) -> None:
        state = self.session.state
        if state.directions is None or name not in state.directions:
            return
        sigma = value / STEPS_PER_SIGMA
        self._rows[name].value.setText(f"{sigma:+.2f}σ")
        amount = sigma * state.directions[name].scale
        # Consecutive steps of one slider (keys, wheel, a drag) merge into one history entry.
        self.session.propose(
            with_amount(state, name, amount), f"{name} {sigma:+.2f}σ", f"attr:{name}"
        )
        if not self._rows[name].slider.isSliderDown():
            self.side_effects.follow(name)  # keys, wheel, typing: measured once they pause

    def _on_attribute_typed(self, name: str, sigma: float) -> None:
        slider = self._rows[name].slider
        slider.setValue(round(sigma * STEPS_PER_SIGMA))  # clamped to the slider's ±3σ
        self.session.seal()  # a typed value is a step of its own

    def _on_attribute_slider_pressed(self) -> None:
        self._drag_start = self.session.state
        self.session.begin_drag()

    def _on_attribute_slider_released(self, name: str) -> None:
        self.session.end_drag()
        start, self._drag_start = self._drag_start, None
        self.side_effects.follow(name)
        if self.preserve_check.isChecked() and start is not None:
            self._preserve_identity(start, name)

    def _on_lock_toggled(self, name: str, locked: bool) -> None:
        self.session.propose(
            with_lock(self.session.state, name, locked), f"{'Lock' if locked else 'Unlock'} {name}"
        )
        self.session.seal()

    def _on_reset_clicked(self, name: str) -> None:
        if self.session.state.attribute_amounts.get(name, 0.0) != 0.0:
            self.session.propose(with_amount(self.session.state, name, 0.0), f"Reset {name}")
            self.session.seal()

    # -- identity -----------------------------------------------------------------------------
    def _on_session_frame_ready(self, frame: RenderedFrame) -> None:
        distance = frame.result.identity_distance
        if not self.session.measures_identity or frame.result.draft:
            if not self.session.measures_identity:
                self.identity_label.setText("")
            return
        if distance is None:
            self.identity_label.setText("drift: no face found")
        else:
            verdict = (
                "same person" if distance < SAME_PERSON_DISTANCE else "looks like someone else"
            )
            self.identity_label.setText(f"drift {distance:.2f} ({verdict})")

    def _preserve_identity(self, start: EditState, name: str) -> None:
        generator = self.session.generator
        released = self.session.state
        amount = released.attribute_amounts.get(name, 0.0)
        if generator is None or amount == start.attribute_amounts.get(name, 0.0):
            return
        if self._preserve_job is not None and self._preserve_job.is_running:
            self._preserve_job.request_stop()
        job = Job(
            "Could not preserve identity",
            limit_identity_drift,
            generator,
            start,
            name,
            amount,
            threshold=SAME_PERSON_DISTANCE,
        )
        job.succeeded.connect(
            lambda limited: self._on_preserve_job_succeeded(released, name, limited)
        )
        job.failed.connect(lambda report: show_error(self, report))
        self._preserve_job = job
        self.identity_label.setText("checking identity…")
        self.jobs.submit(job)

    def _on_preserve_job_succeeded(self, released: EditState, name: str, limited: float) -> None:
        if self.session.state is not released or released.directions is None:
            return  # the user moved on; a late answer must not undo their change
        amount = released.attribute_amounts.get(name, 0.0)
        if abs(limited - amount) > 1e-6:
            scale = released.directions[name].scale
            self.session.propose(
                with_amount(released, name, limited),
                f"Preserve identity: {name} {amount / scale:+.2f}σ → {limited / scale:+.2f}σ",
            )
            self.session.seal()

    # -- direction files ----------------------------------------------------------------------
    def _on_session_generator_changed(self, generator: Generator) -> None:
        self.notice.hide()
        self.use_anyway_button.hide()
        self._pending_set = None
        model_path = self.session.model_path
        if model_path is None:
            return
        candidate = default_directions_path(model_path)
        if candidate.is_file():
            self.load_directions_file(candidate, automatic=True)

    def choose_directions_file(self) -> None:
        """Ask for a direction file and load it."""
        start = str(self.session.model_path.parent) if self.session.model_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open directions", start, DIRECTION_FILTER)
        if path:
            self.load_directions_file(Path(path))

    def load_directions_file(self, path: Path, *, automatic: bool = False) -> bool:
        """Load a direction set; True when it is in use now (False: error or waiting for a yes)."""
        generator = self.session.generator
        if generator is None:
            return False
        try:
            directions = load_directions(path)
            check_compatible(directions, generator.w_dim, latent_space(generator))  # type: ignore[arg-type]
        except Exception as exc:  # a file-opening edge: every failure is a message
            report = ErrorReport.from_exception("Could not load directions", exc)
            if automatic:
                self._show_notice(f"{report.message}")
            else:
                show_error(self, report)
            return False
        warning = directions.fingerprint_mismatch(self.session.fingerprint())
        if warning is None and automatic:
            # Found beside the model: part of opening it, not a step of the user's history.
            self.session.set_starting_state(with_directions(self.session.state, directions))
            return True
        if warning is None:
            self._use_directions(directions, f"Load directions {path.name}")
            return True
        self._pending_set = directions
        if automatic:
            self._show_notice(warning.capitalize() + ".", offer_use=True)
            return False
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Directions from another model",
            warning.capitalize() + ".\n\nUse them anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setObjectName("directionsMismatchBox")
        box.finished.connect(self._on_mismatch_box_finished)
        self.mismatch_box = box
        box.open()
        return False

    def _on_mismatch_box_finished(self, result: int) -> None:
        if result == QMessageBox.StandardButton.Yes:
            self._on_use_anyway_clicked()
        else:
            self._pending_set = None

    def _on_use_anyway_clicked(self) -> None:
        directions, self._pending_set = self._pending_set, None
        self.notice.hide()
        self.use_anyway_button.hide()
        if directions is not None:
            name = directions.source.name if directions.source else "directions"
            self._use_directions(directions, f"Load directions {name} (other model)")

    def _show_notice(self, text: str, offer_use: bool = False) -> None:
        self.notice.setText(text)
        self.notice.show()
        self.use_anyway_button.setVisible(offer_use)

    def _use_directions(self, directions: DirectionSet, text: str) -> None:
        self.session.propose(with_directions(self.session.state, directions), text)
        self.session.seal()

    def choose_save_destination(self) -> None:
        """Ask where to save the current directions and save them."""
        model_path = self.session.model_path
        suggestion = (
            str(default_directions_path(model_path)) if model_path else "faces.directions.json"
        )
        path, _ = QFileDialog.getSaveFileName(self, "Save directions", suggestion, DIRECTION_FILTER)
        if path:
            self.save_directions_file(Path(path))

    def save_directions_file(self, path: Path) -> Path | None:
        """Save the current direction set; returns the JSON path, or None after an error."""
        directions = self.session.state.directions
        if directions is None or not len(directions):
            return None
        try:
            return save_directions(directions, path)
        except (OSError, ValueError) as exc:
            show_error(self, ErrorReport.from_exception("Could not save directions", exc))
            return None

    # -- fitting ------------------------------------------------------------------------------
    def open_fit_dialog(self) -> FitDirectionsDialog:
        """Show the fitting dialog (one at a time)."""
        if self.fit_dialog is None:
            self.fit_dialog = FitDirectionsDialog(self.session, self.jobs, self)
            self.fit_dialog.fitted.connect(self._on_directions_fitted)
        self.fit_dialog.show()
        self.fit_dialog.raise_()
        return self.fit_dialog

    def open_labeling_dialog(self) -> LabelingDialog:
        """Show the manual tagging dialog (one at a time)."""
        if self.labeling_dialog is None:
            self.labeling_dialog = LabelingDialog(self.session, self.jobs, self)
            self.labeling_dialog.fitted.connect(self._on_directions_fitted)
        self.labeling_dialog.show()
        self.labeling_dialog.raise_()
        return self.labeling_dialog

    def _on_directions_fitted(self, fitted: DirectionSet) -> None:
        generator = self.session.generator
        if generator is None or fitted.fingerprint != self.session.fingerprint():
            return  # fitted on a model that is no longer open
        current = self.session.state.directions
        base = (
            current if current is not None else DirectionSet((), fitted.fingerprint, generator.name)
        )
        merged = base.merged(fitted.directions)
        merged = DirectionSet(merged.directions, fitted.fingerprint, generator.name, base.source)
        self._use_directions(merged, f"Fit directions: {', '.join(fitted.names)}")
        if fitted.notes:
            self._show_notice("Skipped: " + "; ".join(fitted.notes))
