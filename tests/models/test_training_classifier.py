"""The attribute-classifier job: learns colour/brightness labels, reports the join, resumes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.classifier import load_classifier
from models.jobs import Cancelled
from models.training.checkpoints import load_checkpoint
from models.training.classifier import attribute_metrics, masked_losses, train_classifier
from models.training.config import ClassifierConfig


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def make_labelled(
    folder: Path, count: int = 96, seed: int = 0
) -> tuple[Path, Path, dict[str, tuple[int, float]]]:
    """Images whose red-vs-blue tint is a binary label and whose brightness is a continuous one."""
    rng = np.random.default_rng(seed)
    images = folder / "images"
    images.mkdir(parents=True)
    rows = ["filename,is_red,brightness,person,note"]
    truth = {}
    for i in range(count):
        is_red = int(rng.integers(0, 2))
        brightness = float(rng.uniform(0.3, 1.0))
        base = np.array([220, 40, 40] if is_red else [40, 40, 220], np.float32) * brightness
        noise = rng.normal(0, 12, (16, 16, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(
            images / f"im{i:03d}.png"
        )
        rows.append(f"im{i:03d}.png,{is_red},{brightness * 100:.2f},p{i // 3},text")
        truth[f"im{i:03d}.png"] = (is_red, brightness * 100)
    rows.append("gone.png,1,50,p999,missing file")
    labels = folder / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return images, labels, truth


def config_for(images: Path, labels: Path, **overrides: object) -> ClassifierConfig:
    fields: dict[str, object] = dict(
        data=str(images),
        labels=str(labels),
        resolution=16,
        input_size=16,
        width=8,
        num_stages=2,
        batch_size=16,
        epochs=12,
        lr=0.01,
        validation_fraction=0.25,
        group_column="person",
        device="cpu",
        threads=1,
        tick_seconds=0,
        checkpoint_minutes=1e6,
    )
    fields.update(overrides)
    return ClassifierConfig(**fields)  # type: ignore[arg-type]


def test_masked_losses_match_naive_formulas() -> None:
    raw = torch.tensor([[0.5, 1.0], [-2.0, 0.0], [1.5, -1.0]])
    targets = torch.tensor([[1.0, 0.5], [math.nan, 1.0], [0.0, math.nan]])
    losses = masked_losses(raw, targets, torch.tensor([True, False]))

    def bce(x: float, y: float) -> float:
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    assert float(losses[0]) == pytest.approx((bce(0.5, 1.0) + bce(1.5, 0.0)) / 2, rel=1e-5)
    assert float(losses[1]) == pytest.approx(((1.0 - 0.5) ** 2 + (0.0 - 1.0) ** 2) / 2, rel=1e-5)


def test_attribute_metrics() -> None:
    predictions = np.array([[0.9, 10.0], [0.2, 20.0], [0.6, 33.0], [0.4, 41.0]])
    labels = np.array([[1, 10], [0, 22], [0, 30], [np.nan, 40]], dtype=float)
    metrics = attribute_metrics(predictions, labels, ("a", "b"), (True, False))
    assert metrics["val_accuracy/a"] == pytest.approx(2 / 3)
    assert metrics["val_mae/b"] == pytest.approx((0 + 2 + 3 + 1) / 4)
    y = labels[:, 1]
    expected_r2 = 1 - np.sum((predictions[:, 1] - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert metrics["val_r2/b"] == pytest.approx(expected_r2)


def test_classifier_learns_and_stores_its_metrics(tmp_path: Path) -> None:
    images, labels, truth = make_labelled(tmp_path)
    summary = train_classifier(config_for(images, labels), tmp_path / "run")
    classifier = load_classifier(summary.artifact)
    assert classifier.attributes == ["is_red", "brightness"] and classifier.binary == [True, False]
    metrics = classifier.metrics
    assert metrics["val_accuracy/is_red"] >= 0.95
    assert metrics["val_mae/brightness"] < 12.0  # labels span 30..100
    assert metrics["split"] == "by person" and metrics["train_images"] + metrics["val_images"] == 96

    # Independent check on a few images: predictions follow the colour.
    names = sorted(truth)[:8]
    batch = torch.stack(
        [
            torch.from_numpy(np.asarray(Image.open(images / n), np.float32)).permute(2, 0, 1)
            / 127.5
            - 1
            for n in names
        ]
    )
    with torch.no_grad():
        probabilities = classifier.predict(batch)[:, 0].numpy()
    assert ((probabilities > 0.5) == np.array([truth[n][0] for n in names], bool)).mean() >= 0.85

    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["labels"]["missing_files"] == 1 and data["labels"]["missing_examples"] == [
        "gone.png"
    ]
    assert "note" in data["labels"]["skipped_columns"]


def test_classifier_resume_is_exact(tmp_path: Path) -> None:
    images, labels, _ = make_labelled(tmp_path, count=48)
    config = config_for(images, labels, epochs=2)
    straight = train_classifier(config, tmp_path / "a")
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 3  # data preparation polls once, then once per step

    with pytest.raises(Cancelled):
        train_classifier(config, tmp_path / "b", should_stop=stop_after_two)
    resumed = train_classifier(config, tmp_path / "b", resume=True)
    a = load_checkpoint(straight.checkpoint)["trainer"]["model"]
    b = load_checkpoint(resumed.checkpoint)["trainer"]["model"]
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_non_numeric_label_column_is_a_clear_error(tmp_path: Path) -> None:
    images, labels, _ = make_labelled(tmp_path, count=8)
    with pytest.raises(ValueError, match="column 'note': 'text' is not a number"):
        train_classifier(
            config_for(images, labels, attributes=("is_red", "note")), tmp_path / "run"
        )
