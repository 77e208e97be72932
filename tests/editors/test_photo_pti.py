"""The photo pipeline with pivotal tuning: `project --pti`, `edit` with the delta, sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from editors.direction_files import default_directions_path, save_directions
from editors.directions import Direction, DirectionSet
from editors.latent_io import load_latent
from editors.pivotal import apply_delta, load_delta
from editors.rendering import Renderer
from editors.state import EditState
from main import main
from models import load_generator
from models.generator import to_rgb_u8


def face_photo(path: Path) -> Path:
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    Image.fromarray(np.kron(blocks, np.ones((8, 8, 1), np.uint8))).save(path)
    return path


def test_project_pti_writes_the_delta_and_edit_renders_with_it(
    tiny_checkpoint: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_checkpoint(resolution=16)
    photo = face_photo(tmp_path / "photo.png")
    out = tmp_path / "out"
    args = ["project", str(photo), "--model", str(model), "--pti", "--no-align"]
    args += ["--steps", "3", "--tune-steps", "4", "--loss", "pixel", "--out", str(out)]
    assert main(args) == 0
    latent = load_latent(out / "latent.npz")
    assert latent.metadata["space"] == "w" and latent.metadata["tuning"]["steps"] == 4
    assert latent.tuning_path == out / "latent.tuning.npz"
    generator = load_generator(model, "cpu")
    delta = load_delta(latent.tuning_path)
    tuned = apply_delta(generator, delta)
    ws = torch.from_numpy(latent.fitted(generator.num_ws, generator.w_dim))[None]
    with torch.no_grad():
        recon = to_rgb_u8(tuned.synthesis(ws))[0]
        plain = to_rgb_u8(generator.synthesis(ws))[0]
    assert not np.array_equal(recon, plain)  # the tuning really changed the picture
    np.testing.assert_array_equal(np.asarray(Image.open(out / "projected.png")), recon)

    rng = np.random.default_rng(8)
    directions = DirectionSet(
        (Direction("smile", rng.normal(size=32), metrics={"std": 0.5}),),
        fingerprint=generator.fingerprint(),
    )
    save_directions(directions, default_directions_path(model))
    edited = tmp_path / "edited.png"
    edit = ["edit", str(out / "latent.npz"), "--model", str(model), "--out", str(edited)]
    assert main([*edit, "--direction", "smile=+2"]) == 0
    state = EditState(seed=None, base_ws=latent.fitted(generator.num_ws, generator.w_dim))
    state = state.replace(directions=directions, attribute_amounts={"smile": 1.0})
    expected = Renderer(tuned).render(state.render_args()).rgb
    np.testing.assert_array_equal(np.asarray(Image.open(edited)), expected)
    capsys.readouterr()

    # The delta belongs to this model: another one is refused with the reason.
    other = tiny_checkpoint(resolution=16, name="other.pt", seed=9)
    save_directions(directions, default_directions_path(other))
    assert (
        main([*edit[:2], "--model", str(other), "--out", str(edited), "--direction", "smile=1"])
        == 2
    )
    err = capsys.readouterr().err
    assert "latent.tuning.npz" in err and "this tuning was made for" in err


def test_sessions_keep_the_tuning(tiny_generator: Any, tmp_path: Path) -> None:
    from editors.photo import invert_photo
    from editors.pivotal import TuningConfig
    from editors.projection import ProjectionConfig
    from editors.session_io import ModelReference, load_session, save_session

    generator = tiny_generator(16)
    target = np.asarray(Image.open(face_photo(tmp_path / "photo.png")))
    inversion = invert_photo(
        generator, target, projection=ProjectionConfig(steps=2, space="w", loss="pixel"),
        tuning=TuningConfig(steps=3, loss="pixel"),
    )  # fmt: skip
    state = EditState(seed=None, base_ws=inversion.ws)
    reference = ModelReference(None, generator.fingerprint(), "tiny")
    path = save_session(tmp_path / "s.lsession", state, reference, inversion.tuning.delta)
    loaded = load_session(path)
    assert loaded.tuning is not None
    rebuilt = apply_delta(generator, loaded.tuning)
    with torch.no_grad():
        image = to_rgb_u8(rebuilt.synthesis(torch.from_numpy(inversion.ws)[None]))[0]
    np.testing.assert_array_equal(image, inversion.image)
    assert load_session(save_session(tmp_path / "t.lsession", state, reference)).tuning is None


def test_project_pti_leaves_the_weights_localized_sliders_read(
    tiny_checkpoint: Any, tmp_path: Path
) -> None:
    from editors.stylespace import (
        StyleDirection,
        StyleDirectionSet,
        save_style_directions,
        style_directions_path,
    )

    model = tiny_checkpoint(resolution=16)
    generator = load_generator(model, "cpu")
    conv = next(x for x in generator.style_layers() if x.resolution == 16 and not x.is_rgb)
    directions = DirectionSet(
        (Direction("smile", np.ones(32)),), fingerprint=generator.fingerprint()
    )
    json_path = save_directions(directions, default_directions_path(model))
    local = StyleDirection("smile", ((conv.index, 2),), np.array([1.0]))
    styles = StyleDirectionSet((local,), generator.fingerprint())
    save_style_directions(styles, style_directions_path(json_path))
    out = tmp_path / "out"
    args = ["project", str(face_photo(tmp_path / "photo.png")), "--model", str(model), "--pti"]
    args += ["--no-align", "--steps", "2", "--tune-steps", "6", "--loss", "pixel"]
    assert main([*args, "--out", str(out)]) == 0
    name = f"{conv.name}.conv.weight"
    shape = dict(generator.named_parameters())[name].shape  # [1, out, in, k, k]
    change = load_delta(out / "latent.tuning.npz").dense()[name].reshape(shape)
    assert torch.all(change[:, :, 2] == 0)  # smile's channel: as the model was
    assert change[:, :, [0, 1, 3]].abs().max() > 0  # the other inputs are tuned


def test_project_pti_editable_preset_tunes_every_layer_gently(
    tiny_checkpoint: Any, tmp_path: Path
) -> None:
    from editors.photo import TUNING_PRESETS
    from editors.pivotal import tunable_parameters

    model = tiny_checkpoint(resolution=16)
    out = tmp_path / "out"
    args = ["project", str(face_photo(tmp_path / "photo.png")), "--model", str(model), "--pti"]
    args += ["--no-align", "--steps", "2", "--tune-steps", "3", "--loss", "pixel"]
    assert main([*args, "--tuning", "editable", "--out", str(out)]) == 0
    delta = load_delta(out / "latent.tuning.npz")
    assert delta.metadata["detail_rank"] == 4 and delta.metadata["steps"] == 3
    generator = load_generator(model, "cpu")
    editable, faithful = (
        {n for names in tunable_parameters(generator, TUNING_PRESETS[key]) for n in names}
        for key in ("editable", "faithful")
    )
    assert set(delta.low_rank) | set(delta.full) == editable
    assert faithful < editable  # the coarse layers are tuned too
