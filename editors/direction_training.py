"""Directions as a training task: ``fit_directions`` inside a run folder the Runs window follows.

The same run folder as the ``run_loop`` tasks (config.json, status.json, metrics.jsonl,
control.json; see ``models/training/runs.py``), without checkpoints: a fit takes minutes, so a
stopped one is started again rather than resumed.
"""

from __future__ import annotations

import time
from pathlib import Path

from editors.direction_files import default_directions_path, save_directions
from editors.direction_fitting import DirectionFitConfig, fit_directions
from editors.mixing import group_layers
from models import load_generator
from models.jobs import Cancelled, OnStep, Progress, ShouldStop
from models.training.config import DirectionsConfig
from models.training.loop import TrainSummary, new_or_resume, set_threads, start_run_folder
from models.training.runs import RunFolder, control_command

TASK = "directions"
STATUS_INTERVAL_S = 1.0  # status.json is rewritten at most this often while sampling


def train_directions(
    config: DirectionsConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    preprocess: object = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> TrainSummary:
    """Fit directions with ``config`` into the run folder ``run_dir``.

    Writes config.json, status.json (progress), one metrics line with each direction's held-out
    score, and ``RUN_DIR/directions.json`` (+ ``.npz``); with ``install`` also the file beside the
    model. "stop" in control.json cancels like ``should_stop``. ``preprocess`` is accepted for the
    common task signature and unused (no photos are read).

    Raises:
        ValueError: ``resume`` (a fit is not resumable: start it again), bad labeler or attributes.
        Cancelled: stopped; ``partial`` is a ``TrainSummary`` in state "stopped".
    """
    if resume:
        raise ValueError("a directions run cannot be resumed; start it again (it takes minutes)")
    run = RunFolder(run_dir)
    new_or_resume(run, resume)
    start_run_folder(run, TASK, config)
    run.request("run")
    total = config.total_steps + 1
    run.write_status("preparing", task=TASK, step=0, total_steps=total, message="loading")
    set_threads(config.threads)
    last_write = 0.0

    def report(progress: Progress) -> None:
        nonlocal last_write
        now = time.monotonic()
        if now - last_write >= STATUS_INTERVAL_S or progress.step >= total:
            last_write = now
            run.write_status(
                "running",
                task=TASK,
                step=progress.step,
                total_steps=total,
                message=progress.message,
            )
        if on_step is not None:
            on_step(progress)

    def summary(state: str, step: int, artifact: Path | None, metrics: dict) -> TrainSummary:
        return TrainSummary(
            task=TASK,
            run_dir=run.path,
            state=state,  # type: ignore[arg-type]
            step=step,
            total_steps=total,
            images_seen=0,
            artifact=artifact,
            checkpoint=None,
            metrics=metrics,
        )

    try:
        generator = load_generator(config.model, config.device)
        if config.labeler == "classifier":
            from editors.labelers import ClassifierLabeler

            labeler = ClassifierLabeler.from_file(config.classifier, config.attributes or None)
        else:
            from editors.labelers import LandmarkLabeler

            labeler = LandmarkLabeler()
        layers = None if config.layers == "all" else group_layers(config.layers, generator.num_ws)
        fit_config = DirectionFitConfig(
            num_samples=config.num_samples,
            first_seed=config.first_seed,
            truncation_psi=config.truncation_psi,
            attributes=config.attributes or None,
            layers=layers,
            batch_size=config.batch_size,
        )
        directions = fit_directions(
            generator,
            labeler,
            fit_config,
            on_step=report,
            should_stop=lambda: control_command(run, should_stop) == "stop",
        )
    except Cancelled:
        run.write_status("stopped", task=TASK, step=0, total_steps=total, message="stopped")
        raise Cancelled(summary("stopped", 0, None, {})) from None
    except Exception as exc:
        run.write_status("failed", task=TASK, message=f"{type(exc).__name__}: {exc}")
        raise
    path = save_directions(directions, run.path / "directions.json")
    if config.install:
        save_directions(directions, default_directions_path(config.model))
    metrics = {
        f"{key}/{d.name}": float(value)
        for d in directions
        for key, value in d.metrics.items()
        if isinstance(value, int | float)
    }
    run.append_metrics({"step": total, **metrics})
    notes = "; ".join(directions.notes)
    run.write_status(
        "finished",
        task=TASK,
        step=total,
        total_steps=total,
        message=notes or f"fitted {len(directions)} directions",
        artifact=str(path),
        model=config.model,
    )
    return summary("finished", total, path, metrics)
