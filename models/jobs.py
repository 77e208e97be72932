"""The Qt-free protocol every long job uses to report progress and to be cancelled.

A long function takes keyword-only ``on_step`` and ``should_stop`` callbacks, calls ``on_step`` once
per step and ``check_stop`` at least once per step. Front ends (the CLI's progress bar, the GUI's
worker threads) adapt these callbacks; the job itself never sleeps, prints or throttles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress report from a running job."""

    step: int  # number of completed steps
    total: int | None  # None = unknown length (indeterminate bar)
    message: str = ""  # short human text: "aligning face", "step 120/500"
    metrics: Mapping[str, float] = field(default_factory=dict)  # e.g. {"loss": 0.31}
    preview: np.ndarray | None = None  # [H, W, 3] uint8, only every few steps

    @property
    def fraction(self) -> float | None:
        """Share of the job done in [0, 1], or None when the length is unknown."""
        if not self.total:
            return None
        return min(max(self.step / self.total, 0.0), 1.0)


OnStep = Callable[[Progress], None]
ShouldStop = Callable[[], bool]


class Cancelled(Exception):
    """Raised by a job that noticed ``should_stop()``; carries a usable partial result if any."""

    def __init__(self, partial: object | None = None) -> None:
        super().__init__("cancelled")
        self.partial = partial


def check_stop(should_stop: ShouldStop | None, partial: object | None = None) -> None:
    """Raise ``Cancelled(partial)`` when the caller asked the job to stop."""
    if should_stop is not None and should_stop():
        raise Cancelled(partial)


def report(on_step: OnStep | None, progress: Progress) -> None:
    """Send ``progress`` to ``on_step`` when one was given."""
    if on_step is not None:
        on_step(progress)
