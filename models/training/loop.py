"""The loop every training job shares: control requests, ticks, samples, checkpoints, resume.

A job supplies a ``Trainer`` (one optimisation step at a time, plus its full state); ``run_loop``
drives it and owns everything around it: reading ``control.json`` once per step (pause, stop),
metrics lines and status at each tick, sample grids, periodic atomic checkpoints, the final
export, NaN detection, and exact resume from the newest checkpoint.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from PIL import Image

from models.formats.native import atomic_write
from models.jobs import Cancelled, OnStep, Progress, ShouldStop, report
from models.training.checkpoints import (
    capture_rng_state,
    list_checkpoints,
    load_latest,
    remove_stale_temporaries,
    restore_rng_state,
    save_checkpoint,
)
from models.training.distributed import DistContext
from models.training.images import ImageDataset, Preprocess, prepare_images
from models.training.runs import RunFolder, control_command, write_json_atomic

log = logging.getLogger(__name__)

_PAUSE_POLL_S = 0.5


class TrainingDiverged(ValueError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class Trainer(Protocol):
    """What ``run_loop`` needs from a job."""

    task: str
    total_steps: int  # steps in the whole run
    images_per_step: int  # images consumed per step over all processes

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """Run optimisation step ``step`` (0-based); return detached scalar losses."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (tensors and plain data only)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` output."""
        ...

    def extra_metrics(self) -> dict[str, float]:
        """Values for the metrics line besides the losses (e.g. augmentation p)."""
        ...

    def sample_grid(self) -> np.ndarray | None:
        """A preview [H, W, 3] uint8 from fixed inputs (no global randomness), or None."""
        ...

    def export(self, run: RunFolder, step: int) -> Path:
        """Write the trained artefact (model, classifier, encoder) and return its path."""
        ...


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """Timing and retention of the loop's side outputs."""

    checkpoint_minutes: float = 10.0  # checkpoint at least this often
    keep_checkpoints: int = 3  # recent checkpoints kept
    tick_seconds: float = 10.0  # metrics line at least this often
    sample_minutes: float = 2.0  # sample grid at least this often; <= 0 = start and end only
    config_json: str = "{}"  # stored in every checkpoint


@dataclass(frozen=True, slots=True)
class TrainSummary:
    """How a run ended (returned when finished, carried by ``Cancelled`` when stopped)."""

    task: str
    run_dir: Path
    state: Literal["finished", "stopped"]
    step: int  # steps completed
    total_steps: int
    images_seen: int
    artifact: Path | None  # the exported model/classifier/encoder
    checkpoint: Path | None  # the newest checkpoint
    metrics: dict[str, float] = field(default_factory=dict)  # the last metrics line


@dataclass(slots=True)
class _Averages:
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def pop(self) -> dict[str, float]:
        out = {key: self.sums[key] / self.counts[key] for key in self.sums}
        self.sums.clear()
        self.counts.clear()
        return out


def save_png(path: Path, rgb: np.ndarray) -> None:
    """Write ``rgb`` [H, W, 3] uint8 as PNG, atomically."""

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="PNG")
        tmp.write_bytes(buffer.getvalue())

    atomic_write(path, write)


def image_grid(images: list[np.ndarray], columns: int | None = None) -> np.ndarray:
    """Tile equally sized [H, W, 3] uint8 images into one grid (row-major, 2 px gaps)."""
    count = len(images)
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    height, width = images[0].shape[:2]
    gap = 2
    grid = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3),
        255,
        dtype=np.uint8,
    )
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[
            r * (height + gap) : r * (height + gap) + height,
            c * (width + gap) : c * (width + gap) + width,
        ] = image
    return grid


class _Clock:
    """Wall time spent training (pauses excluded), continued across resumes."""

    def __init__(self, elapsed: float = 0.0) -> None:
        self.base = elapsed
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return self.base + time.monotonic() - self.started

    def pause(self) -> None:
        self.base = self.elapsed()

    def resume(self) -> None:
        self.started = time.monotonic()


