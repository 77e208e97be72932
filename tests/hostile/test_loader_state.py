"""Issue 11 points 6, 7 and 9 in-process: a refused pickle leaves the loader as it was;
project output names are safe; saving is durable; pruning ignores what it cannot read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from models.errors import CheckpointError
from models.formats import load_generator_file, safe_pickle


def _loader_fingerprint() -> dict:
    """Everything a BUILD or SETITEMS from a pickle could have reached, by value."""
    return {
        "allowed": dict(safe_pickle._ALLOWED),
        "easydict": dict(vars(safe_pickle.EasyDict)),
        "inert": dict(vars(safe_pickle.InertObject)),
        "persistent": dict(vars(safe_pickle.PersistentObject)),
        "defaults": {
            name: (getattr(f, "__defaults__", None), getattr(f, "__kwdefaults__", None))
            for name, f in vars(safe_pickle).items()
            if callable(f) and not isinstance(f, type)
        },
        "float32": (np.dtype("f4").byteorder, np.dtype("f4").str),
    }


def test_refused_pickles_do_not_change_the_loader(hostile_cases) -> None:
    pickles = [Path(c.argv[1]) for c in hostile_cases[1] if c.argv[1].endswith(".pkl")]
    assert len(pickles) >= 25
    before = _loader_fingerprint()
    refused = 0
    for path in pickles:
        with pytest.raises(CheckpointError) as info:
            load_generator_file(path)
        assert str(path) in str(info.value)
        refused += 1
    assert _loader_fingerprint() == before
    assert np.frombuffer(np.float32(1.5).tobytes(), np.dtype("f4"))[0] == 1.5
    assert refused == len(pickles)


def test_build_on_classes_and_functions_is_refused(hostile_cases, tmp_path: Path) -> None:
    from tests.helpers.nvidia_pickles import make_generator, write_snapshot

    by_name = {c.name: Path(c.argv[1]) for c in hostile_cases[1]}
    for name in ("pickle-build-on-a-loader-class", "pickle-build-on-a-loader-function",
                 "pickle-build-on-an-inert-class"):  # fmt: skip
        with pytest.raises(CheckpointError, match=r"refused BUILD \(__setstate__\)"):
            load_generator_file(by_name[name])
    # The same loader still reads a real network pickle afterwards, unchanged.
    good = write_snapshot(tmp_path / "good.pkl", G_ema=make_generator(8))
    generator = load_generator_file(good)
    assert generator.resolution == 8


def test_project_output_names_are_safe_and_unique() -> None:
    from editors.cli.project import output_names

    names = output_names(
        [Path(n) for n in ("...png", "..png", "a.jpg", "a.png", "summary.csv.png", "x y.png")]
    )
    values = list(names.values())
    assert len(set(v.lower() for v in values)) == len(values)
    assert all(v and not v.startswith(".") and "/" not in v for v in values)
    assert "summary.csv" not in values
    assert names[Path("a.jpg")] != names[Path("a.png")]
    assert names[Path("x y.png")] == "x_y"


def test_atomic_write_fsyncs_before_the_rename(monkeypatch, tmp_path: Path) -> None:
    from models.formats import native

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(native.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(
        native.os, "replace", lambda a, b: (events.append("rename"), real_replace(a, b))
    )
    target = tmp_path / "out.bin"
    native.atomic_write(target, lambda tmp: tmp.write_bytes(b"data"))
    assert target.read_bytes() == b"data"
    assert events[:2] == ["fsync", "rename"]  # the data is on disk before the name points at it


def test_pruning_ignores_what_it_cannot_read(monkeypatch, tmp_path: Path) -> None:
    from models.training import checkpoints

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "ckpt-00000099.pt").mkdir()  # a folder with a checkpoint's name
    (folder / "ckpt-00000098.pt").write_bytes(b"")  # empty: unusable
    (folder / "ckpt-99999999.pt").write_bytes(b"junk from the future")
    for step in (1, 2, 3):
        checkpoints.save_checkpoint(folder, step, {"x": torch.zeros(1)}, keep=2)
    stubborn = checkpoints.checkpoint_path(folder, 4)
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self == checkpoints.checkpoint_path(folder, 2):
            raise PermissionError(13, "Permission denied", str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    checkpoints.save_checkpoint(folder, 4, {"x": torch.zeros(1)}, keep=2)
    left = sorted(p.name for p in folder.iterdir())
    # 3 and 4 kept, 2 could not be deleted (logged), 1 pruned; the unreadable ones untouched.
    assert left == ["ckpt-00000002.pt", "ckpt-00000003.pt", "ckpt-00000004.pt",
                    "ckpt-00000098.pt", "ckpt-00000099.pt", "ckpt-99999999.pt"]  # fmt: skip
    assert stubborn.is_file()
