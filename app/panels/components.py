"""The Components tab: unsupervised directions (GANSpace PCA or SeFa) as "Component k" sliders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledRangeSlider

from app.errors import ErrorReport, show_error
from app.panels.rows import clear_layout, drag_slider, scrolling_grid
from app.progress import show_progress
from app.workers import Job
from editors.mixing import group_layers
from editors.state import EditState, with_component, with_components
from editors.unsupervised import ComponentConfig, compute_components, explained

if TYPE_CHECKING:
    from app.session import Session
    from app.workers import JobRegistry
    from editors.directions import DirectionSet
    from models.generator import Generator
    from models.jobs import Progress

STEPS_PER_SIGMA = 100
SIGMA_RANGE = 5.0  # components span ±5σ
METHODS = (("PCA of W (GANSpace)", "pca"), ("SeFa (closed form)", "sefa"))
LAYER_CHOICES = (
    ("All rows", None),
    ("Coarse (4–8 px)", "coarse"),
    ("Middle (16–32 px)", "middle"),
    ("Fine (64 px and up)", "fine"),
    ("Custom rows", "custom"),  # whatever the row range slider is set to
)


class ComponentsPanel(QWidget):
    """Computes components in a Job and shows one slider per component."""

    def __init__(self, session: Session, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("componentsPanel")
        self.session = session
        self.jobs = jobs
        self.job: Job | None = None
        self.sliders: list[QSlider] = []
        self._values: list[QLabel] = []
        self._shown_set: DirectionSet | None = None

        self.method_combo = QComboBox()
        self.method_combo.setObjectName("componentMethod")
        for text, _ in METHODS:
            self.method_combo.addItem(text)
        self.method_combo.setToolTip(
            "PCA: main axes of variation of sampled latents. SeFa: directions the style layers "
            "respond to most, straight from the weights (no sampling needed)."
        )
        self.count_spin = QSpinBox()
        self.count_spin.setObjectName("componentCount")
        self.count_spin.setRange(1, 100)
        self.count_spin.setValue(10)
        self.layers_combo = QComboBox()
        self.layers_combo.setObjectName("componentLayers")
        for text, _ in LAYER_CHOICES:
            self.layers_combo.addItem(text)
        self.layers_combo.setToolTip(
            "Rows the components act on (SeFa also factorises only these layers)"
        )
        self.layers_combo.currentIndexChanged.connect(self._on_layers_combo_changed)
        # The rows themselves, as a first-last range; the combo's presets move it.
        self.rows_range = QLabeledRangeSlider(Qt.Orientation.Horizontal)
        self.rows_range.setObjectName("componentRows")
        self.rows_range.setRange(0, 0)
        self.rows_range.setValue((0, 0))
        self.rows_range.setEdgeLabelMode(QLabeledRangeSlider.EdgeLabelMode.NoLabel)
        self.rows_range.setToolTip("First and last latent row the components act on")
        self.rows_range.valueChanged.connect(self._on_rows_range_changed)
        self.compute_button = QPushButton("Compute")
        self.compute_button.setObjectName("computeComponentsButton")
        self.compute_button.clicked.connect(self.compute)
        self.reset_button = QPushButton("Reset sliders")
        self.reset_button.setObjectName("resetComponentsButton")
        self.reset_button.clicked.connect(self._on_reset_clicked)
        self.progress = QProgressBar()
        self.progress.setObjectName("componentsProgress")
        self.progress.setMaximumHeight(14)
        self.progress.hide()

        form = QFormLayout()
        form.addRow("Method", self.method_combo)
        form.addRow("Components", self.count_spin)
        form.addRow("Act on", self.layers_combo)
        form.addRow("Rows", self.rows_range)
        buttons = QHBoxLayout()
        buttons.addWidget(self.compute_button)
        buttons.addWidget(self.reset_button)

        self.empty_label = QLabel("Press Compute to find the main directions of variation.")
        self.empty_label.setObjectName("componentsEmpty")
        self.empty_label.setWordWrap(True)
        self.rows_widget, self.rows_layout, scroll = scrolling_grid()

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.empty_label)
        layout.addWidget(scroll, 1)

        session.state_changed.connect(self._on_session_state_changed)
        session.generator_changed.connect(self._on_session_generator_changed)
        self._on_session_state_changed(session.state)

    # -- computing ----------------------------------------------------------------------------
    def _layers(self) -> tuple[int, int] | None:
        generator = self.session.generator
        if generator is None:
            return None
        first, last = self.rows_range.value()
        rows = (int(first), int(last) + 1)
        return None if rows == (0, generator.num_ws) else rows

    def _show_rows(self, layers: tuple[int, int] | None) -> None:
        generator = self.session.generator
        num_ws = generator.num_ws if generator is not None else 1
        first, end = layers if layers is not None else (0, num_ws)
        with QSignalBlocker(self.rows_range):
            self.rows_range.setRange(0, num_ws - 1)
            self.rows_range.setValue((first, end - 1))

    def config(self) -> ComponentConfig:
        """The settings as a ``ComponentConfig``."""
        return ComponentConfig(
            method=METHODS[self.method_combo.currentIndex()][1],  # type: ignore[arg-type]
            n_components=self.count_spin.value(),
            layers=self._layers(),
        )

    def compute(self) -> Job | None:
        """Compute components in the background (a new request supersedes a running one)."""
        generator = self.session.generator
        if generator is None:
            return None
        group = LAYER_CHOICES[self.layers_combo.currentIndex()][1]
        if group and self._layers() is None:
            show_error(
                self, ErrorReport("Cannot compute components", f"this model has no {group} rows")
            )
            return None
        if self.job is not None and self.job.is_running:
            self.job.request_stop()
        try:
            config = self.config()
        except ValueError as exc:
            show_error(self, ErrorReport.from_exception("Cannot compute components", exc))
            return None
        job = Job("Could not compute components", compute_components, generator, config)
        job.progressed.connect(self._on_job_progressed)
        job.succeeded.connect(self._on_job_succeeded)
        job.failed.connect(self._on_job_failed)
        job.done.connect(self._on_job_done)
        self.job = job
        self.progress.setRange(0, 0)
        self.progress.show()
        return self.jobs.submit(job)

    def _on_job_progressed(self, progress: Progress) -> None:
        if self.sender() is self.job:
            show_progress(self.progress, progress)

    def _on_job_succeeded(self, components: DirectionSet) -> None:
        if self.sender() is not self.job or components.fingerprint != self.session.fingerprint():
            return
        method = METHODS[self.method_combo.currentIndex()][0]
        self.session.propose(
            with_components(self.session.state, components, self._layers()),
            f"Components: {method}, {len(components)}",
        )
        self.session.seal()

    def _on_job_failed(self, report: ErrorReport) -> None:
        if self.sender() is self.job:
            show_error(self, report)

    def _on_job_done(self) -> None:
        if self.sender() is self.job:
            self.progress.hide()

    def _layers_for_combo(self, generator: Generator) -> tuple[int, int] | None:
        group = LAYER_CHOICES[self.layers_combo.currentIndex()][1]
        if group in (None, "custom"):
            return None
        return group_layers(group, generator.num_ws)

    def _choice_for(self, layers: tuple[int, int] | None) -> int:
        generator = self.session.generator
        for index, (_, group) in enumerate(LAYER_CHOICES[:-1]):  # the presets, not "custom"
            rows = (
                group_layers(group, generator.num_ws) if group and generator is not None else None
            )
            if rows == layers:
                return index
        return len(LAYER_CHOICES) - 1

    def _on_layers_combo_changed(self, index: int) -> None:
        group = LAYER_CHOICES[index][1]
        generator = self.session.generator
        if group != "custom":
            preset = group_layers(group, generator.num_ws) if group and generator else None
            self._show_rows(preset)
        state = self.session.state
        layers = self._layers()
        if state.components is not None and layers != state.component_layers:
            text = LAYER_CHOICES[self.layers_combo.currentIndex()][0]
            self.session.propose(
                state.replace(component_layers=layers), f"Components act on: {text}"
            )
            self.session.seal()

    def _on_rows_range_changed(self, _value: object) -> None:
        layers = self._layers()
        with QSignalBlocker(self.layers_combo):
            self.layers_combo.setCurrentIndex(self._choice_for(layers))
        state = self.session.state
        if state.components is not None and layers != state.component_layers:
            first, end = layers if layers is not None else (0, self.session.generator.num_ws)
            self.session.propose(
                state.replace(component_layers=layers),
                f"Components act on rows {first}–{end - 1}",
                "componentRows",
            )  # a drag of the range is one history entry

    def _on_reset_clicked(self) -> None:
        state = self.session.state
        if state.component_amounts:
            self.session.propose(state.replace(component_amounts={}), "Reset components")
            self.session.seal()

    # -- state -> widgets ---------------------------------------------------------------------
    def _on_session_generator_changed(self, generator: Generator) -> None:
        self.method_combo.model().item(1).setEnabled(generator.kind == "stylegan2")
        self._show_rows(self._layers_for_combo(generator))
        if generator.kind != "stylegan2":
            self.method_combo.setCurrentIndex(0)

    def _on_session_state_changed(self, state: EditState) -> None:
        if state.components is not self._shown_set:
            self._rebuild(state.components)
        components = state.components
        for index, slider in enumerate(self.sliders):
            assert components is not None
            direction = components.directions[index]
            sigma = state.component_amounts.get(direction.name, 0.0) / direction.scale
            with QSignalBlocker(slider):
                slider.setValue(round(sigma * STEPS_PER_SIGMA))
            self._values[index].setText(f"{sigma:+.2f}σ")
        if components is not None:
            self._show_rows(state.component_layers)
            with QSignalBlocker(self.layers_combo):
                self.layers_combo.setCurrentIndex(self._choice_for(state.component_layers))
        self.compute_button.setEnabled(self.session.generator is not None)
        self.reset_button.setEnabled(bool(state.component_amounts))

    def _rebuild(self, components: DirectionSet | None) -> None:
        clear_layout(self.rows_layout)
        self.sliders, self._values = [], []
        self._shown_set = components
        self.empty_label.setVisible(components is None)
        if components is None:
            return
        notes = explained(components)
        limit = int(SIGMA_RANGE * STEPS_PER_SIGMA)
        for index, direction in enumerate(components):
            label = QLabel(direction.name)
            label.setToolTip(notes[index])
            slider = drag_slider(
                self.session,
                f"component:{index}",
                -limit,
                limit,
                lambda value, i=index: self._on_component_slider_changed(i, value),
            )
            slider.setSingleStep(5)
            slider.setPageStep(50)
            slider.setToolTip(f"{direction.name}: {notes[index]}")
            value = QLabel("+0.00σ")
            value.setObjectName(f"componentValue:{index}")
            value.setMinimumWidth(52)
            self.rows_layout.addWidget(label, index, 0)
            self.rows_layout.addWidget(slider, index, 1)
            self.rows_layout.addWidget(value, index, 2)
            self.sliders.append(slider)
            self._values.append(value)
        self.rows_layout.setRowStretch(len(components), 1)

    def _on_component_slider_changed(self, index: int, value: int) -> None:
        components = self.session.state.components
        if components is None or index >= len(components):
            return
        direction = components.directions[index]
        sigma = value / STEPS_PER_SIGMA
        self._values[index].setText(f"{sigma:+.2f}σ")
        self.session.propose(
            with_component(self.session.state, direction.name, sigma * direction.scale),
            f"{direction.name} {sigma:+.2f}σ",
            f"component:{index}",
        )  # consecutive steps of one slider merge into one history entry
