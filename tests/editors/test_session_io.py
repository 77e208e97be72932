"""Session files: a full round trip of every edit, and clear errors on broken or foreign files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from editors.directions import Direction, DirectionSet
from editors.mixing import LatentSource, StyleMix
from editors.session_io import (
    ModelReference,
    SessionFileError,
    check_session_fits,
    load_session,
    save_session,
)
from editors.state import EditState, states_equal


def edited_state() -> EditState:
    rng = np.random.default_rng(0)
    directions = DirectionSet(
        (
            Direction(
                "smile",
                rng.normal(size=8),
                (0, 4),
                metrics={"std": 2.0},
                fitted_with={"labeler": "manual"},
            ),
            Direction("age", rng.normal(size=8)),
        ),
        fingerprint="f00d",
        model_name="tiny",
    )
    components = DirectionSet((Direction("Component 0", rng.normal(size=8)),))
    donor = LatentSource(ws=rng.normal(size=(6, 8)), label="history: Smile")
    return EditState(
        seed=None,
        base_ws=rng.normal(size=(6, 8)),
        truncation_psi=0.5,
        noise_mode="none",
        noise_strength=(1.0, 0.5, 0, 0, 2, 1, 1),
        directions=directions,
        attribute_amounts={"smile": 1.25, "age": -0.5},
        locked={"age"},
        components=components,
        component_amounts={"Component 0": 3.0},
        component_layers=(2, 6),
        mix=StyleMix(donor, (1, 1, 0.5, 0, 0, 0.25)),
    )


def test_session_round_trip(tmp_path) -> None:
    state = edited_state()
    model = ModelReference("/models/tiny.pt", "f00d", "tiny")
    path = save_session(tmp_path / "work.lsession", state, model)
    loaded = load_session(path)
    assert loaded.model == model
    again = loaded.state
    np.testing.assert_array_equal(again.base_ws, state.base_ws)
    np.testing.assert_array_equal(again.mix.donor.ws, state.mix.donor.ws)
    assert (
        again.mix.donor.label == "history: Smile" and again.mix.row_weights == state.mix.row_weights
    )
    for a, b in ((again.directions, state.directions), (again.components, state.components)):
        assert a.names == b.names and a.fingerprint == b.fingerprint
        np.testing.assert_array_equal(a.matrix(), b.matrix())
    assert again.directions["smile"].layers == (0, 4) and again.directions["smile"].scale == 2.0
    # Everything but the (new) direction-set objects is equal.
    same_sets = again.replace(
        directions=state.directions,
        components=state.components,
        mix=state.mix,
        base_ws=state.base_ws,
    )
    assert states_equal(same_sets, state)
    assert loaded.mismatch("f00d") is None
    assert "fingerprint f00d; the open model's fingerprint is beef" in loaded.mismatch("beef")
    check_session_fits(loaded, 6, 8, num_noise_layers=7)
    with pytest.raises(ValueError, match=r"latent is \[6, 8\]; this model needs \[10, 8\]"):
        check_session_fits(loaded, 10, 8)
    with pytest.raises(ValueError, match="7 noise strengths; this model has 9"):
        check_session_fits(loaded, 6, 8, num_noise_layers=9)


def test_seed_session_round_trip(tmp_path) -> None:
    state = EditState(
        seed=42,
        truncation_psi=0.7,
        mix=StyleMix(LatentSource(seed=7, truncation_psi=0.6), (0.0, 1.0)),
    )
    loaded = load_session(save_session(tmp_path / "s.lsession", state, ModelReference(None, None)))
    assert states_equal(loaded.state, state)
    assert loaded.state.directions is None and loaded.mismatch("anything") is None


def test_broken_sessions(tmp_path) -> None:
    with pytest.raises(SessionFileError, match="file not found"):
        load_session(tmp_path / "missing.lsession")
    junk = tmp_path / "junk.lsession"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(SessionFileError, match=r"junk\.lsession: not a readable session file"):
        load_session(junk)
    other = tmp_path / "other.lsession"
    with open(other, "wb") as handle:
        np.savez(handle, w=np.zeros((1, 2, 3)))
    with pytest.raises(SessionFileError, match="no session document"):
        load_session(other)
    path = save_session(tmp_path / "ok.lsession", edited_state(), ModelReference(None, None))
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    document = json.loads(str(arrays["session"][()]))
    document["attribute_amounts"]["ghost"] = 1.0
    with open(tmp_path / "bad.lsession", "wb") as handle:
        np.savez(handle, **(arrays | {"session": np.array(json.dumps(document))}))
    with pytest.raises(SessionFileError, match=r"damaged session.*not in the session: ghost"):
        load_session(tmp_path / "bad.lsession")
