"""The sampling tool bar: seed (with Random) and truncation ψ, kept in step with the session."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QLabel, QPushButton, QSlider, QSpinBox, QToolBar, QWidget

from app.theme import icon
from app.widgets.value_label import ValueLabel

if TYPE_CHECKING:
    from app.session import Session
    from app.settings import AppSettings
    from editors.state import EditState

MAX_SEED = 2**31 - 1
NO_SEED = -1  # the spin box's "—": the picture comes from a photo or latent file, not a seed
TRUNCATION_STEPS = 100  # slider units per 1.0 of psi


class SampleBar(QToolBar):
    """Seed spin box, Random button, truncation slider with a typeable value."""

    def __init__(self, session: Session, settings: AppSettings, parent: QWidget | None = None):
        super().__init__("Sample", parent)
        self.setObjectName("sampleToolbar")
        self.setMovable(False)
        self.session = session
        self.settings = settings

        self.addWidget(QLabel(" Seed "))
        self.seed_spin = QSpinBox()
        self.seed_spin.setObjectName("seedSpin")
        self.seed_spin.setRange(NO_SEED, MAX_SEED)
        self.seed_spin.setSpecialValueText("—")
        self.seed_spin.setMinimumWidth(110)
        self.seed_spin.setToolTip(
            "Seed of the latent (as NVIDIA's generate.py draws it); — while the picture comes "
            "from a photo or a latent file"
        )
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.valueChanged.connect(self._on_seed_spin_changed)
        self.addWidget(self.seed_spin)

        self.random_button = QPushButton(icon("mdi6.dice-5"), "Random")
        self.random_button.setObjectName("randomSeedButton")
        self.random_button.setToolTip("Pick a random seed (Ctrl+R)")
        self.random_button.clicked.connect(self.random_seed)
        self.addWidget(self.random_button)

        self.addSeparator()
        self.addWidget(QLabel(" Truncation ψ "))
        self.truncation_slider = QSlider(Qt.Orientation.Horizontal)
        self.truncation_slider.setObjectName("truncationSlider")
        self.truncation_slider.setRange(0, int(1.5 * TRUNCATION_STEPS))
        self.truncation_slider.setSingleStep(5)
        self.truncation_slider.setPageStep(10)
        self.truncation_slider.setFixedWidth(220)
        self.truncation_slider.setToolTip(
            "Pull the latent towards the average face: 1 = off, lower = more typical images"
        )
        self.truncation_slider.valueChanged.connect(self._on_truncation_slider_changed)
        self.truncation_slider.sliderPressed.connect(session.begin_drag)
        self.truncation_slider.sliderReleased.connect(self._on_truncation_slider_released)
        self.addWidget(self.truncation_slider)
        self.truncation_label = ValueLabel()
        self.truncation_label.setObjectName("truncationLabel")
        self.truncation_label.setMinimumWidth(44)
        self.truncation_label.value_entered.connect(self._on_truncation_typed)
        self.addWidget(self.truncation_label)

        session.state_changed.connect(self._on_session_state_changed)

    def set_model_controls_enabled(self, enabled: bool) -> None:
        for widget in (self.seed_spin, self.random_button, self.truncation_slider):
            widget.setEnabled(enabled)
        self.truncation_label.setEnabled(enabled)

    def random_seed(self) -> None:
        """Jump to a random seed (an undo entry of its own, so earlier picks stay reachable)."""
        self.session.seal()
        self.seed_spin.setValue(random.randrange(MAX_SEED))
        self.session.seal()

    def _on_seed_spin_changed(self, value: int) -> None:
        state = self.session.state
        if value == NO_SEED:
            return  # the "—" entry only shows that no seed is in use
        if state.seed != value or state.base_ws is not None:
            self.session.propose(state.replace(seed=value, base_ws=None), f"Seed {value}", "seed")

    def _on_truncation_slider_changed(self, value: int) -> None:
        self._set_truncation(value / TRUNCATION_STEPS)

    def _on_truncation_typed(self, psi: float) -> None:
        psi = min(max(psi, 0.0), self.truncation_slider.maximum() / TRUNCATION_STEPS)
        self._set_truncation(psi)
        self._on_truncation_slider_released()

    def _set_truncation(self, psi: float) -> None:
        self.truncation_label.setText(f"{psi:.2f}")
        if psi != self.session.state.truncation_psi:
            state = self.session.state.replace(truncation_psi=psi)
            self.session.propose(state, f"Truncation {psi:.2f}", "truncation")

    def _on_truncation_slider_released(self) -> None:
        self.session.end_drag()
        self.settings.truncation_psi = self.session.state.truncation_psi

    def _on_session_state_changed(self, state: EditState) -> None:
        with QSignalBlocker(self.seed_spin):
            self.seed_spin.setValue(state.seed if state.seed is not None else NO_SEED)
        with QSignalBlocker(self.truncation_slider):
            self.truncation_slider.setValue(round(state.truncation_psi * TRUNCATION_STEPS))
        self.truncation_label.setText(f"{state.truncation_psi:.2f}")
