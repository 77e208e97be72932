"""ProGAN generator: arithmetic against a naive reference, growing and fading, API, native files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import models
from models.progan import DEFAULT_DEPTHS, ProGANGenerator
from tests.helpers.progan import naive_progan, random_progan


@pytest.mark.parametrize(
    ("depths", "alpha", "tanh"),
    [
        ([32], 0.0, False),
        ([32, 16, 16], 0.0, False),
        ([32, 16, 8], 0.4, False),
        ([16, 16], 0.0, True),
    ],
)
def test_forward_matches_naive_reference(depths: list[int], alpha: float, tanh: bool) -> None:
    generator = random_progan(depths, alpha=alpha, output_activation="tanh" if tanh else None)
    z = torch.randn(3, 16)
    images = generator(z)
    assert images.shape == (3, 3, 4 * 2 ** (len(depths) - 1), 4 * 2 ** (len(depths) - 1))
    expected = naive_progan(generator.state_dict(), z, alpha=alpha, tanh=tanh)
    torch.testing.assert_close(images, expected, atol=1e-5, rtol=0)


def test_layout_matches_the_zoo_key_table() -> None:
    generator = ProGANGenerator(8, [32, 16])
    shapes = {k: tuple(v.shape) for k, v in generator.state_dict().items()}
    assert shapes == {
        "w_avg": (8,),
        "formatLayer.module.weight": (16 * 32, 8),
        "formatLayer.module.bias": (16 * 32,),
        "groupScale0.0.module.weight": (32, 32, 3, 3),
        "groupScale0.0.module.bias": (32,),
        "scaleLayers.0.0.module.weight": (16, 32, 3, 3),
        "scaleLayers.0.0.module.bias": (16,),
        "scaleLayers.0.1.module.weight": (16, 16, 3, 3),
        "scaleLayers.0.1.module.bias": (16,),
        "toRGBLayers.0.module.weight": (3, 32, 1, 1),
        "toRGBLayers.0.module.bias": (3,),
        "toRGBLayers.1.module.weight": (3, 16, 1, 1),
        "toRGBLayers.1.module.bias": (3,),
    }


def test_facade_contract() -> None:
    generator = random_progan([32, 16])
    assert (
        generator.kind,
        generator.num_ws,
        generator.w_dim,
        generator.z_dim,
        generator.c_dim,
    ) == ("progan", 1, 16, 16, 0)
    z = torch.randn(2, 16)
    assert torch.equal(generator.mapping(z), z)  # z is the editable latent
    assert torch.equal(generator.w_avg, torch.zeros(16))
    torch.testing.assert_close(generator.mapping(z, truncation_psi=0.5), 0.5 * z)
    ws = generator.broadcast(z)
    assert ws.shape == (2, 1, 16)
    assert torch.equal(
        generator.synthesis(ws, noise_mode="random"), generator.synthesis(ws, noise_mode="const")
    )
    with pytest.raises(ValueError, match="class label"):
        generator.mapping(z, c=torch.ones(2, 1))
    with pytest.raises(ValueError, match=r"ws must have shape \[N, 1, 16\]"):
        generator.synthesis(torch.zeros(2, 2, 16))


def test_max_resolution_previews_through_the_lower_torgb() -> None:
    generator = random_progan([32, 16, 8], alpha=0.5)
    z = torch.randn(2, 16)
    preview = generator.synthesis(generator.broadcast(z), max_resolution=8)
    assert preview.shape == (2, 3, 8, 8)
    torch.testing.assert_close(
        preview, naive_progan(generator.state_dict(), z, last_scale=1), atol=1e-5, rtol=0
    )
    with pytest.raises(ValueError, match="max_resolution"):
        generator.synthesis(generator.broadcast(z), max_resolution=12)


def test_grow_and_fade_for_training() -> None:
    generator = random_progan([32])
    z = torch.randn(2, 16)
    before = generator(z)
    generator.grow(16)
    assert (generator.resolution, generator.depth, generator.alpha) == (8, 1, 1.0)
    # alpha = 1: the new scale is invisible, the image is the old one upsampled.
    torch.testing.assert_close(
        generator(z), before.repeat_interleave(2, 2).repeat_interleave(2, 3), atol=1e-6, rtol=0
    )
    generator.set_alpha(0.0)
    torch.testing.assert_close(
        generator(z), naive_progan(generator.state_dict(), z), atol=1e-5, rtol=0
    )
    new = generator.scaleLayers[0][0].module
    assert torch.count_nonzero(new.bias) == 0 and abs(float(new.weight.detach().std()) - 1.0) < 0.2
    with pytest.raises(ValueError, match="alpha"):
        generator.set_alpha(1.5)
    with pytest.raises(ValueError, match="two scales"):
        ProGANGenerator(8, [16], alpha=0.5)


def test_for_resolution_uses_default_depths() -> None:
    generator = ProGANGenerator.for_resolution(32, z_dim=8)
    assert generator.depths == list(DEFAULT_DEPTHS[:4]) and generator.resolution == 32
    with pytest.raises(ValueError, match="power of two"):
        ProGANGenerator.for_resolution(48)


def test_native_round_trip_keeps_alpha(tmp_path: Path) -> None:
    generator = random_progan([32, 16, 8], alpha=0.25, output_activation="tanh")
    path = models.save_generator(generator, tmp_path / "pgan.safetensors")
    loaded = models.load_generator(path, device="cpu")
    assert isinstance(loaded, ProGANGenerator)
    assert loaded.architecture() == generator.architecture()
    z = torch.randn(2, 16)
    assert torch.equal(loaded(z), generator(z))
    assert models.inspect_checkpoint(path).kind == "progan"
