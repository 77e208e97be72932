"""Unsupervised directions, shown as "Component k" sliders.

Two recipes:
- PCA of sampled w (GANSpace, Härkönen et al. 2020): principal axes of the W distribution.
- SeFa (closed-form factorisation, Shen & Zhou 2021): eigenvectors of sum_l A_l^T A_l over the
  style-modulation weights A_l [C_l, w_dim] of the styled convolutions (each output channel's
  weight row normalised to unit length first), optionally only the layers of a row range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Self

import numpy as np
import numpy.typing as npt
import torch
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA

from editors.directions import Direction, DirectionSet, Layers, check_layers
from models.generator import Generator
from models.jobs import OnStep, Progress, ShouldStop, check_stop, report

FloatArray = npt.NDArray[np.float32]
Method = Literal["pca", "sefa"]
COMPONENT_PREFIX = "Component"


def component_name(index: int) -> str:
    """Slider name of component ``index`` ("Component 0", ...)."""
    return f"{COMPONENT_PREFIX} {index}"


def sample_w(
    generator: Generator,
    num_samples: int,
    *,
    seed: int = 0,
    truncation_psi: float = 1.0,
    batch_size: int = 1024,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> FloatArray:
    """Map ``num_samples`` standard-normal z (from ``seed``) to w.

    Returns:
        [num_samples, w_dim] float32.
    """
    random = torch.Generator().manual_seed(seed)
    chunks: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, num_samples, batch_size):
            check_stop(should_stop)
            count = min(batch_size, num_samples - start)
            z = torch.randn(count, generator.z_dim, generator=random).to(generator.device)
            chunks.append(generator.mapping(z, truncation_psi=truncation_psi).float().cpu().numpy())
            report(on_step, Progress(start + count, num_samples, "sampling latents"))
    return np.concatenate(chunks)


class PCADirectionEstimator(BaseEstimator):
    """Principal axes of sampled latents (GANSpace), with scikit-learn naming."""

    def __init__(self, *, n_components: int = 20, random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, w: npt.ArrayLike, y: None = None) -> Self:
        """Fit on latents ``w`` [N, w_dim].

        Sets ``components_`` [K, w_dim] (unit rows), ``explained_variance_ratio_`` [K],
        ``stdev_`` [K] (spread along each axis) and ``mean_`` [w_dim].
        """
        data = np.asarray(w, dtype=np.float64)
        if data.ndim != 2:
            raise ValueError(f"latents must have shape [N, w_dim], got {list(data.shape)}")
        count = min(self.n_components, data.shape[0], data.shape[1])
        if count < 1 or data.shape[0] < 2:
            raise ValueError(f"PCA needs at least 2 latents, got {data.shape[0]}")
        pca = PCA(n_components=count, svd_solver="full", random_state=self.random_state).fit(data)
        self.components_ = pca.components_.astype(np.float32)
        self.explained_variance_ratio_ = pca.explained_variance_ratio_.astype(np.float32)
        self.stdev_ = np.sqrt(pca.explained_variance_).astype(np.float32)
        self.mean_ = pca.mean_.astype(np.float32)
        return self

    def to_directions(
        self, layers: Layers | None = None, space: str = "w"
    ) -> tuple[Direction, ...]:
        """One ``Direction`` per component, named "Component k"."""
        return tuple(
            Direction(
                component_name(k),
                vector,
                layers,
                space,  # type: ignore[arg-type]
                {
                    "std": float(self.stdev_[k]),
                    "explained_variance_ratio": float(self.explained_variance_ratio_[k]),
                },
                {"method": "pca", "estimator": type(self).__name__, **self.get_params()},
            )
            for k, vector in enumerate(self.components_)
        )


def modulation_weights(
    generator: Generator, layers: Layers | None = None
) -> list[tuple[int, torch.Tensor]]:
    """The style-modulation weights of the styled convolutions, with the ws row each one reads.

    StyleGAN2 (rosinality layout): ``conv1`` reads row 0 and ``convs[j]`` reads row j + 1. The
    ToRGB layers are left out (they change colour, not content), as SeFa does.

    Returns:
        (row, weight [C_out_channels_of_style, w_dim]) for every conv whose row is in ``layers``.

    Raises:
        ValueError: the generator has no style modulation (e.g. ProGAN) or no conv in ``layers``.
    """
    if generator.kind != "stylegan2":
        raise ValueError(f"SeFa needs a style-based generator; this one is {generator.kind}")
    convs = [generator.conv1, *generator.convs]  # type: ignore[attr-defined]
    start, end = layers if layers is not None else (0, generator.num_ws)
    chosen = [
        (row, conv.conv.modulation.weight.detach())
        for row, conv in enumerate(convs)
        if start <= row < end
    ]
    if not chosen:
        raise ValueError(f"no styled convolution reads ws rows {start}-{end - 1}")
    return chosen


def sefa_basis(generator: Generator, layers: Layers | None = None) -> tuple[FloatArray, FloatArray]:
    """SeFa directions: eigenvectors of sum A^T A over the chosen modulation weights.

    Returns:
        ``vectors`` [w_dim, w_dim] (rows, strongest first, sign fixed so the largest entry is
        positive) and ``eigenvalues`` [w_dim] (descending).
    """
    weights = [w.to(torch.float64).cpu().numpy() for _, w in modulation_weights(generator, layers)]
    stacked = np.concatenate(weights, axis=0)  # [sum C, w_dim]
    stacked = stacked / np.maximum(np.linalg.norm(stacked, axis=1, keepdims=True), 1e-12)
    eigenvalues, eigenvectors = np.linalg.eigh(stacked.T @ stacked)
    order = np.argsort(eigenvalues)[::-1]
    vectors = eigenvectors[:, order].T
    signs = np.sign(vectors[np.arange(len(vectors)), np.abs(vectors).argmax(axis=1)])
    vectors = vectors * signs[:, None]
    return vectors.astype(np.float32), eigenvalues[order].astype(np.float32)


@dataclass(frozen=True, slots=True)
class ComponentConfig:
    """How components are computed."""

    method: Method = "pca"  # "pca" (GANSpace) or "sefa" (closed form)
    n_components: int = 20  # sliders to show
    num_samples: int = 10000  # latents sampled (PCA; for SeFa only to measure each axis' spread)
    layers: Layers | None = None  # rows the components act on (SeFa also factorises only these)
    seed: int = 0  # seeds the sampled latents
    truncation_psi: float = 1.0  # truncation of the sampled latents

    def __post_init__(self) -> None:
        if self.method not in ("pca", "sefa"):
            raise ValueError(f"method must be pca or sefa, got {self.method!r}")
        if self.n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {self.n_components}")
        if self.num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {self.num_samples}")
        object.__setattr__(self, "layers", check_layers(self.layers))

    def replace(self, **changes: object) -> ComponentConfig:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def compute_components(
    generator: Generator,
    config: ComponentConfig,
    *,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> DirectionSet:
    """Compute "Component k" directions for ``generator`` (a background job).

    Each component records its spread over the sampled latents in ``metrics["std"]``, the unit
    of its slider.
    """
    space = "z" if generator.kind == "progan" else "w"
    w = sample_w(
        generator,
        config.num_samples,
        seed=config.seed,
        truncation_psi=config.truncation_psi,
        on_step=on_step,
        should_stop=should_stop,
    )
    check_stop(should_stop)
    if config.method == "pca":
        estimator = PCADirectionEstimator(
            n_components=config.n_components, random_state=config.seed
        ).fit(w)
        directions = estimator.to_directions(config.layers, space)
    else:
        vectors, eigenvalues = sefa_basis(generator, config.layers)
        count = min(config.n_components, len(vectors))
        spreads = (w.astype(np.float64) @ vectors[:count].T.astype(np.float64)).std(axis=0)
        directions = tuple(
            Direction(
                component_name(k),
                vectors[k],
                config.layers,
                space,  # type: ignore[arg-type]
                {"std": float(spreads[k]), "eigenvalue": float(eigenvalues[k])},
                {"method": "sefa", "layers": list(config.layers) if config.layers else None},
            )
            for k in range(count)
        )
    report(
        on_step, Progress(config.num_samples, config.num_samples, f"{len(directions)} components")
    )
    return DirectionSet(directions, generator.fingerprint(), generator.name)


def explained(directions: DirectionSet) -> Sequence[str]:
    """A short per-component note for tooltips ("12.3% of variance" or "eigenvalue 4.1")."""
    notes = []
    for direction in directions:
        if "explained_variance_ratio" in direction.metrics:
            notes.append(f"{100 * direction.metrics['explained_variance_ratio']:.1f}% of variance")
        elif "eigenvalue" in direction.metrics:
            notes.append(f"eigenvalue {direction.metrics['eigenvalue']:.3g}")
        else:
            notes.append("")
    return notes
