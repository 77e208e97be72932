"""Pivotal tuning's knobs: which layers are tuned, learning-rate decay, sparse identity, edits."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch

from editors.losses import CompositeLoss, PixelMSE, WeightedTerm
from editors.pivotal import TuningConfig, _losses, _lr_factor, tunable_parameters, tune


def test_coarse_convolutions_stay_and_every_torgb_is_tuned(tiny_generator: Any) -> None:
    generator = tiny_generator(16)
    coarse = TuningConfig(tuned_from=0.5, tune_biases=False)
    low_rank, full = tunable_parameters(generator, coarse)
    # 16 px model: conv1 works at 4 px (below 8), convs.0-1 at 8 px, convs.2-3 at 16 px, where
    # convs.3 has 16 x 16 x 3 x 3 weights (full, not low-rank).
    assert low_rank == [f"convs.{i}.conv.weight" for i in range(3)]
    rgb = {n for n, _ in generator.named_parameters() if n.startswith("to_rgb")}
    rgb = {n for n in rgb if ".modulation." not in n}
    assert set(full) == rgb | {"convs.3.conv.weight"} and "to_rgb1.bias" in full
    everything = tunable_parameters(generator, TuningConfig(tuned_from=0.0, tune_biases=True))
    assert "conv1.conv.weight" in everything[0] and "conv1.activate.bias" in everything[1]
    assert "conv1.noise.weight" in everything[1]

    pivot = generator.broadcast(generator.w_avg[None])[0].numpy()
    target = np.full((16, 16, 3), 200, np.uint8)
    config = coarse.replace(steps=5, loss="pixel", learning_rate=0.05)
    tuned = dict(tune(generator, target, pivot, config=config).generator.named_parameters())
    for name, param in generator.named_parameters():
        moved = not torch.equal(param, tuned[name])
        assert moved == (name in low_rank + full), name


def test_learning_rate_decays_by_a_cosine_to_its_final_fraction() -> None:
    config = TuningConfig(steps=11, final_lr_fraction=0.2)
    factors = [_lr_factor(config, step) for step in range(11)]
    assert factors[0] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.2)
    assert factors[5] == pytest.approx(0.6)  # half way down a cosine
    assert all(a > b for a, b in itertools.pairwise(factors))
    assert _lr_factor(TuningConfig(steps=11, final_lr_fraction=1.0), 7) == 1.0  # no decay
    assert math.isclose(_lr_factor(TuningConfig(steps=1, final_lr_fraction=0.5), 0), 1.0)
    with pytest.raises(ValueError, match="final_lr_fraction"):
        TuningConfig(final_lr_fraction=0.0)
    with pytest.raises(ValueError, match="_every"):
        TuningConfig(identity_every=0)


class _FakeIdentity:
    name = "identity"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(1, 2, 3)) * 0 + 0.5


def test_identity_term_runs_every_kth_step_k_times_as_heavy() -> None:
    target = torch.zeros(1, 3, 4, 4)
    images = torch.full((1, 3, 4, 4), 0.5)
    loss = CompositeLoss(
        [
            WeightedTerm(PixelMSE(target), 20.0),
            WeightedTerm(_FakeIdentity(), 0.1),
            WeightedTerm(PixelMSE(target), 0.0),  # weight 0: left out (costs nothing)
        ]
    )
    heavy, light = _losses(loss, TuningConfig(identity_every=3))
    assert [t.term.name for t in heavy.terms] == ["pixel", "identity"]
    assert [t.term.name for t in light.terms] == ["pixel"]
    assert float(heavy(images)[0]) == pytest.approx(20 * 0.25 + 3 * 0.1 * 0.5)
    assert float(light(images)[0]) == pytest.approx(20 * 0.25)
    every, same = _losses(loss, TuningConfig(identity_every=1))
    assert float(every(images)[0]) == float(same(images)[0]) == pytest.approx(5.05)


def test_edit_regulariser_keeps_short_steps_acting_as_on_the_original(tiny_generator: Any) -> None:
    generator = tiny_generator(16)
    pivot = generator.broadcast(generator.w_avg[None])[0].numpy()
    target = np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    rng = torch.Generator().manual_seed(2)
    steps = torch.randn(6, 1, generator.w_dim, generator=rng)
    steps = 0.2 * 2.0 * steps / steps.norm(dim=-1, keepdim=True)  # about edit_radius away
    start = torch.from_numpy(pivot)[None]

    def edit_error(weight: float) -> float:
        config = TuningConfig(
            steps=40, loss="pixel", learning_rate=0.05, edit_weight=weight, edit_radius=0.2,
            locality_every=1, locality_weight=0.0, tuned_from=0.0,
        )  # fmt: skip
        tuned = tune(generator, target, pivot, config=config).generator
        with torch.no_grad():
            wanted = generator.synthesis(start + steps) - generator.synthesis(start)
            moved = tuned.synthesis(start + steps) - tuned.synthesis(start)
        return float((moved - wanted).square().mean())

    assert edit_error(200.0) < 0.5 * edit_error(0.0)
