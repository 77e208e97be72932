"""Style-space offsets and feature hooks of the StyleGAN2 synthesis."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_tiny_stylegan2


@pytest.mark.parametrize("batch", [1, 3])
def test_style_offset_equals_editing_the_affine_bias(batch: int) -> None:
    generator = make_tiny_stylegan2(resolution=16)
    ws = generator.w_avg.expand(batch, generator.num_ws, -1) + 0.3 * torch.randn(
        batch, generator.num_ws, generator.w_dim
    )
    layers = generator.style_layers()
    assert [layer.ws_row for layer in layers] == sorted(layer.ws_row for layer in layers)
    # skip architecture: every styled conv plus one ToRGB per block; ToRGB shares the next row
    assert len(layers) == generator.num_layers + len(generator.channels)
    assert {layer.ws_row for layer in layers} == set(range(generator.num_ws))
    target = layers[4]
    delta = torch.randn(target.channels)
    edited = generator.synthesis(ws, style_offsets={target.index: delta[None]})

    # Independent route: the affine layer's bias is what the offset adds to.
    conv = generator.get_submodule(target.name).conv
    with torch.no_grad():
        conv.modulation.bias += delta / conv.modulation.lr_mul
        expected = generator.synthesis(ws)
        conv.modulation.bias -= delta / conv.modulation.lr_mul
    assert torch.allclose(edited, expected, atol=1e-5)
    assert not torch.allclose(edited, generator.synthesis(ws), atol=1e-3)


def test_styles_match_the_layers_and_zero_offsets_change_nothing() -> None:
    generator = make_tiny_stylegan2(resolution=16)
    ws = generator.w_avg.expand(2, generator.num_ws, -1).clone()
    styles = generator.styles(ws)
    assert [s.shape[1] for s in styles] == [layer.channels for layer in generator.style_layers()]
    zero = {layer.index: torch.zeros(1, layer.channels) for layer in generator.style_layers()}
    assert torch.equal(generator.synthesis(ws, style_offsets=zero), generator.synthesis(ws))
    with pytest.raises(ValueError, match="unknown layer"):
        generator.synthesis(ws, style_offsets={99: torch.zeros(1, 4)})


def test_feature_hook_sees_every_block_and_can_replace_features() -> None:
    generator = make_tiny_stylegan2(resolution=16)
    ws = generator.w_avg.expand(1, generator.num_ws, -1).clone()
    seen: list[tuple[int, int]] = []
    generator.synthesis(ws, feature_hook=lambda b, x: seen.append((b, x.shape[-1])))
    assert seen == [(0, 4), (1, 8), (2, 16)]
    zeroed = generator.synthesis(ws, feature_hook=lambda b, x: x * 0 if b == 2 else None)
    # With the last block's features zeroed only its ToRGB bias and the upsampled skip remain.
    expected_skip = generator.synthesis(ws, max_resolution=8)
    from models.stylegan2 import upsample_skip

    rgb = generator.to_rgbs[-1]
    expected = upsample_skip(expected_skip, rgb.upsample.kernel) + rgb.bias
    assert torch.allclose(zeroed, expected, atol=1e-5)
