"""Directions: fitting recovers known directions, locking, shifting, files, degenerate input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from editors.direction_estimators import AttributeDirectionEstimator
from editors.direction_files import (
    DirectionFileError,
    default_directions_path,
    load_directions,
    save_directions,
)
from editors.direction_fitting import DirectionFitConfig, fit_directions
from editors.directions import (
    Direction,
    DirectionSet,
    check_compatible,
    effective_vectors,
    orthogonalize,
    shift,
)
from editors.labelers import Labeler, SampleBatch
from models.generator import seed_to_z
from models.jobs import Cancelled


class LinearLabeler(Labeler):
    """Labels that are a known linear function of w (the ground truth for recovery tests)."""

    needs_images = False

    def __init__(
        self, directions: dict[str, np.ndarray], offsets: dict[str, float], binary: bool
    ) -> None:
        self.name = "linear"
        self.attributes = tuple(directions)
        self.binary = (binary,) * len(directions)
        self.directions = directions
        self.offsets = offsets

    def label(self, batch: SampleBatch) -> np.ndarray:
        columns = []
        for name in self.attributes:
            score = batch.w.astype(np.float64) @ self.directions[name] + self.offsets[name]
            columns.append((score > 0).astype(np.float64) if self.binary[0] else score)
        return np.stack(columns, axis=1).astype(np.float32)


def sampled_w(generator, seeds) -> np.ndarray:
    with torch.inference_mode():
        return generator.mapping(seed_to_z(seeds, generator.z_dim), truncation_psi=0.7).numpy()


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("binary", [True, False])
def test_fit_recovers_a_known_direction(tiny_generator, binary: bool) -> None:
    generator = tiny_generator(resolution=8, w_dim=32)
    rng = np.random.default_rng(1)
    truth = unit(rng.normal(size=32))
    # Put the threshold at the sample median so the classes are balanced.
    w = sampled_w(generator, range(600))
    offset = -float(np.median(w @ truth))
    labeler = LinearLabeler({"smile": truth}, {"smile": offset}, binary)
    steps = []
    result = fit_directions(
        generator,
        labeler,
        DirectionFitConfig(num_samples=600, batch_size=100, layers=(0, 2)),
        on_step=steps.append,
    )
    direction = result["smile"]
    cosine = float(direction.vector @ truth)
    assert cosine > 0.95, cosine
    assert direction.layers == (0, 2)
    assert direction.space == "w"
    assert result.fingerprint == generator.fingerprint()
    if binary:
        assert direction.metrics["heldout_accuracy"] > 0.9
    else:
        assert direction.metrics["r2"] > 0.99
    # The slider unit is the spread of the samples along the direction.
    assert direction.scale == pytest.approx(float((w @ direction.vector).std()), rel=1e-3)
    assert direction.fitted_with["labeler"] == "linear"
    assert steps[-1].step == steps[-1].total


def test_fit_cancels_between_batches(tiny_generator) -> None:
    generator = tiny_generator(resolution=8, w_dim=32)
    labeler = LinearLabeler({"a": unit(np.ones(32))}, {"a": 0.0}, False)
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        fit_directions(
            generator,
            labeler,
            DirectionFitConfig(num_samples=50, batch_size=10),
            should_stop=lambda: next(calls) >= 2,
        )


def test_degenerate_labels_raise_with_counts() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(40, 8))
    with pytest.raises(ValueError, match="got 40 positive and 0 negative"):
        AttributeDirectionEstimator().fit(w, np.ones(40))
    labels = np.zeros(40)
    labels[:3] = 1
    with pytest.raises(ValueError, match="got 3 positive and 37 negative"):
        AttributeDirectionEstimator().fit(w, labels)
    with pytest.raises(ValueError, match="all 40 labels have the same value 2"):
        AttributeDirectionEstimator(target="continuous").fit(w, np.full(40, 2.0))
    with pytest.raises(ValueError, match=r"labels must have shape \[40\]"):
        AttributeDirectionEstimator().fit(w, np.ones(39))


def test_fit_directions_reports_labeler_failures(tiny_generator) -> None:
    generator = tiny_generator(resolution=8, w_dim=32)

    class NoFaces(Labeler):
        name = "landmarks"
        attributes = ("smile", "face_detected")
        binary = (False, True)
        needs_images = True

        def label(self, batch: SampleBatch) -> np.ndarray:
            n = len(batch.seeds)
            assert batch.images is not None and batch.images.shape[0] == n
            smile = np.full(n, np.nan)
            smile[0] = 0.5  # one face found per batch of 10
            return np.stack([smile, np.zeros(n)], axis=1).astype(np.float32)

    with pytest.raises(ValueError) as info:
        fit_directions(generator, NoFaces(), DirectionFitConfig(num_samples=40, batch_size=10))
    message = str(info.value)
    assert "smile: the landmarks labeler gave a value for only 4 of 40 samples" in message
    assert "face_detected: need at least 5 samples of each class" in message
    assert "got 0 positive and 40 negative" in message


def test_partial_failure_keeps_the_good_directions(tiny_generator) -> None:
    generator = tiny_generator(resolution=8, w_dim=32)
    truth = unit(np.arange(32.0))
    labeler = LinearLabeler(
        {"good": truth, "flat": np.zeros(32)}, {"good": 0.0, "flat": 2.0}, False
    )
    result = fit_directions(generator, labeler, DirectionFitConfig(num_samples=60, batch_size=30))
    assert result.names == ("good",)
    assert len(result.notes) == 1 and result.notes[0].startswith("flat: all 60 labels")


def test_fit_config_json_round_trip_and_typos() -> None:
    config = DirectionFitConfig(
        num_samples=10, seeds=(3, 4, 5), attributes=("smile",), layers=(0, 4)
    )
    assert DirectionFitConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown direction-fit settings: num_sample"):
        DirectionFitConfig.from_json(json.dumps({"num_sample": 3}))


def naive_gram_schmidt(vectors: list[np.ndarray]) -> list[np.ndarray]:
    basis: list[np.ndarray] = []
    for v in vectors:
        v = v.astype(np.float64).copy()
        for b in basis:
            v = v - (v @ b) / (b @ b) * b
        basis.append(v)
    return basis


def test_orthogonalize_matches_gram_schmidt() -> None:
    rng = np.random.default_rng(3)
    a, b, c = (rng.normal(size=16) for _ in range(3))
    gs = naive_gram_schmidt([a, b, c])
    np.testing.assert_allclose(orthogonalize(c, [a, b]), unit(gs[2]), atol=1e-6)
    # Nothing locked: only normalised. Duplicate (rank-deficient) locks are no special case.
    np.testing.assert_allclose(orthogonalize(c, []), unit(c), atol=1e-6)
    np.testing.assert_allclose(
        orthogonalize(c, [a, a, 2 * a]), unit(naive_gram_schmidt([a, c])[1]), atol=1e-6
    )
    # A direction inside the locked span has nothing left to move.
    assert not orthogonalize(a + b, [a, b]).any()


def test_locking_keeps_locked_scores_constant() -> None:
    rng = np.random.default_rng(4)
    vectors = [unit(rng.normal(size=16) + np.eye(16)[0] * 2) for _ in range(4)]
    directions = DirectionSet(tuple(Direction(n, v) for n, v in zip("abcd", vectors, strict=True)))
    effective = effective_vectors(directions, {"c", "a"})
    # Locked axes: Gram-Schmidt in set order (a then c); others orthogonal to both.
    gs = naive_gram_schmidt([vectors[0], vectors[2]])
    np.testing.assert_allclose(effective["a"], unit(gs[0]), atol=1e-6)
    np.testing.assert_allclose(effective["c"], unit(gs[1]), atol=1e-6)
    for name in "bd":
        assert abs(effective[name] @ vectors[0]) < 1e-6
        assert abs(effective[name] @ vectors[2]) < 1e-6
    assert effective_vectors(directions, set())["b"] is directions["b"].vector


def test_shift_respects_layers_and_is_pure() -> None:
    rng = np.random.default_rng(5)
    ws = rng.normal(size=(6, 8)).astype(np.float32)
    ws.setflags(write=False)
    direction = Direction("fine", rng.normal(size=8), layers=(4, 10))
    moved = shift(ws, direction, 1.5)
    expected = ws.copy()
    expected[4:] = ws[4:] + np.float32(1.5) * direction.vector
    np.testing.assert_array_equal(moved, expected)
    assert moved[:4].tobytes() == ws[:4].tobytes()  # bit-identical, so the synthesis cache hits
    batch = shift(np.stack([ws, ws]), direction, -1.0, layers=None)
    np.testing.assert_allclose(batch[1], ws - direction.vector, atol=1e-6)
    with pytest.raises(ValueError, match=r"ws must be \[num_ws, 8\]"):
        shift(np.zeros((6, 7)), direction, 1.0)


def test_direction_validation() -> None:
    with pytest.raises(ValueError, match="zero or not finite"):
        Direction("x", np.zeros(4))
    with pytest.raises(ValueError, match="0 <= start < end"):
        Direction("x", np.ones(4), layers=(3, 3))
    with pytest.raises(ValueError, match="repeated: x"):
        DirectionSet((Direction("x", np.ones(4)), Direction("x", np.ones(4))))
    d = Direction("x", [3.0, 4.0])
    np.testing.assert_allclose(d.vector, [0.6, 0.8])
    assert not d.vector.flags.writeable


def test_direction_files_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(6)
    original = DirectionSet(
        (
            Direction(
                "smile",
                rng.normal(size=12),
                (0, 4),
                "w",
                {"heldout_accuracy": 0.9, "std": 2.5},
                {"labeler": "manual", "seeds": "0-9"},
            ),
            Direction("age", rng.normal(size=12), None, "w", {"r2": 0.7}),
        ),
        fingerprint="abc123",
        model_name="tiny",
    )
    model = tmp_path / "faces.pt"
    path = save_directions(original, default_directions_path(model))
    assert path == tmp_path / "faces.directions.json"
    assert (tmp_path / "faces.directions.npz").is_file()
    loaded = load_directions(tmp_path / "faces.directions.npz")  # either file of the pair works
    assert loaded.names == ("smile", "age")
    assert loaded.fingerprint == "abc123" and loaded.source == path
    for a, b in zip(original, loaded, strict=True):
        np.testing.assert_array_equal(a.vector, b.vector)
        assert (a.layers, dict(a.metrics), dict(a.fitted_with)) == (
            b.layers,
            dict(b.metrics),
            dict(b.fitted_with),
        )
    assert loaded["smile"].scale == 2.5 and loaded["age"].scale == 1.0
    assert loaded.fingerprint_mismatch("abc123") is None
    warning = loaded.fingerprint_mismatch("fff")
    assert warning is not None and "fitted on another model 'tiny'" in warning and "fff" in warning
    with pytest.raises(ValueError, match="12 dimensions but the model's latents have 32"):
        check_compatible(loaded, 32, "w")


def test_saved_provenance_names_the_classifier_relative_to_the_file(tmp_path) -> None:
    classifier = tmp_path / "runs" / "cls" / "classifier.safetensors"
    facts = {"labeler": "classifier", "classifier": str(classifier), "margin": 0.1}
    vector = np.eye(4, dtype=np.float32)[0]
    directions = DirectionSet((Direction("smile", vector, fitted_with=facts),), fingerprint="f")
    path = save_directions(directions, tmp_path / "models" / "m.directions.json")
    recorded = load_directions(path)["smile"].fitted_with
    assert recorded["classifier"] == "../runs/cls/classifier.safetensors"
    assert (path.parent / recorded["classifier"]).resolve() == classifier.resolve()
    assert str(tmp_path) not in path.read_text()
    assert directions["smile"].fitted_with["classifier"] == str(classifier)  # the set is unchanged


def test_broken_direction_files(tmp_path) -> None:
    with pytest.raises(DirectionFileError, match="file not found"):
        load_directions(tmp_path / "none.directions.json")
    bad = tmp_path / "bad.directions.json"
    bad.write_text("{not json")
    with pytest.raises(DirectionFileError, match="not a readable JSON file"):
        load_directions(bad)
    save_directions(DirectionSet((Direction("a", np.ones(4)),)), tmp_path / "ok.directions.json")
    (tmp_path / "ok.directions.npz").unlink()
    with pytest.raises(DirectionFileError, match="vector file not found"):
        load_directions(tmp_path / "ok.directions.json")
    index = json.loads((tmp_path / "ok.directions.json").read_text())
    index["directions"].append(index["directions"][0])
    save_directions(DirectionSet((Direction("a", np.ones(4)),)), tmp_path / "two.directions.json")
    (tmp_path / "two.directions.json").write_text(
        json.dumps(index | {"vectors_file": "two.directions.npz"})
    )
    with pytest.raises(
        DirectionFileError, match=r"lists 2 directions but two\.directions\.npz holds 1"
    ):
        load_directions(tmp_path / "two.directions.json")


def test_decision_function_orders_samples() -> None:
    rng = np.random.default_rng(7)
    w = rng.normal(size=(200, 6))
    truth = unit(np.array([1.0, -2, 0, 0, 1, 0]))
    estimator = AttributeDirectionEstimator().fit(w, (w @ truth > 0.1).astype(float))
    scores = estimator.decision_function(w)
    assert scores.shape == (200,)
    assert math.isclose(float(np.corrcoef(scores, w @ truth)[0, 1]), 1.0, abs_tol=0.02)


def test_cli_edit_applies_directions(tiny_checkpoint, tmp_path, capsys) -> None:
    from PIL import Image

    from editors.cli import main
    from editors.rendering import Renderer
    from editors.state import EditState
    from models import load_generator

    model = tiny_checkpoint(resolution=16)
    generator = load_generator(model, "cpu")
    rng = np.random.default_rng(8)
    directions = DirectionSet(
        (
            Direction("smile", rng.normal(size=32), metrics={"std": 0.5}),
            Direction("age", rng.normal(size=32)),
        ),
        fingerprint=generator.fingerprint(),
    )
    save_directions(directions, default_directions_path(model))
    w = rng.normal(size=(1, generator.num_ws, 32)).astype(np.float32)
    latent = tmp_path / "latent.npz"
    np.savez(latent, w=w, metadata=np.array("{}"))
    out = tmp_path / "edited.png"
    code = main(
        ["edit", str(latent), "--model", str(model), "--direction", "smile=+2", "--out", str(out)]
    )
    assert code == 0 and "wrote" in capsys.readouterr().out
    # Reference: +2σ = 2 * 0.5 latent units along the unit vector, on every row.
    expected_ws = w[0] + 1.0 * directions["smile"].vector
    expected = (
        Renderer(generator).render(EditState(seed=None, base_ws=expected_ws).render_args()).rgb
    )
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    code = main(
        ["edit", str(latent), "--model", str(model), "--direction", "frown=1", "--out", str(out)]
    )
    assert code == 2 and "no direction called frown; it has smile, age" in capsys.readouterr().err
    code = main(
        ["edit", str(latent), "--model", str(model), "--direction", "smile", "--out", str(out)]
    )
    assert code == 2 and "use NAME=AMOUNT" in capsys.readouterr().err
