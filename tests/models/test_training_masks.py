"""Transparency kept as a mask while caching, the StyleGAN2 trainer hiding it from D, and the
label-balanced repeat counts used to oversample rare attributes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.training import stylegan2 as sg2
from models.training.config import StyleGAN2Config
from models.training.distributed import DistContext
from models.training.images import prepare_images
from models.training.labels import balance_repeats, read_labels
from tests.helpers.training import tiny_stylegan2_config


def tiny_config(data: Path, **overrides: object) -> StyleGAN2Config:
    return tiny_stylegan2_config(data, **{"pl_interval": 2, **overrides})


def half_transparent_faces(folder: Path, count: int = 8, size: int = 8) -> Path:
    """Random opaque right halves; the left half is transparent (alpha 0)."""
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rgba = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
        rgba[:, : size // 2, 3] = 0
        rgba[:, size // 2 :, 3] = 255
        Image.fromarray(rgba, "RGBA").save(folder / f"face{i:02d}.png")
    return folder


def test_alpha_is_kept_as_a_mask_only_on_request(tmp_path: Path) -> None:
    folder = half_transparent_faces(tmp_path / "faces")
    plain = prepare_images(folder, 8, cache_root=tmp_path / "cache")
    masked = prepare_images(folder, 8, alpha_mask=True, cache_root=tmp_path / "cache")
    assert plain.masks is None and masked.cache_path != plain.cache_path
    assert masked.masks is not None and masked.masks.shape == (8, 8, 8)
    assert (masked.masks[:, :, :4] == 0).all() and (masked.masks[:, :, 4:] == 255).all()
    # RGB is the same either way (transparent parts composited on white).
    np.testing.assert_array_equal(plain.images, masked.images)
    assert (plain.images[:, :, :4] == 255).all()
    again = prepare_images(folder, 8, alpha_mask=True, cache_root=tmp_path / "cache")
    np.testing.assert_array_equal(again.masks, masked.masks)
    batch = masked.batch_masks([2, 0])
    assert batch is not None and batch.shape == (2, 1, 8, 8)
    assert float(batch[:, :, :, :4].max()) == 0.0 and float(batch[:, :, :, 4:].min()) == 1.0


def test_opaque_images_need_no_mask(tmp_path: Path) -> None:
    folder = tmp_path / "opaque"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 40, 10, 10)).save(folder / f"{i}.png")
    dataset = prepare_images(folder, 8, alpha_mask=True, cache_root=tmp_path / "cache")
    assert dataset.masks is None and dataset.batch_masks([0]) is None


def capture_d_inputs(trainer: sg2.StyleGAN2Trainer) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    trainer.D.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    return seen


@pytest.mark.parametrize("mirror", [False, True])
def test_masked_pixels_are_hidden_from_the_discriminator(tmp_path: Path, mirror: bool) -> None:
    folder = half_transparent_faces(tmp_path / "faces")
    config = tiny_config(folder, alpha_mask=True, augment="none", mirror=mirror, r1_interval=1000)
    dataset = prepare_images(folder, 8, alpha_mask=True, cache_root=tmp_path / "cache")
    trainer = sg2.StyleGAN2Trainer(config, dataset, DistContext())

    reals, masks = trainer._reals(0)
    assert masks is not None
    left = masks[:, :, :, :4].amax(dim=(1, 2, 3)) == 0
    right = masks[:, :, :, 4:].amax(dim=(1, 2, 3)) == 0
    assert bool((left | right).all())  # each mask is one of the two halves (flipped or not)
    assert bool((reals * (1 - masks)).abs().max() == 0)  # reals are zero where hidden
    assert bool((reals * masks).abs().sum() > 0)

    seen = capture_d_inputs(trainer)
    trainer.train_step(1)
    assert len(seen) >= 3  # D step: fakes and reals; G step: fakes
    for images in seen:
        hidden = images.abs()
        if not mirror:
            assert float(hidden[:, :, :, :4].max()) == 0.0
            assert float(hidden[:, :, :, 4:].max()) > 0.0
        else:  # every image is hidden on one whole half
            per_half = torch.stack(
                [hidden[:, :, :, :4].amax(dim=(1, 2, 3)), hidden[:, :, :, 4:].amax(dim=(1, 2, 3))]
            )
            assert bool((per_half.min(dim=0).values == 0).all())


def test_without_alpha_mask_d_sees_whole_fakes(tmp_path: Path) -> None:
    folder = half_transparent_faces(tmp_path / "faces")
    config = tiny_config(folder, augment="none", mirror=False, r1_interval=1000)
    trainer = sg2.StyleGAN2Trainer(
        config, prepare_images(folder, 8, cache_root=tmp_path / "cache"), DistContext()
    )
    seen = capture_d_inputs(trainer)
    trainer.train_step(1)
    assert float(seen[0][:, :, :, :4].abs().max()) > 0.0


def test_balance_repeats_add_up_per_rule(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "filename,Eyeglasses,No_Beard,Young\n"
        "a.png,1,0,0\n"  # glasses, beard, older: 1 + 2 + 1 + 1
        "b.png,0,1,1\n"  # none: 1
        "c.png,1,1,\n"  # glasses, age missing: 1 + 2
        "d.png,0,0,1\n"  # beard: 1 + 1
    )
    table = read_labels(csv, ["d.png", "c.png", "b.png", "a.png"])
    rules = (("Eyeglasses", 1, 2), ("No_Beard", 0, 1), ("Young", 0, 1))
    repeats = dict(
        zip(table.image_index.tolist(), balance_repeats(table, rules).tolist(), strict=True)
    )
    assert repeats == {3: 5, 2: 1, 1: 3, 0: 2}
    assert balance_repeats(table, (), base=2).tolist() == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="Bald"):
        balance_repeats(table, (("Bald", 1, 1),))
    with pytest.raises(ValueError, match="negative"):
        balance_repeats(table, (("Young", 0, -1),))
