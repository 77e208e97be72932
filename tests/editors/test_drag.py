"""Drag editing: the handle moves to its target, the mask holds the rest, bad input, the CLI."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import main
from editors.drag import (
    DragProgress,
    DragResult,
    DragSettings,
    automatic_mask,
    drag,
    warp_grid,
)
from editors.errors import DragError
from editors.latent_io import load_latent, save_latent
from models.generator import to_rgb_u8
from models.jobs import Cancelled

# For the tiny random models: DragGAN's own losses (the warp guide is tested on its own).
SETTINGS = DragSettings(lr=2e-2, feature_resolution=16, mask_weight=10.0, guide_weight=0.0)


def _latent(generator, seed: int = 3) -> np.ndarray:
    with torch.no_grad():
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, generator.z_dim)).float()
        return generator.broadcast(generator.mapping(z))[0].numpy()


def _render(generator, ws: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return to_rgb_u8(generator.synthesis(torch.from_numpy(ws)[None]))[0]


def _upsampled_features(generator, ws: np.ndarray, block: int) -> torch.Tensor:
    """[C, R, R] features of ``block`` resized to the image, as DragGAN resizes them."""
    features = {}

    def hook(index, x):
        if index == block:
            features["f"] = x

    with torch.no_grad():
        generator.synthesis(torch.from_numpy(ws)[None], feature_hook=hook)
    return torch.nn.functional.interpolate(
        features["f"], size=generator.resolution, mode="bilinear", align_corners=False
    )[0]


def _best_match(features: torch.Tensor, reference: torch.Tensor) -> tuple[int, int]:
    """(x, y) of the pixel whose feature is nearest ``reference``, searched over the whole image."""
    distance = (features - reference[:, None, None]).norm(dim=0)
    y, x = np.unravel_index(int(distance.argmin()), distance.shape)
    return int(x), int(y)


def test_drag_moves_the_handle_feature_to_the_target(tiny_generator) -> None:
    generator = tiny_generator(32, seed=1)
    ws = _latent(generator)
    steps: list[DragProgress] = []
    result = drag(
        generator, ws, [(12, 16)], [(18, 16)], steps=60, settings=SETTINGS, on_step=steps.append
    )
    assert isinstance(result, DragResult)
    assert result.image.shape == (32, 32, 3) and result.image.dtype == np.uint8
    assert result.ws.shape == (generator.num_ws, generator.w_dim)
    # the image returned is the image of the latent returned
    np.testing.assert_array_equal(result.image, _render(generator, result.ws))
    assert result.arrived and 0 < result.steps <= 60
    (x, y) = result.points[0]
    assert abs(x - 18) <= 1 and abs(y - 16) <= 1
    assert [p.step for p in steps] == list(range(result.steps + 1))
    assert steps[-1].points == result.points and steps[0].points == ((12.0, 16.0),)
    # rows past the optimised ones are untouched
    rows = SETTINGS.for_generator(generator).rows
    np.testing.assert_array_equal(result.ws[rows:], ws[rows:])


def _demo():
    from models import CheckpointError, load_default

    try:
        return load_default("cpu")
    except CheckpointError:  # the demo model is optional in a source checkout
        pytest.skip("the built-in demo model is not installed")


@pytest.mark.slow
def test_on_the_demo_model_the_feature_and_the_picture_move_to_the_target() -> None:
    """Checked without the tracker: feature matching over a window of the dragged image."""
    generator = _demo()
    ws = _latent(generator, seed=5)
    handle, target = (32, 46), (32, 51)  # the mouth, 5 px down
    mask = np.zeros((64, 64), bool)
    mask[30:62, 14:50] = True  # the lower face may change
    # DragGAN's own losses: the default warp guide holds this drag back (it stalls near 48 px)
    motion_only = DragSettings(guide_weight=0.0)
    result = drag(generator, ws, [handle], [target], mask=mask, steps=40, settings=motion_only)
    block = generator.block_resolutions().index(
        DragSettings().for_generator(generator).feature_resolution
    )
    before = _upsampled_features(generator, ws, block)
    reference = before[:, handle[1], handle[0]]
    after = _upsampled_features(generator, result.ws, block)
    window = after[:, 36:60, 20:44]  # 12 px around the handle and the target
    y, x = np.unravel_index(int((window - reference[:, None, None]).norm(dim=0).argmin()), (24, 24))
    x, y = x + 20, y + 36
    assert np.hypot(x - target[0], y - target[1]) <= 2.0
    change = np.abs(result.image.astype(float) - _render(generator, ws)).mean(axis=2)
    near = change[40:58, 24:41].mean()
    outside = np.ones((64, 64), bool)
    outside[22:64, 6:58] = False  # the mask and a margin (features are coarser than pixels)
    assert near > 2 * change[outside].mean()


def test_mask_keeps_the_region_outside_it(tiny_generator) -> None:
    generator = tiny_generator(32, seed=1)
    ws = _latent(generator)
    mask = np.zeros((32, 32), bool)
    mask[8:24, 6:26] = True
    unmasked = replace(SETTINGS, auto_mask=0.0)  # everything may move
    free = drag(generator, ws, [(12, 16)], [(18, 16)], steps=15, settings=unmasked)
    held = drag(generator, ws, [(12, 16)], [(18, 16)], mask=mask, steps=15, settings=unmasked)
    original = _render(generator, ws).astype(float)
    # without on_step the steps skip the picture; the result still shows its latent
    np.testing.assert_array_equal(held.image, _render(generator, held.ws))

    def change(image: np.ndarray, region: np.ndarray) -> float:
        return float(np.abs(image.astype(float) - original).mean(axis=2)[region].mean())

    outside = ~mask
    outside[8:24, 6:26] = False
    outside[4:28, 2:30] = False  # a margin: features are coarser than pixels
    assert change(held.image, outside) < 0.5 * change(free.image, outside)
    assert change(held.image, mask) > 1.5 * change(held.image, outside)  # measured 2.0


def test_automatic_mask_is_discs_around_handles_and_targets() -> None:
    region = automatic_mask(32, [(12.0, 16.0)], [(18.0, 16.0)], 2.0)  # 12 px discs
    assert region[16, 12] and region[16, 30] and region[4, 12] and region[4, 18]
    assert not region[3, 12] and not region[16, 31] and not region[0, 0] and not region[31, 31]
    assert region.sum() == sum(
        (x - 12) ** 2 + (y - 16) ** 2 <= 144 or (x - 18) ** 2 + (y - 16) ** 2 <= 144
        for y in range(32)
        for x in range(32)
    )
    # a point dragged onto itself still gets its 2 px disc (13 pixels)
    assert automatic_mask(32, [(5.0, 5.0)], [(5.0, 5.0)], 4.0).sum() == 13


def test_without_a_mask_the_automatic_one_holds_the_rest(tiny_generator) -> None:
    generator = tiny_generator(32, seed=1)
    ws = _latent(generator)
    handles, targets = [(12, 16)], [(16, 16)]
    auto = replace(SETTINGS, auto_mask=1.5)  # 6 px discs
    default = drag(generator, ws, handles, targets, steps=12, settings=auto)
    # the same as giving that mask by hand with the automatic mask's weight
    mask = automatic_mask(32, handles, targets, 1.5)
    by_hand = replace(auto, mask_weight=auto.auto_mask_weight)
    given = drag(generator, ws, handles, targets, mask=mask, steps=12, settings=by_hand)
    np.testing.assert_array_equal(default.ws, given.ws)
    free = drag(generator, ws, handles, targets, steps=12, settings=replace(auto, auto_mask=0.0))
    original = _render(generator, ws).astype(float)
    far = np.ones((32, 32), bool)
    far[4:28, 2:30] = False  # well outside the discs (features are coarser than pixels)

    def change(image: np.ndarray) -> float:
        return float(np.abs(image.astype(float) - original).mean(axis=2)[far].mean())

    assert change(default.image) < 0.5 * change(free.image)


def test_stop_raises_cancelled_with_the_last_good_state(tiny_generator) -> None:
    generator = tiny_generator(32, seed=1)
    ws = _latent(generator)
    seen: list[DragProgress] = []
    with pytest.raises(Cancelled) as info:
        drag(
            generator, ws, [(12, 16)], [(18, 16)], steps=50, settings=SETTINGS,
            on_step=seen.append, should_stop=lambda: len(seen) >= 3,
        )  # fmt: skip
    partial = info.value.partial
    assert isinstance(partial, DragResult) and partial.steps == 2
    np.testing.assert_array_equal(partial.image, seen[-1].preview)
    np.testing.assert_array_equal(partial.image, _render(generator, partial.ws))


@pytest.mark.parametrize(
    ("handles", "targets", "message"),
    [
        ([(40, 3)], [(5, 5)], "outside the 32x32 image"),
        ([(4, 3)], [(5, -1)], "target 1 (5, -1) is outside"),
        ([(4, 3), (6, 6)], [(5, 5)], "every handle needs a target"),
        ([], [], "at least one handle"),
        ([(4, 3)], [(5, float("nan"))], "not a finite position"),
        ([(4,)], [(5, 5)], "(x, y) pair"),
    ],
)
def test_bad_points_get_a_clear_message(tiny_generator, handles, targets, message) -> None:
    generator = tiny_generator(32)
    with pytest.raises(DragError, match=message.replace("(", r"\(").replace(")", r"\)")):
        drag(generator, _latent(generator), handles, targets)


def test_bad_models_latents_and_masks_get_a_clear_message(tiny_generator) -> None:
    from models.progan import ProGANGenerator

    generator = tiny_generator(32)
    with pytest.raises(DragError, match="the latent is"):
        drag(generator, np.zeros((3, 5), np.float32), [(1, 1)], [(2, 2)])
    with pytest.raises(DragError, match="mask is"):
        drag(generator, _latent(generator), [(1, 1)], [(2, 2)], mask=np.ones((8, 8)))
    with pytest.raises(DragError, match="mask is empty"):
        drag(generator, _latent(generator), [(1, 1)], [(2, 2)], mask=np.zeros((32, 32)))
    with pytest.raises(DragError, match="fixed noise"):
        drag(generator, _latent(generator), [(1, 1)], [(2, 2)], noise_mode="random")
    with pytest.raises(DragError, match="tracking resolution 5 is not one of"):
        drag(
            generator,
            _latent(generator),
            [(1, 1)],
            [(2, 2)],
            settings=DragSettings(track_resolution=5),
        )
    # small models find points on the block below the pulled one, large ones on the same
    assert DragSettings().for_generator(tiny_generator(64)).track_resolution == 16
    assert DragSettings().for_generator(tiny_generator(128)).track_resolution == 64
    progan = ProGANGenerator(z_dim=32, depths=(16, 16))
    with pytest.raises(DragError, match="needs a StyleGAN2 model"):
        drag(progan, np.zeros((1, 32), np.float32), [(1, 1)], [(2, 2)])
    assert issubclass(DragError, ValueError)


def test_cli_round_trip(tiny_checkpoint, tmp_path: Path, capsys) -> None:
    checkpoint = tiny_checkpoint(32, seed=1)
    from models import load_generator

    generator = load_generator(checkpoint, "cpu")
    ws = _latent(generator)
    source = save_latent(tmp_path / "in.npz", ws)
    out = tmp_path / "dragged.png"
    code = main.main(
        ["drag", str(source), "--model", str(checkpoint), "--device", "cpu",
         "--handle", "12,16", "--target", "15,16", "--steps", "4", "--out", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    latent = load_latent(tmp_path / "dragged.npz")
    assert latent.metadata["drag"]["handles"] == [[12.0, 16.0]]
    assert latent.metadata["model"]["fingerprint"] == generator.fingerprint()
    dragged = latent.fitted(generator.num_ws, generator.w_dim)
    assert not np.array_equal(dragged, ws)
    # the written image is the render of the written latent
    np.testing.assert_array_equal(np.asarray(Image.open(out)), _render(generator, dragged))
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--handle", "1,1"], "give each --handle a --target"),
        (["--handle", "1;1", "--target", "2,2"], "bad --handle '1;1'"),
        (["--handle", "1,1", "--target", "99,2"], "outside the 32x32 image"),
    ],
)
def test_cli_bad_points_exit_2_with_one_line(
    tiny_checkpoint, tmp_path: Path, capsys, extra, message
) -> None:
    checkpoint = tiny_checkpoint(32)
    source = save_latent(tmp_path / "in.npz", np.zeros((1, 32), np.float32))
    out = tmp_path / "x.png"
    code = main.main(["drag", str(source), "--model", str(checkpoint), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not out.exists()


def test_cli_drags_a_tuned_latent_with_its_tuning(tiny_checkpoint, tmp_path: Path) -> None:
    from editors.latent_io import latent_metadata
    from editors.pivotal import apply_delta, load_delta, save_delta, tune
    from models import load_generator

    checkpoint = tiny_checkpoint(32, seed=1)
    generator = load_generator(checkpoint, "cpu")
    ws = _latent(generator)
    target = np.random.RandomState(0).randint(0, 255, (32, 32, 3), dtype=np.uint8)
    tuning = tune(generator, target, ws, steps=2)
    photo_dir, out_dir = tmp_path / "photo", tmp_path / "out"
    photo_dir.mkdir()
    save_delta(photo_dir / "latent.tuning.npz", tuning.delta)
    meta = latent_metadata(
        model_fingerprint=generator.fingerprint(), tuning={"file": "latent.tuning.npz"}
    )
    source = save_latent(photo_dir / "latent.npz", ws, metadata=meta)
    out = out_dir / "dragged.png"
    out_dir.mkdir()
    code = main.main(
        ["drag", str(source), "--model", str(checkpoint), "--handle", "12,16",
         "--target", "14,16", "--steps", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    latent = load_latent(out_dir / "dragged.npz")
    assert latent.tuning_path == out_dir / "latent.tuning.npz" and latent.tuning_path.is_file()
    tuned = apply_delta(generator, load_delta(latent.tuning_path))
    dragged = latent.fitted(generator.num_ws, generator.w_dim)
    # the picture is the tuned model's, not the base model's
    np.testing.assert_array_equal(np.asarray(Image.open(out)), _render(tuned, dragged))
    assert not np.array_equal(_render(tuned, dragged), _render(generator, dragged))


def test_a_read_only_latent_is_accepted(tiny_generator) -> None:
    generator = tiny_generator(32)
    ws = _latent(generator)
    ws.setflags(write=False)  # as EditState stores latents
    result = drag(generator, ws, [(12, 16)], [(16, 16)], steps=1, settings=SETTINGS)
    assert result.steps == 1


def test_warp_grid_moves_the_handle_to_the_target() -> None:
    image = torch.zeros(1, 1, 32, 32)
    image[0, 0, 16, 10] = 1.0  # a dot at the handle (x=10, y=16)
    grid = warp_grid(32, 32, [(10.0, 16.0)], [(15.0, 18.0)], sigma=12.0)
    moved = F.grid_sample(image, grid, mode="bilinear", align_corners=False)[0, 0]
    y, x = np.unravel_index(int(moved.argmax()), moved.shape)
    assert (x, y) == (15, 18)
    # far from the drag nothing moves; a coarser map samples the same picture coordinates
    far = warp_grid(64, 64, [(10.0, 16.0)], [(15.0, 18.0)], sigma=12.0)
    assert torch.allclose(far[0, 63, 63], torch.tensor([63 / 64, 63 / 64]), atol=1e-5)
    coarse = warp_grid(16, 32, [(10.0, 16.0)], [(15.0, 18.0)], sigma=12.0)
    pooled = F.avg_pool2d(grid.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    assert torch.allclose(coarse, pooled, atol=0.02)


def test_guide_pulls_the_features_towards_the_warped_start(tiny_generator) -> None:
    generator = tiny_generator(32, seed=1)
    ws = _latent(generator)
    block = generator.block_resolutions().index(16)
    handle, target = (12.0, 16.0), (17.0, 16.0)
    start = _upsampled_features(generator, ws, block)[None]
    wanted = F.grid_sample(
        start, warp_grid(32, 32, [handle], [target], 12.0), mode="bilinear", align_corners=False
    )

    def gap(weight: float) -> float:
        settings = replace(SETTINGS, guide_weight=weight, done_distance=0.0)
        result = drag(generator, ws, [handle], [target], steps=25, settings=settings)
        return float((_upsampled_features(generator, result.ws, block)[None] - wanted).abs().mean())

    assert gap(10.0) < 0.8 * gap(0.0)
