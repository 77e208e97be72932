"""Session files, image export and video export, driven through the window."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QSlider

from editors.direction_files import default_directions_path, save_directions
from editors.directions import Direction, DirectionSet
from editors.mixing import LatentSource, StyleMix
from models import load_generator
from tests.app.conftest import wait_for_frame_of as latest


@pytest.fixture
def window(tiny_checkpoint, make_main_window, qtbot):
    path = tiny_checkpoint(resolution=32, name="faces.pt")
    generator = load_generator(path, "cpu")
    directions = DirectionSet(
        (Direction("smile", np.random.default_rng(0).normal(size=32), metrics={"std": 1.5}),),
        fingerprint=generator.fingerprint(),
    )
    save_directions(directions, default_directions_path(path))
    window = make_main_window(path)
    qtbot.waitUntil(lambda: window.findChild(QSlider, "attr:smile") is not None, timeout=5000)
    return window


def error_box(qtbot, window) -> QMessageBox:
    qtbot.waitUntil(
        lambda: any(b.isVisible() for b in window.findChildren(QMessageBox, "errorBox"))
    )
    return next(b for b in window.findChildren(QMessageBox, "errorBox") if b.isVisible())


def test_session_round_trip_restores_the_picture(window, qtbot, tmp_path) -> None:
    window.findChild(QSlider, "attr:smile").setValue(120)
    window.session.propose(
        window.session.state.replace(
            mix=StyleMix(LatentSource(seed=3, truncation_psi=0.5), (1, 1, 0, 0, 0, 0, 0, 0))
        ),
        "mix",
    )
    edited = latest(qtbot, window)
    path = tmp_path / "work.lsession"
    assert window.save_session(path)
    window.actions_by_name["resetEdits"].trigger()
    window.seed_spin.setValue(77)
    assert not np.array_equal(latest(qtbot, window).rgb, edited.rgb)
    count = window.session.undo_stack.count()
    assert window.open_session(path)
    assert window.session.undo_stack.count() == count + 1
    assert window.findChild(QSlider, "attr:smile").value() == 120
    np.testing.assert_array_equal(latest(qtbot, window).rgb, edited.rgb)


def test_broken_and_mismatched_sessions_leave_work_untouched(
    window, qtbot, tmp_path, tiny_checkpoint, make_main_window
) -> None:
    window.findChild(QSlider, "attr:smile").setValue(50)
    state = window.session.state
    broken = tmp_path / "broken.lsession"
    broken.write_bytes(b"PK\x03\x04 truncated")
    assert not window.open_session(broken)
    box = error_box(qtbot, window)
    assert "broken.lsession" in box.informativeText() and window.session.state is state
    box.close()
    # A session saved with another model (other weights) is refused with both fingerprints named.
    other = make_main_window(tiny_checkpoint(resolution=32, name="other.pt", seed=5))
    saved = tmp_path / "other.lsession"
    assert other.save_session(saved)
    assert not window.open_session(saved)
    box = error_box(qtbot, window)
    assert "open that model first" in box.informativeText()
    assert other.session.fingerprint() in box.informativeText()
    assert window.session.state is state


def test_export_image_and_video(window, qtbot, tmp_path) -> None:
    window.findChild(QSlider, "attr:smile").setValue(-100)
    shown = latest(qtbot, window).rgb
    job = window.export_image(tmp_path / "edit.png")
    with qtbot.waitSignal(job.done, timeout=10000):
        pass
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "edit.png")), shown)

    dialog = window.open_export_video_dialog()
    assert dialog.slider_combo.currentText() == "smile"
    dialog.frames_spin.setValue(4)
    dialog.path_edit.setText(str(tmp_path / "sweep.gif"))
    with qtbot.waitSignal(dialog.exported, timeout=30000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    with Image.open(tmp_path / "sweep.gif") as gif:
        assert gif.n_frames == 4 and gif.size == (32, 32)

    # Interpolation between two history entries, cancelled: nothing is written.
    dialog.interpolate_radio.setChecked(True)
    dialog.frames_spin.setValue(2000)
    dialog.path_edit.setText(str(tmp_path / "blend.mp4"))
    job = dialog.start()
    job.request_stop()  # a job still queued for a thread ends right here, else at its next check
    qtbot.waitUntil(lambda: not job.is_running, timeout=30000)
    qtbot.waitUntil(lambda: dialog.status.text() == "cancelled")
    assert not (tmp_path / "blend.mp4").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".blend")] == []
