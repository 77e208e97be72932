"""The training tasks in one table: config class, run function, what it makes, resume, model.

``main.py train TASK`` (``editors/cli/train.py``), the training wizard and the GUI's run list
all read ``TRAINING_TASKS``; adding a task here adds it everywhere. Run functions are named and
imported when a run starts, so the window does not load the training code to show the table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from models.jobs import OnStep, ShouldStop
from models.training.config import (
    ClassifierConfig,
    DirectionsConfig,
    EncoderConfig,
    LoopConfig,
    ProGANConfig,
    RunConfig,
    StyleGAN2Config,
)

Artifact = Literal["model", "classifier", "encoder", "directions"]


@dataclass(frozen=True, slots=True)
class TrainingTask:
    """One kind of training run."""

    name: str  # the CLI's TASK and the run folder's "task"
    config_type: type[RunConfig]
    runner: str  # "module:function" with the signature of ``run`` below, imported on use
    artifact: Artifact  # what a finished run writes
    resumes: bool  # a stopped run continues from its newest checkpoint (``--resume``)
    needs_model: bool  # trains for an existing generator (``config.model``)
    help: str  # one line for ``main.py train --help``
    title: str  # the wizard's choice
    description: str  # the wizard's note under it

    @property
    def uses_run_loop(self) -> bool:
        """True for the tasks with seed, checkpoints and samples (``LoopConfig`` fields)."""
        return issubclass(self.config_type, LoopConfig)

    def run_function(self) -> Callable[..., Any]:
        """The function that trains this task (imports its module)."""
        module, _, name = self.runner.partition(":")
        return getattr(importlib.import_module(module), name)

    def run(
        self,
        config: RunConfig,
        run_dir: str | Path,
        *,
        resume: bool = False,
        on_step: OnStep | None = None,
        should_stop: ShouldStop | None = None,
    ) -> Any:
        """Train ``config`` into ``run_dir``, aligning faces while caching when it asks for that.

        Returns the ``TrainSummary``; raises what the run function raises (``Cancelled`` with
        the partial summary when stopped).
        """
        preprocess = None
        if getattr(config, "align_faces", False):
            from editors.alignment_batch import face_aligner

            size = getattr(config, "resolution", getattr(config, "input_size", 64))
            preprocess = face_aligner(size)
        return self.run_function()(
            config,
            run_dir,
            resume=resume,
            preprocess=preprocess,
            on_step=on_step,
            should_stop=should_stop,
        )


TRAINING_TASKS: dict[str, TrainingTask] = {
    task.name: task
    for task in (
        TrainingTask(
            "stylegan2",
            StyleGAN2Config,
            "models.training.stylegan2:train_stylegan2",
            artifact="model",
            resumes=True,
            needs_model=False,
            help="StyleGAN2 on a folder of images (ADA/DiffAugment for small sets)",
            title="A GAN from your photos (StyleGAN2)",
            description=(
                "Learns to generate new images like the ones in a folder. "
                "Small presets run on a CPU."
            ),
        ),
        TrainingTask(
            "progan",
            ProGANConfig,
            "models.training.progan:train_progan",
            artifact="model",
            resumes=True,
            needs_model=False,
            help="progressive-growing GAN (WGAN-GP) on a folder of images",
            title="A progressive GAN (ProGAN)",
            description=(
                "The older progressive-growing recipe: starts at 4x4 and doubles the size as it "
                "learns."
            ),
        ),
        TrainingTask(
            "classifier",
            ClassifierConfig,
            "models.training.classifier:train_classifier",
            artifact="classifier",
            resumes=True,
            needs_model=False,
            help="attribute classifier from images and a labels CSV",
            title="An attribute classifier",
            description=(
                "Learns labels (smile, age, ...) from photos and a CSV; used to fit attribute "
                "directions."
            ),
        ),
        TrainingTask(
            "encoder",
            EncoderConfig,
            "models.training.encoder:train_encoder",
            artifact="encoder",
            resumes=True,
            needs_model=True,
            help="image -> latent encoder for a generator (speeds up projection)",
            title="An encoder for a model",
            description=(
                "Learns to guess a photo's latent at once, so finding photos in the model is "
                "faster."
            ),
        ),
        TrainingTask(
            "directions",
            DirectionsConfig,
            "editors.direction_training:train_directions",
            artifact="directions",
            resumes=False,
            needs_model=True,
            help="fit attribute directions (TL-GAN: sample, render, label, fit)",
            title="Attribute directions for a model",
            description=(
                "Samples the model, labels the samples and fits one slider direction per attribute."
            ),
        ),
    )
}


def training_task(name: str) -> TrainingTask:
    """The task called ``name``.

    Raises:
        ValueError: no such task (the message lists the known ones).
    """
    try:
        return TRAINING_TASKS[name]
    except KeyError:
        known = ", ".join(TRAINING_TASKS)
        raise ValueError(f"unknown training task {name!r} (known: {known})") from None
