"""Latent directions as plain data, the estimators that fit them, and the operations that use them.

A ``Direction`` is a unit vector in W (StyleGAN2) or Z (ProGAN, where ``num_ws == 1``) plus the
rows of ws it applies to. Estimators follow scikit-learn (parameters in ``__init__``, learned
attributes ending in ``_``, ``fit`` returning ``self``); files are ``.npz`` vectors plus a JSON
index, never pickled estimators.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from models.formats.native import atomic_write
from models.formats.npz import read_npz

if TYPE_CHECKING:
    from editors.stylespace import StyleDirectionSet

Space = Literal["w", "z"]
Layers = tuple[int, int]  # ws rows [start, end)
FloatArray = npt.NDArray[np.float32]

FILE_KIND = "latentstudio-directions"
SCHEMA_VERSION = 1
DIRECTIONS_SUFFIX = ".directions.json"


class DirectionFileError(ValueError):
    """A direction file is missing, corrupted or does not fit the model."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _read_only(array: npt.ArrayLike) -> FloatArray:
    copy = np.array(array, dtype=np.float32, copy=True)
    copy.setflags(write=False)
    return copy


def _json_value(value: object) -> object:
    """Make ``value`` JSON data (numpy scalars and tuples included); reject anything else."""
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
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
class DirectionSet:
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

    def __len__(self) -> int:
        return len(self.directions)

    def __iter__(self) -> Iterator[Direction]:
        return iter(self.directions)

    def __contains__(self, name: object) -> bool:
        return any(d.name == name for d in self.directions)

    def __getitem__(self, name: str) -> Direction:
        for direction in self.directions:
            if direction.name == name:
                return direction
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Direction names in order."""
        return tuple(d.name for d in self.directions)

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

    def without(self, name: str) -> DirectionSet:
        """A set without the direction called ``name``."""
        kept = tuple(d for d in self.directions if d.name != name)
        return DirectionSet(
            kept, self.fingerprint, self.model_name, self.source, styles=self.styles
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


# -------------------------------------------------------------------------------------------
# Estimators

DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
DEFAULT_ALPHAS = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


def _check_samples(w: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    w_array = np.asarray(w, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if w_array.ndim != 2:
        raise ValueError(f"latents must have shape [N, w_dim], got {list(w_array.shape)}")
    if y.ndim != 1 or y.shape[0] != w_array.shape[0]:
        raise ValueError(
            f"labels must have shape [{w_array.shape[0]}] (one per latent), got {list(y.shape)}"
        )
    known = np.isfinite(y)
    return w_array[known], y[known]


def is_binary(labels: npt.ArrayLike) -> bool:
    """True when the finite labels only take the values 0 and 1."""
    y = np.asarray(labels, dtype=np.float64)
    y = y[np.isfinite(y)]
    return y.size > 0 and bool(np.all((y == 0) | (y == 1)))


class _QuietLogistic(LogisticRegression):
    """Logistic regression that does not warn when it stops at ``max_iter``.

    Nearly separable labels (common with few manual tags) never converge in the strict sense,
    yet the normal's direction settles long before; the warning would only be noise.
    """

    def fit(self, x: np.ndarray, y: np.ndarray) -> Self:  # type: ignore[override]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return super().fit(x, y)


class AttributeDirectionEstimator(BaseEstimator):
    """Fits an attribute's direction: the normal of a linear model from latents to labels.

    Binary labels (0/1) get a class-balanced logistic regression; continuous labels get a ridge
    regression. The regularisation strength is chosen by k-fold cross-validation on the training
    part; the held-out part measures accuracy (binary) or R² (continuous). Unknown labels (NaN)
    are dropped.
    """

    def __init__(
        self,
        *,
        target: Literal["auto", "binary", "continuous"] = "auto",
        Cs: Sequence[float] = DEFAULT_CS,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        cv: int = 5,
        heldout_fraction: float = 0.2,
        min_per_class: int = 5,
        random_state: int | None = 0,
    ) -> None:
        self.target = target
        self.Cs = Cs
        self.alphas = alphas
        self.cv = cv
        self.heldout_fraction = heldout_fraction
        self.min_per_class = min_per_class
        self.random_state = random_state

    def fit(self, w: npt.ArrayLike, labels: npt.ArrayLike) -> Self:
        """Fit on latents ``w`` [N, w_dim] and ``labels`` [N] (NaN = unknown).

        Raises:
            ValueError: wrong shapes, too few labelled samples, or labels of one class only
                (the message gives the counts).
        """
        w_array, y = _check_samples(w, labels)
        binary = is_binary(y) if self.target == "auto" else self.target == "binary"
        # Centre and divide by one scalar: the solvers converge much faster on unit-scale data,
        # and a scalar leaves the geometry (the normal's direction) unchanged.
        self._mean = w_array.mean(axis=0) if w_array.size else np.zeros(w_array.shape[1])
        spread = (
            float(np.sqrt(((w_array - self._mean) ** 2).sum(axis=1).mean()))
            if w_array.size
            else 1.0
        )
        self._spread = spread if spread > 0 else 1.0
        scaled = (w_array - self._mean) / self._spread
        if binary:
            self._fit_binary(scaled, y)
        else:
            self._fit_continuous(scaled, y)
        self.is_binary_ = binary
        self.n_samples_ = int(y.shape[0])
        projections = w_array @ self.direction_
        self.std_ = float(projections.std()) if projections.size > 1 else 1.0
        return self

    def _folds(self, count: int) -> int:
        return max(2, min(self.cv, count))

    def _fit_binary(self, w: np.ndarray, y: np.ndarray) -> None:
        positives, negatives = int((y == 1).sum()), int((y == 0).sum())
        if min(positives, negatives) < self.min_per_class:
            raise ValueError(
                f"need at least {self.min_per_class} samples of each class to fit a direction; "
                f"got {positives} positive and {negatives} negative "
                f"({int(y.size)} labelled samples)"
            )
        train_w, test_w, train_y, test_y = train_test_split(
            w, y, test_size=self.heldout_fraction, stratify=y, random_state=self.random_state
        )
        folds = self._folds(int(min((train_y == 1).sum(), (train_y == 0).sum())))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        best_c, best_score = self.Cs[0], -np.inf
        for c in self.Cs:
            scores = []
            for fit_index, val_index in splitter.split(train_w, train_y):
                model = self._logistic(c).fit(train_w[fit_index], train_y[fit_index])
                scores.append(model.score(train_w[val_index], train_y[val_index]))
            if float(np.mean(scores)) > best_score:
                best_c, best_score = c, float(np.mean(scores))
        heldout = self._logistic(best_c).fit(train_w, train_y)
        self.heldout_accuracy_ = float(heldout.score(test_w, test_y))
        final = self._logistic(best_c).fit(w, y)
        self._set_direction(final.coef_[0], float(final.intercept_[0]))
        self.C_ = float(best_c)
        self.class_counts_ = (negatives, positives)

    def _logistic(self, c: float) -> _QuietLogistic:
        return _QuietLogistic(C=c, class_weight="balanced", max_iter=300)

    def _fit_continuous(self, w: np.ndarray, y: np.ndarray) -> None:
        minimum = max(2 * self.cv, 10)
        if y.size < minimum:
            raise ValueError(
                f"need at least {minimum} labelled samples to fit a direction; got {int(y.size)}"
            )
        if float(np.ptp(y)) == 0.0:
            raise ValueError(
                f"all {int(y.size)} labels have the same value {float(y[0]):g}; "
                "the attribute does not vary across the samples"
            )
        train_w, test_w, train_y, test_y = train_test_split(
            w, y, test_size=self.heldout_fraction, random_state=self.random_state
        )
        splitter = KFold(self._folds(train_y.size), shuffle=True, random_state=self.random_state)
        best_alpha, best_score = self.alphas[0], -np.inf
        for alpha in self.alphas:
            scores = [
                Ridge(alpha=alpha).fit(train_w[a], train_y[a]).score(train_w[b], train_y[b])
                for a, b in splitter.split(train_w)
            ]
            if float(np.mean(scores)) > best_score:
                best_alpha, best_score = alpha, float(np.mean(scores))
        heldout = Ridge(alpha=best_alpha).fit(train_w, train_y)
        self.r2_ = float(heldout.score(test_w, test_y))
        final = Ridge(alpha=best_alpha).fit(w, y)
        self._set_direction(final.coef_, float(final.intercept_))
        self.alpha_ = float(best_alpha)

    def _set_direction(self, coefficients: np.ndarray, intercept: float) -> None:
        norm = float(np.linalg.norm(coefficients))
        if norm == 0.0 or not math.isfinite(norm):
            raise ValueError("the fitted model has no direction (all coefficients are zero)")
        self.direction_ = (coefficients / norm).astype(np.float64)
        # Back to raw latent units: d . (w - mean) / spread + b / |coef|, times spread.
        self.offset_ = float(self._spread * intercept / norm - self.direction_ @ self._mean)

    def decision_function(self, w: npt.ArrayLike) -> np.ndarray:
        """Signed distance of latents ``w`` [N, w_dim] along the attribute, [N]."""
        return np.asarray(w, dtype=np.float64) @ self.direction_ + self.offset_

    def metrics(self) -> dict[str, float]:
        """Held-out quality and sample facts, as stored in ``Direction.metrics``."""
        metrics = {"n_samples": float(self.n_samples_), "std": self.std_}
        if self.is_binary_:
            metrics["heldout_accuracy"] = self.heldout_accuracy_
            metrics["C"] = self.C_
            metrics["n_negative"], metrics["n_positive"] = map(float, self.class_counts_)
        else:
            metrics["r2"] = self.r2_
            metrics["alpha"] = self.alpha_
        return metrics

    def to_direction(
        self,
        name: str,
        layers: Layers | None = None,
        space: Space = "w",
        fitted_with: Mapping[str, object] | None = None,
    ) -> Direction:
        """The fitted direction as data (``fitted_with`` is merged over ``get_params()``)."""
        record: dict[str, object] = {
            "estimator": type(self).__name__,
            **{k: _json_value(v) for k, v in self.get_params().items()},
            "model": "logistic" if self.is_binary_ else "ridge",
        }
        record.update(dict(fitted_with or {}))
        return Direction(name, self.direction_, layers, space, self.metrics(), record)


# -------------------------------------------------------------------------------------------
# Files


def default_directions_path(model_path: str | Path) -> Path:
    """``<model stem>.directions.json`` beside the model file (the vectors go in ``.npz``)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + DIRECTIONS_SUFFIX)


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix.lower() == ".npz":
        path = path.with_suffix(".json")
    elif path.suffix.lower() != ".json":
        path = path.with_name(path.name + ".json")
    return path, path.with_suffix(".npz")


