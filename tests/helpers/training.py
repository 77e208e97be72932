"""Training configs small enough for a step in well under a second."""

from __future__ import annotations

from pathlib import Path

from models.training.config import StyleGAN2Config


def tiny_stylegan2_config(data: Path, **overrides: object) -> StyleGAN2Config:
    """An 8-px StyleGAN2 run on ``data`` (fp32, CPU); ``overrides`` set any other field."""
    fields: dict[str, object] = dict(
        resolution=8,
        batch_size=4,
        kimg=0.024,
        num_samples=4,
        device="cpu",
        channel_base=64,
        channel_max=16,
        w_dim=16,
        mapping_layers=2,
        mbstd_group=2,
        mixed_precision=False,
    )
    fields.update(overrides)
    return StyleGAN2Config(data=str(data), **fields)
