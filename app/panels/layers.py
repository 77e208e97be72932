"""The Layers & noise tab: noise mode and a strength multiplier per noise layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.panels.rows import clear_layout, drag_slider, scrolling_grid
from editors.state import EditState

if TYPE_CHECKING:
    from app.session import Session
    from models.generator import Generator

STEPS = 100  # slider units per 1.0 of strength
MAX_STRENGTH = 2.0
NOISE_MODES = (
    ("Fixed (stored noise)", "const"),
    ("Random each frame", "random"),
    ("Off", "none"),
)


def noise_layer_resolution(layer: int) -> int:
    """Resolution of noise layer ``layer`` (StyleGAN2: one map at 4 px, then two per resolution)."""
    return 2 ** ((layer + 5) // 2)


class LayersPanel(QWidget):
    """Noise mode and per-layer noise strength (StyleGAN2 only)."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layersPanel")
        self.session = session
        self.sliders: list[QSlider] = []
        self._values: list[QLabel] = []

        self.mode_combo = QComboBox()
        self.mode_combo.setObjectName("noiseModeCombo")
        for text, _ in NOISE_MODES:
            self.mode_combo.addItem(text)
        self.mode_combo.setToolTip(
            "Per-pixel noise adds stochastic detail (hair strands, skin pores); fixed noise keeps "
            "it steady while you edit"
        )
        self.mode_combo.currentIndexChanged.connect(self._on_mode_combo_changed)
        self.reset_button = QPushButton("Reset noise strengths")
        self.reset_button.setObjectName("resetNoiseButton")
        self.reset_button.clicked.connect(self._on_reset_clicked)
        form = QFormLayout()
        form.addRow("Noise", self.mode_combo)

        self.note = QLabel("")
        self.note.setObjectName("layersNote")
        self.note.setWordWrap(True)
        self.rows_widget, self.rows_layout, scroll = scrolling_grid()

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Noise strength per layer (× the trained strength)"))
        layout.addWidget(scroll, 1)
        layout.addWidget(self.reset_button)
        layout.addWidget(self.note)

        session.state_changed.connect(self._on_session_state_changed)
        session.generator_changed.connect(self._on_session_generator_changed)
        self._on_session_state_changed(session.state)

    def _num_layers(self) -> int:
        generator = self.session.generator
        return int(getattr(generator, "num_layers", 0) or 0) if generator is not None else 0

    def _on_session_generator_changed(self, generator: Generator) -> None:
        clear_layout(self.rows_layout)
        self.sliders, self._values = [], []
        count = self._num_layers() if generator.kind == "stylegan2" else 0
        for layer in range(count):
            slider = drag_slider(
                self.session,
                f"noise:{layer}",
                0,
                int(MAX_STRENGTH * STEPS),
                lambda value, i=layer: self._on_noise_slider_changed(i, value),
                value=STEPS,
            )
            value = QLabel("×1.00")
            value.setMinimumWidth(44)
            self.rows_layout.addWidget(
                QLabel(f"layer {layer} · {noise_layer_resolution(layer)} px"), layer, 0
            )
            self.rows_layout.addWidget(slider, layer, 1)
            self.rows_layout.addWidget(value, layer, 2)
            self.sliders.append(slider)
            self._values.append(value)
        self.rows_layout.setRowStretch(count, 1)
        self.note.setText("" if count else "This model has no noise inputs.")
        self._on_session_state_changed(self.session.state)

    def _on_session_state_changed(self, state: EditState) -> None:
        with QSignalBlocker(self.mode_combo):
            self.mode_combo.setCurrentIndex(
                [mode for _, mode in NOISE_MODES].index(state.noise_mode)
            )
        strengths = state.noise_strength or (1.0,) * len(self.sliders)
        for index, slider in enumerate(self.sliders):
            strength = strengths[index] if index < len(strengths) else 1.0
            with QSignalBlocker(slider):
                slider.setValue(round(strength * STEPS))
            slider.setEnabled(state.noise_mode != "none")
            self._values[index].setText(f"×{strength:.2f}")
        self.mode_combo.setEnabled(self.session.generator is not None)
        self.reset_button.setEnabled(state.noise_strength is not None)

    def _on_mode_combo_changed(self, index: int) -> None:
        mode = NOISE_MODES[index][1]
        if mode != self.session.state.noise_mode:
            self.session.propose(
                self.session.state.replace(noise_mode=mode), f"Noise: {NOISE_MODES[index][0]}"
            )
            self.session.seal()

    def _on_noise_slider_changed(self, layer: int, value: int) -> None:
        state = self.session.state
        strengths = list(state.noise_strength or (1.0,) * len(self.sliders))
        strengths[layer] = value / STEPS
        self._values[layer].setText(f"×{strengths[layer]:.2f}")
        new = tuple(strengths) if any(s != 1.0 for s in strengths) else None
        self.session.propose(
            state.replace(noise_strength=new),
            f"Noise layer {layer} ×{strengths[layer]:.2f}",
            f"noise:{layer}",
        )

    def _on_reset_clicked(self) -> None:
        if self.session.state.noise_strength is not None:
            self.session.propose(
                self.session.state.replace(noise_strength=None), "Reset noise strengths"
            )
            self.session.seal()