def directions_to_json(directions: DirectionSet) -> tuple[dict[str, Any], FloatArray]:
    """Split a set into JSON data (names, layers, metrics, provenance) and vectors [K, w_dim]."""
    entries = [
        {
            "name": d.name,
            "layers": list(d.layers) if d.layers is not None else None,
            "space": d.space,
            "metrics": dict(d.metrics),
            "fitted_with": _json_value(dict(d.fitted_with)),
        }
        for d in directions
    ]
    index = {
        "model_fingerprint": directions.fingerprint,
        "model_name": directions.model_name,
        "w_dim": directions.w_dim,
        "directions": entries,
    }
    return index, directions.matrix()


def directions_from_json(
    index: Mapping[str, Any], vectors: np.ndarray, source: Path | None = None
) -> DirectionSet:
    """Rebuild a set from ``directions_to_json`` output.

    Raises:
        ValueError: the data is inconsistent (counts, shapes, names, layer ranges).
    """
    entries = index.get("directions")
    vectors = np.asarray(vectors, dtype=np.float32)
    if not isinstance(entries, list) or vectors.ndim != 2 or vectors.shape[0] != len(entries):
        raise ValueError(
            f"the index lists {len(entries) if isinstance(entries, list) else '?'} directions "
            f"but there are {vectors.shape[0] if vectors.ndim == 2 else '?'} vectors"
        )
    try:
        directions = tuple(
            Direction(
                name=str(entry["name"]),
                vector=vectors[row],
                layers=tuple(entry["layers"]) if entry.get("layers") is not None else None,
                space=entry.get("space", "w"),
                metrics=entry.get("metrics") or {},
                fitted_with=entry.get("fitted_with") or {},
            )
            for row, entry in enumerate(entries)
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"invalid direction entry ({exc})") from exc
    return DirectionSet(
        directions, index.get("model_fingerprint"), str(index.get("model_name") or ""), source
    )


