"""The Style space tool: localized sliders, single style channels, and the side-effect readout.

Channels are found by ``editors.channel_discovery`` (a background job, cached per model); the
list shows the strongest channels acting inside a chosen face region, and the slider moves the
selected one in its own σ. The readout measures the current edit (share of the change in its
intended region, identity drift, landmark measures) in the background.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import show_error
from app.panels.rows import drag_slider
from app.progress import show_progress
from app.widgets.side_effects import SideEffectReadout
from app.workers import Job
from editors.channel_discovery import ATLAS_REGIONS, ChannelAtlas, cached_atlas
from editors.regions import warm_up_in_background
from editors.state import EditState, with_style_amount
from editors.stylespace import flat_index, key_of, style_statistics

if TYPE_CHECKING:
    from app.session import Session
    from app.workers import JobRegistry
    from models.generator import Generator

STEPS_PER_SIGMA = 10
MAX_SIGMA = 10
LIST_LENGTH = 40


class StyleSpacePanel(QWidget):
    """Localized sliders, style channels and the side-effect readout."""

    def __init__(self, session: Session, jobs: JobRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("styleSpacePanel")
        self.session = session
        self.jobs = jobs
        self.atlas: ChannelAtlas | None = None
        self.discovery_job: Job | None = None
        self._std = None  # flat channel σ (atlas or sampled)

        self.localized_check = QCheckBox("Localized sliders (StyleSpace)")
        self.localized_check.setObjectName("localizedCheck")
        self.localized_check.setChecked(True)
        self.localized_check.toggled.connect(self._on_localized_toggled)
        self.localized_label = QLabel("")
        self.localized_label.setWordWrap(True)

        self.region_combo = QComboBox()
        self.region_combo.setObjectName("regionCombo")
        self.region_combo.addItems(ATLAS_REGIONS)
        self.region_combo.currentIndexChanged.connect(self._fill_channel_list)
        self.discover_button = QPushButton("Find channels")
        self.discover_button.setObjectName("discoverButton")
        self.discover_button.setToolTip(
            "Map where every style channel acts on a few sample faces (cached per model)"
        )
        self.discover_button.clicked.connect(self.discover)
        self.progress = QProgressBar()
        self.progress.hide()
        self.channel_list = QListWidget()
        self.channel_list.setObjectName("channelList")
        self.channel_list.currentItemChanged.connect(self._on_channel_selected)
        self.layer_combo = QComboBox()
        self.layer_combo.setObjectName("styleLayerCombo")
        self.layer_combo.currentIndexChanged.connect(self._on_layer_changed)
        self.channel_spin = QSpinBox()
        self.channel_spin.setObjectName("channelSpin")
        self.channel_spin.valueChanged.connect(self._sync_slider)
        self.channel_slider = drag_slider(
            session,
            "channelSlider",
            -MAX_SIGMA * STEPS_PER_SIGMA,
            MAX_SIGMA * STEPS_PER_SIGMA,
            self._on_slider_moved,
        )
        self.channel_value = QLabel("0.0σ")
        self.reset_button = QPushButton("Reset channels")
        self.reset_button.setObjectName("resetChannelsButton")
        self.reset_button.clicked.connect(self._on_reset_clicked)

        self.readout = SideEffectReadout(
            session, jobs, "After each change", hint="Move a slider, then measure its side effects."
        )
        self.measure_button = QPushButton("Measure side effects")
        self.measure_button.setObjectName("measureButton")
        self.measure_button.clicked.connect(self.measure)
        self.auto_measure = self.readout.toggle
        self.auto_measure.setObjectName("autoMeasureCheck")

        sliders = QGroupBox("Attribute sliders")
        box = QVBoxLayout(sliders)
        box.addWidget(self.localized_check)
        box.addWidget(self.localized_label)
        channels = QGroupBox("Style channels")
        form = QFormLayout(channels)
        top = QHBoxLayout()
        top.addWidget(self.region_combo, 1)
        top.addWidget(self.discover_button)
        form.addRow("Region", top)
        form.addRow(self.progress)
        form.addRow(self.channel_list)
        pick = QHBoxLayout()
        pick.addWidget(self.layer_combo, 1)
        pick.addWidget(self.channel_spin)
        form.addRow("Layer / channel", pick)
        move = QHBoxLayout()
        move.addWidget(self.channel_slider, 1)
        move.addWidget(self.channel_value)
        form.addRow("Amount", move)
        form.addRow(self.reset_button)
        effects = QGroupBox("Side effects")
        effects_box = QVBoxLayout(effects)
        effects_box.addWidget(self.readout)
        self.readout.controls.insertWidget(0, self.measure_button)
        layout = QVBoxLayout(self)
        layout.addWidget(sliders)
        layout.addWidget(channels, 1)
        layout.addWidget(effects)

        session.generator_changed.connect(self._on_generator_changed)
        session.state_changed.connect(self._on_state_changed)
        if session.generator is not None:
            self._on_generator_changed(session.generator)
        # Localized sliders and the readout need dlib's models, whose first load takes seconds:
        # load them while the model loads.
        warm_up_in_background()

    # -- model --------------------------------------------------------------------------------
    def _layers(self) -> list:
        generator = self.session.generator
        return generator.style_layers() if hasattr(generator, "style_layers") else []

    def _on_generator_changed(self, generator: Generator) -> None:
        self.atlas = None
        self._std = None
        self.channel_list.clear()
        layers = self._layers()
        with QSignalBlocker(self.layer_combo):
            self.layer_combo.clear()
            for layer in layers:
                self.layer_combo.addItem(f"{layer.index}: {layer.name} ({layer.resolution} px)")
        self._on_layer_changed()
        self.setEnabled(bool(layers))
        if not layers:
            self.readout.clear("Style space needs a StyleGAN2 model.")

    def _std_of(self, layer: int, channel: int) -> float:
        if self._std is None:
            if self.atlas is not None:
                self._std = self.atlas.std
            else:
                self._std = style_statistics(self.session.generator, num_samples=500)[1]
        flat = flat_index(self._layers())[layer] + channel
        value = float(self._std[flat])
        return value if value > 0 else 1.0

    # -- localized sliders --------------------------------------------------------------------
    def _on_localized_toggled(self, checked: bool) -> None:
        state = self.session.state
        space = "auto" if checked else "w"
        if state.attribute_space != space:
            self.session.propose(state.replace(attribute_space=space), "Localized sliders")
            self.session.seal()

    def _on_state_changed(self, state: EditState) -> None:
        with QSignalBlocker(self.localized_check):
            self.localized_check.setChecked(state.attribute_space == "auto")
        styles = getattr(state.directions, "styles", None)
        names = ", ".join(styles.names) if styles is not None else ""
        self.localized_label.setText(
            f"Localized: {names}" if names else "This model's directions have no localized version."
        )
        self._sync_slider()
        if self.auto_measure.isChecked() and state.has_edits:
            self.readout.follow(None)

    # -- channels -----------------------------------------------------------------------------
    def discover(self) -> Job | None:
        """Find (or load from the cache) where each channel acts, in the background."""
        generator = self.session.generator
        if generator is None or not self._layers():
            return None
        if self.discovery_job is not None and self.discovery_job.is_running:
            return self.discovery_job
        job = Job("Could not map the style channels", cached_atlas, generator)
        job.progressed.connect(self._on_discovery_progressed)
        job.succeeded.connect(self._on_discovery_succeeded)
        job.failed.connect(lambda report: show_error(self, report))
        job.done.connect(self.progress.hide)
        self.discovery_job = job
        self.progress.setRange(0, 0)
        self.progress.show()
        return self.jobs.submit(job)

    def _on_discovery_progressed(self, progress) -> None:
        show_progress(self.progress, progress)

    def _on_discovery_succeeded(self, atlas: ChannelAtlas) -> None:
        self.atlas = atlas
        self._std = atlas.std
        self._fill_channel_list()

    def _fill_channel_list(self) -> None:
        self.channel_list.clear()
        if self.atlas is None:
            return
        region = ATLAS_REGIONS[self.region_combo.currentIndex()]
        layers = self._layers()
        shares = self.atlas.region_share(region)
        for flat in self.atlas.top_channels(region, LIST_LENGTH, min_share=0.3):
            layer, channel = key_of(flat, layers)
            item = QListWidgetItem(
                f"{layers[layer].name} #{channel}: {shares[flat]:.0%} in {region}"
            )
            item.setData(256, (layer, channel))
            self.channel_list.addItem(item)
        if not self.channel_list.count():
            self.channel_list.addItem(f"No channel acts mostly in the {region}.")

    def _on_channel_selected(self, item: QListWidgetItem | None) -> None:
        key = item.data(256) if item is not None else None
        if key:
            with QSignalBlocker(self.layer_combo):
                self.layer_combo.setCurrentIndex(int(key[0]))
            self._on_layer_changed()
            self.channel_spin.setValue(int(key[1]))

    def _on_layer_changed(self) -> None:
        layers = self._layers()
        index = self.layer_combo.currentIndex()
        self.channel_spin.setRange(0, layers[index].channels - 1 if 0 <= index < len(layers) else 0)
        self._sync_slider()

    def selected_key(self) -> tuple[int, int] | None:
        """The (style layer, channel) the slider moves."""
        if self.layer_combo.currentIndex() < 0:
            return None
        return (self.layer_combo.currentIndex(), self.channel_spin.value())

    def _sync_slider(self) -> None:
        key = self.selected_key()
        if key is None or self.session.generator is None:
            return
        amount = self.session.state.style_amounts.get(key, 0.0)
        sigma = amount / self._std_of(*key) if amount else 0.0
        with QSignalBlocker(self.channel_slider):
            self.channel_slider.setValue(round(sigma * STEPS_PER_SIGMA))
        self.channel_value.setText(f"{sigma:+.1f}σ")

    def _on_slider_moved(self, value: int) -> None:
        key = self.selected_key()
        if key is None:
            return
        sigma = value / STEPS_PER_SIGMA
        self.channel_value.setText(f"{sigma:+.1f}σ")
        state = with_style_amount(self.session.state, key, sigma * self._std_of(*key))
        self.session.propose(state, f"Style channel {key[0]}:{key[1]}", f"channel:{key}")

    def _on_reset_clicked(self) -> None:
        if self.session.state.style_amounts:
            self.session.propose(self.session.state.replace(style_amounts={}), "Reset channels")
            self.session.seal()

    # -- readout ------------------------------------------------------------------------------
    def measure(self) -> Job | None:
        """Measure the current edit's side effects in the background."""
        return self.readout.measure(None)


def install(window) -> None:
    """Add the Style space, Masks and Inspect tools to the main window (one call there)."""
    from app.panels.inspect import InspectPanel
    from app.panels.masks import MasksPanel

    window.stylespace_panel = StyleSpacePanel(window.session, window.jobs)
    window.masks_panel = MasksPanel(window.session, window.canvas)
    window.inspect_panel = InspectPanel(window.session, window.jobs)
    window.add_panel(window.stylespace_panel, "Style space", "mdi6.tune-vertical-variant")
    window.add_panel(window.masks_panel, "Masks", "mdi6.brush-variant")
    window.add_panel(window.inspect_panel, "Inspect", "mdi6.magnify-scan")
