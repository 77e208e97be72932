"""Pivotal tuning on tiny generators: it fits, stays local, is compact, its delta round-trips."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from editors.losses import psnr_u8
from editors.pivotal import (
    TuningConfig,
    TuningFileError,
    apply_delta,
    base_fingerprint,
    load_delta,
    protected_channels,
    save_delta,
    tunable_parameters,
    tune,
)
from models.generator import Generator, to_rgb_u8
from models.jobs import Cancelled, Progress


def render(generator: Generator, ws: np.ndarray | torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return to_rgb_u8(generator.synthesis(torch.as_tensor(ws).reshape(1, *ws.shape)))[0]


def other_face(resolution: int) -> np.ndarray:
    """A target the pivot cannot draw: an image of a differently seeded generator."""
    from tests.conftest import make_tiny_stylegan2

    other = make_tiny_stylegan2(resolution, seed=7)
    z = torch.randn(1, other.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return to_rgb_u8(other(z))[0]


@pytest.fixture
def setting(tiny_generator: Any) -> tuple[Generator, np.ndarray, np.ndarray]:
    generator = tiny_generator(16)
    pivot = generator.broadcast(generator.w_avg[None])[0].numpy()
    return generator, other_face(16), pivot


FAST = TuningConfig(
    steps=60, rank=2, detail_rank=4, learning_rate=0.05, loss="pixel", locality_every=2
)


def test_tuning_fits_the_photo_and_leaves_the_original_alone(setting: Any) -> None:
    generator, target, pivot = setting
    before = copy.deepcopy(generator.state_dict())
    steps: list[Progress] = []
    result = tune(generator, target, pivot, config=FAST, on_step=steps.append)
    assert psnr_u8(render(generator, pivot), target) + 4 < result.psnr
    assert [p.step for p in steps] == list(range(1, 61)) and "locality" in steps[0].metrics
    # The reported image and PSNR are the tuned generator's own (recomputed here).
    np.testing.assert_array_equal(render(result.generator, pivot), result.image)
    assert result.psnr == pytest.approx(psnr_u8(result.image, target))
    assert isinstance(result.generator, type(generator))
    assert result.generator.architecture() == generator.architecture()
    for key, value in generator.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert base_fingerprint(result.generator) == generator.fingerprint()
    assert result.generator.fingerprint() != generator.fingerprint()
    # Only synthesis weights move; mapping and modulation stay put.
    tuned = dict(result.generator.named_parameters())
    low_rank, full = tunable_parameters(generator)
    for name, param in generator.named_parameters():
        moved = not torch.equal(param, tuned[name])
        assert moved == (name in low_rank + full), name


def test_locality_regulariser_keeps_nearby_latents_close(setting: Any) -> None:
    generator, target, pivot = setting

    def drift(weight: float) -> float:
        config = FAST.replace(steps=30, locality_weight=weight, locality_every=1)
        tuned = tune(generator, target, pivot, config=config).generator
        rng = torch.Generator().manual_seed(11)
        w = generator.mapping(torch.randn(8, generator.z_dim, generator=rng))
        with torch.no_grad():
            near = torch.from_numpy(pivot)[None] * 0.5 + generator.broadcast(w) * 0.5
            return float((tuned.synthesis(near) - generator.synthesis(near)).square().mean())

    assert drift(10.0) < 0.5 * drift(0.0)


def test_delta_is_low_rank_and_round_trips(setting: Any, tmp_path: Path) -> None:
    generator, target, pivot = setting
    result = tune(generator, target, pivot, config=FAST)
    delta = result.delta
    low_rank, full = tunable_parameters(generator)
    assert set(delta.low_rank) == set(low_rank) and set(delta.full) == set(full)
    params = dict(generator.named_parameters())
    for name, (up, down) in delta.low_rank.items():
        assert up.shape[1] == down.shape[0] in (2, 4) and up.dtype == np.float16
        assert up.shape[0] * down.shape[1] == params[name].numel()
    expected = sum(u.size + d.size for u, d in delta.low_rank.values())
    assert delta.num_values == expected + sum(v.size for v in delta.full.values())
    path = save_delta(tmp_path / "face.tuning.npz", delta)
    loaded = load_delta(path)
    assert loaded.model_fingerprint == generator.fingerprint()
    assert loaded.metadata["psnr"] == pytest.approx(result.psnr)
    rebuilt = apply_delta(generator, loaded, path)
    assert abs(psnr_u8(render(rebuilt, pivot), target) - result.psnr) < 0.3
    np.testing.assert_array_equal(render(rebuilt, pivot), result.image)


def test_delta_of_another_model_or_a_broken_file_is_refused(
    setting: Any, tiny_generator: Any, tmp_path: Path
) -> None:
    generator, target, pivot = setting
    delta = tune(generator, target, pivot, steps=2, config=FAST).delta
    path = save_delta(tmp_path / "face.tuning.npz", delta)
    other = tiny_generator(16, seed=4)
    with pytest.raises(TuningFileError, match=r"face\.tuning\.npz: this tuning was made for"):
        apply_delta(other, load_delta(path), path)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(TuningFileError, match="not a readable tuning delta"):
        load_delta(tmp_path / "junk.npz")
    with pytest.raises(TuningFileError, match="no such file"):
        load_delta(tmp_path / "missing.npz")
    np.savez(tmp_path / "latent.npz", w=np.zeros((1, 4, 32), np.float32))
    with pytest.raises(TuningFileError):
        load_delta(tmp_path / "latent.npz")


def test_weights_reading_protected_style_channels_stay(setting: Any) -> None:
    from editors.directions import Direction, DirectionSet
    from editors.stylespace import StyleDirection, StyleDirectionSet

    generator, target, pivot = setting
    layers = generator.style_layers()
    conv = next(layer for layer in layers if layer.resolution == 16 and not layer.is_rgb)
    rgb = next(layer for layer in layers if layer.resolution == 16 and layer.is_rgb)
    local = StyleDirection("smile", ((conv.index, 0), (conv.index, 3), (rgb.index, 1)), [1, 2, 3])
    vector = np.ones(generator.w_dim, np.float32)
    directions = DirectionSet((Direction("smile", vector),), styles=StyleDirectionSet((local,)))
    protect = protected_channels(directions)
    assert protect == {conv.index: [0, 3], rgb.index: [1]}
    result = tune(generator, target, pivot, config=FAST, protect=protect)
    changes = result.delta.dense()
    tuned = dict(result.generator.named_parameters())
    for layer, channels in protect.items():
        name = f"{layers[layer].name}.conv.weight"
        original = dict(generator.named_parameters())[name]
        change = changes[name].reshape(original.shape)  # [1, out, in, k, k]
        others = [c for c in range(original.shape[2]) if c not in channels]
        assert torch.all(change[:, :, channels] == 0), name
        assert change[:, :, others].abs().max() > 1e-4, name  # the rest of the layer is tuned
        assert torch.equal(tuned[name][:, :, channels], original[:, :, channels])
    # Without protection the same channels move.
    free = tune(generator, target, pivot, config=FAST).delta.dense()
    name = f"{conv.name}.conv.weight"
    assert free[name].reshape(tuned[name].shape)[:, :, [0, 3]].abs().max() > 1e-4


def test_cancel_keeps_the_steps_done(setting: Any) -> None:
    generator, target, pivot = setting
    seen: list[Progress] = []
    with pytest.raises(Cancelled) as caught:
        tune(
            generator, target, pivot, config=FAST, on_step=seen.append,
            should_stop=lambda: len(seen) >= 5,
        )  # fmt: skip
    partial = caught.value.partial
    assert partial.cancelled and partial.steps == 5
    np.testing.assert_array_equal(render(partial.generator, pivot), partial.image)


def test_progan_is_refused() -> None:
    from types import SimpleNamespace

    generator = SimpleNamespace(kind="progan")  # refused before anything else is looked at
    with pytest.raises(ValueError, match="needs a StyleGAN2 model"):
        tune(generator, np.zeros((16, 16, 3), np.uint8), np.zeros((1, 8), np.float32))
