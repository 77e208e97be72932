"""Slider previews: frames interpolated along one slider between two rendered ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from editors.preview import SliderPreview, moved_slider
from editors.rendering import Renderer
from editors.state import EditState
from tests.conftest import make_tiny_stylegan2

CHANNEL = (3, 5)  # a style channel of the tiny model: its slider needs no direction file


def _state(amount: float, **changes) -> EditState:
    return EditState(seed=4, style_amounts={CHANNEL: amount} if amount else {}).replace(**changes)


def test_moved_slider_names_the_one_amount_that_differs() -> None:
    assert moved_slider(_state(0.0), _state(1.5)) == ("style_amounts", CHANNEL)
    assert moved_slider(_state(1.0), _state(1.0)) is None  # nothing moved
    assert moved_slider(_state(1.0), _state(2.0, seed=5)) is None  # another picture
    two = _state(1.0).replace(style_amounts={CHANNEL: 2.0, (2, 1): 0.5})
    assert moved_slider(_state(1.0), two) is None  # two sliders moved
    assert moved_slider(_state(1.0), _state(1.0, truncation_psi=0.5)) is None


@pytest.fixture(scope="module")
def frames() -> tuple[Renderer, dict[float, object]]:
    renderer = Renderer(make_tiny_stylegan2(resolution=16))
    values = (0.0, 0.5, 1.0, 3.5)
    return renderer, {v: renderer.render(_state(v).render_args(draft=True)) for v in values}


def _preview_of(renderer, frames, remembered, value):
    preview = SliderPreview()
    for v in remembered:
        preview.remember(_state(v).render_args(draft=True), frames[v])
    return preview.predict(_state(value).render_args(draft=True))


def test_a_value_between_two_frames_is_their_blend_and_near_the_real_render(frames) -> None:
    renderer, rendered = frames
    result = _preview_of(renderer, rendered, (0.0, 1.0), 0.5)
    assert result is not None and result.draft and result.interpolated
    a, b = (rendered[v].rgb.astype(np.float64) for v in (0.0, 1.0))
    np.testing.assert_allclose(result.rgb, np.round((a + b) / 2), atol=1)  # half-way blend
    np.testing.assert_allclose(result.ws, (rendered[0.0].ws + rendered[1.0].ws) / 2, atol=1e-6)
    truth = rendered[0.5].rgb.astype(np.float64)
    blend_error = np.abs(result.rgb - truth).mean()
    nearest_error = min(np.abs(a - truth).mean(), np.abs(b - truth).mean())
    assert nearest_error > 0 and blend_error < nearest_error  # closer than either frame


def test_no_preview_without_two_frames_along_the_same_slider(frames) -> None:
    renderer, rendered = frames
    assert _preview_of(renderer, rendered, (0.0,), 0.5) is None  # one frame: no line
    assert _preview_of(renderer, rendered, (0.0, 1.0), 3.5) is None  # far beyond the frames
    assert _preview_of(renderer, rendered, (0.0, 1.0), 1.8) is not None  # a short reach
    preview = SliderPreview()
    for v in (0.0, 1.0):
        preview.remember(_state(v).render_args(draft=True), rendered[v])
    assert preview.predict(_state(0.5, seed=9).render_args(draft=True)) is None  # other seed
    assert preview.predict(_state(0.5).render_args(draft=False)) is None  # exact frames wait
    random_noise = _state(0.5, noise_mode="random").render_args(draft=True)
    assert preview.predict(random_noise) is None
    exact = preview.predict(_state(1.0).render_args(draft=True))
    assert exact is rendered[1.0] and not exact.interpolated  # already rendered: that frame
    preview.clear()
    assert preview.predict(_state(0.5).render_args(draft=True)) is None


def test_the_frame_before_a_drag_and_its_first_draft_blend_at_the_draft_size(frames) -> None:
    renderer, rendered = frames
    preview = SliderPreview()
    full = renderer.render(_state(0.0).render_args())  # the picture before the slider moved
    preview.remember(_state(0.0).render_args(), full)
    draft = rendered[1.0]
    small = draft.rgb[::2, ::2].copy()  # a draft rendered at half size
    preview.remember(_state(1.0).render_args(draft=True), dataclasses.replace(draft, rgb=small))
    result = preview.predict(_state(0.5).render_args(draft=True))
    assert result is not None and result.rgb.shape == small.shape
    shrunk = full.rgb.astype(np.float64).reshape(8, 2, 8, 2, 3).mean(axis=(1, 3))  # area mean
    np.testing.assert_allclose(result.rgb, np.round((shrunk + small) / 2), atol=1)
