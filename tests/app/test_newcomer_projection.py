"""Projection and first start for a newcomer: clean edits per photo, no stale pictures or scores,
a welcome panel that explains a bad model and offers the built-in demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QPushButton, QSlider, QSpinBox

import models
from editors.direction_files import default_directions_path, save_directions
from editors.directions import Direction, DirectionSet
from models import load_generator


@pytest.fixture
def window(tiny_checkpoint, make_main_window, qtbot):
    path = tiny_checkpoint(resolution=16, name="faces.pt")
    generator = load_generator(path, "cpu")
    directions = DirectionSet(
        (Direction("smile", np.random.default_rng(0).normal(size=32), metrics={"std": 1.0}),),
        fingerprint=generator.fingerprint(),
    )
    save_directions(directions, default_directions_path(path))
    window = make_main_window(path)
    qtbot.waitUntil(lambda: window.findChild(QSlider, "attr:smile") is not None)
    return window


def _close_error_boxes(window) -> None:
    for box in window.findChildren(QMessageBox, "errorBox"):
        box.close()


def _project_noise_photo(window, qtbot, path: Path):
    """Project a face-less photo through the panel's centre-crop button, as a user would."""
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 48, 3), np.uint8)).save(path)
    panel = window.projection_panel
    panel.findChild(QSpinBox, "projectionSteps").setValue(3)
    tuning = panel.findChild(QSpinBox, "projectionTuneSteps")  # pivotal tuning, when present
    if tuning is not None:
        tuning.setValue(2)
    window.open_photo(path)
    crop = panel.findChild(QPushButton, "projectionCenterCrop")
    qtbot.waitUntil(lambda: crop.isVisible() and crop.isEnabled(), timeout=30000)
    qtbot.mouseClick(crop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.state.base_ws is not None, timeout=120000)
    return panel


def test_a_new_projection_starts_from_clean_edits_and_undo_brings_them_back(
    window, qtbot, tmp_path: Path
) -> None:
    slider = window.findChild(QSlider, "attr:smile")
    slider.setValue(246)
    window.session.seal()
    edited = window.session.state
    assert edited.attribute_amounts["smile"] > 0
    panel = _project_noise_photo(window, qtbot, tmp_path / "noise.png")
    state = window.session.state
    assert state.attribute_amounts == {} and not state.has_edits
    assert slider.value() == 0 and window.findChild(QLabel, "attrValue:smile").text() == "+0.00σ"
    assert state.directions is edited.directions  # the sliders stay, at zero
    # 8: the seed box no longer claims seed 0.
    assert state.seed is None and window.seed_spin.text() == "—"
    qtbot.waitUntil(lambda: not panel.busy(), timeout=30000)
    window.session.undo_stack.undo()
    assert window.session.state is edited and slider.value() == 246


def test_a_failed_open_clears_the_previous_photo(window, qtbot, tmp_path: Path) -> None:
    panel = _project_noise_photo(window, qtbot, tmp_path / "noise.png")
    qtbot.waitUntil(lambda: panel.result is not None and not panel.busy(), timeout=30000)
    assert panel.target_view.image() is not None and panel.loss_hint.text()
    assert panel.progress.value() == panel.progress.maximum() > 1
    broken = tmp_path / "holiday-photo-with-a-rather-long-name.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    window.open_photo(broken)
    qtbot.waitUntil(lambda: not panel.busy(), timeout=30000)
    _close_error_boxes(window)
    # Nothing of the old photo is left: no pictures, empty bar, no scores.
    assert panel.target_view.image() is None and panel.live_view.image() is None
    assert panel.progress.value() == 0 and panel.progress.text() == "0%"
    assert panel.loss_hint.text() == "" and panel.result is None
    # The whole error is readable: it wraps instead of being cut off.
    assert panel.step_label.wordWrap() and broken.name in panel.step_label.text()
    assert panel.step_label.sizeHint().width() <= panel.width()


def test_welcome_after_a_bad_model_explains_and_opens_the_demo(
    make_main_window, qtbot, tmp_path: Path
) -> None:
    if models.default_model_path() is None:
        pytest.skip("the built-in demo model is not installed")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    window = make_main_window()
    with qtbot.waitSignal(window.model_failed, timeout=30000):
        window.open_model(bad)
    _close_error_boxes(window)
    welcome = window.welcome
    assert window.stack.currentWidget() is welcome
    assert welcome.problem.isVisible() and "bad.pt" in welcome.problem.text()
    for widget in (window.truncation_slider, window.seed_spin, window.random_button):
        assert not widget.isEnabled()
    demo = welcome.findChild(QPushButton, "openDemoButton")
    assert demo.isVisible()
    with qtbot.waitSignal(window.session.frame_ready, timeout=60000):
        qtbot.mouseClick(demo, Qt.MouseButton.LeftButton)
    assert window.session.generator.source.path == models.DEFAULT_MODEL
    assert window.stack.currentWidget() is window.canvas and window.truncation_slider.isEnabled()
    assert not welcome.problem.isVisibleTo(welcome)
