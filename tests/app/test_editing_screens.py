"""One screenshot per editing tab (and the history dock), for a human to look at."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton, QSlider, QSpinBox

from app.widgets.image_view import qimage_to_rgb
from editors.direction_files import default_directions_path, save_directions
from editors.directions import Direction, DirectionSet
from models import load_generator


def test_screenshots_of_every_tab(tiny_checkpoint, make_main_window, qtbot, tmp_path) -> None:
    path = tiny_checkpoint(resolution=64, name="faces.pt")
    generator = load_generator(path, "cpu")
    rng = np.random.default_rng(0)
    names = ("smile", "yaw", "pitch", "mouth_open", "eye_open", "age")
    directions = DirectionSet(
        tuple(
            Direction(n, rng.normal(size=32), metrics={"std": 1.0, "heldout_accuracy": 0.9})
            for n in names
        ),
        fingerprint=generator.fingerprint(),
    )
    save_directions(directions, default_directions_path(path))
    window = make_main_window(path)
    window.resize(1280, 820)
    qtbot.waitUntil(lambda: window.findChild(QSlider, "attr:smile") is not None)
    window.findChild(QSlider, "attr:smile").setValue(120)
    window.findChild(QSlider, "attr:age").setValue(-60)
    window.findChild(QSpinBox, "mixDonorSeed").setValue(9)
    qtbot.mouseClick(window.findChild(QPushButton, "mixUseSeedButton"), Qt.MouseButton.LeftButton)
    window.findChild(QSlider, "mix:coarse").setValue(70)
    window.components_panel.count_spin.setValue(6)
    window.components_panel.compute()
    qtbot.waitUntil(lambda: window.findChild(QSlider, "component:5") is not None, timeout=30000)
    window.findChild(QSlider, "component:0").setValue(150)
    qtbot.waitUntil(lambda: not window.mixing_panel.donor_thumb.pixmap().isNull(), timeout=10000)
    state = window.session.state
    qtbot.waitUntil(lambda: window.session.last_frame.result.state is state, timeout=10000)
    qtbot.waitUntil(
        lambda: all(
            window.history_panel.has_thumbnail(r) for r in range(window.history_panel.entry_count())
        ),
        timeout=20000,
    )
    for index in range(window.panel_tabs.count()):
        window.panel_tabs.setCurrentIndex(index)
        title = window.panel_tabs.tabText(index).replace("&&", "and").replace(" ", "_").lower()
        image = window.grab().toImage()
        image.save(str(tmp_path / f"tab_{index}_{title}.png"))
        rgb = qimage_to_rgb(image)
        assert rgb.std() > 10  # not a blank window
        panel = qimage_to_rgb(window.panel_tabs.currentWidget().grab().toImage())
        assert len(np.unique(panel.reshape(-1, 3), axis=0)) > 8  # the tab drew something
