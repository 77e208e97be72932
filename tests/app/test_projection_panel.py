"""The Projection tab: drop a photo on the canvas, watch it project, cancel, bad input, latents."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox, QPushButton, QSpinBox

from tests.app.conftest import drop_on
from tests.conftest import shared_path

PHOTO = ("data", "portraits", "images", "ffhq_00001_256.png")


def error_box(window, qtbot) -> QMessageBox:
    qtbot.waitUntil(
        lambda: any(b.isVisible() for b in window.findChildren(QMessageBox, "errorBox")),
        timeout=20000,
    )
    return next(b for b in window.findChildren(QMessageBox, "errorBox") if b.isVisible())


@pytest.mark.needs_shared
def test_dropped_photo_is_projected_and_becomes_the_edit(
    make_main_window, tiny_checkpoint, qtbot, tmp_path: Path
) -> None:
    window = make_main_window(tiny_checkpoint())
    panel = window.projection_panel
    panel.findChild(QSpinBox, "projectionSteps").setValue(15)
    panel.findChild(QSpinBox, "projectionTuneSteps").setValue(10)
    photo = tmp_path / "me.png"
    shutil.copy(shared_path(*PHOTO), photo)
    entries = window.session.undo_stack.count()
    previews = []
    with qtbot.waitSignal(window.jobs.job_added, timeout=5000):
        drop_on(window.canvas, photo)
    assert window.panel_tabs.currentWidget() is panel
    qtbot.waitUntil(lambda: panel.project_job is not None, timeout=90000)
    panel.project_job.progressed.connect(lambda p: previews.append(p.preview))
    qtbot.waitUntil(lambda: panel.result is not None, timeout=180000)
    result = panel.result
    # The projected latent is the current edit, as one undo entry named after the photo.
    assert window.session.undo_stack.count() == entries + 1
    assert window.session.undo_stack.text(entries) == "Projected me.png"
    np.testing.assert_array_equal(window.session.state.base_ws, result.ws)
    assert window.session.state.seed is None
    # The target and live views show images; the hint names the loss and how to get VGG16.
    assert panel.target_view.image() is not None and panel.live_view.image() is not None
    hint = panel.loss_hint.text()
    assert "pixel+ms-ssim" in hint and "Get models" in hint
    assert any(p is not None for p in previews)
    # The canvas renders the projected latent.
    qtbot.waitUntil(
        lambda: window.session.last_frame is not None
        and window.session.last_frame.result.state is window.session.state, timeout=20000,
    )  # fmt: skip
    np.testing.assert_array_equal(window.session.last_frame.result.rgb, result.image)
    # Compare shows the aligned photo on the canvas, and back.
    compare = panel.findChild(QPushButton, "projectionCompare")
    compare.click()
    from app.widgets.image_view import qimage_to_rgb

    np.testing.assert_array_equal(
        qimage_to_rgb(window.canvas.image()), np.asarray(panel.photo.aligned.image)
    )
    compare.click()
    np.testing.assert_array_equal(qimage_to_rgb(window.canvas.image()), result.image)
    # Tuning is on by default: the canvas renders with the tuned model, the reconstruction
    # toggle shows it.
    session = window.session
    assert result.tuning is not None and session.tuning is result.tuning.delta
    assert session.base_generator is not None and session.generator is not session.base_generator
    assert session.fingerprint() == session.base_generator.fingerprint()
    recon = panel.findChild(QPushButton, "projectionReconstruction")
    recon.click()
    np.testing.assert_array_equal(qimage_to_rgb(window.canvas.image()), result.image)
    recon.click()
    # Undo returns to the seed image.
    window.session.undo_stack.undo()
    assert window.session.state.base_ws is None
    window.session.undo_stack.redo()
    # Export: the edit composited into the photo, plus the aligned face.
    out = tmp_path / "export.png"
    job = panel.export(out)
    qtbot.waitUntil(lambda: not job.is_running, timeout=20000)
    assert out.is_file() and (tmp_path / "export-aligned.png").is_file()
    with Image.open(out) as merged:
        assert merged.size == (256, 256)
    # A screenshot for a human to look at; it must not be blank.
    window.resize(1100, 700)
    shot = window.grab()
    shot.save(str(tmp_path / "projection.png"))
    pixels = qimage_to_rgb(shot.toImage())
    assert pixels.std() > 10
    # A saved session brings the tuning back.
    saved = session.save_to(tmp_path / "me.lsession")
    session.set_tuning(None, None)
    qtbot.waitUntil(lambda: session.base_generator is None and session.tuning is None)
    session.open_from(saved)
    assert session.tuning is not None and session.base_generator is not None
    qtbot.waitUntil(
        lambda: session.last_frame is not None and session.last_frame.result.state is session.state,
        timeout=20000,
    )
    np.testing.assert_array_equal(session.last_frame.result.rgb, result.image)


@pytest.mark.needs_shared
def test_cancel_mid_run_keeps_the_best_so_far(
    make_main_window, tiny_checkpoint, qtbot, tmp_path: Path
) -> None:
    window = make_main_window(tiny_checkpoint())
    panel = window.projection_panel
    panel.findChild(QSpinBox, "projectionSteps").setValue(100000)
    state, entries = window.session.state, window.session.undo_stack.count()
    window.open_photo(shared_path(*PHOTO))
    qtbot.waitUntil(lambda: panel.project_job is not None, timeout=90000)
    job = panel.project_job
    qtbot.waitUntil(lambda: panel.progress.value() >= 3, timeout=30000)
    cancel = panel.findChild(QPushButton, "projectionCancel")
    assert cancel.isEnabled()
    with qtbot.waitSignal(job.cancelled, timeout=10000):
        cancel.click()
    qtbot.waitUntil(lambda: not job.is_running, timeout=5000)
    assert "kept the best so far" in panel.step_label.text()
    assert window.session.state is not state and window.session.undo_stack.count() == entries + 1
    assert panel.result is not None and panel.result.projection.cancelled
    np.testing.assert_array_equal(window.session.state.base_ws, panel.result.ws)
    qtbot.waitUntil(panel.findChild(QPushButton, "projectionStart").isEnabled, timeout=5000)


def test_no_face_offers_a_centre_crop(
    make_main_window, tiny_checkpoint, qtbot, tmp_path: Path
) -> None:
    window = make_main_window(tiny_checkpoint())
    panel = window.projection_panel
    panel.findChild(QSpinBox, "projectionSteps").setValue(3)
    panel.findChild(QSpinBox, "projectionTuneSteps").setValue(3)
    Image.new("RGB", (80, 60), (120, 60, 30)).save(tmp_path / "wall.png")
    job = window.open_photo(tmp_path / "wall.png")
    qtbot.waitUntil(lambda: not job.is_running and panel.photo is not None, timeout=20000)
    crop = panel.findChild(QPushButton, "projectionCenterCrop")
    assert crop.isVisible() and "No face found" in panel.step_label.text()
    assert panel.project_job is None
    crop.click()
    qtbot.waitUntil(lambda: panel.result is not None, timeout=30000)
    assert panel.photo.aligned.method == "center-crop"
    assert window.session.state.base_ws is not None


@pytest.mark.parametrize("kind", ["corrupt", "one-pixel", "bomb"])
def test_bad_photos_show_an_error_and_keep_the_edit(
    make_main_window, tiny_checkpoint, qtbot, tmp_path: Path, kind: str
) -> None:
    from tests.helpers.images import png_with_declared_size

    window = make_main_window(tiny_checkpoint())
    state = window.session.state
    path = tmp_path / "bad.png"
    if kind == "corrupt":
        Image.new("RGB", (200, 200), (10, 200, 30)).save(tmp_path / "ok.jpg")
        path = tmp_path / "bad.jpg"
        path.write_bytes((tmp_path / "ok.jpg").read_bytes()[:300])
    elif kind == "one-pixel":
        Image.new("RGB", (1, 1)).save(path)
    else:
        path.write_bytes(png_with_declared_size(30000, 30000))
    drop_on(window.canvas, path)
    box = error_box(window, qtbot)
    expected = {"corrupt": "corrupt", "one-pixel": "too small", "bomb": "decompression bomb"}[kind]
    assert expected in box.informativeText() and path.name in box.informativeText()
    assert window.session.state is state
    box.close()


def test_not_an_image_is_tried_as_a_model(
    make_main_window, tiny_checkpoint, qtbot, tmp_path: Path
) -> None:
    window = make_main_window(tiny_checkpoint())
    generator = window.session.generator
    (tmp_path / "notes.txt").write_text("hello")
    drop_on(window.canvas, tmp_path / "notes.txt")
    box = error_box(window, qtbot)
    assert "notes.txt" in box.informativeText()
    assert window.session.generator is generator
    box.close()


def test_open_latent_is_undoable_and_checks_the_size(
    make_main_window, tiny_checkpoint, qtbot, tmp_path: Path
) -> None:
    from editors.latent_io import save_latent

    window = make_main_window(tiny_checkpoint())
    generator = window.session.generator
    ws = (
        np.random.default_rng(0)
        .standard_normal((generator.num_ws, generator.w_dim))
        .astype(np.float32)
    )
    save_latent(tmp_path / "latent.npz", ws)
    assert window.open_latent(tmp_path / "latent.npz")
    np.testing.assert_array_equal(window.session.state.base_ws, ws)
    assert (
        window.session.undo_stack.text(window.session.undo_stack.index() - 1) == "Latent latent.npz"
    )
    window.session.undo_stack.undo()
    assert window.session.state.base_ws is None
    state = window.session.state
    save_latent(tmp_path / "big.npz", np.zeros((18, 512), np.float32))
    assert not window.open_latent(tmp_path / "big.npz")
    assert "18 x 512" in error_box(window, qtbot).informativeText()
    assert window.session.state is state


def test_tuning_preset_chooses_likeness_or_editability(make_main_window, tiny_checkpoint) -> None:
    from PySide6.QtWidgets import QCheckBox, QComboBox

    from editors.photo import TUNING_PRESETS

    window = make_main_window(tiny_checkpoint())
    panel = window.projection_panel
    combo = panel.findChild(QComboBox, "projectionTunePreset")
    spin = panel.findChild(QSpinBox, "projectionTuneSteps")
    assert panel.tuning().detail_rank == TUNING_PRESETS["faithful"].detail_rank
    combo.setCurrentIndex(combo.findData("editable"))
    editable = TUNING_PRESETS["editable"]
    assert spin.value() == editable.steps != TUNING_PRESETS["faithful"].steps
    spin.setValue(12)  # the steps stay the user's to change
    chosen = panel.tuning()
    assert (chosen.steps, chosen.detail_rank, chosen.tuned_from) == (12, 4, 0.0)
    assert chosen.learning_rate == editable.learning_rate
    check = panel.findChild(QCheckBox, "projectionTune")
    check.setChecked(False)  # no tuning: its settings are greyed out and none is used
    assert not combo.isEnabled() and not spin.isEnabled() and panel.tuning() is None
    check.setChecked(True)
    assert combo.isEnabled() and spin.isEnabled()
