"""The main window driven offscreen through its real widgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton, QSlider, QSpinBox

import models
from app.widgets.image_view import qimage_to_rgb
from models.generator import seed_to_z, to_rgb_u8


def expected_rgb(checkpoint: Path, seed: int, psi: float) -> np.ndarray:
    generator = models.load_generator(checkpoint, device="cpu")
    with torch.no_grad():
        ws = generator.broadcast(
            generator.mapping(seed_to_z([seed], generator.z_dim), truncation_psi=psi)
        )
        return to_rgb_u8(generator.synthesis(ws))[0]


def shown_rgb(window) -> np.ndarray:
    return qimage_to_rgb(window.canvas.image())


def test_welcome_panel_without_a_model(make_main_window) -> None:
    window = make_main_window()
    assert window.stack.currentWidget().objectName() == "welcomePanel"
    assert window.findChild(QPushButton, "openModelButton").isVisible()
    assert not window.findChild(QSpinBox, "seedSpin").isEnabled()


def test_opens_model_and_shows_the_seed_image(
    make_main_window, tiny_checkpoint, tmp_path: Path
) -> None:
    checkpoint = tiny_checkpoint()
    window = make_main_window(checkpoint)
    assert window.stack.currentWidget().objectName() == "canvas"
    psi = window.session.state.truncation_psi
    assert (
        np.abs(shown_rgb(window).astype(int) - expected_rgb(checkpoint, 0, psi).astype(int)).max()
        <= 1
    )
    assert window.status_resolution.text() == "16×16"
    assert window.status_device.text() == "CPU"
    assert window.status_render.text().endswith("ms")
    shot = tmp_path / "window.png"
    window.grab().save(str(shot))
    assert np.asarray(Image.open(shot)).std() > 5  # not a blank render


def test_seed_spin_and_random_button_rerender(make_main_window, tiny_checkpoint, qtbot) -> None:
    checkpoint = tiny_checkpoint()
    window = make_main_window(checkpoint)
    spin = window.findChild(QSpinBox, "seedSpin")
    with qtbot.waitSignal(window.session.frame_ready, timeout=10000):
        spin.setValue(5)
    psi = window.session.state.truncation_psi
    assert (
        np.abs(shown_rgb(window).astype(int) - expected_rgb(checkpoint, 5, psi).astype(int)).max()
        <= 1
    )
    with qtbot.waitSignal(window.session.frame_ready, timeout=10000):
        qtbot.mouseClick(
            window.findChild(QPushButton, "randomSeedButton"), Qt.MouseButton.LeftButton
        )
    assert window.session.state.seed == spin.value() != 5


def test_truncation_drag_is_responsive_and_last_value_wins(
    make_main_window, tiny_checkpoint, qtbot
) -> None:
    checkpoint = tiny_checkpoint()
    window = make_main_window(checkpoint)
    slider = window.findChild(QSlider, "truncationSlider")
    slider.sliderPressed.emit()
    for value in range(100, 20, -4):  # a fast drag: many requests while renders run
        slider.setValue(value)
    slider.setValue(37)
    slider.sliderReleased.emit()
    qtbot.waitUntil(
        lambda: (
            window.render_service.is_idle
            and window.session.last_frame is not None
            and np.array_equal(shown_rgb(window), expected_rgb(checkpoint, 0, 0.37))
        ),
        timeout=15000,
    )
    assert window.findChild(type(window.truncation_label), "truncationLabel").text() == "0.37"
    # the whole drag is a single undo entry
    assert window.session.undo_stack.count() == 1
    with qtbot.waitSignal(window.session.frame_ready, timeout=10000):
        window.session.undo_stack.undo()
    assert slider.value() == 70


def test_bad_model_shows_message_and_keeps_the_old_one(
    make_main_window, tiny_checkpoint, tmp_path: Path, qtbot
) -> None:
    window = make_main_window(tiny_checkpoint())
    before = shown_rgb(window)
    bad = tmp_path / "bad.pt"
    bad.write_text("not a model")
    with qtbot.waitSignal(window.model_failed, timeout=10000) as blocker:
        window.open_model(bad)
    assert "bad.pt" in blocker.args[0].message
    box = window.findChild(QMessageBox, "errorBox")
    assert box is not None and box.isVisible() and "bad.pt" in box.informativeText()
    box.close()
    assert window.session.generator is not None
    with qtbot.waitSignal(window.session.frame_ready, timeout=10000):
        window.findChild(QSpinBox, "seedSpin").setValue(3)
    assert not np.array_equal(before, shown_rgb(window))


def test_save_image_round_trips(make_main_window, tiny_checkpoint, tmp_path: Path) -> None:
    window = make_main_window(tiny_checkpoint())
    path = tmp_path / "saved.png"
    assert window.save_image(path)
    assert np.array_equal(np.asarray(Image.open(path)), window.session.last_frame.result.rgb)


def test_switching_models_resets_history(make_main_window, tiny_checkpoint, qtbot) -> None:
    window = make_main_window(tiny_checkpoint(resolution=16, name="a.pt"))
    with qtbot.waitSignal(window.session.frame_ready, timeout=10000):
        window.findChild(QSpinBox, "seedSpin").setValue(9)
    assert window.session.undo_stack.count() == 1
    with qtbot.waitSignal(window.session.frame_ready, timeout=30000):
        window.open_model(tiny_checkpoint(resolution=32, name="b.pt", seed=1))
    assert window.session.undo_stack.count() == 0
    assert window.session.last_frame.result.rgb.shape == (32, 32, 3)
    assert window.status_resolution.text() == "32×32"


def test_about_box_states_the_demo_licence(make_main_window, qtbot) -> None:
    window = make_main_window()
    window.actions_by_name["about"].trigger()
    box = window.findChild(QMessageBox, "aboutBox")
    qtbot.waitUntil(box.isVisible)
    assert "non-commercial" in box.text()
    assert "demo-faces-64.md" in box.text()
    box.close()
