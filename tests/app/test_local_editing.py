"""Style space, Masks and Inspect tools: brush strokes from real mouse events, masked edits,
channel sliders and feature maps, each an undoable change of the edit state."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

from editors.directions import Direction, DirectionSet
from editors.state import with_directions
from tests.app.conftest import wait_for_frame_of


@pytest.fixture
def window(tiny_checkpoint, make_main_window, qtbot):
    window = make_main_window(tiny_checkpoint(resolution=32, seed=1))
    window.resize(900, 700)
    window.show()
    qtbot.waitExposed(window)
    return window


def _at(window, x: float, y: float) -> QPoint:
    return window.canvas.image_to_widget(QPointF(x + 0.5, y + 0.5)).toPoint()


def _stroke(qtbot, window, points, button=Qt.MouseButton.LeftButton) -> None:
    canvas = window.canvas
    qtbot.mousePress(canvas, button, pos=_at(window, *points[0]))
    for point in points[1:]:
        # QTest's mouseMove carries no buttons; the brush tracks its own stroke.
        qtbot.mouseMove(canvas, _at(window, *point))
    qtbot.mouseRelease(canvas, button, pos=_at(window, *points[-1]))


def test_brush_paints_erases_and_resizes_with_real_mouse_events(window, qtbot) -> None:
    panel = window.masks_panel
    window.show_tool(panel)
    qtbot.mouseClick(window.findChild(QPushButton, "paintMaskButton"), Qt.MouseButton.LeftButton)
    assert window.canvas.tool() is panel.brush
    panel.brush.set_radius(2.0)
    _stroke(qtbot, window, [(8, 16), (12, 16), (16, 16), (20, 16)])
    mask = panel.brush.mask
    assert mask.shape == (32, 32)
    assert mask[16, 8:21].all() and mask[15, 12] == 1.0 and mask[15, 17] == 1.0
    assert not mask[:10].any() and not mask[:, 25:].any()
    _stroke(qtbot, window, [(12, 16), (13, 16)], Qt.MouseButton.RightButton)
    assert mask[16, 12] == 0.0 and mask[16, 20] == 1.0
    # the overlay shows the paint on the canvas
    grab = window.canvas.grab().toImage()
    painted, bare = grab.pixelColor(_at(window, 19, 16)), grab.pixelColor(_at(window, 19, 4))
    assert painted != bare
    # the wheel sizes the brush while it is the canvas's tool
    centre = QPointF(_at(window, 16, 16))
    wheel = QWheelEvent(
        centre, window.canvas.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 240),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
        False,
    )  # fmt: skip
    QApplication.sendEvent(window.canvas, wheel)
    assert panel.brush.radius == pytest.approx(2.0 * 1.15**2)
    assert panel.size_spin.value() == pytest.approx(2.0 * 1.15**2, abs=0.01)


def test_masked_edit_needs_paint_and_changes_only_under_the_mask(window, qtbot) -> None:
    session, panel = window.session, window.masks_panel
    rng = np.random.default_rng(0)
    generator = session.generator
    directions = DirectionSet((Direction("smile", rng.normal(size=generator.w_dim)),))
    session.propose(with_directions(session.state, directions), "directions")
    session.seal()
    before = wait_for_frame_of(qtbot, window).rgb.astype(int)
    window.show_tool(panel)
    entries = session.undo_stack.count()
    assert not panel.add_masked_edit()
    assert "empty" in window.findChild(QLabel, "maskHint").text()
    assert session.state.masked == () and session.undo_stack.count() == entries

    qtbot.mouseClick(window.findChild(QPushButton, "paintMaskButton"), Qt.MouseButton.LeftButton)
    panel.brush.set_radius(4.0)
    panel.feather_spin.setValue(1.0)
    _stroke(qtbot, window, [(10, 10), (14, 12), (18, 14)])
    panel.amount_slider.setValue(30)  # +3σ
    qtbot.mouseClick(
        window.findChild(QPushButton, "addMaskedEditButton"), Qt.MouseButton.LeftButton
    )
    assert len(session.state.masked) == 1 and session.undo_stack.count() == entries + 1
    assert panel.stack_list.count() == 1 and "smile +3.0σ" in panel.stack_list.item(0).text()
    after = wait_for_frame_of(qtbot, window).rgb.astype(int)
    change = np.abs(after - before).sum(-1)
    painted = panel.brush.mask > 0.5
    from scipy.ndimage import binary_dilation

    near = binary_dilation(painted, iterations=3)  # feather 1 px: 2 sigma-radii of fade
    assert change[painted].max() > 10
    assert change[~near].max() <= 3
    session.undo_stack.undo()
    assert session.state.masked == ()


def test_channel_slider_edits_one_style_channel(window, qtbot) -> None:
    session, panel = window.session, window.stylespace_panel
    window.show_tool(panel)
    panel.layer_combo.setCurrentIndex(2)
    panel.channel_spin.setValue(3)
    entries = session.undo_stack.count()
    panel.channel_slider.setValue(20)  # +2σ of the channel
    assert set(session.state.style_amounts) == {(2, 3)}
    assert session.state.style_amounts[(2, 3)] == pytest.approx(2 * panel._std_of(2, 3))
    assert panel.channel_value.text() == "+2.0σ"
    assert session.undo_stack.count() == entries + 1
    session.undo_stack.undo()
    assert not session.state.style_amounts and panel.channel_slider.value() == 0


def test_inspect_shows_a_feature_map_with_stats(window, qtbot) -> None:
    panel = window.inspect_panel
    window.show_tool(panel)
    qtbot.waitUntil(lambda: panel.features is not None, timeout=20000)
    assert [m.shape[-1] for m in panel.features.maps] == list(panel.features.resolutions)
    panel.block_combo.setCurrentIndex(1)
    panel.channel_spin.setValue(1)
    maps = panel.features.maps[1]
    assert f"mean {maps[1].mean():.3f}" in panel.stats.text()
    assert not panel.preview.pixmap().isNull()
    panel.mean_check.setChecked(True)
    assert f"mean {maps.mean(0).mean():.3f}" in panel.stats.text()


def test_side_effect_readout_explains_when_there_is_no_face(window, qtbot) -> None:
    panel = window.stylespace_panel
    window.show_tool(panel)
    panel.channel_slider.setValue(15)
    qtbot.mouseClick(window.findChild(QPushButton, "measureButton"), Qt.MouseButton.LeftButton)
    # the tiny random model draws no face: the readout says why it cannot measure
    qtbot.waitUntil(lambda: "no face found" in panel.readout.text(), timeout=30000)
