"""Compact training checkpoints: small enough to keep in git or carry to another machine.

A compact checkpoint is an ordinary training checkpoint (``checkpoints.load_checkpoint`` reads
it, ``--resume`` continues from it) whose bulky tensors are stored in 16 bits where that is safe:

- the EMA generator in float16: it is only ever read, and it is exported in float16 anyway;
- Adam's moment estimates in bfloat16: float16 would flush the tiny second moments to zero,
  bfloat16 keeps float32's range and Adam only needs their rough size;
- the live generator and discriminator stay float32, because training continues from them.

Loading casts everything back: ``load_state_dict`` of modules and optimisers converts to the
parameters' dtype.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from models.errors import CheckpointError
from models.formats.native import atomic_write
from models.training.checkpoints import checkpoint_path, load_checkpoint, load_latest
from models.training.runs import RunFolder

HALF_MODULES = {"G_ema": torch.float16}
HALF_OPTIMISER_STATE = {"exp_avg": torch.bfloat16, "exp_avg_sq": torch.bfloat16}


def _cast(tensor: Any, dtype: torch.dtype) -> Any:
    if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
        return tensor.to(dtype)
    return tensor


def compact_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a checkpoint record with the EMA generator and Adam moments in 16 bits."""
    trainer = dict(record["trainer"])
    for name, dtype in HALF_MODULES.items():
        if name in trainer:
            trainer[name] = {key: _cast(value, dtype) for key, value in trainer[name].items()}
    for name, value in list(trainer.items()):
        if isinstance(value, Mapping) and "state" in value and "param_groups" in value:
            state = {
                index: {
                    key: _cast(item, HALF_OPTIMISER_STATE[key])
                    if key in HALF_OPTIMISER_STATE
                    else item
                    for key, item in slots.items()
                }
                for index, slots in value["state"].items()
            }
            trainer[name] = {**value, "state": state}
    out = {key: value for key, value in record.items() if key != "path"}
    return {**out, "trainer": trainer, "compact": True}


def write_compact(run_dir: str | Path, out: str | Path) -> Path:
    """Write the newest checkpoint of ``run_dir`` as a compact checkpoint file ``out``.

    Raises:
        CheckpointError: the run has no readable checkpoint.
    """
    run = RunFolder(run_dir)
    record = load_latest(run.checkpoints_dir)
    if record is None:
        raise CheckpointError(run.checkpoints_dir, "no readable training checkpoint to compact")
    compact = compact_record(record)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: torch.save(compact, tmp))
    return out


def unpack_compact(path: str | Path, run_dir: str | Path) -> Path:
    """Make ``run_dir`` a run folder that ``--resume`` continues from the compact checkpoint.

    Writes config.json (from the settings stored in the checkpoint) and the checkpoint itself.

    Raises:
        CheckpointError: ``path`` is not a readable training checkpoint.
        ValueError: ``run_dir`` already holds checkpoints.
    """
    record = load_checkpoint(Path(path))
    run = RunFolder(run_dir)
    if any(run.checkpoints_dir.glob("ckpt-*.pt")):
        raise ValueError(f"{run.path} already holds checkpoints; unpack into a new folder")
    try:
        config = json.loads(record["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(Path(path), "the checkpoint holds no run settings") from exc
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(str(record["task"]), config)
    target = checkpoint_path(run.checkpoints_dir, int(record["step"]))
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda tmp: torch.save(record, tmp))
    return target
