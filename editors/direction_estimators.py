"""Estimators that find an attribute's direction in latent space from labelled samples.

They follow scikit-learn (parameters in ``__init__``, learned attributes ending in ``_``, ``fit``
returning ``self``) and hand their result over as a plain ``Direction``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal, Self

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from editors.directions import Direction, Layers, Space, json_value

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
            **{k: json_value(v) for k, v in self.get_params().items()},
            "model": "logistic" if self.is_binary_ else "ridge",
        }
        record.update(dict(fitted_with or {}))
        return Direction(name, self.direction_, layers, space, self.metrics(), record)
