"""A quick measured estimate of training speed on this machine (for the wizard's time note).

Builds the job's trainer on a small in-memory batch of blank images and times a few steps, so
the number reflects this CPU/GPU, the preset and the resolution. Takes seconds for small presets.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from models.jobs import OnStep, Progress, ShouldStop, check_stop, report
from models.training.images import ImageDataset


def _blank_dataset(resolution: int, count: int = 32) -> ImageDataset:
    images = np.full((count, resolution, resolution, 3), 127, dtype=np.uint8)
    return ImageDataset(
        images=images,
        names=tuple(f"{i}.png" for i in range(count)),
        source=Path("<memory>"),
        skipped=(),
        cache_path=Path("<memory>"),
    )


def _trainer(task: str, config: Any, dist: Any) -> Any:
    if task == "stylegan2":
        from models.training.stylegan2 import StyleGAN2Trainer

        return StyleGAN2Trainer(
            config.replace(init_from=None), _blank_dataset(config.resolution), dist
        )
    if task == "progan":
        from models.training.progan import ProGANTrainer

        trainer = ProGANTrainer(config, _blank_dataset(config.resolution), dist)
        trainer.jump_to_final_phase()  # the last phases dominate the run time
        return trainer
    if task == "classifier":
        from models.training.classifier import ClassifierTrainer
        from models.training.labels import LabelReport, LabelTable

        count = 32
        values = np.stack([np.arange(count) % 2, np.arange(count, dtype=np.float32)], 1).astype(
            np.float32
        )
        labels = LabelTable(
            ("a", "b"),
            (True, False),
            np.arange(count),
            values,
            None,
            LabelReport(count, count, 0, (), 0),
        )
        return ClassifierTrainer(config, _blank_dataset(config.resolution, count), labels, dist)
    if task == "encoder":
        from models import load_generator
        from models.training.encoder import EncoderTrainer

        generator = load_generator(config.model, device="cpu")
        return EncoderTrainer(config.replace(data="", real_kimg=0.0), generator, None, dist)
    raise ValueError(f"no speed estimate for {task!r}")


def measure_speed(
    task: str,
    config: Any,
    *,
    steps: int = 4,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> float:
    """Images per second of ``task`` with ``config`` here (one warm-up step, then ``steps``).

    Raises:
        Cancelled: ``should_stop`` asked to stop.
        ValueError: the task has no estimate (e.g. directions).
    """
    import torch

    from models.runtime import resolve_device
    from models.training.distributed import DistContext

    state = torch.get_rng_state()  # leave the caller's random stream as it was
    try:
        dist = DistContext(device=resolve_device(config.device))
        trainer = _trainer(task, config, dist)
        check_stop(should_stop)
        report(on_step, Progress(0, steps + 1, "warming up"))
        trainer.train_step(1)
        start = time.perf_counter()
        for index in range(steps):
            check_stop(should_stop)
            trainer.train_step(index + 1)  # 1..steps: includes one lazy path-length step
            report(on_step, Progress(index + 2, steps + 1, "measuring"))
        if dist.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    finally:
        torch.set_rng_state(state)
    return steps * trainer.images_per_step / elapsed


def describe_duration(images_per_s: float, total_images: float) -> str:
    """Plain words: 'about 40 images/s here, so this run takes about 3 h 30 min'."""
    seconds = total_images / max(images_per_s, 1e-9)
    if seconds >= 2 * 86400:
        span = f"{seconds / 86400:.0f} days"
    elif seconds >= 3600:
        span = f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    elif seconds >= 60:
        span = f"{int(seconds // 60)} min"
    else:
        span = "under a minute"
    return f"about {images_per_s:.0f} images/s on this machine, so this run takes about {span}"
