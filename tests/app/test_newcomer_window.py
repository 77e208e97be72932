"""What a first-time user tripped over in the main window (issue 18): real widgets, real keys."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMessageBox, QSlider, QTextBrowser

from app.shortcuts import SHORTCUTS, TOOL_KEYS
from app.widgets.image_view import qimage_to_rgb
from editors.direction_files import default_directions_path, save_directions
from editors.directions import Direction, DirectionSet
from models import load_generator
from tests.app.conftest import wait_for_frame_of


@pytest.fixture
def window_with_directions(tiny_checkpoint, make_main_window, qtbot):
    path = tiny_checkpoint(resolution=16, name="faces.pt")
    generator = load_generator(path, "cpu")
    rng = np.random.default_rng(0)
    directions = DirectionSet(
        tuple(Direction(n, rng.normal(size=32), metrics={"std": 1.0}) for n in ("smile", "age")),
        fingerprint=generator.fingerprint(),
    )
    save_directions(directions, default_directions_path(path))
    window = make_main_window(path)
    qtbot.waitUntil(lambda: window.findChild(QSlider, "attr:smile") is not None)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    return window


def _all_sequences(window) -> Counter:
    keys: Counter = Counter()
    for action in window.findChildren(QAction):
        for sequence in action.shortcuts():
            keys[sequence.toString(QKeySequence.SequenceFormat.PortableText)] += 1
    return keys


def test_no_two_actions_share_a_shortcut_on_any_platform(window_with_directions) -> None:
    window = window_with_directions
    live = _all_sequences(window)
    assert live and max(live.values()) == 1, [k for k, n in live.items() if n > 1]
    # Every shortcut comes from the explicit table (no platform-dependent StandardKey), and the
    # table itself, tool keys included, has no duplicates: so none collide on any platform.
    table = [key for keys in SHORTCUTS.values() for key in keys] + list(TOOL_KEYS)
    assert len(table) == len(set(table))
    normalised = {QKeySequence(k).toString(QKeySequence.SequenceFormat.PortableText) for k in table}
    assert set(live) <= normalised
    for key, action in window.actions_by_name.items():
        expected = [QKeySequence(k) for k in SHORTCUTS.get(key, ())]
        if key in SHORTCUTS:
            assert action.shortcuts() == expected, key


def test_undo_and_redo_keys_work(window_with_directions, qtbot) -> None:
    window = window_with_directions
    slider = window.findChild(QSlider, "attr:smile")
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    edited = window.session.state.attribute_amounts["smile"]
    assert edited > 0
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.session.state.attribute_amounts.get("smile", 0.0) == 0.0
    qtbot.keyClick(
        window,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert window.session.state.attribute_amounts["smile"] == edited
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert window.session.state.attribute_amounts["smile"] == edited


def test_history_merges_key_presses_of_one_control_and_skips_automatic_steps(
    window_with_directions, qtbot
) -> None:
    window = window_with_directions
    history = window.history_panel
    # Directions found beside the model are part of opening it, not a user step.
    assert history.entry_count() == 1 and window.session.state.directions is not None
    slider = window.findChild(QSlider, "attr:smile")
    slider.setFocus()
    for _ in range(8):
        qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    assert history.entry_count() == 2  # Start + one "smile" entry, not eight
    assert history.list.item(1).text() == "smile +2.00σ"
    age = window.findChild(QSlider, "attr:age")
    age.setFocus()
    qtbot.keyClick(age, Qt.Key.Key_PageDown)
    qtbot.keyClick(age, Qt.Key.Key_PageDown)
    assert history.entry_count() == 3 and history.list.item(2).text() == "age -0.50σ"
    # Labels fit: no horizontal scroll bar, and the dock starts wide enough for them.
    assert history.list.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    assert window.history_dock.width() >= 200


def test_every_tool_is_visible_at_the_default_size(window_with_directions, qtbot) -> None:
    window = window_with_directions
    window.resize(1280, 820)
    qtbot.wait(50)
    tools = window.panel_tabs
    titles = [tools.tabText(i) for i in range(tools.count())]
    assert "Projection" in titles and len(titles) >= 5
    rail = tools.rail.rect()
    for index in range(tools.count()):
        button = tools.button(index)
        assert button.isVisible() and rail.contains(button.geometry()), titles[index]
        # Each tool is one click (or Alt+n) away.
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert tools.currentIndex() == index and tools.title.text() == titles[index].replace(
            "&&", "&"
        )
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier)
    assert tools.currentIndex() == 0


def test_view_toggles_work_and_help_lists_the_shortcuts(window_with_directions, qtbot) -> None:
    window = window_with_directions
    for dock in (window.panel_dock, window.history_dock):
        toggle = dock.toggleViewAction()
        assert toggle.isEnabled()
        toggle.trigger()
        assert not dock.isVisible()
        toggle.trigger()
        assert dock.isVisible()
    assert window.findChildren(QDockWidget)
    qtbot.keyClick(window, Qt.Key.Key_F1)
    browser = window.findChild(QTextBrowser, "helpText")
    assert browser is not None and browser.isVisible()
    text = browser.toPlainText()
    assert "Getting started" in text
    assert "Ctrl+Shift+Z" in text and "Redo" in text and "Compare original | edited" in text


def test_smooth_scaling_by_default_pixels_zoom_and_compare(window_with_directions, qtbot) -> None:
    window = window_with_directions
    canvas = window.canvas
    frame = wait_for_frame_of(qtbot, window)
    assert canvas.smooth and canvas.zoom is None
    fitted = canvas.grab().toImage()
    rect = canvas.target_rect()
    crop = qimage_to_rgb(fitted.copy(rect))
    # Smooth scaling blends neighbours: many more distinct colours than the 16x16 source has.
    assert len(np.unique(crop.reshape(-1, 3), axis=0)) > 4 * 256
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)  # show pixels
    assert not canvas.smooth
    pixels = qimage_to_rgb(canvas.grab().toImage().copy(canvas.target_rect()))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) <= 256
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom == 1.0 and canvas.target_rect().width() == 16
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert canvas.target_rect().width() == 32
    shown = qimage_to_rgb(canvas.grab().toImage().copy(canvas.target_rect()))
    np.testing.assert_array_equal(shown[::2, ::2], frame.rgb)  # 200 % of the real pixels
    qtbot.keyClick(window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom is None
    # Compare: original (unedited) left, edited right.
    slider = window.findChild(QSlider, "attr:smile")
    slider.setValue(250)
    edited = wait_for_frame_of(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(canvas.comparing, timeout=10000)
    original = qimage_to_rgb(canvas.compare_image())
    np.testing.assert_array_equal(qimage_to_rgb(canvas.image()), edited.rgb)
    assert np.abs(original.astype(int) - edited.rgb.astype(int)).mean() > 1
    left = canvas.widget_to_image(QPointF(5, canvas.height() / 2))
    assert left is None  # the left half is the original, not the edited picture
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert not canvas.comparing()


def test_seed_box_shows_no_seed_for_a_latent(window_with_directions, qtbot, tmp_path: Path) -> None:
    from editors.latent_io import save_latent

    window = window_with_directions
    generator = window.session.generator
    ws = np.zeros((generator.num_ws, generator.w_dim), np.float32)
    window.open_latent(save_latent(tmp_path / "l.npz", ws))
    assert window.session.state.seed is None
    assert window.seed_spin.text() == "—"  # not a misleading 0
    qtbot.keyClick(window.seed_spin, Qt.Key.Key_Up)
    window.seed_spin.interpretText()
    assert window.session.state.seed == 0 and window.session.state.base_ws is None


def test_quit_with_unsaved_edits_asks_to_save(
    window_with_directions, qtbot, tmp_path: Path, monkeypatch
) -> None:
    window = window_with_directions
    window.findChild(QSlider, "attr:smile").setValue(120)
    window.session.seal()
    assert not window.close()  # asked instead of closing
    box = window.findChild(QMessageBox, "unsavedEditsBox")
    assert box is not None and box.isVisible() and window.isVisible()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert window.isVisible()
    # Save: a file dialog, the session is written, then the window closes.
    destination = tmp_path / "mine.lsession"
    monkeypatch.setattr(
        "app.unsaved.QFileDialog.getSaveFileName", lambda *a, **k: (str(destination), "")
    )
    window.close()
    box.button(QMessageBox.StandardButton.Save).click()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert destination.is_file()


def test_nothing_to_ask_without_edits_or_after_saving(
    window_with_directions, qtbot, tmp_path: Path
) -> None:
    window = window_with_directions
    window.findChild(QSlider, "attr:smile").setValue(120)
    assert window.save_session(tmp_path / "s.lsession")
    assert window.close()
    assert window.findChild(QMessageBox, "unsavedEditsBox") is None


def test_slider_values_can_be_typed(window_with_directions, qtbot) -> None:
    window = window_with_directions
    label = window.findChild(QLabel, "attrValue:smile")
    qtbot.mouseDClick(label, Qt.MouseButton.LeftButton)
    editor = label.editor
    assert editor is not None and editor.isVisible()
    editor.selectAll()
    qtbot.keyClicks(editor, "1.5")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    direction = window.session.state.directions["smile"]
    assert window.session.state.attribute_amounts["smile"] == pytest.approx(1.5 * direction.scale)
    assert window.findChild(QSlider, "attr:smile").value() == 150 and label.text() == "+1.50σ"
    qtbot.mouseDClick(window.truncation_label, Qt.MouseButton.LeftButton)
    window.truncation_label.editor.selectAll()
    qtbot.keyClicks(window.truncation_label.editor, "0.45")
    qtbot.keyClick(window.truncation_label.editor, Qt.Key.Key_Return)
    assert window.session.state.truncation_psi == pytest.approx(0.45)
    assert window.truncation_slider.value() == 45


def test_component_rows_as_a_range_slider(window_with_directions, qtbot) -> None:
    from PySide6.QtWidgets import QComboBox
    from superqt import QLabeledRangeSlider

    window = window_with_directions
    panel = window.components_panel
    panel.count_spin.setValue(3)
    panel.compute()
    qtbot.waitUntil(lambda: window.session.state.components is not None, timeout=30000)
    rows = panel.findChild(QLabeledRangeSlider, "componentRows")
    num_ws = window.session.generator.num_ws
    assert rows.value() == (0, num_ws - 1)  # all rows
    combo = panel.findChild(QComboBox, "componentLayers")
    combo.setCurrentIndex(1)  # coarse preset moves the range
    layers = window.session.state.component_layers
    assert layers is not None and rows.value() == (layers[0], layers[1] - 1)
    rows.setValue((1, 2))
    assert window.session.state.component_layers == (1, 3)
    assert combo.currentText() == "Custom rows"
