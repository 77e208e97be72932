"""Native and rosinality checkpoints: round trips, inference from tensors, detection, errors."""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

import pytest
import torch

import models
from models.errors import CheckpointError, UnsupportedFormatError
from models.formats import Container, sniff_container
from models.stylegan2 import StyleGAN2Generator, rosinality_channels
from tests.conftest import make_tiny_stylegan2


def rosinality_state(generator: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    """The state dict rosinality's Generator would hold (it has no w_avg buffer)."""
    return {k: v.clone() for k, v in generator.state_dict().items() if k != "w_avg"}


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_native_round_trip_is_bit_exact(tmp_path: Path) -> None:
    generator = make_tiny_stylegan2()
    generator.name = "tiny"
    generator.provenance = {"data": "none", "images_seen": 12}
    path = models.save_generator(generator, tmp_path / "tiny.safetensors")
    loaded = models.load_generator(path, device="cpu")
    assert same_weights(generator, loaded)
    assert loaded.architecture() == generator.architecture()
    assert loaded.name == "tiny" and loaded.provenance["images_seen"] == 12
    ws = generator.broadcast(generator.mapping(torch.randn(2, generator.z_dim)))
    assert torch.equal(generator.synthesis(ws), loaded.synthesis(ws))
    assert not list(tmp_path.glob("*.tmp"))  # the temp file was renamed away


def test_native_fp16_storage_loads_as_float32(tmp_path: Path) -> None:
    generator = make_tiny_stylegan2()
    path = models.save_generator(generator, tmp_path / "half.safetensors", dtype=torch.float16)
    loaded = models.load_generator(path, device="cpu")
    weight = loaded.state_dict()["conv1.conv.weight"]
    assert weight.dtype == torch.float32
    assert torch.equal(weight, generator.state_dict()["conv1.conv.weight"].half().float())


@pytest.mark.parametrize(
    ("size", "multiplier", "n_mlp", "style_dim"), [(32, 1, 2, 64), (64, 2, 3, 32)]
)
def test_rosinality_checkpoint_infers_architecture(
    tmp_path: Path, size: int, multiplier: int, n_mlp: int, style_dim: int
) -> None:
    torch.manual_seed(0)
    original = StyleGAN2Generator(
        size,
        rosinality_channels(size, multiplier),
        z_dim=style_dim,
        w_dim=style_dim,
        mapping_layers=n_mlp,
    )
    latent_avg = torch.randn(style_dim)
    path = tmp_path / "converted.pt"
    torch.save({"g_ema": rosinality_state(original), "latent_avg": latent_avg}, path)
    loaded = models.load_generator(path, device="cpu")
    assert (loaded.resolution, loaded.w_dim, loaded.mapping_layers) == (size, style_dim, n_mlp)
    assert loaded.channels == rosinality_channels(size, multiplier)
    assert torch.equal(loaded.w_avg, latent_avg)
    original.load_state_dict({**rosinality_state(original), "w_avg": latent_avg})
    ws = torch.randn(1, loaded.num_ws, style_dim)
    with torch.no_grad():
        assert torch.equal(loaded.synthesis(ws), original.synthesis(ws))
    assert loaded.source is not None and loaded.source.format_name == "rosinality .pt"


def test_rosinality_training_snapshot_with_namespace(tmp_path: Path) -> None:
    generator = make_tiny_stylegan2()
    state = rosinality_state(generator)
    path = tmp_path / "040000.pt"
    torch.save(
        {
            "g": state,
            "d": {"convs.0.0.weight": torch.zeros(1)},
            "g_ema": state,
            "g_optim": {},
            "d_optim": {},
            "args": argparse.Namespace(size=16, batch=4),
            "ada_aug_p": 0.0,
        },
        path,
    )
    loaded = models.load_generator(path, device="cpu")
    # no latent_avg in training snapshots: w_avg is estimated from the mapping network
    z = torch.randn(20000, generator.z_dim, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(loaded.w_avg, generator.mapping_raw(z).mean(0), atol=0.05)
    assert "g_ema" in loaded.source.detail and "args" in loaded.source.detail


def test_old_conversion_without_buffers_loads(tmp_path: Path) -> None:
    generator = make_tiny_stylegan2()
    state = {
        k: v
        for k, v in rosinality_state(generator).items()
        if not k.endswith(".kernel") and not k.startswith("noises.")
    }
    path = tmp_path / "old.pt"
    torch.save({"g_ema": state, "latent_avg": generator.w_avg}, path)
    loaded = models.load_generator(path, device="cpu")
    ws = generator.broadcast(generator.w_avg[None])
    assert torch.allclose(
        loaded.synthesis(ws, noise_mode="none"), generator.synthesis(ws, noise_mode="none")
    )


def test_format_is_detected_from_content_not_extension(tmp_path: Path) -> None:
    generator = make_tiny_stylegan2()
    native = models.save_generator(generator, tmp_path / "model.safetensors")
    disguised = tmp_path / "model.pt"
    native.rename(disguised)
    assert sniff_container(disguised) is Container.SAFETENSORS
    assert (
        models.load_generator(disguised, device="cpu").source.format_name
        == "latentstudio safetensors"
    )
    torch_file = tmp_path / "weights.bin"
    torch.save({"g_ema": rosinality_state(generator)}, torch_file)
    assert sniff_container(torch_file) is Container.TORCH_ZIP
    legacy = tmp_path / "legacy.pt"
    torch.save({"g_ema": rosinality_state(generator)}, legacy, _use_new_zipfile_serialization=False)
    assert sniff_container(legacy) is Container.TORCH_LEGACY
    assert models.load_generator(legacy, device="cpu").resolution == 16


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=re.escape("nope.pt: file not found")):
        models.load_generator(tmp_path / "nope.pt")


def test_text_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(
        UnsupportedFormatError, match=re.escape("notes.pt: not a supported checkpoint")
    ):
        models.load_generator(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="file is empty"):
        models.load_generator(path)


def test_truncated_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.pt"
    torch.save({"g_ema": rosinality_state(make_tiny_stylegan2())}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=re.escape("cut.pt: truncated or corrupted")):
        models.load_generator(path)


def test_truncated_safetensors(tmp_path: Path) -> None:
    path = models.save_generator(make_tiny_stylegan2(), tmp_path / "cut.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=re.escape("cut.safetensors: truncated or corrupted")):
        models.load_generator(path)


def test_unexpected_tensors_are_refused(tmp_path: Path) -> None:
    state = rosinality_state(make_tiny_stylegan2())
    state["convs.99.conv.weight"] = torch.zeros(1)
    path = tmp_path / "odd.pt"
    torch.save({"g_ema": state}, path)
    with pytest.raises(CheckpointError, match=re.escape("unexpected tensors convs.99.conv.weight")):
        models.load_generator(path)


def test_wrong_shapes_are_refused(tmp_path: Path) -> None:
    state = rosinality_state(make_tiny_stylegan2())
    state["conv1.noise.weight"] = torch.zeros(3)
    path = tmp_path / "shape.pt"
    torch.save({"g_ema": state}, path)
    with pytest.raises(CheckpointError, match=re.escape("wrong shapes for conv1.noise.weight")):
        models.load_generator(path)


def test_unknown_dict_lists_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}, "epoch": 3}, path)
    with pytest.raises(UnsupportedFormatError, match="top-level keys: epoch, model"):
        models.load_generator(path)


