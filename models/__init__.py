"""Networks and checkpoint formats. Never imports Qt.

The facade the rest of the app uses: ``load_generator(path, device=None) -> Generator``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.discriminator import StyleGAN2Discriminator
from models.errors import CheckpointError, UnsupportedFormatError
from models.formats import inspect_checkpoint, load_discriminator_file, load_generator_file
from models.formats.native import save_generator
from models.generator import (
    Generator,
    NoiseMode,
    parse_seeds,
    seed_to_z,
    to_rgb_u8,
)
from models.runtime import resolve_device

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEFAULT_MODEL = RESOURCES / "models" / "demo-faces-64.safetensors"

__all__ = [
    "CheckpointError",
    "Generator",
    "NoiseMode",
    "StyleGAN2Discriminator",
    "UnsupportedFormatError",
    "default_model_path",
    "inspect_checkpoint",
    "load_default",
    "load_discriminator",
    "load_generator",
    "parse_seeds",
    "save_generator",
    "seed_to_z",
    "to_rgb_u8",
]


def load_generator(path: str | Path, device: str | torch.device | None = None) -> Generator:
    """Load any supported checkpoint as a ``Generator`` in eval mode on ``device``.

    Args:
        path: checkpoint file; its format is detected from its content.
        device: "cpu", "cuda", a ``torch.device``, or None for CUDA when present, else CPU.

    Raises:
        CheckpointError: the file is missing, unreadable, corrupted or not a supported generator.
        ValueError: the device is unknown or unavailable.
    """
    target = resolve_device(device)
    generator = load_generator_file(path)
    return generator.to(target)


def load_discriminator(
    path: str | Path, device: str | torch.device | None = None
) -> StyleGAN2Discriminator | None:
    """Load the discriminator a checkpoint carries, in rosinality's layout, or None if it has none.

    Reads the ``d`` entry of rosinality files and the ``D`` of NVIDIA ADA pickles (residual,
    unconditional ones; others give None and a log message). Eval mode, fp32, no gradients.

    Raises:
        CheckpointError: the file is missing, unreadable or corrupted.
        ValueError: the device is unknown or unavailable.
    """
    target = resolve_device(device)
    discriminator = load_discriminator_file(path)
    return discriminator.to(target) if discriminator is not None else None


def default_model_path() -> Path | None:
    """The built-in demo model shipped in ``resources/``, or None when it is not there."""
    return DEFAULT_MODEL if DEFAULT_MODEL.is_file() else None


def load_default(device: str | torch.device | None = None) -> Generator:
    """Load the built-in demo model.

    Raises:
        CheckpointError: the demo model file is missing from ``resources/models``.
    """
    path = default_model_path()
    if path is None:
        raise CheckpointError(DEFAULT_MODEL, "the built-in demo model is not installed")
    return load_generator(path, device)
