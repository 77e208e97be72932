"""Attribute-classifier training: images plus a labels CSV -> ``AttributeClassifier``.

Binary columns are learned with a logistic loss on logits, continuous ones with a squared error
in standardised units (mean and spread of the training split, stored in the network's
``target_mean``/``target_std``). Missing labels (empty cells) are left out of the loss. The
validation split (random, or by a group column such as a person's identity) gives accuracy per
binary attribute and MAE / R^2 per continuous one; they are stored in the classifier file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.classifier import AttributeClassifier, save_classifier
from models.jobs import OnStep, ShouldStop
from models.training.config import ClassifierConfig
from models.training.distributed import DistContext
from models.training.images import EpochSampler, ImageDataset, Preprocess
from models.training.labels import LabelTable, iter_chunks, read_labels, split_indices
from models.training.loop import TrainSummary, check_aligner, execute_job, load_job_images
from models.training.runs import RunFolder, read_json, write_json_atomic

CLASSIFIER_FILE = "classifier.safetensors"
_EVAL_BATCH = 128


def masked_losses(raw: torch.Tensor, targets: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """Per-attribute losses [A] over the known labels (NaN targets are ignored).

    Args:
        raw: network outputs [N, A] (logits or standardised values).
        targets: labels [N, A] (0/1, or standardised values), NaN where unknown.
        binary: [A] bool, True for logistic attributes.
    """
    known = ~torch.isnan(targets)
    safe = torch.where(known, targets, torch.zeros_like(targets))
    logistic = F.binary_cross_entropy_with_logits(raw, safe, reduction="none")
    squared = (raw - safe).square()
    per_item = torch.where(binary.view(1, -1), logistic, squared) * known
    return per_item.sum(0) / known.sum(0).clamp(min=1)


def attribute_metrics(
    predictions: np.ndarray,
    labels: np.ndarray,
    attributes: tuple[str, ...],
    binary: tuple[bool, ...],
) -> dict[str, float]:
    """Accuracy (binary, threshold 0.5) or MAE and R^2 (continuous) per attribute.

    Args:
        predictions: [N, A] probabilities or values in label units.
        labels: [N, A] labels, NaN where unknown.
    """
    out: dict[str, float] = {}
    for column, (name, is_binary) in enumerate(zip(attributes, binary, strict=True)):
        known = ~np.isnan(labels[:, column])
        y, p = labels[known, column], predictions[known, column]
        if y.size == 0:
            continue
        if is_binary:
            out[f"val_accuracy/{name}"] = float(np.mean((p >= 0.5) == (y >= 0.5)))
        else:
            out[f"val_mae/{name}"] = float(np.mean(np.abs(p - y)))
            total = float(np.sum((y - y.mean()) ** 2))
            out[f"val_r2/{name}"] = 1.0 - float(np.sum((p - y) ** 2)) / total if total > 0 else 0.0
    return out


class ClassifierTrainer:
    """One classifier optimisation step at a time, with its resumable state."""

    task = "classifier"

    def __init__(
        self, config: ClassifierConfig, dataset: ImageDataset, labels: LabelTable, dist: DistContext
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.labels = labels
        self.dist = dist
        self.device = dist.device
        self.local_batch = dist.local_batch(config.batch_size)
        train_rows, val_rows = split_indices(
            len(labels.image_index), config.validation_fraction, config.seed, labels.groups
        )
        self.train_rows, self.val_rows = train_rows, val_rows
        if len(train_rows) < 2:
            raise ValueError(f"only {len(train_rows)} labelled images left for training")
        self.images_per_step = config.batch_size
        self.total_steps = max(1, math.ceil(config.epochs * len(train_rows) / config.batch_size))
        self.sampler = EpochSampler(len(train_rows), config.batch_size, config.seed)
        self.binary_mask = torch.tensor(labels.binary, device=self.device)

        torch.manual_seed(config.seed)
        self.model = AttributeClassifier(
            labels.columns,
            labels.binary,
            input_size=config.input_size,
            width=config.width,
            num_stages=config.num_stages,
        )
        mean, std = self._target_scale(labels.values[train_rows], labels.binary)
        self.model.target_mean.copy_(torch.from_numpy(mean))
        self.model.target_std.copy_(torch.from_numpy(std))
        self.model.to(self.device)
        dist.broadcast_module(self.model)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.validation: dict[str, float] = {}
        self.last_epoch = 0
        torch.manual_seed(config.seed * 1000 + 29 + dist.rank)

    @staticmethod
    def _target_scale(
        values: np.ndarray, binary: tuple[bool, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        mean = np.zeros(len(binary), np.float32)
        std = np.ones(len(binary), np.float32)
        for column, is_binary in enumerate(binary):
            if not is_binary:
                known = values[:, column][~np.isnan(values[:, column])]
                if known.size:
                    mean[column] = known.mean()
                    std[column] = max(float(known.std()), 1e-6)
        return mean, std

    def _targets(self, rows: np.ndarray) -> torch.Tensor:
        values = torch.from_numpy(self.labels.values[rows]).to(self.device)
        mean, std = self.model.target_mean, self.model.target_std
        return torch.where(self.binary_mask, values, (values - mean) / std)

    def _lr(self, step: int) -> float:
        """Cosine decay from lr to 5% of it over the run."""
        progress = step / max(self.total_steps, 1)
        return self.config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """One AdamW step on a batch of flipped/shifted training images."""
        indices = self.sampler.batch(step)
        start = self.dist.rank * self.local_batch
        rows = self.train_rows[indices[start : start + self.local_batch]]
        images = self.dataset.batch(self.labels.image_index[rows], self.device)
        if self.config.mirror:
            flip = torch.rand(images.shape[0], device=self.device) < 0.5
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr(step)
        losses = masked_losses(self.model(images), self._targets(rows), self.binary_mask)
        loss = losses.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.dist.average_gradients(self.model.parameters())
        self.optimizer.step()
        epoch = int(self.sampler.epoch_of(step + 1))
        if epoch > self.last_epoch:  # validate once per epoch (no randomness: eval mode)
            self.last_epoch = epoch
            self.validation = self.validate()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Predictions [len(rows), A] in label units (probabilities for binary attributes)."""
        self.model.eval()
        outputs = []
        for chunk in iter_chunks(rows, _EVAL_BATCH):
            images = self.dataset.batch(self.labels.image_index[chunk], self.device)
            outputs.append(self.model.predict(images).float().cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, len(self.labels.columns)))

    def validate(self) -> dict[str, float]:
        """Metrics on the validation split."""
        predictions = self.predict_rows(self.val_rows)
        return attribute_metrics(
            predictions, self.labels.values[self.val_rows], self.labels.columns, self.labels.binary
        )

    def extra_metrics(self) -> dict[str, float]:
        """The latest validation metrics and the learning rate."""
        return {**self.validation, "lr": self.optimizer.param_groups[0]["lr"]}

    def sample_grid(self) -> None:
        """Classifiers have no sample grid."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Model, optimiser, and the cached validation metrics."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "validation": dict(self.validation),
            "last_epoch": self.last_epoch,
            "architecture": self.model.architecture(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` output.

        Raises:
            ValueError: the checkpoint holds another architecture.
        """
        if state["architecture"] != self.model.architecture():
            raise ValueError("the checkpoint holds a classifier of another architecture")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.validation = dict(state["validation"])
        self.last_epoch = int(state["last_epoch"])

    def export(self, run: RunFolder, step: int) -> Path:
        """Validate once more and write ``RUN_DIR/classifier.safetensors`` with the metrics."""
        self.validation = self.validate()
        config = self.config
        metrics = {
            **self.validation,
            "train_images": len(self.train_rows),
            "val_images": len(self.val_rows),
            "split": f"by {config.group_column}" if config.group_column else "random",
            "data": Path(config.data).name,
            "labels": Path(config.labels).name,
            "steps": step,
            "epochs": round(step * config.batch_size / len(self.train_rows), 3),
        }
        path = run.path / CLASSIFIER_FILE
        save_classifier(self.model.eval().cpu(), path, metrics=metrics)
        self.model.to(self.device)
        return path


