"""The Drag tool: points and mask placed with real mouse events, one undo entry per drag."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QPushButton, QSpinBox

from app.widgets.drag_overlay import DragTool
from tests.app.conftest import wait_for_frame_of


@pytest.fixture
def window(tiny_checkpoint, make_main_window, qtbot):
    window = make_main_window(tiny_checkpoint(resolution=32, seed=1))
    window.resize(900, 700)
    window.show()
    qtbot.waitExposed(window)
    window.show_tool(window.drag_panel)
    return window


def _at(window, x: float, y: float) -> QPoint:
    """Widget position of image pixel (x, y) (pixel centres at integers)."""
    return window.canvas.image_to_widget(QPointF(x + 0.5, y + 0.5)).toPoint()


def _click(qtbot, window, x, y, button=Qt.MouseButton.LeftButton) -> None:
    qtbot.mouseClick(window.canvas, button, pos=_at(window, x, y))


def test_points_and_mask_from_mouse_events(window, qtbot) -> None:
    panel, canvas = window.drag_panel, window.canvas
    assert isinstance(canvas.tool(), DragTool) and canvas.tool() is panel.tool
    start = window.findChild(QPushButton, "dragStart")
    assert not start.isEnabled()
    _click(qtbot, window, 12, 16)
    assert not start.isEnabled()  # a handle without its target
    _click(qtbot, window, 18, 16)
    _click(qtbot, window, 5, 5)
    handles, targets = panel.tool.pairs()
    assert len(handles) == 1 and len(targets) == 1 and start.isEnabled()
    # clicks land on the pixel under the mouse (within the canvas's rounding)
    assert np.allclose(handles[0], (12, 16), atol=0.6) and np.allclose(
        targets[0], (18, 16), atol=0.6
    )
    _click(qtbot, window, 5, 5, Qt.MouseButton.RightButton)  # takes back the lone handle
    assert len(panel.tool.handles) == 1
    # the arrow is drawn: the canvas differs from the plain picture along the arrow
    grab = canvas.grab().toImage()
    mid = _at(window, 15, 16)
    colour = grab.pixelColor(mid)
    assert colour.red() > 200 and colour.green() > 200 and colour.blue() > 200
    # mask brush: a stroke with the mouse paints the region that may move
    qtbot.mouseClick(window.findChild(QPushButton, "dragMode:brush"), Qt.MouseButton.LeftButton)
    window.findChild(QSpinBox, "dragBrushSpin").setValue(2)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=_at(window, 10, 16))
    for x in range(11, 21):
        qtbot.mouseMove(canvas, _at(window, x, 16))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=_at(window, 20, 16))
    mask = panel.tool.mask
    assert mask is not None and mask.shape == (32, 32)
    assert mask[16, 10:21].all() and not mask[0:5].any() and not mask[:, 26:].any()
    # points are left alone while brushing
    assert len(panel.tool.handles) == 1


def test_drag_runs_in_the_background_as_one_undo_entry(window, qtbot) -> None:
    panel, session = window.drag_panel, window.session
    before = wait_for_frame_of(qtbot, window)
    _click(qtbot, window, 12, 16)
    _click(qtbot, window, 16, 16)
    window.findChild(QSpinBox, "dragStepsSpin").setValue(3)
    entries = session.undo_stack.count()
    seen = []
    panel.tool.changed.connect(lambda: seen.append(panel.tool.tracked))
    qtbot.mouseClick(window.findChild(QPushButton, "dragStart"), Qt.MouseButton.LeftButton)
    assert panel.busy() and not window.findChild(QPushButton, "dragStart").isEnabled()
    qtbot.waitUntil(lambda: "Dragged after" in panel.status.text(), timeout=120000)
    assert not panel.busy() and session.undo_stack.count() == entries + 1
    assert session.undo_stack.text(entries).startswith("Drag 1 point")
    state = session.state
    assert state.base_ws is not None and not np.array_equal(state.base_ws, before.ws)
    assert any(points for points in seen)  # tracked points were shown during the drag
    shown = wait_for_frame_of(qtbot, window, state)
    np.testing.assert_array_equal(shown.ws, state.base_ws)
    session.undo_stack.undo()
    assert session.state.base_ws is None
    np.testing.assert_array_equal(wait_for_frame_of(qtbot, window).rgb, before.rgb)


def test_stop_keeps_the_last_step(window, qtbot) -> None:
    panel, session = window.drag_panel, window.session
    wait_for_frame_of(qtbot, window)
    _click(qtbot, window, 12, 16)
    _click(qtbot, window, 28, 16)
    window.findChild(QSpinBox, "dragStepsSpin").setValue(2000)
    entries = session.undo_stack.count()
    job = panel.start()
    qtbot.waitUntil(lambda: len(panel.tool.tracked) == 1, timeout=30000)
    qtbot.waitUntil(lambda: "Step 2" in panel.status.text() or not panel.busy(), timeout=30000)
    qtbot.mouseClick(window.findChild(QPushButton, "dragStop"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Stopped after" in panel.status.text(), timeout=60000)
    # the worker thread clears is_running just after the result reaches the GUI
    qtbot.waitUntil(lambda: not job.is_running, timeout=10000)
    assert session.undo_stack.count() == entries + 1 and session.state.base_ws is not None


def test_a_progan_model_gets_a_clear_message(make_main_window, qtbot, tmp_path) -> None:
    import torch

    from models.formats.native import save_generator
    from models.progan import ProGANGenerator

    torch.manual_seed(0)
    path = tmp_path / "pgan.safetensors"
    save_generator(ProGANGenerator(z_dim=32, depths=(16, 16, 16)), path)
    window = make_main_window(path)
    window.show()
    window.show_tool(window.drag_panel)
    _click(qtbot, window, 3, 3)
    _click(qtbot, window, 6, 6)
    window.drag_panel.start()
    qtbot.waitUntil(lambda: "StyleGAN2" in window.drag_panel.status.text(), timeout=30000)


def test_a_tuned_photo_is_dragged_with_its_tuning(window, qtbot) -> None:
    import torch

    from editors.drag import DragProgress
    from editors.pivotal import tune
    from models.generator import to_rgb_u8

    panel, session = window.drag_panel, window.session
    base = session.generator
    ws = wait_for_frame_of(qtbot, window).ws
    target = np.random.RandomState(0).randint(0, 255, (32, 32, 3), dtype=np.uint8)
    tuning = tune(base, target, ws, steps=2)
    session.set_tuning(tuning.generator, tuning.delta)
    qtbot.waitUntil(lambda: session.generator is tuning.generator, timeout=10000)
    wait_for_frame_of(qtbot, window)
    _click(qtbot, window, 12, 16)
    _click(qtbot, window, 15, 16)
    window.findChild(QSpinBox, "dragStepsSpin").setValue(2)
    previews = []
    panel.start().progressed.connect(
        lambda p: previews.append(p.preview) if isinstance(p, DragProgress) else None
    )
    qtbot.waitUntil(lambda: "Dragged after" in panel.status.text(), timeout=60000)
    dragged = torch.from_numpy(np.array(session.state.base_ws))[None]
    with torch.no_grad():
        tuned_rgb = to_rgb_u8(tuning.generator.synthesis(dragged))[0]
        base_rgb = to_rgb_u8(base.synthesis(dragged))[0]
    # the drag's own pictures were the tuned model's
    # Steps run with autograd (NCHW), renders without (NHWC on CPUs): rounding may differ by 1.
    preview_error = np.abs(previews[-1].astype(int) - tuned_rgb.astype(int))
    assert preview_error.max() <= 1
    assert np.abs(tuned_rgb.astype(int) - base_rgb.astype(int)).max() > 8 * max(
        1, preview_error.max()
    )
