"""First start: the window opens on the demo face, its sliders edit it, a dropped photo projects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PySide6.QtWidgets import QSlider, QSpinBox

import models
from editors.identity import detect_landmarks
from models.generator import seed_to_z, to_rgb_u8
from tests.app.conftest import drop_on, wait_for_frame_of

SLIDERS = ("smile", "age", "glasses", "head yaw", "head pitch")


def open_demo(make_main_window, qtbot):
    """The window as first started: no model given, so it loads the demo in the background."""
    window = make_main_window(load_default=True)
    qtbot.waitUntil(lambda: window.session.generator is not None, timeout=30000)
    return window, wait_for_frame_of(qtbot, window)


def test_opens_on_the_demo_face_and_its_sliders_edit_it(make_main_window, qtbot) -> None:
    window, first = open_demo(make_main_window, qtbot)
    assert window.session.generator.source.path == models.DEFAULT_MODEL
    for name in SLIDERS:
        assert window.findChild(QSlider, f"attr:{name}") is not None, name
    window.findChild(QSlider, "attr:smile").setValue(200)
    qtbot.waitUntil(lambda: window.session.state.attribute_amounts.get("smile", 0.0) > 0)
    edited = wait_for_frame_of(qtbot, window)
    # The demo's smile is localized (StyleSpace): a strong change, but only around the mouth.
    change = np.abs(edited.rgb.astype(int) - first.rgb.astype(int)).sum(-1)
    assert change.max() > 60 and (change > 10).mean() < 0.2


def _a_generated_photo(path: Path) -> Path:
    """A demo sample upscaled to photo size, one in which dlib finds a face."""
    generator = models.load_default("cpu")
    for seed in range(20):
        with torch.inference_mode():
            z = seed_to_z([seed], generator.z_dim)
            rgb = to_rgb_u8(
                generator.synthesis(generator.broadcast(generator.mapping(z, truncation_psi=0.5)))
            )[0]
        big = np.asarray(Image.fromarray(rgb).resize((256, 256), Image.Resampling.BICUBIC))
        if detect_landmarks(big) is not None:
            Image.fromarray(big).save(path)
            return path
    raise AssertionError("no demo sample with a detectable face in 20 seeds")


def test_a_dropped_photo_is_projected_from_the_encoder(
    make_main_window, qtbot, tmp_path: Path
) -> None:
    window, _ = open_demo(make_main_window, qtbot)
    photo = _a_generated_photo(tmp_path / "face.png")
    panel = window.projection_panel
    panel.findChild(QSpinBox, "projectionSteps").setValue(20)
    panel.findChild(QSpinBox, "projectionTuneSteps").setValue(20)
    drop_on(window.canvas, photo)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=120000)
    assert panel.result.projection.init == "encoder"
    assert panel.result.psnr > panel.result.projection.psnr > 20.0  # tuning improves on it
    np.testing.assert_array_equal(window.session.state.base_ws, panel.result.ws)