def save_directions(directions: DirectionSet, path: str | Path) -> Path:
    """Write ``directions`` atomically as ``path`` (JSON index) plus ``path`` with ``.npz``.

    Returns:
        The JSON path.
    """
    json_path, npz_path = _paths(path)
    if not directions.directions:
        raise ValueError("there are no directions to save")
    data, vectors = directions_to_json(directions)
    index = {
        "kind": FILE_KIND,
        "schema_version": SCHEMA_VERSION,
        "vectors_file": npz_path.name,
        **data,
    }

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, vectors=vectors)

    atomic_write(npz_path, write_npz)
    text = json.dumps(index, indent=2, allow_nan=False)
    atomic_write(json_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return json_path


def load_directions(path: str | Path) -> DirectionSet:
    """Read a direction set written by ``save_directions`` (the JSON or the ``.npz`` path).

    Raises:
        DirectionFileError: missing, corrupted or inconsistent files.
    """
    json_path, npz_path = _paths(path)
    if not json_path.is_file():
        raise DirectionFileError(json_path, "file not found")
    try:
        index = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DirectionFileError(json_path, f"not a readable JSON file ({exc})") from exc
    if not isinstance(index, dict) or index.get("kind") != FILE_KIND:
        raise DirectionFileError(json_path, "not a Latent Studio direction file")
    if int(index.get("schema_version", 0)) > SCHEMA_VERSION:
        raise DirectionFileError(json_path, "written by a newer version of the app")
    npz_path = json_path.with_name(str(index.get("vectors_file") or npz_path.name))
    if not npz_path.is_file():
        raise DirectionFileError(npz_path, "vector file not found (it belongs beside the .json)")
    try:
        # Bounded reading: member sizes and the array header are checked before allocating.
        vectors = np.asarray(read_npz(npz_path)["vectors"], dtype=np.float32)
        if not np.isfinite(vectors).all():
            raise ValueError("the vectors contain NaN or infinite values")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DirectionFileError(npz_path, f"not a readable vector file ({exc})") from exc
    try:
        directions = directions_from_json(index, vectors, json_path)
    except ValueError as exc:
        message = str(exc).replace("there are", f"{npz_path.name} holds")
        raise DirectionFileError(json_path, message) from exc
    from editors.stylespace import find_style_directions

    # Localized versions shipped beside the set make its sliders act in style space.
    styles = find_style_directions(json_path)
    return dataclasses.replace(directions, styles=styles) if styles is not None else directions


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
