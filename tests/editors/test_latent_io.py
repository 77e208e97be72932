"""Latent files: ours, NVIDIA's projected_w.npz and rosinality's projector .pt."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from editors.errors import LatentFileError
from editors.latent_io import (
    FORMAT_NVIDIA,
    FORMAT_OURS,
    FORMAT_ROSINALITY,
    latent_metadata,
    load_latent,
    save_latent,
)


def random_ws(rows: int = 14, dim: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


def test_round_trip_keeps_values_and_metadata(tmp_path: Path) -> None:
    ws = random_ws()
    meta = latent_metadata(model_name="tiny", model_fingerprint="abc123", space="w+",
                           source_photo="/photos/me.jpg", loss="pixel+ms-ssim", steps=np.int64(100),
                           psnr=31.5)  # fmt: skip
    noise = [np.ones((1, 1, 4, 4), np.float32), np.zeros((1, 1, 8, 8), np.float32)]
    path = save_latent(tmp_path / "latent.npz", ws, metadata=meta, noise=noise)
    assert path == tmp_path / "latent.npz" and sorted(p.name for p in tmp_path.iterdir()) == [
        "latent.npz"
    ]
    loaded = load_latent(path)
    np.testing.assert_array_equal(loaded.ws, ws)
    assert loaded.format_name == FORMAT_OURS and loaded.model_fingerprint == "abc123"
    assert loaded.metadata["steps"] == 100 and loaded.metadata["schema_version"] == 1
    assert [n.shape for n in loaded.noise] == [(1, 1, 4, 4), (1, 1, 8, 8)]
    # The file is NVIDIA-compatible: key w is [1, num_ws, w_dim] float32, and no pickles.
    with np.load(path, allow_pickle=False) as data:
        assert data["w"].shape == (1, 14, 32) and data["w"].dtype == np.float32
        assert json.loads(str(data["metadata"]))["model"]["name"] == "tiny"


def test_reads_nvidia_projected_w(tmp_path: Path) -> None:
    ws = random_ws(18, 512)
    np.savez(tmp_path / "projected_w.npz", w=ws[None])
    loaded = load_latent(tmp_path / "projected_w.npz")
    assert loaded.format_name == FORMAT_NVIDIA and loaded.metadata == {}
    np.testing.assert_array_equal(loaded.ws, ws)
    np.testing.assert_array_equal(loaded.fitted(18, 512), ws)


def test_reads_rosinality_projector_output(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    w_plus = torch.randn(14, 32, generator=g)
    data = {
        "a.png": {
            "img": torch.zeros(3, 16, 16),
            "latent": w_plus,
            "noise": [torch.ones(1, 1, 4, 4)],
        },
        "b.png": {
            "img": torch.zeros(3, 16, 16),
            "latent": torch.randn(32, generator=g),
            "noise": [],
        },
    }
    torch.save(data, tmp_path / "a.pt")
    first = load_latent(tmp_path / "a.pt")
    assert first.format_name == FORMAT_ROSINALITY and first.names == ("a.png", "b.png")
    np.testing.assert_array_equal(first.ws, w_plus.numpy())
    assert first.noise is not None and first.noise[0].shape == (1, 1, 4, 4)
    second = load_latent(tmp_path / "a.pt", index=1)
    assert second.ws.shape == (1, 32)  # projected without --w_plus: one w
    fitted = second.fitted(14, 32)
    assert fitted.shape == (14, 32) and (fitted == fitted[0]).all()
    with pytest.raises(LatentFileError, match="entry 2 asked for, but the file has 2"):
        load_latent(tmp_path / "a.pt", index=2)


def test_shape_mismatch_names_the_problem(tmp_path: Path) -> None:
    save_latent(tmp_path / "big.npz", random_ws(18, 512))
    with pytest.raises(LatentFileError, match=r"18 x 512 but this model takes 14 x 32"):
        load_latent(tmp_path / "big.npz").fitted(14, 32)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(LatentFileError, match="no such file"):
        load_latent(tmp_path / "none.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(LatentFileError, match="not a latent file"):
        load_latent(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(LatentFileError, match="no 'w' array"):
        load_latent(tmp_path / "other.npz")
    np.savez(tmp_path / "flat.npz", w=np.zeros(3))
    with pytest.raises(LatentFileError, match=r"'w' must be \[1, num_ws, w_dim\]"):
        load_latent(tmp_path / "flat.npz")
    np.savez(tmp_path / "nan.npz", w=np.full((1, 2, 3), np.nan))
    with pytest.raises(LatentFileError, match="NaN"):
        load_latent(tmp_path / "nan.npz")
    # A pickled object array is refused, never unpickled.
    np.savez(tmp_path / "pickled.npz", w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(LatentFileError, match="cannot read"):
        load_latent(tmp_path / "pickled.npz")
    # A .pt holding a non-tensor class is refused by weights_only loading.
    torch.save({"a.png": {"latent": zipfile.ZipInfo("x")}}, tmp_path / "evil.pt")
    with pytest.raises(LatentFileError, match="safely"):
        load_latent(tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="NaN"):
        save_latent(tmp_path / "x.npz", np.full((2, 3), np.inf))
