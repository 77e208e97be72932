"""Side effects of an edit: where the picture changed, identity drift, other face measures.

One function, ``measure_edit``, compares an unedited and an edited picture: the share of the
pixel change inside the edit's intended region (``editors.regions``), dlib's identity distance,
the mouth width and the landmark measures (mouth/eye openness, smile, head pose) before and
after. The GUI shows it beside a slider; ``bench/locality.py`` tabulates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from editors.regions import (
    DETECTION_SIZE,
    change_map,
    face_landmarks,
    intended_mask,
    mouth_width,
    region_shares,
    share_inside,
)


@dataclass(frozen=True, slots=True)
class EditReadout:
    """What an edit did besides its purpose."""

    region: str  # the intended region the share refers to
    share_inside: float  # share of the pixel change inside it (NaN: nothing changed)
    identity_drift: float  # dlib descriptor distance to the unedited face (NaN: unmeasured)
    mouth_width_change: float  # change of mouth-corner distance / eye distance (NaN: no face)
    region_shares: dict[str, float] = field(default_factory=dict)  # share per face region
    measures_before: dict[str, float] = field(default_factory=dict)  # landmark measures
    measures_after: dict[str, float] = field(default_factory=dict)

    def measure_changes(self) -> dict[str, float]:
        """Change of each landmark measure (after - before)."""
        return {
            name: self.measures_after[name] - value
            for name, value in self.measures_before.items()
            if name in self.measures_after
        }

    def summary(self) -> str:
        """One line for a status label."""
        parts = [f"{_percent(self.share_inside)} of the change in the {self.region}"]
        if math.isfinite(self.identity_drift):
            parts.append(f"identity drift {self.identity_drift:.2f}")
        return ", ".join(parts)


def _percent(value: float) -> str:
    return f"{100 * value:.0f} %" if math.isfinite(value) else "none"


def _upscaled(rgb: np.ndarray) -> np.ndarray:
    import cv2

    height, width = rgb.shape[:2]
    if min(height, width) >= DETECTION_SIZE:
        return np.ascontiguousarray(rgb)
    factor = DETECTION_SIZE / min(height, width)
    size = (round(width * factor), round(height * factor))
    return cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_CUBIC)


def identity_drift(before: np.ndarray, after: np.ndarray, landmarks: np.ndarray) -> float:
    """dlib descriptor distance between two pictures of the same face (small ones upscaled)."""
    from editors.identity import IdentityMeter

    big_before, big_after = _upscaled(before), _upscaled(after)
    factor = big_before.shape[0] / before.shape[0]
    meter = IdentityMeter(big_before, landmarks=(landmarks + 0.5) * factor - 0.5)
    return float(meter.distance(big_after))


def face_measures_of(landmarks: np.ndarray, size: tuple[int, int]) -> dict[str, float]:
    """Landmark measures: mouth and eye openness, smile, head yaw and pitch (degrees)."""
    from editors.labelers import face_measures, head_pose

    measures = dict(face_measures(landmarks))
    yaw, pitch, _ = head_pose(landmarks, size)
    measures.update({"yaw": float(yaw), "pitch": float(pitch)})
    return measures


def measure_edit(
    before: np.ndarray,
    after: np.ndarray,
    region: str = "lower face",
    *,
    landmarks: np.ndarray | None = None,
) -> EditReadout:
    """Compare ``before`` and ``after`` (uint8 [H, W, 3] pictures of the same face).

    Args:
        region: "lower face", "face" or a name of ``regions.REGION_NAMES``.
        landmarks: of ``before``; detected when None.

    Raises:
        ValueError: no face in ``before`` (nothing to measure against).
    """
    if landmarks is None:
        landmarks = face_landmarks(before)
    if landmarks is None:
        raise ValueError("no face found in the unedited picture; locality cannot be measured")
    size = before.shape[:2]
    change = change_map(before, after)
    share = share_inside(change, intended_mask(region, landmarks, size))
    after_marks = face_landmarks(after)
    width_change = math.nan
    measures_after: dict[str, float] = {}
    if after_marks is not None:
        width_change = mouth_width(after_marks) - mouth_width(landmarks)
        measures_after = face_measures_of(after_marks, size)
    try:
        drift = identity_drift(before, after, landmarks)
    except (ValueError, FileNotFoundError):
        drift = math.nan
    return EditReadout(
        region=region,
        share_inside=share,
        identity_drift=drift,
        mouth_width_change=width_change,
        region_shares=region_shares(change, landmarks),
        measures_before=face_measures_of(landmarks, size),
        measures_after=measures_after,
    )


def readout_region(state: Any) -> tuple[str, str]:
    """(what moved, its intended region) for the readout of ``state``'s edits.

    The attribute with the largest amount in σ names the region; channel-only edits are
    measured against the whole face.
    """
    from editors.regions import intended_region

    directions = state.directions
    best, size = "", 0.0
    for name, amount in state.attribute_amounts.items():
        sigma = abs(amount) / directions[name].scale if directions is not None else abs(amount)
        if sigma > size:
            best, size = name, sigma
    if best:
        return best, intended_region(best)
    return "style channels", "face"


def measure_state(generator: Any, state: Any) -> tuple[str, EditReadout]:
    """Render ``state`` with and without its edits and measure the difference.

    Raises:
        ValueError: no face in the unedited picture.
    """
    from editors.rendering import Renderer
    from editors.state import reset_edits

    renderer = Renderer(generator)
    before = renderer.render(reset_edits(state).render_args()).rgb
    after = renderer.render(state.render_args()).rgb
    what, region = readout_region(state)
    return what, measure_edit(before, after, region)


def measure_side_effects(
    generator: Any,
    state: Any,
    name: str | None = None,
    *,
    on_step: Any = None,
    should_stop: Any = None,
) -> tuple[str, EditReadout | None]:
    """(what moved, its readout), or (what moved, None) when dlib finds no face to measure.

    Args:
        name: an attribute slider: its own effect, ``state`` with that slider at 0 against
            ``state``, in ``intended_region(name)``. None: every edit, the unedited state
            against ``state`` (as ``measure_state``).
    """
    from editors.regions import intended_region
    from editors.rendering import Renderer
    from editors.state import reset_edits, with_amount
    from models.jobs import check_stop

    if name is None:
        what, region = readout_region(state)
        unedited = reset_edits(state)
    else:
        what, region = name, intended_region(name)
        unedited = with_amount(state, name, 0.0)
    renderer = Renderer(generator)
    before = renderer.render(unedited.render_args()).rgb
    check_stop(should_stop)
    landmarks = face_landmarks(before)
    if landmarks is None:
        return what, None
    check_stop(should_stop)
    after = renderer.render(state.render_args()).rgb
    check_stop(should_stop)
    return what, measure_edit(before, after, region, landmarks=landmarks)
