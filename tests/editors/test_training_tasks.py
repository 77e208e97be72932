"""The training task table: one entry per task, read by the CLI, the wizard and the run list."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from editors.cli import train as train_cli
from editors.training_tasks import TRAINING_TASKS, TrainingTask, training_task
from models.training.config import LoopConfig, RunConfig, StyleGAN2Config

CALLS: list[dict[str, Any]] = []


def recording_runner(config: Any, run_dir: str | Path, **kwargs: Any) -> str:
    """A run function that records how it was called (the table imports it by name)."""
    CALLS.append({"config": config, "run_dir": run_dir, **kwargs})
    return "summary"


def test_every_task_names_its_own_config_and_an_importable_runner() -> None:
    assert list(TRAINING_TASKS) == ["stylegan2", "progan", "classifier", "encoder", "directions"]
    for name, task in TRAINING_TASKS.items():
        assert task.name == name == task.config_type.task
        assert callable(task.run_function())
    assert [t.name for t in TRAINING_TASKS.values() if t.needs_model] == ["encoder", "directions"]
    assert [t.name for t in TRAINING_TASKS.values() if not t.resumes] == ["directions"]
    with pytest.raises(ValueError, match=r"unknown training task 'gan'.*stylegan2, progan"):
        training_task("gan")


def test_common_fields_are_declared_once_with_per_task_defaults() -> None:
    loop_fields = {f.name for f in dataclasses.fields(LoopConfig)}
    assert loop_fields == {
        "device",
        "threads",
        "seed",
        "checkpoint_minutes",
        "keep_checkpoints",
        "tick_seconds",
        "sample_minutes",
        "num_samples",
        "name",
    }
    for task in TRAINING_TASKS.values():
        fields = {f.name for f in dataclasses.fields(task.config_type)}
        assert {"device", "threads"} <= fields
        assert task.uses_run_loop == (loop_fields <= fields)
    assert not TRAINING_TASKS["directions"].uses_run_loop
    assert issubclass(TRAINING_TASKS["directions"].config_type, RunConfig)
    # Defaults that differ by task stay as they were.
    classifier = TRAINING_TASKS["classifier"].config_type(data="d", labels="l")
    assert (classifier.sample_minutes, classifier.num_samples) == (0.0, 0)
    assert TRAINING_TASKS["encoder"].config_type(model="m").num_samples == 8
    assert StyleGAN2Config(data="d").num_samples == 16
    # Positional construction of the task's own first fields still works.
    assert TRAINING_TASKS["classifier"].config_type("d", "l").labels == "l"


def test_cli_offers_each_task_with_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers(dest="command"))
    for name, task in TRAINING_TASKS.items():
        args = parser.parse_args(["train", name, "--device", "cpu"])
        flags = {option.flag for option in args.options}
        assert ("--seed" in flags) == task.uses_run_loop, name
        assert "--device" in flags and "--threads" in flags
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "directions", "--seed", "3"])
    assert "--seed" in capsys.readouterr().err


def test_run_binds_the_face_aligner_only_when_asked(tmp_path: Path) -> None:
    task = dataclasses.replace(TRAINING_TASKS["stylegan2"], runner=f"{__name__}:recording_runner")
    assert isinstance(task, TrainingTask)
    CALLS.clear()
    plain = StyleGAN2Config(data="photos", resolution=32)
    assert task.run(plain, tmp_path / "a", resume=True) == "summary"
    aligned = plain.replace(align_faces=True)
    task.run(aligned, tmp_path / "b")
    first, second = CALLS
    assert first["preprocess"] is None and first["resume"] is True
    assert second["preprocess"].key == "ffhq-align-v1-32" and second["resume"] is False
    assert second["run_dir"] == tmp_path / "b" and second["config"] is aligned
