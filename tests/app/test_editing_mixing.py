"""Style mixing by layer group and per row, donors from seeds and from history entries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidget, QPushButton, QSlider, QSpinBox, QToolButton

from models.generator import seed_to_z
from tests.app.conftest import wait_for_frame_of as latest


def mapped(generator, seed: int, psi: float) -> np.ndarray:
    with torch.inference_mode():
        return generator.mapping(seed_to_z([seed], generator.z_dim), truncation_psi=psi)[0].numpy()


@pytest.fixture
def window(tiny_checkpoint, make_main_window):
    return make_main_window(tiny_checkpoint(resolution=64))


def test_seed_donor_and_group_sliders(window, qtbot) -> None:
    generator = window.session.generator
    window.panel_tabs.setCurrentWidget(window.mixing_panel)
    coarse = window.findChild(QSlider, "mix:coarse")
    assert not coarse.isEnabled()  # no donor yet
    window.findChild(QSpinBox, "mixDonorSeed").setValue(11)
    qtbot.mouseClick(window.findChild(QPushButton, "mixUseSeedButton"), Qt.MouseButton.LeftButton)
    psi = window.session.state.truncation_psi
    mix = window.session.state.mix
    assert mix.donor.seed == 11 and mix.donor.truncation_psi == psi and not mix.is_active
    qtbot.waitUntil(lambda: not window.mixing_panel.donor_thumb.pixmap().isNull(), timeout=10000)
    assert coarse.isEnabled()
    coarse.setValue(100)
    window.findChild(QSlider, "mix:fine").setValue(50)
    result = latest(qtbot, window)
    own = mapped(generator, window.session.state.seed, psi)
    donor = mapped(generator, 11, psi)
    t = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0.5, 0.5])[:, None]
    np.testing.assert_allclose(result.ws, own * (1 - t) + donor * t, atol=1e-5)
    assert result.ws[4:8].tobytes() == np.tile(own, (4, 1)).astype(np.float32).tobytes()
    # Per-row grid.
    toggle = window.findChild(QToolButton, "mixRowsToggle")
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    row = window.findChild(QSlider, "mixRow:5")
    assert window.mixing_panel.rows_widget.isVisible() and row.value() == 0
    row.setValue(25)
    assert window.session.state.mix.row_weights[5] == 0.25
    assert window.findChild(QSlider, "mixRow:0").value() == 100
    # Undo restores the previous weights; clear ends mixing.
    window.session.undo_stack.undo()
    assert window.session.state.mix.row_weights[5] == 0.0 and row.value() == 0
    qtbot.mouseClick(window.findChild(QPushButton, "mixClearButton"), Qt.MouseButton.LeftButton)
    assert window.session.state.mix is None and not coarse.isEnabled()


def test_history_entry_as_donor(window, qtbot) -> None:
    history = window.history_panel
    first = latest(qtbot, window)
    window.seed_spin.setValue(5)
    latest(qtbot, window)
    qtbot.waitUntil(lambda: history.has_thumbnail(0) and history.has_thumbnail(1), timeout=10000)
    assert history.use_entry_as_donor(0)
    mix = window.session.state.mix
    assert mix.donor.label == "history: Start"
    np.testing.assert_array_equal(mix.donor.ws, first.ws)
    window.findChild(QSlider, "mix:middle").setValue(100)
    result = latest(qtbot, window)
    np.testing.assert_array_equal(result.ws[4:8], first.ws[4:8])
    assert not np.array_equal(result.ws[:4], first.ws[:4])
    # The history list jumps to an entry when clicked.
    listing = window.findChild(QListWidget, "historyList")
    count = window.session.undo_stack.count()
    assert listing.count() == count + 1
    rect = listing.visualItemRect(listing.item(1))
    qtbot.mouseClick(listing.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.session.undo_stack.index() == 1 and window.session.state.seed == 5
    assert window.session.state.mix is None
