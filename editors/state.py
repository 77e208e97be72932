"""The edit state: an immutable value describing what the user is looking at.

Every change the user makes produces a new ``EditState`` (the GUI's undo stack stores before/after
pairs of these), so arrays inside are flagged read-only and never mutated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from editors.rendering import RenderArgs
from models.generator import NoiseMode


def frozen_array(array: np.ndarray | None) -> np.ndarray | None:
    """A read-only float32 copy of ``array`` (None stays None)."""
    if array is None:
        return None
    copy = np.array(array, dtype=np.float32, copy=True)
    copy.setflags(write=False)
    return copy


@dataclass(frozen=True, slots=True, eq=False)
class EditState:
    """What is being edited and how."""

    seed: int | None = 0  # latent drawn from this seed when base_ws is None
    base_ws: np.ndarray | None = None  # [num_ws, w_dim] latent from a projection or file
    truncation_psi: float = 0.7  # pull seed latents towards the average w (1 = off)
    noise_mode: NoiseMode = "const"

    def __post_init__(self) -> None:
        if self.base_ws is not None and self.base_ws.flags.writeable:
            object.__setattr__(self, "base_ws", frozen_array(self.base_ws))

    def replace(self, **changes: Any) -> EditState:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def render_args(self, *, draft: bool = False) -> RenderArgs:
        """The render request for this state."""
        return RenderArgs(
            seed=None if self.base_ws is not None else self.seed,
            ws=self.base_ws,
            truncation_psi=self.truncation_psi,
            noise_mode=self.noise_mode,
            draft=draft,
        )