def train_classifier(
    config: ClassifierConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    preprocess: Preprocess | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> TrainSummary:
    """Train an attribute classifier on ``config.data`` + ``config.labels`` into ``run_dir``.

    The label join (matched rows, missing files, unused columns) is recorded in
    ``RUN_DIR/data.json``. Returns the summary; ``artifact`` is the classifier file.

    Raises:
        Cancelled: stopped on request (``partial`` is the summary).
        ValueError, OSError: bad images, labels CSV or config.
    """
    check_aligner(config, preprocess)

    def build(
        dist: DistContext, run: RunFolder, report_to: OnStep | None, stop: ShouldStop | None
    ) -> ClassifierTrainer:
        dataset = load_job_images(config, config.resolution, dist, run, preprocess, report_to, stop)
        labels = read_labels(
            config.labels,
            dataset.names,
            columns=config.attributes,
            file_column=config.file_column,
            group_column=config.group_column,
            group_file=config.group_file,
            skip_rows_with=config.skip_rows_with,
        )
        if dist.is_main:
            summary = read_json(run.data_path) or {}
            report = labels.report
            summary["labels"] = {
                "file": config.labels,
                "columns": list(labels.columns),
                "binary": list(labels.binary),
                "rows": report.rows,
                "matched": report.matched,
                "dropped_rows": report.dropped_rows,
                "missing_files": len(report.missing_files),
                "missing_examples": list(report.missing_files[:10]),
                "unlabelled_images": report.unlabelled_images,
                "skipped_columns": report.skipped_columns,
                "report": report.describe(),
            }
            write_json_atomic(run.data_path, summary)
        return ClassifierTrainer(config, dataset, labels, dist)

    return execute_job(
        "classifier",
        config,
        run_dir,
        build,
        resume=resume,
        on_step=on_step,
        should_stop=should_stop,
    )
