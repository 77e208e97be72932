"""The side-effect readout beside the attribute sliders (and in the Style space tool): filled
after a slider is released, equal to an independent measurement, gone when the edit is reset."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QPushButton, QSlider, QToolButton

from app.widgets.side_effects import (
    GOOD_COLOR,
    WARN_COLOR,
    SideEffectReadout,
    is_contained,
    largest_changes,
)
from editors.directions import Direction, DirectionSet
from editors.locality import measure_state
from editors.state import EditState
from models import load_generator
from tests.app.test_demo_window import open_demo
from tests.app.test_editing_attributes import drag

W_DIM = 32


def _cue(readout: SideEffectReadout) -> QColor:
    """The colour drawn at the readout's left edge."""
    image = readout.label.grab().toImage()
    return image.pixelColor(1, image.height() // 2)


def _wait_for_readout(qtbot, readout: SideEffectReadout, timeout: int = 60000) -> None:
    # The first measurement loads dlib's models (seconds on a busy machine).
    qtbot.waitUntil(lambda: readout.job is None and readout.readout is not None, timeout=timeout)


def test_releasing_a_slider_reads_out_what_it_did_and_a_reset_clears_it(
    make_main_window, qtbot
) -> None:
    window, _ = open_demo(make_main_window, qtbot)
    panel = window.attributes_panel
    window.show_tool(panel)
    readout = panel.side_effects
    assert readout.toggle.isChecked()  # on by default for the 64-px demo
    assert readout.readout is None and "%" not in readout.text()

    drag(window.findChild(QSlider, "attr:smile"), [40, 90, 150])
    _wait_for_readout(qtbot, readout)
    state = window.session.state
    assert set(state.attribute_amounts) == {"smile"} and readout.measured_state is state
    what, expected = measure_state(window.session.generator, state)  # independently
    assert what == readout.what == "smile"
    got = readout.readout
    assert got.region == expected.region == "lower face"
    assert got.share_inside == pytest.approx(expected.share_inside, abs=1e-9)
    assert got.identity_drift == pytest.approx(expected.identity_drift, abs=1e-9)
    assert math.isfinite(got.identity_drift)
    text = readout.text().replace("&nbsp;", " ")
    assert f"{expected.share_inside:.0%} inside the lower face" in text
    assert f"drift {expected.identity_drift:.2f}" in text
    shown = largest_changes(expected, "smile")
    assert len(shown) == 3 and all(phrase in text for phrase in shown)
    assert "smile +" not in text.split("also:")[1]  # the slider's own purpose is no side effect
    colour = GOOD_COLOR if is_contained(expected) else WARN_COLOR
    assert _cue(readout) == QColor(colour)
    assert "identity distance" in readout.label.toolTip()

    # The Style space tool shows the same widget; with one edit it measures the same thing.
    stylespace = window.stylespace_panel
    assert isinstance(stylespace.readout, SideEffectReadout)
    window.show_tool(stylespace)
    qtbot.mouseClick(window.findChild(QPushButton, "measureButton"), Qt.MouseButton.LeftButton)
    _wait_for_readout(qtbot, stylespace.readout)
    assert stylespace.readout.readout.share_inside == pytest.approx(expected.share_inside)
    window.show_tool(panel)

    # Reset: no edit, no readout.
    qtbot.mouseClick(window.findChild(QToolButton, "reset:smile"), Qt.MouseButton.LeftButton)
    assert "smile" not in window.session.state.attribute_amounts
    assert readout.readout is None and readout.text() == readout.hint
    assert _cue(readout) not in (QColor(GOOD_COLOR), QColor(WARN_COLOR))

    # A keyboard-like change is measured after a pause; a reset during the measurement wins.
    window.findChild(QSlider, "attr:smile").setValue(100)
    assert readout.job is None  # debounced, not yet started
    qtbot.waitUntil(lambda: readout.job is not None, timeout=5000)
    assert "Measuring smile" in readout.text()
    late = readout.job
    qtbot.mouseClick(window.findChild(QToolButton, "reset:smile"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not late.is_running, timeout=30000)
    qtbot.wait(50)  # let a late answer arrive, if it were going to be shown
    assert readout.readout is None and readout.text() == readout.hint


@pytest.fixture
def faceless(tiny_checkpoint, make_main_window, qtbot):
    """A window on a tiny random 64-px model (it draws no face) with one smile direction."""
    path = tiny_checkpoint(resolution=64, name="faceless.pt")
    generator = load_generator(path, "cpu")
    rng = np.random.default_rng(0)
    directions = DirectionSet(
        (Direction("smile", rng.normal(size=W_DIM), metrics={"std": 2.0}),),
        fingerprint=generator.fingerprint(),
        model_name="faceless",
    )
    window = make_main_window(path)
    window.session.set_starting_state(EditState(directions=directions))
    return window


def test_a_picture_without_a_face_gets_a_short_hint_not_a_traceback(faceless, qtbot) -> None:
    panel = faceless.attributes_panel
    readout = panel.side_effects
    drag(faceless.findChild(QSlider, "attr:smile"), [50, 120])
    qtbot.waitUntil(lambda: "no face found" in readout.text(), timeout=60000)
    assert "side effects not measured" in readout.text()
    assert "Traceback" not in readout.text() + readout.label.toolTip()
    assert readout.readout is None and faceless.findChild(QObject, "errorBox") is None


class _StubSession(QObject):
    state_changed = Signal(object)
    generator_changed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.generator = None
        self.state = EditState()


def test_measuring_is_on_by_default_only_for_small_models(qtbot) -> None:
    session = _StubSession()
    readout = SideEffectReadout(session, None, hint="on", off_hint="off", auto_up_to=256)
    qtbot.addWidget(readout)
    session.generator_changed.emit(SimpleNamespace(resolution=64))
    assert readout.toggle.isChecked() and readout.text() == "on"
    session.generator_changed.emit(SimpleNamespace(resolution=1024))
    assert not readout.toggle.isChecked() and readout.text() == "off"
    readout.follow("smile")  # off: nothing is scheduled
    assert not readout.timer.isActive() and readout.job is None
