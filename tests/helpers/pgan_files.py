"""pytorch_GAN_zoo PGAN checkpoints written the way its ``BaseGAN.save`` writes them."""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from models.progan import ProGANGenerator


class BaseConfig:
    """Pickled under the zoo's name ``models.utils.config.BaseConfig`` (an attribute bag)."""


@contextlib.contextmanager
def zoo_names() -> Iterator[None]:
    """Make ``models.utils.config.BaseConfig`` resolvable by name while saving."""
    utils, config = types.ModuleType("models.utils"), types.ModuleType("models.utils.config")
    config.BaseConfig = BaseConfig
    BaseConfig.__module__, BaseConfig.__qualname__ = "models.utils.config", "BaseConfig"
    saved = {name: sys.modules.get(name) for name in ("models.utils", "models.utils.config")}
    sys.modules.update({"models.utils": utils, "models.utils.config": config})
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def zoo_config(
    depths: list[int], z_dim: int, alpha: float = 0.0, loss: str = "WGANGP"
) -> BaseConfig:
    """The attributes ``ProgressiveGAN``/``BaseGAN`` put in ``self.config``."""
    config = BaseConfig()
    config.__dict__.update(
        depthScale0=depths[0],
        initBiasToZero=True,
        leakyReluLeak=0.2,
        depthOtherScales=list(depths[1:]),
        perChannelNormalization=True,
        alpha=alpha,
        miniBatchStdDev=True,
        equalizedlR=True,
        noiseVectorDim=z_dim,
        dimOutput=3,
        learningRate=0.001,
        attribKeysOrder=None,
        categoryVectorDim=0,
        weightConditionG=0.0,
        weightConditionD=0.0,
        GDPP=False,
        latentVectorDim=z_dim,
        lossCriterion=loss,
        lambdaGP=10.0,
        epsilonD=0.001,
        logisticGradReal=0.0,
    )
    return config


def fake_netd(depth0: int) -> dict[str, torch.Tensor]:
    return {
        "fromRGBLayers.0.module.weight": torch.randn(depth0, 3, 1, 1),
        "decisionLayer.module.weight": torch.randn(1, depth0),
    }


def write_pgan(
    path: Path,
    avg: ProGANGenerator | None,
    net: ProGANGenerator | None,
    *,
    loss: str = "WGANGP",
    legacy: bool = False,
    strip_module: bool = False,
    prefix: str = "",
    extra: dict | None = None,
    config_changes: dict | None = None,
    drop: str | None = None,
) -> Path:
    """``torch.save`` the dict ``BaseGAN.getStateDict`` builds."""
    reference = avg or net
    assert reference is not None

    def state(generator: ProGANGenerator) -> dict[str, torch.Tensor]:
        out = {}
        for key, value in generator.state_dict().items():
            if key == "w_avg":
                continue
            if strip_module:
                key = key.replace(".module.", ".")
            out[prefix + key] = value.clone()
        return out

    config = zoo_config(reference.depths, reference.z_dim, reference.alpha, loss)
    config.__dict__.update(config_changes or {})
    payload: dict[str, Any] = {"config": config, "netD": fake_netd(reference.depths[0])}
    if net is not None:
        payload["netG"] = state(net)
    if avg is not None:
        payload["avgG"] = state(avg)
        payload["avgG"].pop(drop or "", None)
    payload.update(extra or {})
    with zoo_names():
        torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path


def write_pgan_state(
    path: Path, state: dict[str, torch.Tensor], depths: list[int], z_dim: int, alpha: float
) -> Path:
    """``torch.save`` a zoo ``GNet`` state dict (the zoo's own key names) as its ``netG``."""
    payload = {
        "config": zoo_config(depths, z_dim, alpha),
        "netD": fake_netd(depths[0]),
        "netG": {key: value.clone() for key, value in state.items()},
    }
    with zoo_names():
        torch.save(payload, path)
    return path