def run_loop(
    trainer: Trainer,
    run: RunFolder,
    settings: LoopSettings,
    *,
    dist: DistContext,
    resume: bool,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> TrainSummary:
    """Train until ``trainer.total_steps`` (or a stop request) and export the result.

    Args:
        trainer: the job's step function and state.
        run: the run folder (config.json already written).
        settings: checkpoint, tick and sample timing.
        dist: this process's rank; only rank 0 writes files and reports progress.
        resume: continue from the newest readable checkpoint in ``run`` if there is one.
        on_step, should_stop: the job protocol; ``should_stop`` and a "stop" in control.json
            both end the run with a checkpoint and an export, then raise ``Cancelled``.

    Returns:
        The summary of a finished run.

    Raises:
        Cancelled: stopped on request; ``partial`` is the ``TrainSummary``.
        TrainingDiverged: a loss became NaN/inf (the newest checkpoint predates it).
        OSError: a checkpoint could not be written (earlier ones are intact).
    """
    step = 0
    clock = _Clock()
    last_checkpoint: Path | None = None
    if resume:
        if dist.is_main:
            remove_stale_temporaries(run.checkpoints_dir)
        record = load_latest(run.checkpoints_dir)
        if record is not None:
            trainer.load_state_dict(record["trainer"])
            _restore_rng(record["rng"], dist)
            step = int(record["step"])
            clock = _Clock(float(record.get("elapsed_s", 0.0)))
            last_checkpoint = Path(record["path"])
            log.info("resumed %s at step %d from %s", run.path, step, last_checkpoint)
        if dist.is_main:
            run.truncate_metrics_after(step)
    checkpoint_step = step if last_checkpoint is not None else -1
    if dist.is_main:
        run.request("run")  # a stale "stop" or "pause" from the previous session must not apply

    total = trainer.total_steps
    averages = _Averages()
    last_metrics: dict[str, float] = {}
    now = time.monotonic()
    last_tick = last_sample = last_ckpt = now
    tick_step, tick_time = step, clock.elapsed()
    state: Literal["finished", "stopped"] = "finished"

    def status(state_name: str, message: str = "", **extra: Any) -> None:
        if dist.is_main:
            run.write_status(
                state_name,
                task=trainer.task,
                step=step,
                total_steps=total,
                images_seen=step * trainer.images_per_step,
                message=message,
                checkpoint=str(last_checkpoint) if last_checkpoint else None,
                **extra,
            )

    def checkpoint() -> None:
        nonlocal last_checkpoint, checkpoint_step, last_ckpt
        payload_rng = _gather_rng(dist)
        if dist.is_main:
            payload = {
                "task": trainer.task,
                "config": settings.config_json,
                "rng": payload_rng,
                "elapsed_s": clock.elapsed(),
                "world_size": dist.world_size,
                "trainer": trainer.state_dict(),
            }
            try:
                last_checkpoint = save_checkpoint(
                    run.checkpoints_dir, step, payload, settings.keep_checkpoints
                )
            except OSError as exc:
                status("failed", message=str(exc))
                raise
        checkpoint_step = step
        last_ckpt = time.monotonic()
        dist.barrier()

    def sample() -> None:
        nonlocal last_sample
        grid = trainer.sample_grid()
        last_sample = time.monotonic()
        if grid is not None and dist.is_main:
            save_png(run.sample_path(step), grid)
            report(on_step, Progress(step, total, "sample", dict(last_metrics), preview=grid))

    status("running", message="starting")
    if step == 0 or run.latest_sample() is None:
        sample()
    while step < total:
        flags = _decide(dist, run, should_stop, settings, last_tick, last_sample, last_ckpt)
        if flags["pause"] and not flags["stop"]:
            if checkpoint_step != step:
                checkpoint()
            clock.pause()
            status("paused", message="paused")
            if dist.is_main:
                report(on_step, Progress(step, total, "paused", dict(last_metrics)))
            flags.update(_wait_while_paused(dist, run, should_stop))
            clock.resume()
            status("running", message="resumed")
        if flags["stop"]:
            state = "stopped"
            break

        losses = trainer.train_step(step)
        step += 1
        values = {key: float(value) for key, value in losses.items()}
        bad = [key for key, value in values.items() if not math.isfinite(value)]
        if dist.enabled:
            any_bad = dist.all_reduce_sum(torch.tensor([float(bool(bad))]))
            if float(any_bad[0]) > 0 and not bad:
                bad = ["(another process)"]
        if bad:
            where = f"; the last good checkpoint is {last_checkpoint}" if last_checkpoint else ""
            message = (
                f"training diverged at step {step}: {', '.join(bad)} became NaN or infinite"
                f"{where}. Lower the learning rate or use a smaller preset, then start again"
                f" (or resume from that checkpoint)."
            )
            status("failed", message=message)
            raise TrainingDiverged(message)
        averages.add(values)

        is_last = step == total
        if flags["tick"] or is_last:
            elapsed = clock.elapsed()
            rate = (step - tick_step) * trainer.images_per_step / max(elapsed - tick_time, 1e-9)
            last_metrics = {**averages.pop(), **trainer.extra_metrics()}
            record_ = {
                "step": step,
                "images_seen": step * trainer.images_per_step,
                "kimg": step * trainer.images_per_step / 1000,
                "time_s": round(elapsed, 3),
                "images_per_s": rate,
                **last_metrics,
            }
            tick_step, tick_time = step, elapsed
            last_tick = time.monotonic()
            if dist.is_main:
                run.append_metrics(record_)
                status("running", message=f"step {step}/{total}", images_per_s=rate)
        if dist.is_main:
            report(on_step, Progress(step, total, f"step {step}/{total}", dict(last_metrics)))
        if flags["sample"] and not is_last:
            sample()
        if flags["checkpoint"] and not is_last:
            checkpoint()

    if checkpoint_step != step:
        checkpoint()
    sample()
    artifact = trainer.export(run, step) if dist.is_main else None
    dist.barrier()
    summary = TrainSummary(
        task=trainer.task,
        run_dir=run.path,
        state=state,
        step=step,
        total_steps=total,
        images_seen=step * trainer.images_per_step,
        artifact=artifact,
        checkpoint=last_checkpoint,
        metrics=dict(last_metrics),
    )
    status(
        state,
        message="finished" if state == "finished" else f"stopped at step {step}",
        artifact=str(artifact) if artifact else None,
    )
    if state == "stopped":
        raise Cancelled(summary)
    return summary


def _decide(
    dist: DistContext,
    run: RunFolder,
    should_stop: ShouldStop | None,
    settings: LoopSettings,
    last_tick: float,
    last_sample: float,
    last_ckpt: float,
) -> dict[str, bool]:
    """Rank 0 decides stop/pause/tick/sample/checkpoint for this step; every rank follows."""
    flags = torch.zeros(5)
    if dist.is_main:
        now = time.monotonic()
        command = control_command(run, should_stop)
        flags[0] = float(command == "stop")
        flags[1] = float(command == "pause")
        flags[2] = float(now - last_tick >= settings.tick_seconds)
        flags[3] = float(
            settings.sample_minutes > 0 and now - last_sample >= settings.sample_minutes * 60
        )
        flags[4] = float(now - last_ckpt >= settings.checkpoint_minutes * 60)
    flags = dist.broadcast(flags)
    return dict(
        zip(
            ("stop", "pause", "tick", "sample", "checkpoint"),
            (bool(v) for v in flags.tolist()),
            strict=True,
        )
    )


def _wait_while_paused(
    dist: DistContext, run: RunFolder, should_stop: ShouldStop | None
) -> dict[str, bool]:
    """Block until control.json says run or stop (or should_stop fires)."""
    while True:
        flags = torch.zeros(2)
        if dist.is_main:
            command = control_command(run, should_stop)
            flags[0] = float(command == "stop")
            flags[1] = float(command == "pause")
        flags = dist.broadcast(flags)
        stop, pause = (bool(v) for v in flags.tolist())
        if stop or not pause:
            return {"stop": stop, "pause": False}
        time.sleep(_PAUSE_POLL_S)


def _gather_rng(dist: DistContext) -> dict[str, Any]:
    state = capture_rng_state(dist.device)
    if not dist.enabled:
        return {"ranks": [state]}
    gathered: dict[str, list[torch.Tensor]] = {
        key: dist.all_gather(value) for key, value in state.items()
    }
    return {
        "ranks": [{key: gathered[key][r].cpu() for key in gathered} for r in range(dist.world_size)]
    }


def _restore_rng(rng: dict[str, Any], dist: DistContext) -> None:
    ranks = rng["ranks"]
    if len(ranks) != dist.world_size:
        log.warning(
            "checkpoint was written by %d processes, resuming with %d: random streams "
            "continue differently",
            len(ranks),
            dist.world_size,
        )
    restore_rng_state(ranks[dist.rank % len(ranks)], dist.device)


def new_or_resume(run: RunFolder, resume: bool) -> None:
    """Refuse to start a fresh run over an existing one.

    Raises:
        ValueError: ``run`` already holds checkpoints and ``resume`` is False.
    """
    if not resume and list_checkpoints(run.checkpoints_dir):
        raise ValueError(
            f"{run.path} already holds a training run; resume it with --resume "
            f"or choose a new output folder"
        )


def start_run_folder(run: RunFolder, task: str, config: Any) -> None:
    """Create the run folder, record the resolved ``config`` and the state "preparing"."""
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(task, config.to_dict())  # on resume: the same, perhaps with a new length
    run.write_status("preparing", task=task, step=0, message="preparing data")


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch (0 = leave torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


def check_aligner(config: Any, preprocess: Preprocess | None) -> None:
    """Refuse a config with ``align_faces`` set when no aligner was supplied.

    Raises:
        ValueError: ``config.align_faces`` is set and ``preprocess`` is None.
    """
    if config.align_faces and preprocess is None:
        raise ValueError("align_faces is set but no aligner was supplied (use the CLI or the app)")


def load_job_images(
    config: Any,
    resolution: int,
    dist: DistContext,
    run: RunFolder,
    preprocess: Preprocess | None,
    on_step: OnStep | None,
    should_stop: ShouldStop | None,
) -> ImageDataset:
    """The images of ``config.data`` at ``resolution``, aligned when ``config.align_faces``.

    Rank 0 decodes and caches the images (with ``config.threads``) and records their summary in
    ``RUN_DIR/data.json``; the other processes then read the cache.
    """
    source = config.data
    preprocess = preprocess if config.align_faces else None
    alpha_mask = bool(getattr(config, "alpha_mask", False))
    threads = config.threads
    dataset = None
    if dist.is_main:
        dataset = prepare_images(
            source,
            resolution,
            preprocess=preprocess,
            alpha_mask=alpha_mask,
            threads=threads,
            on_step=on_step,
            should_stop=should_stop,
        )
        write_json_atomic(run.data_path, dataset.summary())
    dist.barrier()
    if dataset is None:
        dataset = prepare_images(
            source, resolution, preprocess=preprocess, alpha_mask=alpha_mask, threads=threads
        )
    return dataset


def execute_job(
    task: str,
    config: Any,
    run_dir: str | Path,
    build: Callable[[DistContext, RunFolder, OnStep | None, ShouldStop | None], Trainer],
    *,
    resume: bool,
    on_step: OnStep | None,
    should_stop: ShouldStop | None,
) -> TrainSummary:
    """Set up the run folder, device and process group, build the trainer, and run the loop.

    ``config`` is a job config (``to_dict``, ``to_json``, ``device``, ``threads`` and the loop's
    timing fields). Any failure is recorded in status.json before it propagates.
    """
    from models.runtime import resolve_device
    from models.training.distributed import init_distributed

    run = RunFolder(run_dir)
    new_or_resume(run, resume)
    dist = init_distributed(resolve_device(config.device))
    threads = config.threads
    if threads == 0 and dist.enabled and dist.device.type == "cpu":
        # torchrun on a CPU: share the cores instead of every process using all of them.
        local = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size))
        threads = max(1, (os.cpu_count() or 1) // local)
    set_threads(threads)
    if dist.is_main:
        start_run_folder(run, task, config)
    settings = LoopSettings(
        checkpoint_minutes=config.checkpoint_minutes,
        keep_checkpoints=config.keep_checkpoints,
        tick_seconds=config.tick_seconds,
        sample_minutes=config.sample_minutes,
        config_json=config.to_json(),
    )
    try:
        trainer = build(dist, run, on_step if dist.is_main else None, should_stop)
        return run_loop(
            trainer,
            run,
            settings,
            dist=dist,
            resume=resume,
            on_step=on_step,
            should_stop=should_stop,
        )
    except Cancelled as exc:
        if dist.is_main and not isinstance(exc.partial, TrainSummary):
            run.write_status("stopped", task=task, step=0, message="stopped while preparing")
        raise
    except Exception as exc:
        if dist.is_main and run.read_status().get("state") != "failed":
            run.write_status("failed", task=task, message=f"{type(exc).__name__}: {exc}")
        raise
