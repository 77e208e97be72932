"""A busy render service answers a held slider at once with an interpolated frame."""

from __future__ import annotations

import threading

import numpy as np

from app.render_service import RenderService
from editors.rendering import Renderer
from editors.state import EditState
from tests.conftest import make_tiny_stylegan2

CHANNEL = (3, 5)


def _args(amount: float, draft: bool = True):
    return EditState(seed=4, style_amounts={CHANNEL: amount}).render_args(draft=draft)


def test_a_busy_service_previews_a_held_slider_and_the_render_replaces_it(
    qtbot, monkeypatch
) -> None:
    release = threading.Event()
    blocking = 2.0  # the render of this amount waits, keeping the thread busy
    render = Renderer.render

    def slow_render(self, args):
        if args.state is not None and args.state.style_amounts.get(CHANNEL) == blocking:
            release.wait(30)
        return render(self, args)

    monkeypatch.setattr(Renderer, "render", slow_render)
    service = RenderService()
    frames = []
    service.rendered.connect(frames.append)
    try:
        service.set_generator(make_tiny_stylegan2(resolution=16))
        for amount in (0.0 + 1e-3, 1.0):  # two rendered frames along the slider
            request = service.submit(_args(amount))
            qtbot.waitUntil(
                lambda r=request: bool(frames) and frames[-1].request_id == r, timeout=30000
            )
        a, b = frames[0].result.rgb, frames[1].result.rgb
        service.submit(_args(blocking))
        qtbot.waitUntil(lambda: not service.is_idle and service._pending is None, timeout=30000)

        before = len(frames)
        request = service.submit(_args(0.5))
        assert len(frames) == before + 1  # answered inside submit, while the thread is busy
        preview = frames[-1]
        assert preview.request_id == request and preview.result.interpolated
        expected = (a.astype(np.float64) * (1.0 - 0.5 / 0.999) + b * (0.5 / 0.999)).round()
        np.testing.assert_allclose(preview.result.rgb, expected, atol=1)
        assert service.previews == 1
        assert service.submit(_args(0.5, draft=False)) and len(frames) == before + 1  # waits

        release.set()
        qtbot.waitUntil(lambda: service.is_idle, timeout=30000)
        assert frames[-1].request_id > request and not frames[-1].result.interpolated
    finally:
        release.set()
        service.shutdown()
