"""Instant slider previews between rendered frames, for models too slow to render per move.

While a slider is held, frames arrive at the render thread's pace (a 1024 px model on a 2-core
CPU: a few drafts per second). Between them, a frame for the slider's newest value is
interpolated along the slider from the two remembered frames of the same picture that differ
only in that slider: ``a + t (b - a)``, ``t`` from the slider values. It costs one blend of two
frames (milliseconds) and is replaced by the rendered frame as soon as that arrives. Only
interpolation and a short extrapolation (``MAX_REACH`` of the remembered span) are served;
everything else waits for the renderer.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Hashable

import numpy as np

from editors.rendering import RenderArgs, RenderResult
from editors.state import EditState, states_equal

MAX_REACH = 1.0  # extrapolate at most this many spans beyond the remembered frames
AMOUNT_FIELDS = ("attribute_amounts", "component_amounts", "style_amounts")

SliderKey = tuple[str, Hashable]  # (amount field, name or style channel)


def moved_slider(a: EditState | None, b: EditState | None) -> SliderKey | None:
    """The single slider amount in which ``a`` and ``b`` differ; None for any other difference.

    Equal states give None too (nothing moved).
    """
    if a is None or b is None:
        return None
    moved: list[SliderKey] = []
    for name in AMOUNT_FIELDS:
        left, right = getattr(a, name), getattr(b, name)
        moved += [
            (name, k) for k in set(left) | set(right) if left.get(k, 0.0) != right.get(k, 0.0)
        ]
    if len(moved) != 1:
        return None
    field, key = moved[0]
    aligned = b.replace(**{field: {**getattr(b, field), key: getattr(a, field).get(key, 0.0)}})
    return moved[0] if states_equal(a, aligned) else None


def slider_value(state: EditState, slider: SliderKey) -> float:
    field, key = slider
    return float(getattr(state, field).get(key, 0.0))


@dataclasses.dataclass(frozen=True, slots=True)
class _Frame:
    args: RenderArgs
    result: RenderResult


class SliderPreview:
    """Remembers the latest frames and interpolates new ones along a moving slider.

    Not thread-safe: callers serialise ``remember`` and ``predict`` (the render service holds
    its lock around both).
    """

    def __init__(self, keep: int = 6) -> None:
        self._frames: list[_Frame] = []
        self._keep = keep

    def clear(self) -> None:
        """Forget every frame (another model, another picture)."""
        self._frames.clear()

    def remember(self, args: RenderArgs, result: RenderResult) -> None:
        """Keep ``result``, the rendered frame of ``args``."""
        self._frames.append(_Frame(args, result))
        del self._frames[: -self._keep]

    def predict(self, args: RenderArgs) -> RenderResult | None:
        """An interpolated frame for ``args``, or None when no two remembered frames bracket it.

        The result is marked ``draft`` and ``interpolated`` and carries ``render_ms`` of the
        blend itself.
        """
        start = time.perf_counter()
        if args.state is None or args.noise_mode == "random":
            return None
        without_state = dataclasses.replace(args, state=None)
        along: dict[SliderKey, list[_Frame]] = {}
        for frame in reversed(self._frames):
            if not without_state.same_as(dataclasses.replace(frame.args, state=None)):
                continue
            if states_equal(args.state, frame.args.state):
                return frame.result  # rendered already
            slider = moved_slider(args.state, frame.args.state)
            if slider is not None:
                along.setdefault(slider, []).append(frame)
        for slider, frames in along.items():
            blended = self._blend(args, slider, frames)
            if blended is not None:
                rgb, ws = blended
                return RenderResult(
                    rgb=rgb,
                    ws=ws,
                    render_ms=(time.perf_counter() - start) * 1000.0,
                    draft=True,
                    state=args.state,
                    interpolated=True,
                )
        return None

    @staticmethod
    def _blend(
        args: RenderArgs, slider: SliderKey, frames: list[_Frame]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        assert args.state is not None
        value = slider_value(args.state, slider)
        shape = frames[0].result.rgb.shape
        points = [
            (slider_value(f.args.state, slider), f.result)
            for f in frames
            if f.args.state is not None and f.result.rgb.shape == shape
        ]
        # The nearest two frames with distinct values, preferring a pair around ``value``.
        points.sort(key=lambda p: abs(p[0] - value))
        if len(points) < 2:
            return None
        first = points[0]
        second = next((p for p in points[1:] if (p[0] - value) * (first[0] - value) < 0), None)
        if second is None:
            second = next((p for p in points[1:] if p[0] != first[0]), None)
        if second is None:
            return None
        (v0, a), (v1, b) = first, second
        t = (value - v0) / (v1 - v0)
        if not -MAX_REACH <= t <= 1.0 + MAX_REACH:
            return None
        rgb = a.rgb.astype(np.float32)
        rgb += np.float32(t) * (b.rgb.astype(np.float32) - rgb)
        ws = a.ws + np.float32(t) * (b.ws - a.ws)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8), ws.astype(np.float32)
