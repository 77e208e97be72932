"""Attribute sliders: drags as one undo entry, locking, reset, direction files, fitting dialogs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QMessageBox, QPushButton, QSlider, QToolButton

from editors.direction_files import default_directions_path, load_directions, save_directions
from editors.directions import Direction, DirectionSet
from editors.labelers import Labeler, SampleBatch
from models import load_generator
from models.generator import seed_to_z, to_rgb_u8
from tests.app.conftest import wait_for_frame_of

W_DIM = 32


def naive_frame(
    generator, seed: float, psi: float, shifts: list[tuple[np.ndarray, float]]
) -> np.ndarray:
    """Render seed + sum(amount * vector) on every row, by hand (no Renderer, no cache)."""
    with torch.inference_mode():
        w = (
            generator.mapping(seed_to_z([seed], generator.z_dim), truncation_psi=psi)[0]
            .numpy()
            .astype(np.float32)
        )
    ws = np.tile(w, (generator.num_ws, 1))
    for vector, amount in shifts:
        ws = ws + np.float32(amount) * vector
    with torch.inference_mode():
        return to_rgb_u8(generator.synthesis(torch.from_numpy(ws.astype(np.float32))[None]))[0]


@pytest.fixture
def studio(tiny_checkpoint, make_main_window, qtbot):
    """A window on a 64-px model with two directions saved beside it."""
    path = tiny_checkpoint(resolution=64, name="faces.pt")
    generator = load_generator(path, "cpu")
    rng = np.random.default_rng(0)
    directions = DirectionSet(
        (
            Direction(
                "smile", rng.normal(size=W_DIM), metrics={"std": 2.0, "heldout_accuracy": 0.93}
            ),
            Direction("yaw", rng.normal(size=W_DIM) + 0.5, metrics={"std": 1.0}),
        ),
        fingerprint=generator.fingerprint(),
        model_name="faces",
    )
    save_directions(directions, default_directions_path(path))
    window = make_main_window(path)
    qtbot.waitUntil(lambda: window.session.state.directions is not None, timeout=5000)
    return window, generator, directions, path


def drag(slider: QSlider, values: list[int]) -> None:
    slider.setSliderDown(True)  # emits sliderPressed
    for value in values:
        slider.setValue(value)
    slider.setSliderDown(False)  # emits sliderReleased


def test_directions_load_beside_the_model_and_a_drag_is_one_undo_entry(studio, qtbot) -> None:
    window, generator, directions, _ = studio
    smile = window.findChild(QSlider, "attr:smile")
    assert smile is not None and window.findChild(QSlider, "attr:yaw") is not None
    stack = window.session.undo_stack
    before = stack.count()
    drag(smile, [20, 60, 90, 150])
    assert stack.count() == before + 1
    assert stack.text(stack.count() - 1) == "smile +1.50σ"
    assert window.findChild(QLabel, "attrValue:smile").text() == "+1.50σ"
    # 1.5σ with std 2.0 = 3.0 latent units along the unit vector, on every row.
    result = wait_for_frame_of(qtbot, window)
    state = window.session.state
    np.testing.assert_array_equal(
        result.rgb,
        naive_frame(
            generator, state.seed, state.truncation_psi, [(directions["smile"].vector, 3.0)]
        ),
    )
    # Undo with the button, redo with the shortcut's action.
    qtbot.mouseClick(window.findChild(QPushButton, "undoButton"), Qt.MouseButton.LeftButton)
    assert smile.value() == 0 and not window.session.state.attribute_amounts
    result = wait_for_frame_of(qtbot, window)
    np.testing.assert_array_equal(
        result.rgb, naive_frame(generator, state.seed, state.truncation_psi, [])
    )
    window.actions_by_name["redo"].trigger()
    assert smile.value() == 150
    # A second drag starts a new entry.
    drag(smile, [100])
    assert stack.count() == before + 2


def test_lock_keeps_the_locked_score_and_reset_edits(studio, qtbot) -> None:
    window, _, directions, _ = studio
    window.findChild(QSlider, "attr:smile").setValue(100)
    lock = window.findChild(QCheckBox, "lock:smile")
    qtbot.mouseClick(lock, Qt.MouseButton.LeftButton)
    assert window.session.state.locked == {"smile"}
    smile_vector = directions["smile"].vector.astype(np.float64)
    score = wait_for_frame_of(qtbot, window).ws[0] @ smile_vector
    window.findChild(QSlider, "attr:yaw").setValue(-250)
    moved = wait_for_frame_of(qtbot, window).ws[0] @ smile_vector
    assert moved == pytest.approx(score, abs=1e-4)
    count = window.session.undo_stack.count()
    window.findChild(QToolButton, "reset:yaw").click()
    assert "yaw" not in window.session.state.attribute_amounts
    window.actions_by_name["resetEdits"].trigger()
    assert not window.session.state.has_edits and window.session.state.locked == {"smile"}
    assert window.session.undo_stack.count() == count + 2
    assert window.findChild(QSlider, "attr:smile").value() == 0


def test_direction_files_from_another_model_and_broken_files(studio, qtbot, tmp_path) -> None:
    window, _, _, _ = studio
    panel = window.attributes_panel
    foreign = DirectionSet(
        (Direction("age", np.ones(W_DIM)),), fingerprint="0123456789abcdef", model_name="other"
    )
    foreign_path = save_directions(foreign, tmp_path / "other.directions.json")
    assert not panel.load_directions_file(foreign_path)
    box = panel.mismatch_box
    assert isinstance(box, QMessageBox) and "fitted on another model 'other'" in box.text()
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.findChild(QSlider, "attr:age") is not None)
    assert window.session.state.directions.names == ("age",)
    # A broken file: an error box, and nothing changes.
    state = window.session.state
    (tmp_path / "broken.directions.json").write_text("{")
    assert not panel.load_directions_file(tmp_path / "broken.directions.json")
    box = window.findChild(QMessageBox, "errorBox")
    qtbot.waitUntil(lambda: box is not None and box.isVisible())
    assert "not a readable JSON file" in box.informativeText()
    assert window.session.state is state
    box.close()
    # Wrong size: refused.
    wide = save_directions(
        DirectionSet((Direction("x", np.ones(8)),)), tmp_path / "wide.directions.json"
    )
    assert not panel.load_directions_file(wide)
    assert window.session.state is state
    # Save round trip.
    saved = panel.save_directions_file(tmp_path / "saved.directions.json")
    assert load_directions(saved).names == ("age",)


class HalfSpaceLabeler(Labeler):
    """Synthetic labels: which side of a known hyperplane the latent is on."""

    name = "synthetic"
    attributes = ("beard",)
    binary = (True,)
    needs_images = False

    def __init__(self, normal: np.ndarray, offset: float) -> None:
        self.normal, self.offset = normal, offset

    def label(self, batch: SampleBatch) -> np.ndarray:
        return ((batch.w @ self.normal + self.offset) > 0).astype(np.float32)[:, None]


def test_fit_directions_dialog_runs_a_job_and_adds_sliders(studio, qtbot) -> None:
    window, generator, _, path = studio
    normal = np.random.default_rng(2).normal(size=W_DIM)
    normal /= np.linalg.norm(normal)
    with torch.inference_mode():
        w = generator.mapping(seed_to_z(range(600), W_DIM), truncation_psi=0.7).numpy()
    labeler = HalfSpaceLabeler(normal, -float(np.median(w @ normal)))
    qtbot.mouseClick(
        window.findChild(QPushButton, "fitDirectionsButton"), Qt.MouseButton.LeftButton
    )
    dialog = window.attributes_panel.fit_dialog
    dialog.labeler_combo.setCurrentIndex(dialog.add_labeler("synthetic", labeler))
    dialog.samples_spin.setValue(600)
    with qtbot.waitSignal(dialog.fitted, timeout=60000) as fitted:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert fitted.args[0]["beard"].vector @ normal > 0.9
    qtbot.waitUntil(lambda: not dialog.job.is_running, timeout=10000)
    assert window.findChild(QSlider, "attr:beard") is not None
    assert window.session.state.directions.names == ("smile", "yaw", "beard")
    assert "beard" in load_directions(default_directions_path(path)).names  # saved beside the model
    assert dialog.progress.value() == dialog.progress.maximum()


def test_manual_tags_make_a_direction(studio, qtbot) -> None:
    window, _, _, _ = studio
    qtbot.mouseClick(window.findChild(QPushButton, "labelSamplesButton"), Qt.MouseButton.LeftButton)
    dialog = window.attributes_panel.labeling_dialog
    qtbot.waitUntil(
        lambda: not dialog.findChild(QToolButton, "tag:0").icon().isNull(), timeout=10000
    )
    dialog.name_edit.setText("glasses")
    assert not dialog.fit_button.isEnabled()
    for seed in range(0, 12):
        button = dialog.findChild(QToolButton, f"tag:{seed}")
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # has
        if seed % 2:
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # hasn't
    assert dialog.counts_by_tag() == (6, 6)
    assert dialog.fit_button.isEnabled()
    with qtbot.waitSignal(dialog.fitted, timeout=30000) as fitted:
        qtbot.mouseClick(dialog.fit_button, Qt.MouseButton.LeftButton)
    direction = fitted.args[0]["glasses"]
    assert direction.fitted_with["labeler"] == "manual" and direction.metrics["n_samples"] == 12
    qtbot.waitUntil(lambda: window.findChild(QSlider, "attr:glasses") is not None)


def test_identity_drift_read_out(studio, qtbot) -> None:
    window, _, _, _ = studio
    check = window.findChild(QCheckBox, "identityDriftCheck")
    if not check.isEnabled():
        pytest.skip("face-identity module not installed")
    check.setChecked(True)
    window.findChild(QSlider, "attr:smile").setValue(100)
    label = window.findChild(QLabel, "identityDrift")
    # Random-weight pictures have no face: the read-out says so instead of a number.
    qtbot.waitUntil(lambda: label.text() == "drift: no face found", timeout=30000)
