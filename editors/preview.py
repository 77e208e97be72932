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


def _picture_of(args: RenderArgs) -> RenderArgs:
    # What must agree for two frames to lie on one slider: all but the edits and the size.
    return dataclasses.replace(args, state=None, draft=False, measure_identity=False)


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
        """An interpolated frame for the draft request ``args``; None when no two remembered
        frames span it (or ``args`` asks for an exact frame).

        The result is marked ``draft`` and ``interpolated`` and carries ``render_ms`` of the
        blend itself.
        """
        start = time.perf_counter()
        if not args.draft or args.state is None or args.noise_mode == "random":
            return None  # exact frames (slider released) wait for the renderer
        picture = _picture_of(args)
        along: dict[SliderKey, list[_Frame]] = {}
        for frame in reversed(self._frames):
            if not picture.same_as(_picture_of(frame.args)):
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
        points = [(slider_value(f.args.state, slider), f.result) for f in frames if f.args.state]
        # Frames of the newest frame's size first (drafts of one drag); else mixed sizes, such
        # as the full frame before the drag and its first draft, blended at the smaller size.
        newest = points[0][1].rgb.shape
        pair = _nearest_pair([p for p in points if p[1].rgb.shape == newest], value)
        pair = pair or _nearest_pair(points, value)
        if pair is None:
            return None
        (v0, a), (v1, b) = pair
        t = (value - v0) / (v1 - v0)
        if not -MAX_REACH <= t <= 1.0 + MAX_REACH:
            return None
        size = min(a.rgb.shape[0], b.rgb.shape[0])
        start, end = (_resized(r.rgb, size).astype(np.float32) for r in (a, b))
        start += np.float32(t) * (end - start)
        ws = a.ws + np.float32(t) * (b.ws - a.ws)
        return np.clip(start + 0.5, 0, 255).astype(np.uint8), ws.astype(np.float32)


def _nearest_pair(
    points: list[tuple[float, RenderResult]], value: float
) -> tuple[tuple[float, RenderResult], tuple[float, RenderResult]] | None:
    # The nearest two frames with distinct values, preferring a pair around ``value``.
    points = sorted(points, key=lambda p: abs(p[0] - value))
    if len(points) < 2:
        return None
    first = points[0]
    second = next((p for p in points[1:] if (p[0] - value) * (first[0] - value) < 0), None)
    second = second or next((p for p in points[1:] if p[0] != first[0]), None)
    return None if second is None else (first, second)


def _resized(rgb: np.ndarray, size: int) -> np.ndarray:
    if rgb.shape[0] == size:
        return rgb
    import cv2

    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
