"""Edit state: pure resolution of edits into ws; the renderer's cache gives identical pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from editors.directions import Direction, DirectionSet
from editors.mixing import LatentSource, StyleMix
from editors.rendering import Renderer
from editors.state import (
    EditState,
    reset_edits,
    resolve_ws,
    states_equal,
    with_amount,
    with_component,
    with_directions,
    with_lock,
)
from models.generator import seed_to_z, to_rgb_u8


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@pytest.fixture
def directions() -> DirectionSet:
    rng = np.random.default_rng(0)
    return DirectionSet(
        (
            Direction("smile", rng.normal(size=8), metrics={"std": 2.0}),
            Direction("age", rng.normal(size=8)),
            Direction("hair", rng.normal(size=8), layers=(8, 10)),
        )
    )


def test_resolve_matches_naive_sum(directions: DirectionSet) -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(10, 8)).astype(np.float32)
    state = EditState(
        directions=directions, attribute_amounts={"smile": 1.5, "hair": -2.0, "age": 0.0}
    )
    resolved = resolve_ws(state, base)
    expected = base.astype(np.float64).copy()
    expected += 1.5 * directions["smile"].vector
    expected[8:10] += -2.0 * directions["hair"].vector
    np.testing.assert_allclose(resolved, expected, atol=1e-5)
    assert "age" not in state.attribute_amounts  # zero amounts are "not moved"


def test_untouched_rows_stay_bit_identical(directions: DirectionSet) -> None:
    base = np.random.default_rng(2).normal(size=(10, 8)).astype(np.float32)
    state = EditState(directions=directions, attribute_amounts={"hair": 0.7})
    a = resolve_ws(state, base)
    b = resolve_ws(with_amount(state, "hair", 0.9), base)
    assert a[:8].tobytes() == base[:8].tobytes() == b[:8].tobytes()
    assert not np.array_equal(a[8:], b[8:])


def test_locked_attribute_score_stays_put(directions: DirectionSet) -> None:
    base = np.random.default_rng(3).normal(size=(10, 8)).astype(np.float32)
    state = with_lock(
        EditState(directions=directions, attribute_amounts={"smile": 1.0}), "smile", True
    )
    smile = directions["smile"].vector.astype(np.float64)
    before = resolve_ws(state, base)[0] @ smile
    moved = resolve_ws(with_amount(state, "age", 3.0), base)[0] @ smile
    assert moved == pytest.approx(before, abs=1e-5)
    # Unlocked, moving age changes the smile score (the raw directions are correlated).
    unlocked = with_lock(state, "smile", False)
    leaked = resolve_ws(with_amount(unlocked, "age", 3.0), base)[0] @ smile
    assert abs(leaked - before) > 1e-2


def test_mix_then_edits_and_components(directions: DirectionSet) -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(size=(10, 8)).astype(np.float32)
    donor = rng.normal(size=(10, 8)).astype(np.float32)
    weights = (1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0, 0)
    components = DirectionSet((Direction("Component 0", np.eye(8)[0]),))
    state = EditState(
        directions=directions,
        attribute_amounts={"age": 1.0},
        mix=StyleMix(LatentSource(ws=donor), weights),
        components=components,
        component_amounts={"Component 0": 2.0},
        component_layers=(0, 4),
    )
    resolved = resolve_ws(state, base, donor)
    t = np.asarray(weights, np.float64)[:, None]
    expected = base * (1 - t) + donor * t + 1.0 * directions["age"].vector
    expected[0:4] += 2.0 * np.eye(8)[0]
    np.testing.assert_allclose(resolved, expected, atol=1e-5)
    with pytest.raises(ValueError, match="needs the donor's latent"):
        resolve_ws(state, base)


def test_state_helpers(directions: DirectionSet) -> None:
    state = EditState(
        directions=directions, attribute_amounts={"smile": 1.0}, locked={"smile", "age"}
    )
    with pytest.raises(TypeError):
        state.attribute_amounts["smile"] = 3.0  # type: ignore[index]
    other = DirectionSet((Direction("smile", np.ones(8)),))
    switched = with_directions(state, other)
    assert dict(switched.attribute_amounts) == {"smile": 1.0} and switched.locked == {"smile"}
    edited = with_component(state, "c", 1.0).replace(
        mix=StyleMix(LatentSource(seed=1), (1.0,) * 10)
    )
    assert edited.has_edits
    reset = reset_edits(edited)
    assert not reset.has_edits and reset.locked == state.locked and reset.directions is directions
    assert states_equal(
        state,
        EditState(directions=directions, attribute_amounts={"smile": 1.0}, locked={"age", "smile"}),
    )
    assert not states_equal(state, with_amount(state, "smile", 1.1))
    base = EditState(base_ws=np.zeros((10, 8)))
    assert not base.base_ws.flags.writeable


def test_renderer_cache_gives_identical_pixels_and_restarts_late(tiny_generator) -> None:
    generator = tiny_generator(resolution=64, w_dim=16)
    assert generator.num_ws == 10
    rng = np.random.default_rng(5)
    directions = DirectionSet(
        (
            Direction("fine", rng.normal(size=16), layers=(8, 10)),
            Direction("all", rng.normal(size=16)),
        )
    )
    renderer = Renderer(generator)
    state = EditState(seed=3, truncation_psi=0.8, directions=directions)
    # Reference: map, truncate, broadcast, edit and render without any cache, by hand.
    with torch.inference_mode():
        w = generator.mapping(seed_to_z([3], 16), truncation_psi=0.8)
    base = w.repeat(10, 1).numpy()

    def reference(amounts: dict[str, float]) -> np.ndarray:
        ws = base.astype(np.float32).copy()
        if "all" in amounts:
            ws += np.float32(amounts["all"]) * directions["all"].vector
        if "fine" in amounts:
            ws[8:] += np.float32(amounts["fine"]) * directions["fine"].vector
        with torch.inference_mode():
            images = generator.synthesis(torch.from_numpy(ws)[None])
        return to_rgb_u8(images)[0]

    sequence = [
        {},
        {"all": 1.0},
        {"all": 1.0, "fine": 2.0},
        {"all": 1.0, "fine": -1.0},
        {"fine": -1.0},
    ]
    starts = []
    for amounts in sequence:
        current = state.replace(attribute_amounts=amounts)
        result = renderer.render(current.render_args())
        np.testing.assert_array_equal(result.rgb, reference(amounts))
        assert result.state is current
        starts.append(result.start_block)
    # Full renders when every row changes; the fine-only edits restart at the 64-px block.
    assert starts == [0, 0, 4, 4, 0]


def test_renderer_draft_then_full_reuses_blocks(tiny_generator) -> None:
    generator = tiny_generator(resolution=64, w_dim=16)
    renderer = Renderer(generator, draft_resolution=16)
    direction = Direction("fine", np.ones(16), layers=(8, 10))
    state = EditState(seed=1, directions=DirectionSet((direction,)))
    renderer.render(state.render_args())
    draft = renderer.render(with_amount(state, "fine", 1.0).render_args(draft=True))
    assert draft.draft and draft.rgb.shape == (16, 16, 3)
    assert draft.start_block == 3  # nothing up to 16 px changed: served from the cache
    full = renderer.render(with_amount(state, "fine", 1.0).render_args())
    assert full.rgb.shape == (64, 64, 3) and full.start_block == 4


def test_renderer_mixes_with_a_seed_donor_and_probes_identity(tiny_generator) -> None:
    generator = tiny_generator(resolution=16, w_dim=16)
    calls = []

    def probe(reference, edited):
        calls.append((reference.copy(), edited.copy()))
        return 0.25

    renderer = Renderer(generator, identity_probe=probe)
    mix = StyleMix(LatentSource(seed=9, truncation_psi=0.5), (1.0, 1.0, 0.0, 0.0, 0.5, 0.5))
    state = EditState(seed=2, truncation_psi=1.0, mix=mix)
    result = renderer.render(state.render_args(measure_identity=True))
    with torch.inference_mode():
        own = generator.mapping(seed_to_z([2], 16))[0].numpy()
        donor = generator.mapping(seed_to_z([9], 16), truncation_psi=0.5)[0].numpy()
        unedited = to_rgb_u8(generator.synthesis(torch.from_numpy(np.tile(own, (6, 1)))[None]))[0]
    t = np.array(mix.row_weights)[:, None]
    np.testing.assert_allclose(result.ws, own * (1 - t) + donor * t, atol=1e-5)
    assert result.identity_distance == 0.25
    np.testing.assert_array_equal(calls[0][0], unedited)
    np.testing.assert_array_equal(calls[0][1], result.rgb)
    # An unedited state has no drift by definition; the probe is not called.
    assert (
        renderer.render(EditState(seed=2).render_args(measure_identity=True)).identity_distance
        == 0.0
    )
    assert len(calls) == 1
    # Drafts are not measured (the read-out updates on release).
    assert (
        renderer.render(state.render_args(draft=True, measure_identity=True)).identity_distance
        is None
        or generator.resolution <= renderer.draft_resolution
    )


def test_limit_identity_drift_shrinks_the_step(tiny_generator) -> None:
    from editors.rendering import limit_identity_drift

    generator = tiny_generator(resolution=16, w_dim=16)
    direction = Direction("smile", np.ones(16))
    state = with_amount(EditState(seed=1, directions=DirectionSet((direction,))), "smile", 1.0)

    # A stand-in meter: drift grows with the mean pixel change from the unedited picture.
    def probe(reference, edited):
        return float(np.abs(reference.astype(float) - edited.astype(float)).mean()) / 10.0

    def drift(amount: float) -> float:
        unedited = Renderer(generator).render(EditState(seed=1).render_args()).rgb
        return probe(
            unedited,
            Renderer(generator).render(with_amount(state, "smile", amount).render_args()).rgb,
        )

    threshold = (drift(1.0) + drift(9.0)) / 2
    limited = limit_identity_drift(generator, state, "smile", 9.0, threshold=threshold, probe=probe)
    assert 1.0 < limited < 9.0
    assert drift(limited) <= threshold
    assert limit_identity_drift(generator, state, "smile", 1.5, threshold=100.0, probe=probe) == 1.5


def test_identity_drift_probe_on_real_faces() -> None:
    from PIL import Image

    from editors.rendering import IdentityDriftProbe
    from tests.conftest import shared_path

    folder = shared_path("data", "celeba_10k", "images")
    first, second = (
        np.asarray(Image.open(folder / name).convert("RGB"))
        for name in ("000001.jpg", "000002.jpg")
    )
    probe = IdentityDriftProbe()
    assert probe(first, first) == pytest.approx(0.0, abs=1e-6)
    assert probe(first, second) > 0.6  # two different people (dlib's same-person boundary)
    noise = np.random.default_rng(0).integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
    assert probe(noise, first) is None  # no face in the reference: nothing to measure
