"""The shipped demo model: what the app opens on first start, with its directions and encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

import models
from editors.direction_files import default_directions_path, load_directions
from editors.directions import shift
from models.encoder import find_encoder_for, load_encoder
from models.generator import seed_to_z, to_rgb_u8

SLIDERS = ("smile", "age", "glasses", "head yaw", "head pitch", "male", "young")
MAX_BYTES = 40 * 2**20


@pytest.fixture(scope="module")
def demo():
    return models.load_default("cpu")


def test_the_default_is_a_small_fp16_stylegan2(demo) -> None:
    path = models.DEFAULT_MODEL
    assert models.default_model_path() == path
    assert path.stat().st_size <= MAX_BYTES
    with safe_open(str(path), "pt") as stored:
        dtypes = {stored.get_slice(key).get_dtype() for key in stored.keys()}  # noqa: SIM118
    assert dtypes == {"F16"}
    assert demo.kind == "stylegan2"
    assert demo.resolution == 64
    image = demo.synthesis(
        demo.broadcast(demo.mapping(seed_to_z([0], demo.z_dim), truncation_psi=0.7))
    )
    assert image.shape == (1, 3, 64, 64) and torch.isfinite(image).all()


def test_the_model_card_states_data_licence_and_metrics() -> None:
    card = models.DEFAULT_MODEL.with_suffix(".md").read_text()
    for fact in ("CelebA", "UTKFace", "non-commercial", "Face rate", "Fréchet", "PSNR"):
        assert fact in card, fact


def test_directions_belong_to_the_model_and_carry_their_accuracy(demo) -> None:
    directions = load_directions(default_directions_path(models.DEFAULT_MODEL))
    assert directions.fingerprint == demo.fingerprint()
    assert set(SLIDERS) <= set(directions.names)
    for direction in directions.directions:
        quality = direction.metrics.get("heldout_accuracy", direction.metrics.get("r2"))
        assert quality is not None and 0.0 < quality <= 1.0, direction.name
        assert direction.vector.shape == (demo.w_dim,)


def test_head_yaw_turns_the_head_the_way_its_sign_says(demo) -> None:
    from editors.identity import detect_landmarks
    from editors.labelers import head_pose

    direction = load_directions(default_directions_path(models.DEFAULT_MODEL))["head yaw"]
    with torch.inference_mode():
        ws = demo.broadcast(
            demo.mapping(seed_to_z([1, 2, 3, 4], demo.z_dim), truncation_psi=0.7)
        ).numpy()
    yaws = {}
    for sign in (-1.0, 1.0):
        moved = shift(ws, direction, 2.0 * sign * direction.scale)
        with torch.inference_mode():
            images = to_rgb_u8(demo.synthesis(torch.from_numpy(moved)))
        found = []
        for rgb in images:
            big = np.asarray(Image.fromarray(rgb).resize((256, 256), Image.Resampling.BICUBIC))
            marks = detect_landmarks(big)
            if marks is not None:
                found.append(head_pose(marks, big.shape[:2])[0])
        assert found, "no face found in the moved samples"
        yaws[sign] = float(np.mean(found))
    assert yaws[1.0] - yaws[-1.0] > 5.0


def test_the_encoder_starts_closer_than_the_average_latent(demo) -> None:
    path = find_encoder_for(models.DEFAULT_MODEL)
    assert path is not None
    encoder = load_encoder(path)
    with torch.inference_mode():
        targets = demo.synthesis(
            demo.broadcast(demo.mapping(seed_to_z([5, 6, 7], demo.z_dim), truncation_psi=0.7))
        )
        from_encoder = demo.synthesis(encoder(targets))
        from_average = demo.synthesis(demo.broadcast(demo.w_avg[None].expand(3, -1)))
    assert (from_encoder - targets).square().mean() < 0.5 * (from_average - targets).square().mean()
