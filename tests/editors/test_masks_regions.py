"""Masked edits blend only under their mask; face regions follow known landmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_dilation

from editors.masks import MaskedEdit, MaskError, check_mask, paint_stroke
from editors.regions import (
    REGION_NAMES,
    label_map,
    lower_face_mask,
    mouth_width,
    region_shares,
)
from editors.rendering import Renderer
from editors.state import EditState
from models.generator import seed_to_z
from tests.conftest import make_tiny_stylegan2


def _render(generator, state: EditState) -> np.ndarray:
    return Renderer(generator).render(state.render_args()).rgb.astype(np.int32)


@pytest.fixture(scope="module")
def generator():
    return make_tiny_stylegan2(resolution=32)


def _mask(box: tuple[int, int, int, int], size: int = 32) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = 1.0
    return mask


@pytest.mark.parametrize("block_resolution", [8, 16])
def test_masked_edit_changes_inside_and_leaves_outside_alone(generator, block_resolution) -> None:
    base = EditState(seed=4)
    mask = _mask((16, 28, 6, 20))
    edit = MaskedEdit(
        mask,
        feather=1.0,
        block_resolution=block_resolution,
        style_amounts={(2, c): 3.0 for c in range(8)} | {(5, 1): -4.0},
    )
    before, after = _render(generator, base), _render(generator, base.replace(masked=(edit,)))
    change = np.abs(after - before).sum(-1)
    inside = mask > 0
    outside = ~binary_dilation(inside, iterations=3)  # feather 1 px fades out within ~2 px
    assert change[inside].mean() > 20
    assert change[outside].max() <= 1  # uint8 rounding only
    # the same edit without a mask changes the whole picture
    unmasked = _render(generator, base.replace(style_amounts=edit.style_amounts))
    assert np.abs(unmasked - before).sum(-1)[outside].mean() > 5


def test_masked_edits_stack_without_touching_each_other(generator) -> None:
    base = EditState(seed=2)
    left = MaskedEdit(_mask((4, 28, 2, 12)), feather=0.0, style_amounts={(3, 0): 5.0})
    right = MaskedEdit(_mask((4, 28, 20, 30)), feather=0.0, style_amounts={(3, 2): -5.0})
    one = _render(generator, base.replace(masked=(left,)))
    both = _render(generator, base.replace(masked=(left, right)))
    only_right = _render(generator, base.replace(masked=(right,)))
    before = _render(generator, base)
    # each region shows its own edit: the left from the first layer, the right from the second
    assert np.abs(both[:, :12] - one[:, :12]).max() <= 1
    assert np.abs(both[:, 20:] - only_right[:, 20:]).max() <= 1
    assert np.abs(both - before).sum(-1)[4:28, 2:12].mean() > 5
    assert np.abs(both - before).sum(-1)[4:28, 20:30].mean() > 5


def test_masks_that_would_do_nothing_are_refused_with_a_hint() -> None:
    empty = np.zeros((16, 16), np.float32)
    with pytest.raises(MaskError, match="empty"):
        check_mask(empty)
    face = np.zeros((16, 16), bool)
    face[4:12, 4:12] = True
    corner = _mask((0, 3, 0, 3), 16)
    with pytest.raises(MaskError, match="covers nothing of the face"):
        check_mask(corner, face)
    check_mask(_mask((6, 9, 6, 9), 16), face)  # on the face: fine
    stroke = np.zeros((16, 16), np.float32)
    paint_stroke(stroke, (2.0, 8.0), (13.0, 8.0), 1.0)
    assert stroke[8, 2:13].all() and not stroke[3].any()


def _face_landmarks() -> np.ndarray:
    """68 points of a schematic frontal face in a 64 px picture (iBUG order)."""
    points = np.zeros((68, 2))
    angles = np.linspace(np.pi, 0, 17)  # jaw: a U from the left ear round the chin
    points[0:17] = np.stack([32 - 20 * np.cos(angles), 30 + 22 * np.sin(angles)], 1)
    points[17:22] = np.stack([np.linspace(14, 28, 5), np.full(5, 20)], 1)  # brows
    points[22:27] = np.stack([np.linspace(36, 50, 5), np.full(5, 20)], 1)
    points[27:31] = np.stack([np.full(4, 32), np.linspace(26, 36, 4)], 1)  # nose bridge
    points[31:36] = np.stack([np.linspace(28, 36, 5), np.full(5, 38)], 1)  # nose base
    for start, centre in ((36, 21), (42, 43)):  # eyes: hexagons of radius 3
        angles = np.linspace(0, 2 * np.pi, 7)[:6]
        points[start : start + 6] = np.stack(
            [centre + 3 * np.cos(angles), 26 + 1.5 * np.sin(angles)], 1
        )
    angles = np.linspace(0, 2 * np.pi, 13)[:12]  # outer lip, corners at 48 (left) and 54
    points[48:60] = np.stack([32 - 8 * np.cos(angles), 46 - 3 * np.sin(angles)], 1)
    angles = np.linspace(0, 2 * np.pi, 9)[:8]
    points[60:68] = np.stack([32 - 5 * np.cos(angles), 46 - 1 * np.sin(angles)], 1)
    return points


def test_regions_follow_known_landmarks() -> None:
    points = _face_landmarks()
    labels = label_map(points, 64)
    name = {i: n for i, n in enumerate(REGION_NAMES)}
    assert name[labels[46, 32]] == "mouth"
    assert name[labels[26, 21]] == "eyes" and name[labels[26, 43]] == "eyes"
    assert name[labels[20, 20]] == "brows"
    assert name[labels[32, 32]] == "nose"
    assert name[labels[40, 20]] == "jaw/cheeks"
    assert name[labels[56, 10]] == "background"  # beside the chin, below the mouth
    assert name[labels[8, 32]] == "hair/top"
    assert name[labels[2, 2]] == "background" and name[labels[62, 62]] == "background"
    lower = lower_face_mask(points, 64)
    assert lower[46, 32] and lower[44, 20] and not lower[26, 21] and not lower[8, 32]
    # mouth width: corners 16 px apart, eye centres 22 px apart
    assert mouth_width(points) == pytest.approx(16 / 22, rel=1e-6)
    change = np.zeros((64, 64))
    change[44:48, 30:34] = 1.0  # a change on the mouth only
    change[2, 2] = 1.0  # and one background pixel
    shares = region_shares(change, points)
    assert shares["mouth"] == pytest.approx(16 / 17) and shares["background"] == pytest.approx(
        1 / 17
    )


def test_readout_measures_where_a_known_change_landed() -> None:
    from editors.locality import measure_edit
    from editors.regions import face_landmarks, lower_face_mask
    from models import load_generator
    from models.generator import to_rgb_u8

    demo = Path(__file__).resolve().parents[2] / "resources/models/demo-faces-64.safetensors"
    generator = load_generator(demo, "cpu")
    ws = generator.broadcast(generator.mapping(seed_to_z([3], generator.z_dim), truncation_psi=0.7))
    with torch.no_grad():
        before = to_rgb_u8(generator.synthesis(ws.float()))[0]
    points = face_landmarks(before)
    assert points is not None
    after = before.copy()
    lower = lower_face_mask(points, 64)
    after[lower] = np.clip(after[lower].astype(int) + 12, 0, 255).astype(np.uint8)
    readout = measure_edit(before, after, "lower face", landmarks=points)
    assert readout.share_inside == pytest.approx(1.0)
    assert readout.region_shares["background"] == pytest.approx(0.0)
    assert 0.0 < readout.identity_drift < 0.6  # same person, measurably changed
    unchanged = measure_edit(before, before, "lower face", landmarks=points)
    assert unchanged.identity_drift == pytest.approx(0.0, abs=1e-4)
    assert np.isnan(unchanged.share_inside)


def test_channel_discovery_maps_every_channel_and_is_cached(generator, tmp_path, monkeypatch):
    import editors.channel_discovery as discovery

    # The tiny random model draws no faces: give every sample the schematic face (32 px).
    monkeypatch.setattr(discovery, "face_landmarks", lambda rgb: _face_landmarks() / 2)
    steps = []
    atlas = discovery.cached_atlas(
        generator, cache=tmp_path, faces=2, batch_size=16, on_step=steps.append
    )
    total = sum(layer.channels for layer in generator.style_layers())
    assert atlas.shares.shape == (total, len(discovery.ATLAS_REGIONS)) and atlas.faces == 2
    seven = atlas.shares[:, : len(REGION_NAMES)]  # the disjoint regions cover every pixel
    assert np.allclose(seven.sum(1)[atlas.magnitude > 0], 1.0, atol=1e-4)
    assert steps and steps[-1].step == steps[-1].total
    # independent check of one channel: push it alone on the same two faces
    layer = generator.style_layers()[3]
    flat = sum(x.channels for x in generator.style_layers()[:3]) + 5
    offset = torch.zeros(1, layer.channels)
    offset[0, 5] = atlas.step_sigmas * float(atlas.std[flat])
    changes = []
    for seed in (2024, 2025):
        ws = generator.broadcast(generator.mapping(seed_to_z([seed], 32), truncation_psi=0.7))
        with torch.no_grad():
            base = generator.synthesis(ws)
            moved = generator.synthesis(ws, style_offsets={3: offset})
        changes.append(float((moved - base).abs().sum(1).mean()) * 127.5)
    assert atlas.magnitude[flat] == pytest.approx(np.mean(changes), rel=1e-3)
    path = discovery.atlas_cache_path(generator.fingerprint(), tmp_path)
    assert path.is_file()
    monkeypatch.setattr(discovery, "discover_channels", lambda *a, **k: pytest.fail("not cached"))
    again = discovery.cached_atlas(generator, cache=tmp_path)
    assert np.array_equal(again.shares, atlas.shares)
