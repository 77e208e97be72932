"""CLI defaults a newcomer relies on: demo model without --model, helpful no-face and info text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

import main
import models
from editors.direction_files import default_directions_path, load_directions
from editors.latent_io import save_latent
from editors.rendering import Renderer
from editors.state import EditState
from models.generator import seed_to_z


def _demo() -> Path:
    import pytest

    path = models.default_model_path()
    if path is None:
        pytest.skip("the built-in demo model is not installed")
    return path


def test_edit_without_model_uses_the_demo_as_the_readme_says(tmp_path: Path, capsys) -> None:
    demo = _demo()
    generator = models.load_generator(demo, "cpu")
    with torch.no_grad():
        ws = generator.broadcast(generator.mapping(seed_to_z([3], generator.z_dim)))[0].numpy()
    latent = save_latent(tmp_path / "latent.npz", ws)
    out = tmp_path / "x.png"
    # The README's example, word for word apart from the file names.
    readme_out = tmp_path / "readme.png"
    code = main.main(
        ["edit", str(latent), "--direction", "smile=+2", "--lock", "male", "--out", str(readme_out)]
    )
    assert code == 0 and readme_out.is_file(), capsys.readouterr().err
    # In W space (no localized version), so the picture can be computed here independently.
    code = main.main(
        ["edit", str(latent), "--direction", "smile=+2", "--lock", "male", "--space", "w",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    directions = load_directions(default_directions_path(demo))
    state = EditState(
        seed=None,
        base_ws=ws,
        directions=directions,
        attribute_amounts={"smile": 2 * directions["smile"].scale},
        locked=frozenset({"male"}),
        attribute_space="w",
    )
    expected = Renderer(generator).render(state.render_args()).rgb
    written = np.asarray(Image.open(out).convert("RGB"))
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1
    unedited = Renderer(generator).render(EditState(seed=None, base_ws=ws).render_args()).rgb
    # The edit shows (a smile changes the mouth, a small part of the picture, a lot).
    assert np.abs(written.astype(int) - unedited.astype(int)).max() > 20


def test_project_no_face_error_names_the_ways_out(tmp_path: Path, capsys) -> None:
    _demo()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(tmp_path / "grey.png")
    code = main.main(["project", str(tmp_path / "grey.png"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "grey.png" in err[0] and "no face found" in err[0]
    assert "--center-crop-fallback" in err[0] and "--no-align" in err[0]


def test_info_on_an_encoder_file_says_what_it_is(tmp_path: Path, capsys) -> None:
    from models.encoder import LatentEncoder, save_encoder

    encoder = LatentEncoder(num_ws=4, w_dim=16, input_size=16, width=8, max_channels=16)
    path = save_encoder(encoder, tmp_path / "enc.safetensors")
    assert main.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "latent encoder" in out and "unknown generator kind" not in out
    assert "num_ws: 4" in out and "w_dim: 16" in out
