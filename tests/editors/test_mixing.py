"""Style mixing: layer groups, row blending, immutable mix values."""

from __future__ import annotations

import numpy as np
import pytest

from editors.mixing import (
    LatentSource,
    StyleMix,
    group_layers,
    layer_groups,
    mix_ws,
    row_resolution,
)


def test_layer_groups_follow_the_resolution_convention() -> None:
    groups = layer_groups(18)  # 1024 px
    assert (groups["coarse"], groups["middle"], groups["fine"]) == (
        range(0, 4),
        range(4, 8),
        range(8, 18),
    )
    assert layer_groups(14)["fine"] == range(8, 14)  # 256 px
    small = layer_groups(6)  # 16 px: no fine rows
    assert small["middle"] == range(4, 6) and len(small["fine"]) == 0
    assert group_layers("fine", 6) is None and group_layers("fine", 10) == (8, 10)
    # Two rows per resolution, as the coarse/middle/fine convention counts them.
    assert [row_resolution(r) for r in (0, 1, 3, 4, 7, 8, 17)] == [4, 4, 8, 16, 32, 64, 1024]


def test_mix_ws_against_naive_rowwise_lerp() -> None:
    rng = np.random.default_rng(0)
    ws = rng.normal(size=(10, 6)).astype(np.float32)
    donor = rng.normal(size=(10, 6)).astype(np.float32)
    weights = [0.0, 1.0, 0.5, 0.25, 0, 0, 1, 0.75, 0, 0.1]
    mixed = mix_ws(ws, donor, weights)
    for row, t in enumerate(weights):
        expected = ws[row] * (1 - t) + donor[row] * t
        np.testing.assert_allclose(mixed[row], expected, atol=1e-6)
        if t == 0:
            assert mixed[row].tobytes() == ws[row].tobytes()
        if t == 1:
            assert mixed[row].tobytes() == donor[row].tobytes()
    assert not np.shares_memory(mixed, ws)
    with pytest.raises(ValueError, match="one weight per row"):
        mix_ws(ws, donor, weights[:3])


def test_style_mix_groups_and_validation() -> None:
    donor = LatentSource(seed=5, truncation_psi=0.7)
    assert donor.label == "seed 5"
    mix = StyleMix.unmixed(donor, 10)
    assert not mix.is_active
    mixed = mix.with_group("middle", 0.5).with_rows([9], 1.0)
    assert mixed.row_weights == (0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 0, 1.0)
    assert mixed.group_weight("middle") == 0.5 and mixed.group_weight("fine") == 0.5
    assert mixed.is_active and mix.row_weights == (0.0,) * 10  # the original is untouched
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        StyleMix(donor, (1.5,))
    with pytest.raises(ValueError, match="either a seed or a ws array"):
        LatentSource()
    array_donor = LatentSource(ws=np.ones((10, 4)))
    assert not array_donor.ws.flags.writeable and array_donor.ws.dtype == np.float32
    assert array_donor.same_as(LatentSource(ws=np.ones((10, 4), np.float32)))
    assert not array_donor.same_as(donor)
    assert mixed.same_as(StyleMix(LatentSource(seed=5, truncation_psi=0.7), mixed.row_weights))
