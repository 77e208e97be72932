"""Format detection from content, one-line errors for bad files, ``models.load_discriminator``."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

import main
import models
from models.discriminator import StyleGAN2Discriminator
from models.errors import CheckpointError
from models.formats import Container, sniff_container
from models.stylegan2 import rosinality_channels
from tests.conftest import make_tiny_stylegan2
from tests.helpers import nvidia_pickles as nv
from tests.helpers import nvidia_tf as nvtf
from tests.helpers.pgan_files import write_pgan
from tests.helpers.progan import random_progan


def _random_discriminator(
    resolution: int, channels: list[int], seed: int = 0
) -> StyleGAN2Discriminator:
    torch.manual_seed(seed)
    discriminator = StyleGAN2Discriminator(resolution, channels)
    with torch.no_grad():
        for name, param in discriminator.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.2)
    return discriminator.eval()


@pytest.mark.parametrize(
    ("resolution", "channels"), [(16, [32, 16, 8]), (32, list(rosinality_channels(32, 1)))]
)
def test_rosinality_discriminator_loads_with_inferred_shape(
    tmp_path: Path, resolution: int, channels: list[int]
) -> None:
    original = _random_discriminator(resolution, channels)
    generator = make_tiny_stylegan2(resolution)
    path = tmp_path / "snapshot.pt"
    torch.save(
        {
            "g_ema": generator.state_dict(),
            "d": original.state_dict(),
            "latent_avg": generator.w_avg,
        },
        path,
    )

    loaded = models.load_discriminator(path, device="cpu")

    assert isinstance(loaded, StyleGAN2Discriminator)
    assert (loaded.resolution, list(loaded.channels)) == (resolution, channels)
    images = torch.rand(4, 3, resolution, resolution) * 2 - 1
    assert torch.equal(loaded(images), original(images))
    assert not any(p.requires_grad for p in loaded.parameters())


def test_discriminator_without_blur_buffers_loads(tmp_path: Path) -> None:
    original = _random_discriminator(16, [32, 16, 8])
    state = {k: v for k, v in original.state_dict().items() if not k.endswith(".kernel")}
    path = tmp_path / "d_only_weights.pt"
    torch.save({"d": state}, path)
    loaded = models.load_discriminator(path)
    assert loaded is not None
    images = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded(images), original(images))


def test_generator_only_file_has_no_discriminator(tmp_path: Path, tiny_checkpoint) -> None:
    assert models.load_discriminator(tiny_checkpoint()) is None


def test_damaged_discriminator_entry_is_named(tmp_path: Path) -> None:
    state = _random_discriminator(16, [32, 16, 8]).state_dict()
    del state["convs.1.conv2.1.weight"]
    path = tmp_path / "broken_d.pt"
    torch.save({"d": state}, path)
    with pytest.raises(CheckpointError, match=r"broken_d\.pt.*discriminator"):
        models.load_discriminator(path)


# -- detection from content -------------------------------------------------------------------


def _rosinality(path: Path, legacy: bool = False) -> Path:
    generator = make_tiny_stylegan2(16)
    torch.save(
        {"g_ema": generator.state_dict(), "latent_avg": generator.w_avg},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    return path


WRITERS = {
    # name: (writer(path) -> path, expected format name, expected container)
    "native": (
        lambda p: models.save_generator(make_tiny_stylegan2(16), p),
        "latentstudio safetensors",
        Container.SAFETENSORS,
    ),
    "rosinality-zip": (_rosinality, "rosinality .pt", Container.TORCH_ZIP),
    "rosinality-legacy": (
        lambda p: _rosinality(p, legacy=True),
        "rosinality .pt",
        Container.TORCH_LEGACY,
    ),
    "ada-pickle": (
        lambda p: nv.write_snapshot(p, G_ema=nv.make_generator()),
        "NVIDIA network pickle",
        Container.PICKLE,
    ),
    "tf-pickle": (
        lambda p: (
            p.write_bytes(nvtf.tf_generator_pickle(nv.flat_state(nv.make_generator()), 16, 32, 32))
            and p
        ),
        "NVIDIA TensorFlow pickle",
        Container.PICKLE,
    ),
    "pgan-zip": (
        lambda p: write_pgan(p, random_progan([16, 16]), None),
        "pytorch_GAN_zoo PGAN .pth",
        Container.TORCH_ZIP,
    ),
    "pgan-legacy": (
        lambda p: write_pgan(p, random_progan([16, 16]), None, legacy=True),
        "pytorch_GAN_zoo PGAN .pth",
        Container.TORCH_LEGACY,
    ),
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_format_comes_from_content_whatever_the_extension(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    writer, format_name, container = WRITERS[kind]
    path = writer(tmp_path / "model.ckpt")  # an extension none of the formats uses
    assert sniff_container(path) is container
    info = models.inspect_checkpoint(path)
    assert (info.format_name, info.container) == (format_name, container)
    assert main.main(["info", str(path)]) == 0
    assert f"format:      {format_name} ({container})" in capsys.readouterr().out


def _assert_one_line_error(path: Path, pattern: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CheckpointError, match=pattern) as info:
        models.load_generator(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert main.main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}:")


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _scramble(path: Path) -> Path:
    # Overwrite pickle opcodes near the start (flipped bytes inside raw tensor data go unnoticed).
    data = bytearray(path.read_bytes())
    data[12:44] = bytes((i * 37 + 11) % 256 for i in range(32))
    path.write_bytes(bytes(data))
    return path


BAD_FILES = {
    "truncated-zip": (lambda p: _truncate(_rosinality(p)), r"truncated or corrupted torch file"),
    "truncated-legacy": (
        lambda p: _truncate(_rosinality(p, legacy=True)),
        r"truncated or corrupted torch file",
    ),
    "truncated-pickle": (
        lambda p: _truncate(nv.write_snapshot(p, G_ema=nv.make_generator())),
        r"truncated or corrupted pickle",
    ),
    "truncated-safetensors": (
        lambda p: _truncate(models.save_generator(make_tiny_stylegan2(16), p), 0.7),
        r"truncated or corrupted safetensors",
    ),
    "scrambled-pickle": (
        lambda p: _scramble(nv.write_snapshot(p, G_ema=nv.make_generator())),
        r"(truncated or corrupted pickle|unsafe or unsupported pickle)",
    ),
    "random-bytes": (
        lambda p: p.write_bytes(bytes((i * 131 + 7) % 256 for i in range(4096))) and p,
        r"not a supported checkpoint",
    ),
    "stylegan2-d-only": (
        lambda p: torch.save({"d": _random_discriminator(16, [32, 16, 8]).state_dict()}, p) or p,
        r"holds only a StyleGAN2 discriminator",
    ),
    "nvidia-d-only": (
        lambda p: nv.write_snapshot(p, D=nv.make_discriminator()),
        r"holds only a discriminator",
    ),
    "wrong-architecture": (
        lambda p: (
            torch.save(
                {
                    "features.0.weight": torch.zeros(64, 3, 3, 3),
                    "classifier.0.weight": torch.zeros(10, 64),
                },
                p,
            )
            or p
        ),
        r"not a supported checkpoint .*top-level keys: classifier\.0\.weight, features\.0\.weight",
    ),
    "incomplete-rosinality": (
        lambda p: (
            torch.save({"g_ema": {"conv1.conv.modulation.weight": torch.zeros(8, 8)}}, p) or p
        ),
        r"incomplete rosinality generator",
    ),
    "unrelated-pickle": (
        lambda p: p.write_bytes(pickle.dumps([1, 2, 3])) and p,
        r"a pickle that is not a network checkpoint",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_give_one_line_naming_file_and_reason(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    writer, pattern = BAD_FILES[case]
    path = writer(tmp_path / f"{case}.bin")
    _assert_one_line_error(path, pattern, capsys)
