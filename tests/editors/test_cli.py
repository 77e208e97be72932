"""The CLI: generate, info, help and error handling, in-process and as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import main
import models
from models.generator import seed_to_z, to_rgb_u8

ROOT = Path(__file__).resolve().parents[2]


def test_generate_writes_one_png_per_seed_matching_direct_render(
    tiny_checkpoint, tmp_path: Path, capsys
) -> None:
    checkpoint = tiny_checkpoint()
    out = tmp_path / "out"
    code = main.main(
        [
            "generate",
            "--model",
            str(checkpoint),
            "--seeds",
            "0-2,7",
            "--truncation",
            "0.7",
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "seed0000.png",
        "seed0001.png",
        "seed0002.png",
        "seed0007.png",
    ]
    generator = models.load_generator(checkpoint, device="cpu")
    with torch.no_grad():
        ws = generator.broadcast(
            generator.mapping(seed_to_z([7], generator.z_dim), truncation_psi=0.7)
        )
        expected = to_rgb_u8(generator.synthesis(ws))[0]
    written = np.asarray(Image.open(out / "seed0007.png"))
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1
    assert "wrote 4 images" in capsys.readouterr().out


def test_info_prints_the_checkpoint_facts(tiny_checkpoint, capsys) -> None:
    checkpoint = tiny_checkpoint()
    assert main.main(["info", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "rosinality .pt" in out and "16x16" in out and "num_ws): 6" in out


def test_bad_checkpoint_is_one_line_and_exit_code_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"\x00garbage")
    assert main.main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.pt" in err[0]


def test_bad_seed_list_exit_code_2(tiny_checkpoint, tmp_path: Path, capsys) -> None:
    assert (
        main.main(
            ["generate", "--model", str(tiny_checkpoint()), "--seeds", "x", "--out", str(tmp_path)]
        )
        == 2
    )
    assert "bad seed list" in capsys.readouterr().err


def test_help_lists_commands_and_info_never_loads_qt(tiny_checkpoint) -> None:
    result = subprocess.run(
        [sys.executable, "main.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert "generate" in result.stdout and "info" in result.stdout
    probe = (
        "import sys, main; code = main.main(['info', sys.argv[1]]); "
        "assert 'PySide6' not in sys.modules, 'Qt was imported'; sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tiny_checkpoint())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
