"""Training jobs (pure Python, no Qt): StyleGAN2, ProGAN, attribute classifier, latent encoder.

Each job is ``train_<task>(config, run_dir, *, resume=False, on_step=None, should_stop=None)``
writing a run folder (see ``models.training.runs``) that the CLI and the GUI both read.
"""

from __future__ import annotations

from models.training.config import (
    STYLEGAN2_PRESETS,
    ClassifierConfig,
    EncoderConfig,
    ProGANConfig,
    StyleGAN2Config,
)
from models.training.images import ImageDataset, Preprocess, prepare_images
from models.training.labels import read_labels
from models.training.loop import TrainingDiverged, TrainSummary
from models.training.runs import RunFolder
from models.training.stylegan2 import train_stylegan2

__all__ = [
    "STYLEGAN2_PRESETS",
    "ClassifierConfig",
    "EncoderConfig",
    "ImageDataset",
    "Preprocess",
    "ProGANConfig",
    "RunFolder",
    "StyleGAN2Config",
    "TrainSummary",
    "TrainingDiverged",
    "prepare_images",
    "read_labels",
    "train_stylegan2",
]
