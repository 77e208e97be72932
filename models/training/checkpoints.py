"""Training checkpoints: atomic, pruned to the last K, and read back with ``weights_only=True``.

A checkpoint holds only tensors and plain data (numbers, strings, lists, dicts): the networks'
and optimisers' state dicts, the RNG states as uint8 tensors, counters and the config as JSON.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from models.errors import CheckpointError
from models.formats.native import atomic_write

log = logging.getLogger(__name__)

FORMAT = "latentstudio-training-checkpoint"
VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{8,})\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    """File name of the checkpoint taken after ``step`` steps."""
    return folder / f"ckpt-{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        log.warning("cannot list checkpoints in %s: %s", folder, exc)
        return []
    for path in entries:
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(folder: Path, step: int, payload: Mapping[str, Any], keep: int) -> Path:
    """Write ``payload`` for ``step`` atomically, then delete all but the newest ``keep``.

    A failed write (e.g. a full disk) leaves every earlier checkpoint untouched and raises.

    Raises:
        OSError: the file could not be written; the message names it.
    """
    path = checkpoint_path(folder, step)
    record = {"format": FORMAT, "version": VERSION, "step": step, **payload}
    try:
        atomic_write(path, lambda tmp: torch.save(record, tmp))
    except OSError as exc:
        previous = list_checkpoints(folder)
        kept = f"; the previous checkpoint {previous[-1][1].name} is intact" if previous else ""
        raise OSError(
            exc.errno, f"could not write checkpoint {path} ({exc.strerror or exc}){kept}"
        ) from exc
    prune_checkpoints(folder, step, keep)
    return path


def prune_checkpoints(folder: Path, step: int, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints up to ``step``.

    Files it cannot read, empty ones and ones numbered past ``step`` are neither counted nor
    deleted: counting them could delete every good checkpoint while keeping unusable ones.
    """
    usable = [
        path for number, path in list_checkpoints(folder) if number <= step and _readable(path)
    ]
    if keep < 1:
        return
    for old in usable[: max(0, len(usable) - keep)]:
        try:
            old.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete old checkpoint %s: %s", old, exc)


def _readable(path: Path) -> bool:
    try:
        return os.access(path, os.R_OK) and path.stat().st_size > 0
    except OSError:
        return False


def remove_stale_temporaries(folder: Path) -> int:
    """Delete half-written checkpoint temp files left by a killed process; return how many."""
    if not folder.is_dir():
        return 0
    stale = [path for path in folder.glob(".ckpt-*.tmp") if path.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely (tensors and plain data only).

    Raises:
        CheckpointError: unreadable, truncated or not a training checkpoint.
    """
    from models.formats import check_torch_zip, describe_torch_error

    check_torch_zip(path)  # member sizes first: a small file must not inflate to gigabytes
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged zips; all mean "unreadable"
        raise CheckpointError(
            path, f"unreadable training checkpoint: {describe_torch_error(exc)}"
        ) from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(path, "not a Latent Studio training checkpoint")
    if int(record.get("version", 0)) > VERSION:
        raise CheckpointError(path, "written by a newer version of the app")
    return record


def load_latest(folder: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint in ``folder`` (older ones are tried when it is damaged)."""
    for _, path in reversed(list_checkpoints(folder)):
        try:
            record = load_checkpoint(path)
        except CheckpointError as exc:
            log.warning("skipping a damaged checkpoint: %s", exc)
            continue
        record["path"] = str(path)
        return record
    return None


def capture_rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The global CPU (and current CUDA device's) generator states as uint8 tensors."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: Mapping[str, torch.Tensor], device: torch.device) -> None:
    """Put back ``capture_rng_state`` output."""
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
