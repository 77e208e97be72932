"""Compact training checkpoints: 16-bit EMA and Adam moments, float32 G and D, and a run
unpacked from one resumes where the original stopped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.errors import CheckpointError
from models.training.checkpoints import list_checkpoints, load_checkpoint
from models.training.compact import unpack_compact, write_compact
from models.training.config import StyleGAN2Config
from models.training.runs import RunFolder
from models.training.stylegan2 import train_stylegan2
from tests.helpers.training import tiny_stylegan2_config


def tiny_run_config(data: Path, kimg: float) -> StyleGAN2Config:
    return tiny_stylegan2_config(
        data,
        kimg=kimg,
        r1_interval=2,
        pl_interval=2,
        sample_minutes=0,
        tick_seconds=0,
        checkpoint_minutes=1e6,
    )


@pytest.fixture
def finished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("LATENTSTUDIO_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(data / f"{i}.png")
    run = tmp_path / "run"
    train_stylegan2(tiny_run_config(data, 0.012), run)  # 3 steps, checkpoint at the end
    return data, run


def test_compact_halves_what_is_safe_and_keeps_g_and_d(
    finished_run: tuple[Path, Path], tmp_path: Path
) -> None:
    _, run = finished_run
    (_, original_path) = list_checkpoints(RunFolder(run).checkpoints_dir)[-1]
    original = load_checkpoint(original_path)
    out = write_compact(run, tmp_path / "resume.pt")
    compact = load_checkpoint(out)  # an ordinary checkpoint for the loader
    trainer = compact["trainer"]
    assert compact["step"] == original["step"] == 3 and compact["compact"] is True
    assert all(t.dtype == torch.float16 for t in trainer["G_ema"].values() if t.is_floating_point())
    for name in ("G", "D"):
        for key, tensor in original["trainer"][name].items():
            assert torch.equal(trainer[name][key], tensor)
    for opt in ("G_opt", "D_opt"):
        slots = trainer[opt]["state"][0]
        assert slots["exp_avg"].dtype == torch.bfloat16
        assert slots["exp_avg_sq"].dtype == torch.bfloat16
        reference = original["trainer"][opt]["state"][0]["exp_avg_sq"]
        torch.testing.assert_close(slots["exp_avg_sq"].float(), reference, rtol=1e-2, atol=0)
        assert torch.equal(slots["step"], original["trainer"][opt]["state"][0]["step"])


def test_a_run_unpacked_from_a_compact_checkpoint_resumes(
    finished_run: tuple[Path, Path], tmp_path: Path
) -> None:
    data, run = finished_run
    compact = write_compact(run, tmp_path / "resume.pt")
    moved = tmp_path / "elsewhere"
    unpack_compact(compact, moved)
    task, config = RunFolder(moved).read_config()
    assert task == "stylegan2" and config["data"] == str(data)
    summary = train_stylegan2(tiny_run_config(data, 0.02), moved, resume=True)
    assert summary.state == "finished"
    assert list_checkpoints(RunFolder(moved).checkpoints_dir)[-1][0] == 5  # 3 before + 2 more
    with pytest.raises(ValueError, match="already holds"):
        unpack_compact(compact, moved)


def test_compact_needs_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        write_compact(tmp_path / "empty-run", tmp_path / "x.pt")
