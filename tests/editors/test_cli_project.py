"""``main.py project`` on a tiny model: single photo, folder with resume, bad input."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import main
import models
from editors.latent_io import load_latent
from models.generator import to_rgb_u8
from tests.conftest import shared_path

PORTRAITS = ("data", "portraits", "images")


@pytest.mark.needs_shared
def test_single_photo_writes_results(tiny_checkpoint, tmp_path: Path, capsys) -> None:
    checkpoint = tiny_checkpoint()
    photo = shared_path(*PORTRAITS, "ffhq_00001_256.png")
    out = tmp_path / "out"
    code = main.main([
        "project", str(photo), "--model", str(checkpoint), "--steps", "4", "--space", "w",
        "--out", str(out), "--device", "cpu", "--video",
    ])  # fmt: skip
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names[:3] == ["aligned.png", "latent.npz", "progress.mp4"] or "progress.gif" in names
    printed = capsys.readouterr().out
    assert "PSNR" in printed and "SSIM" in printed and "loss pixel+ms-ssim" in printed
    latent = load_latent(out / "latent.npz")
    generator = models.load_generator(checkpoint, device="cpu")
    assert latent.ws.shape == (generator.num_ws, generator.w_dim)
    assert latent.metadata["space"] == "w" and latent.metadata["steps"] == 4
    assert latent.metadata["model"]["fingerprint"] == generator.fingerprint()
    assert Path(latent.metadata["source_photo"]).name == photo.name
    # projected.png is the render of the saved latent.
    with torch.no_grad():
        expected = to_rgb_u8(generator.synthesis(torch.from_numpy(latent.ws)[None]))[0]
    with Image.open(out / "projected.png") as written:
        np.testing.assert_array_equal(np.asarray(written), expected)
    with Image.open(out / "aligned.png") as aligned:
        assert aligned.size == (16, 16)


@pytest.mark.needs_shared
def test_folder_summary_and_resume(tiny_checkpoint, tmp_path: Path, capsys) -> None:
    checkpoint = tiny_checkpoint()
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(shared_path(*PORTRAITS, "ffhq_00002_256.png"), photos / "a.png")
    Image.new("RGB", (64, 64), (90, 90, 90)).save(photos / "blank.png")  # no face
    (photos / "notes.txt").write_text("not a photo")  # not an image suffix: ignored
    out = tmp_path / "out"
    args = ["project", str(photos), "--model", str(checkpoint), "--steps", "3", "--out", str(out)]
    args += ["--loss", "pixel"]
    assert main.main(args) == 0
    with open(out / "summary.csv", newline="") as handle:
        rows = {Path(r["photo"]).name: r for r in csv.DictReader(handle)}
    assert set(rows) == {"a.png", "blank.png"}
    assert rows["a.png"]["status"] == "projected" and float(rows["a.png"]["psnr"]) > 0
    assert rows["blank.png"]["status"] == "failed" and "no face" in rows["blank.png"]["error"]
    assert (out / "a" / "latent.npz").is_file()
    before = (out / "a" / "latent.npz").stat().st_mtime_ns

    capsys.readouterr()
    assert main.main([*args, "--center-crop-fallback"]) == 0
    with open(out / "summary.csv", newline="") as handle:
        rows = {Path(r["photo"]).name: r for r in csv.DictReader(handle)}
    assert rows["a.png"]["status"] == "done before"
    assert (out / "a" / "latent.npz").stat().st_mtime_ns == before
    assert rows["blank.png"]["status"] == "projected"  # centre crop this time


def test_bad_photo_is_one_line_error(tiny_checkpoint, tmp_path: Path, capsys) -> None:
    checkpoint = tiny_checkpoint()
    (tmp_path / "fake.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    code = main.main(
        [
            "project",
            str(tmp_path / "fake.jpg"),
            "--model",
            str(checkpoint),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fake.jpg" in err[0] and "corrupt" in err[0]
    Image.new("RGB", (64, 64)).save(tmp_path / "black.png")
    code = main.main(
        [
            "project",
            str(tmp_path / "black.png"),
            "--model",
            str(checkpoint),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "no face found" in capsys.readouterr().err
