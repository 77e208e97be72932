"""Style mixing: a second latent blended into the current one, row by row of ws.

Rows follow the StyleGAN convention by resolution: coarse = rows 0-3 (4²-8²), middle = rows 4-7
(16²-32²), fine = rows 8 and up (64² and up). Small models simply have fewer (or no) fine rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

GROUPS = ("coarse", "middle", "fine")
COARSE_END = 4  # first row of the 16² blocks
MIDDLE_END = 8  # first row of the 64² blocks


def layer_groups(num_ws: int) -> dict[str, range]:
    """Rows of each group for a model with ``num_ws`` rows (a group may be empty)."""
    coarse_end = min(COARSE_END, num_ws)
    middle_end = min(MIDDLE_END, num_ws)
    return {
        "coarse": range(0, coarse_end),
        "middle": range(coarse_end, middle_end),
        "fine": range(middle_end, num_ws),
    }


def group_layers(group: str, num_ws: int) -> tuple[int, int] | None:
    """The (start, end) row range of ``group``, or None when the model has no such rows."""
    rows = layer_groups(num_ws)[group]
    return (rows.start, rows.stop) if len(rows) else None


def row_resolution(row: int) -> int:
    """The nominal resolution of ws row ``row``: two rows per resolution, as in the paper's figure.

    (In StyleGAN2 an odd row also feeds the next block's first conv; the label ignores that.)
    """
    return 2 ** (row // 2 + 2)


def _frozen(array: npt.ArrayLike) -> FloatArray:
    copy = np.array(array, dtype=np.float32, copy=True)
    copy.setflags(write=False)
    return copy


@dataclass(frozen=True, slots=True, eq=False)
class LatentSource:
    """A latent given by a seed (mapped and truncated by the renderer) or by a ws array."""

    seed: int | None = None  # draw the latent from this seed ...
    truncation_psi: float = 1.0  # ... with this truncation
    ws: FloatArray | None = None  # ... or use this [num_ws, w_dim] latent as it is
    label: str = ""  # what the user picked, e.g. "seed 12" or "history: Smile +1.0"

    def __post_init__(self) -> None:
        if (self.seed is None) == (self.ws is None):
            raise ValueError("a latent source is either a seed or a ws array")
        if self.ws is not None:
            ws = np.asarray(self.ws)
            if ws.ndim != 2:
                raise ValueError(f"ws must be [num_ws, w_dim], got {list(ws.shape)}")
            if ws.flags.writeable or ws.dtype != np.float32:
                object.__setattr__(self, "ws", _frozen(ws))
        if not self.label:
            object.__setattr__(
                self, "label", f"seed {self.seed}" if self.seed is not None else "latent"
            )

    def same_as(self, other: LatentSource | None) -> bool:
        """True when both describe the same latent."""
        if other is None:
            return False
        if self.ws is not None or other.ws is not None:
            return (
                self.ws is not None and other.ws is not None and np.array_equal(self.ws, other.ws)
            )
        return (self.seed, self.truncation_psi) == (other.seed, other.truncation_psi)


@dataclass(frozen=True, slots=True, eq=False)
class StyleMix:
    """A donor latent and, per ws row, how much of it replaces the current latent (0...1)."""

    donor: LatentSource
    row_weights: tuple[float, ...]  # [num_ws] 0 = keep the current row, 1 = the donor's row

    def __post_init__(self) -> None:
        weights = tuple(float(w) for w in self.row_weights)
        if any(not 0.0 <= w <= 1.0 for w in weights):
            raise ValueError(f"mixing weights must lie in [0, 1], got {weights}")
        object.__setattr__(self, "row_weights", weights)

    @classmethod
    def unmixed(cls, donor: LatentSource, num_ws: int) -> StyleMix:
        """A mix with ``donor`` chosen but every weight at 0 (the picture does not change yet)."""
        return cls(donor, (0.0,) * num_ws)

    @property
    def is_active(self) -> bool:
        """True when any row takes something from the donor."""
        return any(w > 0.0 for w in self.row_weights)

    def with_rows(self, rows: Sequence[int] | range, weight: float) -> StyleMix:
        """A copy with ``rows`` set to ``weight``."""
        weights = list(self.row_weights)
        for row in rows:
            weights[row] = weight
        return StyleMix(self.donor, tuple(weights))

    def with_group(self, group: str, weight: float) -> StyleMix:
        """A copy with every row of ``group`` (coarse/middle/fine) set to ``weight``."""
        return self.with_rows(layer_groups(len(self.row_weights))[group], weight)

    def group_weight(self, group: str) -> float:
        """The mean weight of ``group``'s rows (0 for an empty group)."""
        rows = layer_groups(len(self.row_weights))[group]
        return float(np.mean([self.row_weights[r] for r in rows])) if len(rows) else 0.0

    def same_as(self, other: StyleMix | None) -> bool:
        """True when both mixes give the same latent."""
        return (
            other is not None
            and self.row_weights == other.row_weights
            and self.donor.same_as(other.donor)
        )


def mix_ws(ws: npt.ArrayLike, donor_ws: npt.ArrayLike, row_weights: Sequence[float]) -> FloatArray:
    """Blend ``donor_ws`` into ``ws`` row by row (pure).

    Rows with weight 0 are copied bit for bit (so the synthesis cache still hits) and rows with
    weight 1 are exactly the donor's.

    Args:
        ws: [num_ws, w_dim] current latent.
        donor_ws: [num_ws, w_dim] donor latent.
        row_weights: [num_ws] weights in [0, 1].

    Returns:
        A new float32 [num_ws, w_dim] array.
    """
    result = np.array(ws, dtype=np.float32, copy=True)
    donor = np.asarray(donor_ws, dtype=np.float32)
    if donor.shape != result.shape or len(row_weights) != result.shape[0]:
        raise ValueError(
            f"style mixing needs ws and donor of the same shape and one weight per row; got "
            f"{list(result.shape)}, {list(donor.shape)} and {len(row_weights)} weights"
        )
    for row, weight in enumerate(row_weights):
        if weight == 0.0:
            continue
        t = np.float32(weight)
        # (1 - t) * a + t * b is exact at both ends, unlike a + t * (b - a).
        result[row] = (np.float32(1.0) - t) * result[row] + t * donor[row]
    return result
