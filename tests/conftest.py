"""Shared fixtures: offscreen Qt, isolated settings and caches, tiny generators, checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Fixtures shared by test modules in different folders.
pytest_plugins = ("tests.helpers.http_server",)

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ``../shared``; skips the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


@pytest.fixture(autouse=True)
def _isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never read or write the developer's cache, settings or device choice."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("LATENTSTUDIO_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("LATENTSTUDIO_DEVICE", "cpu")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "config"))
    monkeypatch.setenv("HOME", str(base / "home"))


def make_tiny_stylegan2(
    resolution: int = 16, w_dim: int = 32, seed: int = 0, randomize: bool = True
):
    """A small StyleGAN2 with random weights in the rosinality layout (renders in milliseconds).

    ``randomize`` also makes the usually-zero parameters (biases, noise strengths) non-zero so
    that tests exercise every term.
    """
    from models.stylegan2 import StyleGAN2Generator, channels_from_base

    torch.manual_seed(seed)
    generator = StyleGAN2Generator(
        resolution,
        channels_from_base(resolution, channel_base=256, channel_max=32),
        z_dim=w_dim,
        w_dim=w_dim,
        mapping_layers=2,
    )
    if randomize:
        with torch.no_grad():
            for name, param in generator.named_parameters():
                if name.endswith("bias") or name.endswith("noise.weight"):
                    param.normal_(0.0, 0.2)
    generator.update_w_avg(1000)
    return generator.eval().requires_grad_(False)


@pytest.fixture
def tiny_generator():
    """Factory fixture: ``tiny_generator(resolution=16, w_dim=32, seed=0)``."""
    return make_tiny_stylegan2


@pytest.fixture
def tiny_checkpoint(tmp_path: Path):
    """Factory fixture writing a tiny generator as a rosinality ``.pt``; returns its path."""

    def write(resolution: int = 16, name: str = "tiny.pt", seed: int = 0) -> Path:
        generator = make_tiny_stylegan2(resolution, seed=seed)
        path = tmp_path / name
        state = {
            k: v for k, v in generator.state_dict().items() if k != "w_avg"
        }  # rosinality has none
        torch.save({"g_ema": state, "latent_avg": generator.w_avg.clone()}, path)
        return path

    return write
