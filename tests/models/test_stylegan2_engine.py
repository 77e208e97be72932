"""The fast paths of the StyleGAN2 engine agree with the plain ones and never go stale."""

from __future__ import annotations

import pytest
import torch

import models.stylegan2_layers as layers
from tests.conftest import make_tiny_stylegan2


def _ws(generator, batch: int) -> torch.Tensor:
    torch.manual_seed(5)
    return generator.w_avg + 0.5 * torch.randn(batch, generator.num_ws, generator.w_dim)


def test_cached_weight_terms_follow_in_place_weight_changes() -> None:
    generator = make_tiny_stylegan2(resolution=16)
    ws = _ws(generator, 1)
    with torch.inference_mode():
        generator.synthesis(ws)  # fills the per-layer weight caches
    with torch.no_grad():
        for conv in generator.convs:
            conv.conv.weight.mul_(1.7).add_(0.1)
    with torch.inference_mode():
        cached = generator.synthesis(ws)
    fresh = make_tiny_stylegan2(resolution=16)
    fresh.load_state_dict(generator.state_dict())
    with torch.inference_mode():
        expected = fresh.synthesis(ws)
    assert torch.equal(cached, expected)


@pytest.mark.parametrize("batch", [1, 3])
def test_inference_and_autograd_paths_agree_and_gradients_flow(batch: int) -> None:
    generator = make_tiny_stylegan2(resolution=16)
    ws = _ws(generator, batch)
    with torch.inference_mode():
        fast = generator.synthesis(ws)  # in-place activation, cached weight terms, NHWC
    latent = ws.clone().requires_grad_(True)
    slow = generator.synthesis(latent)  # autograd path: nothing cached, nothing in place
    assert torch.allclose(fast, slow, atol=1e-5)
    slow.square().mean().backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0
    assert all(p.grad is not None for p in generator.convs.parameters() if p.requires_grad)
    # a finite-difference check of one coordinate of the W+ gradient
    eps = 1e-2
    bumped = ws.clone()
    bumped[0, 3, 0] += eps
    with torch.no_grad():
        numeric = (generator.synthesis(bumped).square().mean() - slow.square().mean()) / eps
    assert abs(numeric.item() - latent.grad[0, 3, 0].item()) < 0.05 * abs(numeric.item()) + 1e-4


def test_weight_and_activation_modulation_give_the_same_image() -> None:
    generator = make_tiny_stylegan2(resolution=16)
    ws = _ws(generator, 1)
    with torch.inference_mode():
        by_weight = generator.synthesis(ws)
        layers.WEIGHT_MODULATION_AT_BATCH_1 = False
        try:
            by_activation = generator.synthesis(ws)
        finally:
            layers.WEIGHT_MODULATION_AT_BATCH_1 = True
    assert torch.allclose(by_weight, by_activation, atol=1e-5)


def test_latent_gradient_without_weight_gradient_matches_the_modulated_weight_path() -> None:
    # A latent-only gradient (projection) takes the activation path; asking for weight
    # gradients too forces the modulated-weight path. Both must give the same latent gradient.
    generator = make_tiny_stylegan2(resolution=16)
    target = torch.randn(1, 3, 16, 16)

    def latent_gradient(weights_too: bool) -> torch.Tensor:
        generator.requires_grad_(weights_too)
        ws = _ws(generator, 1).requires_grad_(True)
        image = generator.synthesis(ws, noise_mode="const")
        torch.nn.functional.mse_loss(image, target).backward()
        return ws.grad

    conv = generator.convs[0].conv
    by_weight = latent_gradient(True)
    assert not conv._gradient_skips_weight(torch.zeros(1), torch.zeros(1, requires_grad=True))
    generator.zero_grad(set_to_none=True)
    by_activation = latent_gradient(False)
    assert conv._gradient_skips_weight(torch.zeros(1), torch.zeros(1, requires_grad=True))
    assert by_weight.abs().max() > 0
    assert torch.allclose(by_weight, by_activation, rtol=1e-4, atol=1e-7)


def test_skip_upsampling_fast_path_equals_the_fir_definition() -> None:
    kernel = layers.make_kernel(layers.BLUR_KERNEL) * 4
    image = torch.randn(2, 3, 9, 7).contiguous(memory_format=torch.channels_last)
    fast = layers.upsample_skip(image, kernel)
    assert layers._is_default_upsample_kernel(kernel)
    expected = layers.upfirdn2d(image, kernel, up=2, pad=(2, 1))
    assert fast.shape == expected.shape == (2, 3, 18, 14)
    assert torch.allclose(fast, expected, atol=1e-6)
    other = kernel.flip(0) * torch.linspace(0.5, 1.5, 4)[:, None]  # not the default: generic path
    assert not layers._is_default_upsample_kernel(other)
    assert torch.equal(
        layers.upsample_skip(image, other), layers.upfirdn2d(image, other, up=2, pad=(2, 1))
    )
