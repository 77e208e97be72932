"""Unsupervised components: PCA against a covariance eigen-decomposition, SeFa against an SVD."""

from __future__ import annotations

import numpy as np
import pytest

from editors.unsupervised import (
    ComponentConfig,
    PCADirectionEstimator,
    compute_components,
    modulation_weights,
    sample_w,
    sefa_basis,
)


def test_pca_matches_covariance_eigenvectors() -> None:
    rng = np.random.default_rng(0)
    # Anisotropic data with well-separated variances.
    w = (
        rng.normal(size=(2000, 6))
        * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2])
        @ np.linalg.qr(rng.normal(size=(6, 6)))[0]
    )
    estimator = PCADirectionEstimator(n_components=3).fit(w)
    centred = w - w.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / (len(w) - 1))
    for k in range(3):
        expected = vectors[:, -1 - k]
        assert abs(float(estimator.components_[k] @ expected)) > 0.9999
        assert estimator.stdev_[k] == pytest.approx(np.sqrt(values[-1 - k]), rel=1e-4)
    directions = estimator.to_directions(layers=(0, 4))
    assert [d.name for d in directions] == ["Component 0", "Component 1", "Component 2"]
    assert directions[0].layers == (0, 4) and directions[0].scale == pytest.approx(
        estimator.stdev_[0]
    )


def test_sefa_matches_svd_of_normalised_modulation_weights(tiny_generator) -> None:
    generator = tiny_generator(resolution=16, w_dim=16)
    state = generator.state_dict()
    # Independent reference: gather the weights by parameter name and take right singular vectors.
    names = ["conv1.conv.modulation.weight"] + [
        f"convs.{j}.conv.modulation.weight" for j in range(4)
    ]
    rows = [0, 1, 2, 3, 4]
    for layers, wanted in [(None, rows), ((1, 3), [1, 2])]:
        stacked = np.concatenate([state[names[r]].double().numpy() for r in wanted])
        stacked /= np.linalg.norm(stacked, axis=1, keepdims=True)
        _, singular, vt = np.linalg.svd(stacked, full_matrices=False)
        vectors, eigenvalues = sefa_basis(generator, layers)
        assert [row for row, _ in modulation_weights(generator, layers)] == wanted
        for k in range(3):
            assert abs(float(vectors[k] @ vt[k])) > 0.999
            assert eigenvalues[k] == pytest.approx(singular[k] ** 2, rel=1e-4)
        assert vectors[0][np.abs(vectors[0]).argmax()] > 0  # deterministic sign


def test_compute_components_jobs(tiny_generator) -> None:
    generator = tiny_generator(resolution=16, w_dim=16)
    progress = []
    pca = compute_components(
        generator, ComponentConfig(n_components=4, num_samples=500), on_step=progress.append
    )
    assert pca.names == ("Component 0", "Component 1", "Component 2", "Component 3")
    w = sample_w(generator, 500)
    spread = (w @ pca["Component 0"].vector).std(ddof=1)
    assert pca["Component 0"].scale == pytest.approx(spread, rel=1e-3)
    assert progress[-1].step == progress[-1].total
    sefa = compute_components(
        generator, ComponentConfig(method="sefa", n_components=3, num_samples=200, layers=(0, 4))
    )
    assert len(sefa) == 3 and sefa["Component 1"].layers == (0, 4)
    assert sefa.fingerprint == generator.fingerprint()
    with pytest.raises(ValueError, match="no styled convolution reads ws rows 5-5"):
        sefa_basis(generator, (5, 6))
