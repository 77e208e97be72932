"""The project's loaders and networks against outputs computed by the original implementations.

The ``*.safetensors`` files beside this module were written by ``make_golden.py`` running
rosinality's ``stylegan2-pytorch``, pytorch_GAN_zoo and NVIDIA's ``stylegan2-ada-pytorch`` (see
its docstring). Here their weights go into checkpoint files of each format, are loaded through
``models.load_generator`` / ``models.load_discriminator``, and must reproduce the stored outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import models
from tests.golden.make_golden import discriminator_input, output_views
from tests.helpers import nvidia_pickles as nv
from tests.helpers.pgan_files import write_pgan_state

HERE = Path(__file__).resolve().parent
ATOL = 1e-4


def read_golden(name: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """(weights as float32, outputs, config) of ``HERE/name.safetensors``."""
    weights, outputs = {}, {}
    with safe_open(str(HERE / f"{name}.safetensors"), "pt") as handle:
        config = json.loads(handle.metadata()["config"])
        for key in handle.keys():  # noqa: SIM118 - safe_open is not iterable
            group, _, rest = key.partition(".")
            tensor = handle.get_tensor(key).float()
            (weights if group == "weights" else outputs)[rest] = tensor
    return weights, outputs, config


def prefixed(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix``, without it."""
    return {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}


def assert_images_match(name: str, images: torch.Tensor, outputs: dict[str, torch.Tensor]) -> None:
    views = output_views(name, images)
    assert views, name
    for key, view in views.items():
        torch.testing.assert_close(view, outputs[key], atol=ATOL, rtol=0, msg=key)


def check_stylegan2(
    path: Path, outputs: dict[str, torch.Tensor], truncation: float, has_discriminator: bool
) -> None:
    generator = models.load_generator(path, device="cpu")
    with torch.no_grad():
        ws = generator.broadcast(generator.mapping(outputs["z"], truncation_psi=truncation))
        assert_images_match("image_z", generator.synthesis(ws, noise_mode="const"), outputs)
        w_plus = generator.synthesis(outputs["w_plus"], noise_mode="const")
        assert_images_match("image_w_plus", w_plus, outputs)
    discriminator = models.load_discriminator(path, device="cpu")
    assert (discriminator is not None) == has_discriminator
    if discriminator is not None:
        with torch.no_grad():
            images = discriminator_input(outputs["d_input_small"], generator.resolution)
            logits = discriminator(images)
        torch.testing.assert_close(logits, outputs["d_logits"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("size", [32, 64, 256])
def test_rosinality_checkpoint_reproduces_the_original(tmp_path: Path, size: int) -> None:
    weights, outputs, config = read_golden(f"rosinality-{size}")
    payload = {
        "g_ema": prefixed(weights, "g_ema."),
        "d": prefixed(weights, "d."),
        "latent_avg": weights["latent_avg"],
    }
    path = tmp_path / f"rosinality-{size}.pt"
    torch.save(payload, path)
    check_stylegan2(path, outputs, config["truncation"], has_discriminator=True)


@pytest.mark.parametrize("size", [32, 64, 256])
def test_nvidia_pickle_reproduces_the_original(tmp_path: Path, size: int) -> None:
    weights, outputs, config = read_golden(f"nvidia-{size}")
    g_ema = nv.make_generator(
        size,
        z_dim=config["z_dim"],
        w_dim=config["w_dim"],
        mapping_layers=config["mapping_layers"],
        channel_base=config["channel_base"],
        channel_max=config["channel_max"],
    )
    d = nv.make_discriminator(
        size, channel_base=config["channel_base"], channel_max=config["channel_max"]
    )
    g_ema.load_state_dict(prefixed(weights, "G_ema."))
    d.load_state_dict(prefixed(weights, "D."))
    path = nv.write_snapshot(tmp_path / f"network-snapshot-{size}.pkl", G=g_ema, D=d, G_ema=g_ema)
    check_stylegan2(path, outputs, config["truncation"], has_discriminator=True)


@pytest.mark.parametrize("size", [16, 64])
def test_pgan_checkpoint_reproduces_the_original(tmp_path: Path, size: int) -> None:
    weights, outputs, config = read_golden(f"pgan-{size}")
    path = write_pgan_state(
        tmp_path / f"pgan-{size}.pth", weights, config["depths"], config["z_dim"], config["alpha"]
    )
    generator = models.load_generator(path, device="cpu")
    assert generator.resolution == size
    with torch.no_grad():
        assert_images_match("image_z", generator(outputs["z"]), outputs)


def test_golden_files_stay_small() -> None:
    total = sum(path.stat().st_size for path in HERE.glob("*.safetensors"))
    assert 0 < total < 3_000_000
