"""StyleGAN2 generator: each operation and the whole network against naive reference code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.generator import parse_seeds, seed_to_z, to_rgb_u8
from models.stylegan2 import (
    ModulatedConv2d,
    StyleGAN2Generator,
    SynthesisCache,
    channels_from_base,
    make_kernel,
    rosinality_channels,
    upfirdn2d,
)
from tests.helpers import reference_stylegan2 as ref

ATOL = 1e-4


def test_make_kernel_is_normalised_outer_product() -> None:
    kernel = make_kernel((1, 3, 3, 1))
    expected = torch.tensor([[1, 3, 3, 1], [3, 9, 9, 3], [3, 9, 9, 3], [1, 3, 3, 1]]) / 64.0
    assert torch.allclose(kernel, expected)


@pytest.mark.parametrize(
    ("up", "down", "pad"), [(1, 1, (1, 1)), (2, 1, (2, 1)), (1, 2, (2, 2)), (2, 1, (-1, 0))]
)
def test_upfirdn2d_matches_definition(up: int, down: int, pad: tuple[int, int]) -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 7, 7, generator=generator)
    kernel = torch.rand(4, 4, generator=generator)  # asymmetric: checks the flip
    got = upfirdn2d(x, kernel, up=up, down=down, pad=pad)
    for n in range(2):
        want = ref.naive_upfirdn(x[n], kernel, up, max(pad[0], 0), max(pad[1], 0))
        crop0, crop1 = max(-pad[0], 0), max(-pad[1], 0)
        want = want[:, crop0 : want.shape[1] - crop1, crop0 : want.shape[2] - crop1]
        want = want[:, ::down, ::down]
        assert got[n].shape == want.shape
        assert torch.allclose(got[n], want, atol=1e-5)


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_per_sample_conv(demodulate: bool) -> None:
    torch.manual_seed(0)
    layer = ModulatedConv2d(6, 5, 3, w_dim=8, demodulate=demodulate)
    with torch.no_grad():
        layer.modulation.bias.normal_()
    x = torch.randn(3, 6, 9, 9)
    w = torch.randn(3, 8)
    got = layer(x, w)
    for n in range(3):
        style = ref.affine(
            {
                "m.modulation.weight": layer.modulation.weight,
                "m.modulation.bias": layer.modulation.bias,
            },
            "m",
            w[n],
        )
        kernel = ref.modulated_kernel(layer.weight[0], style, demodulate)
        want = F.conv2d(x[n : n + 1], kernel, padding=1)
        assert torch.allclose(got[n : n + 1], want, atol=ATOL)


def test_upsampling_modulated_conv_matches_zero_insertion_definition() -> None:
    torch.manual_seed(0)
    layer = ModulatedConv2d(4, 3, 3, w_dim=8, upsample=True)
    x = torch.randn(2, 4, 5, 5)
    w = torch.randn(2, 8)
    got = layer(x, w)
    assert got.shape == (2, 3, 10, 10)
    state = {
        "c.conv.weight": layer.weight,
        "c.conv.modulation.weight": layer.modulation.weight,
        "c.conv.modulation.bias": layer.modulation.bias,
        "c.noise.weight": torch.zeros(1),
        "c.activate.bias": torch.zeros(3),
    }
    for n in range(2):
        # the reference adds bias + lrelu; undo that on a copy to compare the conv alone
        with_act = ref.styled_conv(state, "c", x[n], w[n], None, up=True)
        act = F.leaky_relu(got[n], 0.2) * math.sqrt(2)
        assert torch.allclose(act, with_act, atol=ATOL)


@pytest.mark.parametrize(
    ("resolution", "base", "cap", "z_dim", "layers"), [(16, 256, 32, 32, 2), (32, 512, 64, 48, 3)]
)
def test_generator_matches_naive_reference(
    resolution: int, base: int, cap: int, z_dim: int, layers: int
) -> None:
    torch.manual_seed(3)
    generator = StyleGAN2Generator(
        resolution,
        channels_from_base(resolution, base, cap),
        z_dim=z_dim,
        w_dim=z_dim,
        mapping_layers=layers,
    )
    with torch.no_grad():
        for name, param in generator.named_parameters():
            if name.endswith("bias") or name.endswith("noise.weight"):
                param.normal_(0, 0.3)
    generator.eval()
    state = {k: v.detach() for k, v in generator.state_dict().items()}
    z = torch.randn(2, z_dim)
    with torch.no_grad():
        w = generator.mapping(z)
        assert torch.allclose(w, ref.naive_mapping(state, z), atol=ATOL)
        ws = torch.randn(2, generator.num_ws, z_dim)  # distinct rows: checks the row bookkeeping
        for mode, use_noise in (("const", True), ("none", False)):
            got = generator.synthesis(ws, noise_mode=mode)
            want = ref.naive_synthesis(state, ws, use_noise=use_noise)
            assert got.shape == (2, 3, resolution, resolution)
            assert (got - want).abs().max().item() < ATOL


def test_layout_matches_rosinality_key_table() -> None:
    generator = StyleGAN2Generator(64, rosinality_channels(64, 2), mapping_layers=8)
    state = generator.state_dict()
    assert state["conv1.conv.weight"].shape == (1, 512, 512, 3, 3)
    assert state["convs.6.conv.weight"].shape == (1, 512, 512, 3, 3)  # 64 px with cm=2
    assert state["to_rgbs.3.conv.weight"].shape == (1, 3, 512, 1, 1)
    assert state["convs.0.conv.blur.kernel"].shape == (4, 4)
    assert torch.allclose(state["to_rgbs.0.upsample.kernel"], make_kernel((1, 3, 3, 1)) * 4)
    assert [state[f"noises.noise_{j}"].shape[-1] for j in range(9)] == [
        4,
        8,
        8,
        16,
        16,
        32,
        32,
        64,
        64,
    ]
    assert {f"style.{i}.weight" for i in range(1, 9)} <= set(state)
    assert generator.num_ws == 10


def test_noise_modes(tiny_generator) -> None:
    generator = tiny_generator()
    ws = generator.broadcast(generator.mapping(torch.randn(1, generator.z_dim)))
    with torch.no_grad():
        const_a = generator.synthesis(ws, noise_mode="const")
        const_b = generator.synthesis(ws, noise_mode="const")
        none = generator.synthesis(ws, noise_mode="none")
        rand_a = generator.synthesis(ws, noise_mode="random")
        rand_b = generator.synthesis(ws, noise_mode="random")
        zero_strength = generator.synthesis(
            ws, noise_mode="const", noise_strength=[0.0] * generator.num_layers
        )
    assert torch.equal(const_a, const_b)
    assert not torch.allclose(const_a, none)
    assert not torch.allclose(rand_a, rand_b)
    assert torch.allclose(zero_strength, none, atol=1e-6)
    with pytest.raises(ValueError, match="noise_mode"):
        generator.synthesis(ws, noise_mode="loud")  # type: ignore[arg-type]


def test_truncation_moves_towards_w_avg(tiny_generator) -> None:
    generator = tiny_generator()
    z = torch.randn(4, generator.z_dim)
    w = generator.mapping(z)
    half = generator.mapping(z, truncation_psi=0.5)
    assert torch.allclose(half, generator.w_avg + 0.5 * (w - generator.w_avg), atol=1e-6)
    assert torch.allclose(
        generator.mapping(z, truncation_psi=0.0), generator.w_avg.expand(4, -1), atol=1e-6
    )


def test_shape_errors_name_the_argument(tiny_generator) -> None:
    generator = tiny_generator()
    with pytest.raises(ValueError, match="ws must have shape"):
        generator.synthesis(torch.zeros(1, 3, generator.w_dim))
    with pytest.raises(ValueError, match="z must have shape"):
        generator.mapping(torch.zeros(2, generator.z_dim + 1))


def test_cache_gives_identical_pixels_and_restarts_late(tiny_generator) -> None:
    generator = tiny_generator(resolution=32)
    cache = SynthesisCache()
    ws = generator.broadcast(generator.mapping(torch.randn(1, generator.z_dim)))
    with torch.no_grad():
        generator.synthesis(ws, cache=cache)
        assert cache.last_start_block == 0
        fine = ws.clone()
        fine[:, 7:] += 0.5  # rows 7+ feed only the 32-px block of a 32-px model
        cached = generator.synthesis(fine, cache=cache)
        assert cache.last_start_block == 3
        assert torch.equal(cached, generator.synthesis(fine))
        coarse = fine.clone()
        coarse[:, 0] -= 0.5
        cached = generator.synthesis(coarse, cache=cache)
        assert cache.last_start_block == 0
        assert torch.equal(cached, generator.synthesis(coarse))


def test_max_resolution_returns_the_running_image(tiny_generator) -> None:
    generator = tiny_generator(resolution=32)
    ws = generator.broadcast(generator.mapping(torch.randn(2, generator.z_dim)))
    with torch.no_grad():
        preview = generator.synthesis(ws, max_resolution=16)
    assert preview.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="max_resolution"):
        generator.synthesis(ws, max_resolution=12)


def test_seed_to_z_follows_nvidia_convention() -> None:
    z = seed_to_z([0, 42], 16)
    assert np.allclose(z[1].numpy(), np.random.RandomState(42).randn(16).astype(np.float32))
    assert z.dtype == torch.float32


def test_to_rgb_u8_maps_range() -> None:
    images = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    rgb = to_rgb_u8(images)[0]
    assert rgb.shape == (1, 4, 3)
    assert rgb[0, :, 0].tolist() == [0, 128, 255, 255]


@pytest.mark.parametrize(
    ("text", "expected"), [("0-3", [0, 1, 2, 3]), ("5,1", [5, 1]), ("1-2, 9", [1, 2, 9])]
)
def test_parse_seeds(text: str, expected: list[int]) -> None:
    assert parse_seeds(text) == expected


@pytest.mark.parametrize("text", ["", "a-b", "5-2", "-3"])
def test_parse_seeds_rejects_bad_lists(text: str) -> None:
    with pytest.raises(ValueError):
        parse_seeds(text)
