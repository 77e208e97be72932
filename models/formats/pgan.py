"""facebookresearch ``pytorch_GAN_zoo`` PGAN checkpoints (``.pth``).

The files are ``torch.save({'config': BaseConfig, 'netG': ..., 'netD': ..., 'avgG': ...})``
(plus ``'tmp'`` when saved with training temporaries). ``config`` is an instance of
``models.utils.config.BaseConfig``, a plain attribute bag; ``PGANConfig`` below is registered
under that name for ``torch.load(weights_only=True)``, so it is rebuilt as inert data.

The averaged generator ``avgG`` is preferred over ``netG`` (the zoo's own ``test()`` uses netG
unless asked). Keys are accepted with and without the ``.module.`` of the equalized layers (the
zoo's ``loadStateDictCompatible`` does the same) and with a DataParallel ``module.`` prefix.
Scale depths come from the tensors; alpha, leaky-ReLU slope and the output activation from the
config when it is there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from models.errors import CheckpointError
from models.formats.limits import LimitError, check_progan, check_tensors
from models.formats.native import load_state_dict_strict
from models.generator import CheckpointSource, Generator
from models.progan import ProGANGenerator

NAME = "pytorch_GAN_zoo PGAN .pth"
CONTAINERS = frozenset({"zip-based torch file", "legacy torch file"})

# The zoo's losses that end the generator with tanh; the others have no output activation.
_TANH_LOSSES = {"MSE", "DCGAN"}


class PGANConfig:
    """Inert stand-in for ``models.utils.config.BaseConfig`` (an empty attribute bag)."""


SAFE_GLOBALS = [(PGANConfig, "models.utils.config.BaseConfig")]

_MARKERS = ("formatLayer.module.weight", "formatLayer.weight")


def normalise_keys(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Map the key spellings found in the wild onto ``ProGANGenerator``'s (``...module.weight``)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        key = key.removeprefix("module.")
        if not re.search(r"\.module\.(weight|bias)$", key):
            key = re.sub(r"\.(weight|bias)$", r".module.\1", key)
        out[key] = value
    return out


def _generator_state(payload: Any) -> tuple[str, dict[str, torch.Tensor]] | None:
    if not isinstance(payload, dict):
        return None
    for which in ("avgG", "netG"):
        state = payload.get(which)
        if isinstance(state, dict):
            state = normalise_keys(state)
            if _MARKERS[0] in state:
                return which, state
    return None


def accepts(payload: Any) -> bool:
    """True for a dict with a PGAN ``avgG``/``netG`` state, or a PGAN ``netD`` alone (explained)."""
    if _generator_state(payload) is not None:
        return True
    return (
        isinstance(payload, dict) and isinstance(payload.get("netD"), dict) and "config" in payload
    )


def _config(payload: dict[str, Any]) -> dict[str, Any]:
    config = payload.get("config")
    if isinstance(config, PGANConfig):
        return dict(vars(config))
    return dict(config) if isinstance(config, dict) else {}


def infer_depths(state: dict[str, torch.Tensor], path: Path) -> list[int]:
    """Feature maps per scale, read off the conv weights."""
    try:
        depths = [int(state["groupScale0.0.module.weight"].shape[0])]
        scale = 0
        while f"scaleLayers.{scale}.0.module.weight" in state:
            depths.append(int(state[f"scaleLayers.{scale}.0.module.weight"].shape[0]))
            scale += 1
    except KeyError as exc:
        raise CheckpointError(path, f"incomplete PGAN generator (no tensor {exc})") from exc
    return depths


def build(payload: dict[str, Any], path: Path) -> Generator:
    """Build a ``ProGANGenerator`` from a PGAN checkpoint.

    Raises:
        CheckpointError: discriminator-only file, missing or mis-shaped tensors, a config that
            contradicts the tensors, or an unsupported configuration.
    """
    found = _generator_state(payload)
    if found is None:
        raise CheckpointError(path, "holds only a PGAN discriminator (netD), no generator to open")
    which, state = found
    config = _config(payload)
    depths = infer_depths(state, path)
    if "depthScale0" in config:
        declared = [config["depthScale0"], *list(config.get("depthOtherScales") or [])]
        if [int(d) for d in declared] != depths:
            raise CheckpointError(
                path, f"the config's scale depths {declared} do not match the tensors' {depths}"
            )
    if config.get("perChannelNormalization") is False:
        raise CheckpointError(path, "PGAN without per-channel normalisation is not supported")
    z_dim = int(state["formatLayer.module.weight"].shape[1])
    out_channels = int(state["toRGBLayers.0.module.weight"].shape[0])
    if out_channels not in (1, 3):
        raise CheckpointError(path, f"{out_channels}-channel PGAN outputs are not supported")
    loss = config.get("lossCriterion")
    alpha = float(config.get("alpha") or 0.0) if len(depths) > 1 else 0.0
    try:
        check_progan({"z_dim": z_dim, "depths": depths, "alpha": alpha}, check_tensors(state))
    except LimitError as exc:
        raise CheckpointError(path, str(exc)) from exc
    try:
        generator = ProGANGenerator(
            z_dim,
            depths,
            alpha=alpha,
            leaky_relu=float(config.get("leakyReluLeak", 0.2)),
            output_activation="tanh" if loss in _TANH_LOSSES else None,
            out_channels=out_channels,
            equalized=bool(config.get("equalizedlR", True)),
        )
    except ValueError as exc:
        raise CheckpointError(path, f"unsupported PGAN configuration ({exc})") from exc
    tensors = dict(state)
    tensors["w_avg"] = generator.w_avg
    load_state_dict_strict(generator, tensors, path)
    parts = [which, f"{len(depths)} scales (4..{generator.resolution})"]
    if alpha:
        parts.append(f"alpha {alpha:g}")
    if loss:
        parts.append(f"{loss} loss")
    parts.extend(key for key in ("netG", "netD", "tmp") if key != which and key in payload)
    generator.source = CheckpointSource(path, NAME, " + ".join(parts))
    generator.provenance = {"converted_from": NAME, "network": which}
    return generator
