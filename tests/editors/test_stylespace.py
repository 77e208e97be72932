"""Style-space channel edits and localized sliders: composition with W edits, files, sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from editors.direction_files import load_directions, save_directions
from editors.directions import Direction, DirectionSet
from editors.masks import MaskedEdit
from editors.rendering import Renderer
from editors.session_io import ModelReference, load_session, save_session
from editors.state import EditState, reset_edits, resolve_ws, states_equal, with_style_amount
from editors.stylespace import (
    StyleDirection,
    StyleDirectionSet,
    StyleFileError,
    load_style_directions,
    offsets_for,
    save_style_directions,
    style_delta,
    style_directions_path,
)
from tests.conftest import make_tiny_stylegan2


@pytest.fixture(scope="module")
def generator():
    return make_tiny_stylegan2(resolution=16)


def _directions(generator) -> DirectionSet:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2, generator.w_dim))
    return DirectionSet(
        (
            Direction("smile", vectors[0], metrics={"std": 0.5}),
            Direction("age", vectors[1], metrics={"std": 2.0}),
        )
    )


def _render(generator, state: EditState) -> np.ndarray:
    return Renderer(generator).render(state.render_args()).rgb.astype(np.int16)


def test_channel_edit_composes_with_w_edit(generator) -> None:
    directions = _directions(generator)
    state = EditState(seed=3, directions=directions, attribute_amounts={"age": 1.5})
    edited = with_style_amount(state, (4, 2), 1.7)
    assert edited.has_edits and not reset_edits(edited).has_edits

    # Independent route: the W edit resolved by hand, the channel as an explicit offset.
    renderer = Renderer(generator)
    ws = torch.from_numpy(resolve_ws(state, renderer.seed_ws(3, state.truncation_psi)))[None]
    offset = {4: torch.zeros(1, generator.style_layers()[4].channels)}
    offset[4][0, 2] = 1.7
    with torch.no_grad():
        expected = generator.synthesis(ws, style_offsets=offset)
    expected_rgb = ((expected[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255)).to(torch.uint8)
    got = _render(generator, edited)
    assert np.abs(got - expected_rgb.numpy().astype(np.int16)).max() <= 1
    assert np.abs(got - _render(generator, state)).max() > 2


def test_offsets_refuse_unknown_channels(generator) -> None:
    layers = generator.style_layers()
    with pytest.raises(ValueError, match="channel 999 does not exist"):
        offsets_for({(0, 999): 1.0}, layers)
    with pytest.raises(ValueError, match="style layer 99 does not exist"):
        offsets_for({(99, 0): 1.0}, layers)


def test_localized_slider_uses_style_space_and_w_option_does_not(generator) -> None:
    directions = _directions(generator)
    delta = np.concatenate(style_delta(generator, directions["smile"].vector))
    local = StyleDirection("smile", ((5, 1), (6, 0)), np.array([0.8, -0.4]), region="lower face")
    styled = DirectionSet(directions.directions, styles=StyleDirectionSet((local,)))
    amount = 2 * styled["smile"].scale  # +2σ in latent units, as the slider sets it
    state = EditState(seed=1, directions=styled, attribute_amounts={"smile": amount})
    renderer = Renderer(generator)
    base = renderer.seed_ws(1, state.truncation_psi)
    # The localized slider leaves the latent alone and moves only its channels, by 2σ.
    assert np.array_equal(resolve_ws(state, base), base)
    from editors.state import resolve_styles

    assert resolve_styles(state) == pytest.approx({(5, 1): 1.6, (6, 0): -0.8})
    w_state = state.replace(attribute_space="w")
    assert not np.array_equal(resolve_ws(w_state, base), base)
    assert resolve_styles(w_state) == {}
    assert delta.shape[0] == sum(layer.channels for layer in generator.style_layers())
    assert np.abs(_render(generator, state) - _render(generator, w_state)).max() > 2


def test_style_directions_file_round_trip_and_attach_to_direction_set(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    directions = DirectionSet((Direction("smile", rng.normal(size=8)),), fingerprint="abc")
    json_path = save_directions(directions, tmp_path / "m.directions.json")
    assert load_directions(json_path).styles is None
    local = StyleDirection("smile", ((1, 2), (3, 4)), np.array([0.5, -1.0]), region="lower face")
    path = save_style_directions(
        StyleDirectionSet((local,), "abc"), style_directions_path(json_path)
    )
    assert path.name == "m.stylespace.json"
    loaded = load_directions(json_path).styles
    assert loaded is not None and loaded["smile"].channels == ((1, 2), (3, 4))
    assert np.allclose(loaded["smile"].values, [0.5, -1.0])
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(StyleFileError, match=r"m\.stylespace\.json"):
        load_style_directions(path)


def test_style_and_masked_edits_round_trip_through_sessions(generator, tmp_path: Path) -> None:
    mask = np.zeros((16, 16), np.float32)
    mask[8:, 4:12] = 1.0
    masked = MaskedEdit(mask, feather=1.5, block_resolution=8, style_amounts={(2, 3): -0.7})
    local = StyleDirection("smile", ((5, 1),), np.array([0.8]), region="lower face")
    directions = _directions(generator)
    directions = DirectionSet(directions.directions, styles=StyleDirectionSet((local,)))
    state = EditState(
        seed=5,
        directions=directions,
        attribute_amounts={"smile": 0.5},
        style_amounts={(4, 2): 1.25},
        masked=(masked,),
        attribute_space="auto",
    )
    path = save_session(tmp_path / "s.lsession", state, ModelReference(None, None))
    restored = load_session(path).state
    assert dict(restored.style_amounts) == {(4, 2): 1.25}
    assert len(restored.masked) == 1 and restored.masked[0].same_as(masked)
    assert restored.directions.styles is not None
    assert np.array_equal(_render(generator, restored), _render(generator, state))
    assert states_equal(restored.replace(directions=state.directions), state)


def test_cli_edit_uses_the_localized_smile_unless_space_w(tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    from editors.cli import main
    from editors.direction_files import default_directions_path
    from models import load_generator

    model = tiny_checkpoint(resolution=16)
    generator = load_generator(model, "cpu")
    rng = np.random.default_rng(8)
    directions = DirectionSet(
        (Direction("smile", rng.normal(size=32), metrics={"std": 0.5}),),
        fingerprint=generator.fingerprint(),
    )
    json_path = save_directions(directions, default_directions_path(model))
    local = StyleDirection("smile", ((5, 1), (7, 2)), np.array([0.9, -0.6]), region="lower face")
    save_style_directions(StyleDirectionSet((local,)), style_directions_path(json_path))
    w = rng.normal(size=(1, generator.num_ws, 32)).astype(np.float32)
    latent = tmp_path / "latent.npz"
    np.savez(latent, w=w, metadata=np.array("{}"))
    outputs = {}
    for space in ("auto", "w"):
        out = tmp_path / f"{space}.png"
        argv = ["edit", str(latent), "--model", str(model), "--direction", "smile=+2"]
        assert main([*argv, "--space", space, "--out", str(out)]) == 0
        outputs[space] = np.asarray(Image.open(out)).astype(np.int16)
    capsys.readouterr()
    # auto: the latent stays, channels (5, 1) and (7, 2) move by 2σ times their values.
    offsets = {5: torch.zeros(1, generator.style_layers()[5].channels)}
    offsets[7] = torch.zeros(1, generator.style_layers()[7].channels)
    offsets[5][0, 1], offsets[7][0, 2] = 1.8, -1.2
    with torch.no_grad():
        image = generator.synthesis(torch.from_numpy(w), style_offsets=offsets)
    expected = (image[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.abs(outputs["auto"] - expected.astype(np.int16)).max() <= 1
    # w: the plain direction, +2σ = 1.0 latent units on every row
    shifted = torch.from_numpy(w + 1.0 * directions["smile"].vector)
    with torch.no_grad():
        image = generator.synthesis(shifted)
    expected = (image[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.abs(outputs["w"] - expected.astype(np.int16)).max() <= 1


def test_region_localized_slider_changes_only_its_landmark_region(generator) -> None:
    from editors.masks import _LANDMARKS, local_synthesis
    from editors.regions import region_mask

    _LANDMARKS.clear()
    points = np.zeros((68, 2))
    points[:, 0], points[:, 1] = 8.0, 8.0
    points[48:68] = [
        (x, y) for x in (9.0, 11.0, 13.0, 15.0) for y in (11.0, 12.0, 13.0, 14.0, 15.0)
    ]
    local = StyleDirection(
        "smile",
        ((2, c) for c in range(6)),
        np.full(6, 2.0),
        mask_region="mouth",
        mask_grow=1.0,
        feather=0.0,
        block_resolution=8,
    )
    styled = DirectionSet(_directions(generator).directions, styles=StyleDirectionSet((local,)))
    state = EditState(seed=6, directions=styled, attribute_amounts={"smile": 2 * 0.5})
    renderer = Renderer(generator)
    ws = renderer.resolve_ws(state.render_args())
    with torch.no_grad():
        plain = generator.synthesis(ws)
        edited = local_synthesis(generator, state, ws, landmarks=lambda rgb: points)
        unmasked = generator.synthesis(
            ws, style_offsets=offsets_for(local.amounts(2.0), generator.style_layers())
        )
    change = (edited - plain).abs().sum(1)[0].numpy() * 127.5
    inside = region_mask("mouth", points, 16)
    assert inside.sum() > 10
    assert change[inside].mean() > 5
    assert change[~inside].max() < 0.5
    # without the region mask the same channels change the whole picture
    assert (unmasked - plain).abs().sum(1)[0].numpy()[~inside].mean() * 127.5 > 5
    # the same state saved in a session keeps the region settings
    from editors.stylespace import style_directions_from_json, style_directions_to_json

    again = style_directions_from_json(style_directions_to_json(StyleDirectionSet((local,))))
    assert (again["smile"].mask_region, again["smile"].block_resolution) == ("mouth", 8)


def test_demo_smile_is_local_and_the_readout_says_so() -> None:
    from editors.direction_files import default_directions_path
    from editors.locality import measure_state
    from models import load_generator

    demo = Path(__file__).resolve().parents[2] / "resources/models/demo-faces-64.safetensors"
    generator = load_generator(demo, "cpu")
    directions = load_directions(default_directions_path(demo))
    assert directions.styles is not None and "smile" in directions.styles
    amount = 2 * directions["smile"].scale  # +2σ, as the slider and `edit smile=+2` set it
    state = EditState(seed=505, directions=directions, attribute_amounts={"smile": amount})
    what, local = measure_state(generator, state)
    assert what == "smile" and local.region == "lower face"
    assert local.share_inside > 0.95 and local.mouth_width_change > 0.05
    # measured 0.120 on this face (issue 15's goal, for the mean over faces: <= 0.12)
    assert local.identity_drift < 0.13
    _, plain = measure_state(generator, state.replace(attribute_space="w"))
    assert plain.share_inside < 0.4 and plain.identity_drift > 0.2


def test_regional_direction_ranks_on_the_weak_faces_and_weights_by_effect_per_drift() -> None:
    from editors.channel_discovery import ChannelAtlas, regional_direction

    layers = [type("Layer", (), {"channels": 8})() for _ in range(2)]
    std = np.linspace(0.5, 2.0, 16).astype(np.float32)
    atlas = ChannelAtlas(
        shares=np.zeros((16, 9), np.float32),
        magnitude=np.ones(16, np.float32),
        mean=np.zeros(16, np.float32),
        std=std,
        layer_sizes=(8, 8),
        faces=2,
        step_sigmas=3.0,
    )
    candidates = [3, 9, 12, 14]
    # rows 0-1 generated faces, rows 2-3 photos; columns: strong on generated faces only,
    # moderate everywhere, negative everywhere (costly), opposite signs on the two groups
    effect = np.array(
        [
            [0.05, 0.02, -0.03, -0.04],
            [0.05, 0.02, -0.03, -0.04],
            [0.005, 0.02, -0.03, 0.04],
            [0.005, 0.02, -0.03, 0.04],
        ]
    )
    drift = np.tile([0.03, 0.03, 0.08, 0.01], (4, 1))
    photo = regional_direction(
        "smile", layers, atlas, candidates, effect, drift, count=3, sigmas=0.5,
        min_agreement=0.7, rank_rows=[2, 3], weighted=True,
    )  # fmt: skip
    # quality |photo effect| / (drift + 0.02)^2: 8 (moderate), 3 (negative), 2 (generated only)
    assert photo.channels == ((1, 1), (1, 4), (0, 3))
    expected = np.array([1.0, -3 / 8, 2 / 8]) * 0.5 * std[[9, 12, 3]]
    np.testing.assert_allclose(photo.values, expected, rtol=1e-5)
    assert photo.mask_region == "mouth" and photo.fitted_with["ranked_on_faces"] == 2
    # ranked on every face, the channel strong on generated faces comes first
    every = regional_direction(
        "smile", layers, atlas, candidates, effect, drift, count=1, min_agreement=0.7
    )
    assert every.channels == ((0, 3),)
    np.testing.assert_allclose(every.values, [1.4 * std[3]], rtol=1e-5)


def test_scored_channels_are_blended_as_the_localized_slider_renders_them(generator) -> None:
    from editors.channel_discovery import _blended
    from editors.masks import _LANDMARKS, local_synthesis

    points = np.zeros((68, 2))
    points[:, 0], points[:, 1] = 8.0, 8.0
    points[48:68] = [(x, y) for x in (5.0, 7.0, 9.0, 11.0) for y in (10.0, 11.0, 12.0, 13.0, 14.0)]
    template = StyleDirection(
        "smile", ((0, 0),), [0.0], mask_region="mouth", mask_grow=1.3, block_resolution=8
    )
    ws = torch.from_numpy(Renderer(generator).seed_ws(4, 0.7))[None]
    channels = generator.style_layers()[3].channels
    offsets = torch.zeros(2, channels)
    offsets[0, 1], offsets[1, 5] = 2.5, -3.0
    with torch.no_grad():
        batch = _blended(generator, ws, {3: offsets}, template, points)
    for row, channel in enumerate((1, 5)):
        _LANDMARKS.clear()
        single = StyleDirection(
            "smile", ((3, channel),), [float(offsets[row, channel])], mask_region="mouth",
            mask_grow=1.3, block_resolution=8,
        )  # fmt: skip
        styled = DirectionSet(
            _directions(generator).directions, styles=StyleDirectionSet((single,))
        )
        state = EditState(seed=4, directions=styled, attribute_amounts={"smile": 0.5})  # 1σ
        with torch.no_grad():
            slider = local_synthesis(generator, state, ws, landmarks=lambda rgb: points)
        assert torch.allclose(batch[row], slider[0], atol=1e-5)
        assert (slider - generator.synthesis(ws)).abs().max() > 0.05
