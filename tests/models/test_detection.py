"""Format detection from content, one-line errors for bad files, and ``models.load_discriminator``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import models
from models.discriminator import StyleGAN2Discriminator
from models.errors import CheckpointError
from models.stylegan2 import rosinality_channels
from tests.conftest import make_tiny_stylegan2


def _random_discriminator(resolution: int, channels: list[int], seed: int = 0) -> StyleGAN2Discriminator:
    torch.manual_seed(seed)
    discriminator = StyleGAN2Discriminator(resolution, channels)
    with torch.no_grad():
        for name, param in discriminator.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.2)
    return discriminator.eval()


@pytest.mark.parametrize(("resolution", "channels"), [(16, [32, 16, 8]), (32, list(rosinality_channels(32, 1)))])
def test_rosinality_discriminator_loads_with_inferred_shape(tmp_path: Path, resolution: int, channels: list[int]) -> None:
    original = _random_discriminator(resolution, channels)
    generator = make_tiny_stylegan2(resolution)
    path = tmp_path / "snapshot.pt"
    torch.save({"g_ema": generator.state_dict(), "d": original.state_dict(), "latent_avg": generator.w_avg}, path)

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
