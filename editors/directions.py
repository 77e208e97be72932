"""Latent directions as plain data and the operations that use them.

A ``Direction`` is a unit vector in W (StyleGAN2) or Z (ProGAN, where ``num_ws == 1``) plus the
rows of ws it applies to. The estimators that fit them are ``editors.direction_estimators``;
their files (``.npz`` vectors plus a JSON index, never pickled estimators)
``editors.direction_files``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from editors.named import NamedItems

if TYPE_CHECKING:
    from editors.stylespace import StyleDirectionSet

Space = Literal["w", "z"]
Layers = tuple[int, int]  # ws rows [start, end)
FloatArray = npt.NDArray[np.float32]


def _read_only(array: npt.ArrayLike) -> FloatArray:
    copy = np.array(array, dtype=np.float32, copy=True)
    copy.setflags(write=False)
    return copy


def json_value(value: object) -> object:
    """Make ``value`` JSON data (numpy scalars and tuples included); reject anything else."""
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not JSON data")


def check_layers(layers: Sequence[int] | None) -> Layers | None:
    """Validate a ws row range ``(start, end)``; None means every row.

    Raises:
        ValueError: not two integers with ``0 <= start < end``.
    """
    if layers is None:
        return None
    if len(layers) != 2:
        raise ValueError(f"a layer range is (start, end), got {layers!r}")
    start, end = int(layers[0]), int(layers[1])
    if start < 0 or end <= start:
        raise ValueError(f"a layer range needs 0 <= start < end, got ({start}, {end})")
    return (start, end)


@dataclass(frozen=True, slots=True, eq=False)
class Direction:
    """One named edit direction (immutable)."""

    name: str  # shown on the slider, e.g. "smile"
    vector: FloatArray  # [w_dim] float32, unit norm, read-only
    layers: Layers | None = None  # ws rows [start, end) it applies to; None = all rows
    space: Space = "w"  # "w" for StyleGAN2, "z" for ProGAN
    metrics: Mapping[str, float] = field(default_factory=dict)  # heldout_accuracy, r2, std, ...
    fitted_with: Mapping[str, object] = field(default_factory=dict)  # how it was made (JSON data)

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("a direction needs a name")
        vector = np.asarray(self.vector, dtype=np.float64)
        if vector.ndim != 1 or vector.size == 0:
            raise ValueError(
                f"direction {self.name!r}: vector must be 1-D, got shape {vector.shape}"
            )
        norm = float(np.linalg.norm(vector))
        if not math.isfinite(norm) or norm == 0.0:
            raise ValueError(f"direction {self.name!r}: vector is zero or not finite")
        object.__setattr__(self, "vector", _read_only(vector / norm))
        object.__setattr__(self, "layers", check_layers(self.layers))
        if self.space not in ("w", "z"):
            raise ValueError(
                f"direction {self.name!r}: space must be 'w' or 'z', got {self.space!r}"
            )
        metrics = {str(k): float(v) for k, v in dict(self.metrics).items()}
        object.__setattr__(self, "metrics", MappingProxyType(metrics))
        object.__setattr__(self, "fitted_with", MappingProxyType(dict(self.fitted_with)))

    @property
    def w_dim(self) -> int:
        """Length of the vector."""
        return int(self.vector.shape[0])

    @property
    def scale(self) -> float:
        """Spread (std) of sampled latents along this direction: the unit "σ" of slider amounts.

        1.0 when the direction was made without samples (then amounts are raw latent units).
        """
        value = self.metrics.get("std", 1.0)
        return value if value > 0 and math.isfinite(value) else 1.0

    def rows(self, num_ws: int) -> range:
        """The ws rows this direction moves, clipped to ``num_ws``."""
        if self.layers is None:
            return range(num_ws)
        return range(min(self.layers[0], num_ws), min(self.layers[1], num_ws))

    def replace(self, **changes: Any) -> Direction:
        """A copy with ``changes`` applied."""
        values = {
            "name": self.name,
            "vector": self.vector,
            "layers": self.layers,
            "space": self.space,
            "metrics": self.metrics,
            "fitted_with": self.fitted_with,
        }
        values.update(changes)
        return Direction(**values)


@dataclass(frozen=True, slots=True, eq=False)
class DirectionSet(NamedItems["Direction"]):
    """An ordered collection of directions with unique names, tied to one model by fingerprint."""

    directions: tuple[Direction, ...] = ()
    fingerprint: str | None = None  # Generator.fingerprint() of the model they belong to
    model_name: str = ""  # display name of that model
    source: Path | None = None  # file the set was read from, if any
    notes: tuple[str, ...] = ()  # what a fitting job skipped and why (not saved)
    styles: StyleDirectionSet | None = None  # localized (style-space) versions of some sliders

    def __post_init__(self) -> None:
        directions = tuple(self.directions)
        object.__setattr__(self, "directions", directions)
        object.__setattr__(self, "notes", tuple(self.notes))
        names = [d.name for d in directions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"direction names must be unique; repeated: {', '.join(duplicates)}")
        if len({d.w_dim for d in directions}) > 1:
            raise ValueError("all directions of a set must have the same length")
        if len({d.space for d in directions}) > 1:
            raise ValueError("all directions of a set must live in the same space (w or z)")

    @property
    def w_dim(self) -> int | None:
        """Vector length (None for an empty set)."""
        return self.directions[0].w_dim if self.directions else None

    def matrix(self) -> FloatArray:
        """All vectors stacked, [K, w_dim]."""
        if not self.directions:
            return np.zeros((0, 0), np.float32)
        return np.stack([d.vector for d in self.directions])

    def merged(self, directions: Iterable[Direction]) -> DirectionSet:
        """A set with ``directions`` added; one with an existing name replaces it in place."""
        incoming = {d.name: d for d in directions}
        kept = [incoming.pop(d.name, d) for d in self.directions]
        return DirectionSet(
            (*kept, *incoming.values()),
            self.fingerprint,
            self.model_name,
            self.source,
            styles=self.styles,
        )

    def fingerprint_mismatch(self, fingerprint: str | None) -> str | None:
        """A warning when the set was fitted on another model than ``fingerprint``, else None."""
        if self.fingerprint is None or fingerprint is None or self.fingerprint == fingerprint:
            return None
        origin = f" ({self.source.name})" if self.source is not None else ""
        model = f" {self.model_name!r}" if self.model_name else ""
        return (
            f"these directions{origin} were fitted on another model{model} "
            f"(fingerprint {self.fingerprint}, the open model is {fingerprint}); "
            "they may not mean the same thing here"
        )


# -------------------------------------------------------------------------------------------
# Operations


def orthogonalize(direction: npt.ArrayLike, locked: Sequence[npt.ArrayLike]) -> FloatArray:
    """Remove from ``direction`` its component in the span of the ``locked`` vectors.

    One least-squares solve: ``direction - L @ argmin_c |L @ c - direction|`` with the locked
    vectors as the columns of ``L``. Rank-deficient or empty ``locked`` needs no special case.

    Args:
        direction: [w_dim] vector.
        locked: vectors [w_dim] to stay orthogonal to.

    Returns:
        The unit-norm residual [w_dim] float32, or zeros when ``direction`` lies in the span.
    """
    vector = np.asarray(direction, dtype=np.float64)
    basis = np.zeros((vector.shape[0], len(locked)), np.float64)
    for column, item in enumerate(locked):
        basis[:, column] = np.asarray(item, dtype=np.float64)
    coefficients = np.linalg.lstsq(basis, vector, rcond=None)[0]
    residual = vector - basis @ coefficients
    norm = float(np.linalg.norm(residual))
    # Relative threshold: anything below float32 noise means "inside the locked span".
    if norm <= 1e-6 * max(float(np.linalg.norm(vector)), 1e-30):
        return np.zeros(vector.shape, np.float32)
    return (residual / norm).astype(np.float32)


def effective_vectors(directions: DirectionSet, locked: Iterable[str]) -> dict[str, FloatArray]:
    """The vectors the sliders actually move along once ``locked`` attributes are held.

    TL-GAN's rule: locked axes are made orthogonal to the locked axes before them (Gram-Schmidt
    in set order), every other axis is made orthogonal to all locked axes; all re-normalised.
    With nothing locked the vectors are returned unchanged.

    Returns:
        name -> [w_dim] float32 vector (zeros for an axis that lies in the locked span).
    """
    locked_names = [name for name in directions.names if name in set(locked)]
    locked_vectors = [directions[name].vector for name in locked_names]
    result: dict[str, FloatArray] = {}
    for direction in directions:
        if not locked_names:
            result[direction.name] = direction.vector
        elif direction.name in locked_names:
            before = locked_vectors[: locked_names.index(direction.name)]
            result[direction.name] = orthogonalize(direction.vector, before)
        else:
            result[direction.name] = orthogonalize(direction.vector, locked_vectors)
    return result


def shift(
    ws: npt.ArrayLike,
    direction: Direction,
    amount: float,
    *,
    vector: npt.ArrayLike | None = None,
    layers: Layers | Literal["direction"] | None = "direction",
) -> FloatArray:
    """Move ``ws`` by ``amount`` along ``direction`` on the direction's rows (pure).

    Rows outside the direction's layer range are copied bit for bit, so the synthesis cache can
    resume after them.

    Args:
        ws: [num_ws, w_dim] or [N, num_ws, w_dim] latents.
        direction: what to move along.
        amount: signed distance in latent units (multiply σ amounts by ``direction.scale``).
        vector: replaces ``direction.vector`` (e.g. its orthogonalised version).
        layers: a row range overriding ``direction.layers`` (None = all rows).

    Returns:
        A new float32 array shaped like ``ws``.
    """
    result = np.array(ws, dtype=np.float32, copy=True)
    if result.ndim not in (2, 3) or result.shape[-1] != direction.w_dim:
        raise ValueError(
            f"ws must be [num_ws, {direction.w_dim}] or [N, num_ws, {direction.w_dim}], "
            f"got {list(result.shape)}"
        )
    step = np.asarray(direction.vector if vector is None else vector, dtype=np.float32)
    if amount == 0.0:
        return result
    num_ws = result.shape[-2]
    if layers == "direction":
        rows = direction.rows(num_ws)
    else:
        rows = (
            range(num_ws)
            if layers is None
            else range(min(layers[0], num_ws), min(layers[1], num_ws))
        )
    if len(rows):
        result[..., rows.start : rows.stop, :] += np.float32(amount) * step
    return result


def check_compatible(directions: DirectionSet, w_dim: int, space: Space) -> None:
    """Raise ``ValueError`` when ``directions`` cannot be applied to latents of this shape/space."""
    origin = f"{directions.source}: " if directions.source is not None else ""
    if directions.w_dim is not None and directions.w_dim != w_dim:
        raise ValueError(
            f"{origin}directions have {directions.w_dim} dimensions but the model's latents "
            f"have {w_dim}; they belong to another model"
        )
    spaces = {d.space for d in directions}
    if spaces and spaces != {space}:
        raise ValueError(
            f"{origin}directions live in {'/'.join(sorted(spaces))} space "
            "but this model is edited in "
            f"{space} space"
        )
