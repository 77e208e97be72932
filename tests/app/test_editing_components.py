"""Components (PCA / SeFa) and the Layers & noise tab."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QPushButton, QSlider


@pytest.fixture
def window(tiny_checkpoint, make_main_window):
    return make_main_window(tiny_checkpoint(resolution=64))


def latest(qtbot, window):
    state = window.session.state
    qtbot.waitUntil(
        lambda: (
            window.session.last_frame is not None
            and window.session.last_frame.result.state is state
        ),
        timeout=10000,
    )
    return window.session.last_frame.result


def test_pca_components_sliders_and_layer_range(window, qtbot) -> None:
    panel = window.components_panel
    panel.count_spin.setValue(3)
    base = latest(qtbot, window).ws
    qtbot.mouseClick(
        window.findChild(QPushButton, "computeComponentsButton"), Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: window.findChild(QSlider, "component:2") is not None, timeout=30000)
    components = window.session.state.components
    assert components.names == ("Component 0", "Component 1", "Component 2")
    slider = window.findChild(QSlider, "component:1")
    slider.setValue(200)  # +2σ
    vector, scale = components["Component 1"].vector, components["Component 1"].scale
    np.testing.assert_allclose(latest(qtbot, window).ws, base + 2.0 * scale * vector, atol=1e-5)
    # Restrict to the fine rows: coarse and middle rows go back to the unedited latent.
    window.findChild(QComboBox, "componentLayers").setCurrentIndex(3)
    assert window.session.state.component_layers == (8, 10)
    result = latest(qtbot, window)
    assert result.ws[:8].tobytes() == base[:8].tobytes()
    np.testing.assert_allclose(result.ws[8:], base[8:] + 2.0 * scale * vector, atol=1e-5)
    qtbot.mouseClick(
        window.findChild(QPushButton, "resetComponentsButton"), Qt.MouseButton.LeftButton
    )
    assert slider.value() == 0 and not window.session.state.component_amounts


def test_sefa_components(window, qtbot) -> None:
    window.findChild(QComboBox, "componentMethod").setCurrentIndex(1)
    window.components_panel.count_spin.setValue(2)
    qtbot.mouseClick(
        window.findChild(QPushButton, "computeComponentsButton"), Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: window.findChild(QSlider, "component:1") is not None, timeout=30000)
    direction = window.session.state.components["Component 0"]
    assert direction.fitted_with["method"] == "sefa" and "eigenvalue" in direction.metrics


def test_noise_mode_and_per_layer_strength(window, qtbot) -> None:
    generator = window.session.generator
    first = latest(qtbot, window).rgb
    sliders = [window.findChild(QSlider, f"noise:{i}") for i in range(generator.num_layers)]
    assert all(s is not None and s.value() == 100 for s in sliders)
    sliders[-1].setValue(0)
    state = window.session.state
    assert state.noise_strength == (1.0,) * (generator.num_layers - 1) + (0.0,)
    changed = latest(qtbot, window).rgb
    assert not np.array_equal(first, changed)  # the conftest model has non-zero noise weights
    combo = window.findChild(QComboBox, "noiseModeCombo")
    combo.setCurrentIndex(2)
    assert window.session.state.noise_mode == "none" and not sliders[0].isEnabled()
    window.session.undo_stack.undo()
    assert window.session.state.noise_mode == "const" and combo.currentIndex() == 0
    qtbot.mouseClick(window.findChild(QPushButton, "resetNoiseButton"), Qt.MouseButton.LeftButton)
    assert window.session.state.noise_strength is None and sliders[-1].value() == 100
    np.testing.assert_array_equal(latest(qtbot, window).rgb, first)