def test_code_in_a_torch_file_is_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pt"
    torch.save({"g_ema": Payload()}, path)
    with pytest.raises(CheckpointError, match=re.escape("evil.pt: unsafe or unsupported")):
        models.load_generator(path)
    assert not marker.exists()


def test_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a folder"):
        models.load_generator(tmp_path)


def test_inspect_reports_the_facts(tmp_path: Path) -> None:
    generator = make_tiny_stylegan2()
    path = tmp_path / "tiny.pt"
    torch.save({"g_ema": rosinality_state(generator), "latent_avg": generator.w_avg}, path)
    info = models.inspect_checkpoint(path)
    assert (info.kind, info.resolution, info.z_dim, info.w_dim, info.num_ws) == (
        "stylegan2",
        16,
        32,
        32,
        6,
    )
    assert info.num_parameters == sum(p.numel() for p in generator.parameters())
    text = "\n".join(info.lines())
    assert "rosinality .pt (zip-based torch file)" in text


def test_zip_that_is_not_torch(tmp_path: Path) -> None:
    path = tmp_path / "archive.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    with pytest.raises(CheckpointError, match=re.escape("archive.pt")):
        models.load_generator(path)


def test_saved_files_get_normal_permissions_and_no_temp_file_is_left(tmp_path: Path) -> None:
    import os
    import stat

    from models.formats.native import NEW_FILE_MODE, atomic_write

    target = tmp_path / "out.bin"
    atomic_write(target, lambda tmp: tmp.write_bytes(b"data"))
    assert target.read_bytes() == b"data"
    assert stat.S_IMODE(os.stat(target).st_mode) == NEW_FILE_MODE
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
