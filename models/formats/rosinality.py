"""rosinality ``stylegan2-pytorch`` checkpoints: ``{"g_ema": state_dict, "latent_avg": [512]}``.

Covers ``convert_weight.py`` outputs (``g_ema`` + ``latent_avg``, optionally ``g``/``d``), training
snapshots (``g``, ``d``, ``g_ema``, optimiser states, ``args`` as an ``argparse.Namespace``) and
bare generator state dicts. Size, style size, mapping depth and channels are read off the tensors.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import torch

from models.discriminator import StyleGAN2Discriminator
from models.errors import CheckpointError
from models.formats.limits import LimitError, check_stylegan2, check_tensors
from models.formats.native import load_state_dict_strict
from models.generator import CheckpointSource, Generator
from models.stylegan2 import BLUR_KERNEL, StyleGAN2Generator, make_kernel

NAME = "rosinality .pt"
CONTAINERS = frozenset({"zip-based torch file", "legacy torch file"})
# Training snapshots pickle their argparse options; the Namespace holds only plain values.
SAFE_GLOBALS = [argparse.Namespace]

_MARKER = "conv1.conv.modulation.weight"


def _generator_state(payload: Any) -> dict[str, torch.Tensor] | None:
    if not isinstance(payload, dict):
        return None
    if _MARKER in payload:
        return payload
    for key in ("g_ema", "g"):
        state = payload.get(key)
        if isinstance(state, dict) and _MARKER in state:
            return state
    return None


def accepts(payload: Any) -> bool:
    """True for a dict holding a rosinality generator state (``g_ema``, ``g`` or bare)."""
    return _generator_state(payload) is not None


def infer_architecture(state: dict[str, torch.Tensor], path: Path) -> dict[str, Any]:
    """Read resolution, channels, z/w size and mapping depth off the tensors."""
    try:
        mapping_indices = sorted(
            int(m.group(1)) for key in state if (m := re.fullmatch(r"style\.(\d+)\.weight", key))
        )
        rgb_indices = [
            int(m.group(1))
            for key in state
            if (m := re.fullmatch(r"to_rgbs\.(\d+)\.conv\.weight", key))
        ]
        channels = [int(state["input.input"].shape[1])]
        for block in range(len(rgb_indices)):
            channels.append(int(state[f"convs.{2 * block}.conv.weight"].shape[1]))
        w_dim = int(state[_MARKER].shape[1])
        z_dim = int(state["style.1.weight"].shape[1]) if mapping_indices else w_dim
    except (KeyError, IndexError) as exc:
        raise CheckpointError(path, f"incomplete rosinality generator (no tensor {exc})") from exc
    if mapping_indices != list(range(1, len(mapping_indices) + 1)):
        raise CheckpointError(path, f"mapping layers are not numbered 1..n: {mapping_indices}")
    return {
        "resolution": 2 ** (len(rgb_indices) + 2),
        "channels": channels,
        "z_dim": z_dim,
        "w_dim": w_dim,
        "mapping_layers": len(mapping_indices),
    }


def build(payload: dict[str, Any], path: Path) -> Generator:
    """Build a StyleGAN2 generator from a rosinality checkpoint."""
    state = _generator_state(payload)
    assert state is not None
    is_bare = state is payload
    which = "bare state dict" if is_bare else ("g_ema" if state is payload.get("g_ema") else "g")
    try:
        available = check_tensors(state)
        architecture = infer_architecture(state, path)
        check_stylegan2(architecture, available)
    except LimitError as exc:
        raise CheckpointError(path, str(exc)) from exc
    generator = StyleGAN2Generator(**architecture)
    state = dict(state)
    # Old conversions lack the constant FIR kernels and the noise buffers; both can be supplied.
    expected = generator.state_dict()
    for key, value in expected.items():
        if key not in state and (key.endswith(".kernel") or key.startswith("noises.")):
            state[key] = _kernel_for(key) if key.endswith(".kernel") else value
    latent_avg = None if is_bare else payload.get("latent_avg")
    state["w_avg"] = expected["w_avg"]
    load_state_dict_strict(generator, state, path)
    parts = [which]
    if isinstance(latent_avg, torch.Tensor) and latent_avg.numel() == generator.w_dim:
        generator.w_avg.copy_(latent_avg.reshape(-1).to(torch.float32))
        parts.append("latent_avg")
    else:
        generator.update_w_avg()
        parts.append("w_avg computed from 10,000 samples")
    if not is_bare:
        parts.extend(
            key
            for key in ("g", "d", "g_optim", "d_optim", "args")
            if key in payload and key != which
        )
    generator.source = CheckpointSource(path, NAME, " + ".join(parts))
    return generator


def _kernel_for(key: str) -> torch.Tensor:
    # Both the up-conv blur and the ToRGB upsample kernel are the [1,3,3,1] FIR times 4.
    return make_kernel(BLUR_KERNEL) * 4


_D_MARKER = "final_linear.0.weight"


def discriminator_state(payload: Any) -> dict[str, torch.Tensor] | None:
    """The rosinality discriminator state (the ``d`` entry), or None when the file has none."""
    if not isinstance(payload, dict):
        return None
    state = payload.get("d")
    if isinstance(state, dict) and _D_MARKER in state:
        return state
    return payload if _D_MARKER in payload and "convs.0.0.weight" in payload else None


def build_discriminator(payload: Any, path: Path) -> StyleGAN2Discriminator | None:
    """Build the discriminator stored beside the generator, or None when there is none.

    Resolution and channels are read off the tensors: ``convs.0`` maps RGB to C(resolution) and
    residual block i halves the size to C(resolution / 2^i).

    Raises:
        CheckpointError: a ``d`` entry is present but incomplete or inconsistent.
    """
    state = discriminator_state(payload)
    if state is None:
        return None
    try:
        num_blocks = sum(1 for key in state if re.fullmatch(r"convs\.\d+\.conv2\.1\.weight", key))
        by_resolution = [int(state["convs.0.0.weight"].shape[0])]
        for block in range(1, num_blocks + 1):
            by_resolution.append(int(state[f"convs.{block}.conv2.1.weight"].shape[0]))
    except KeyError as exc:
        raise CheckpointError(
            path, f"incomplete rosinality discriminator (no tensor {exc})"
        ) from exc
    try:
        available = check_tensors(state)
        # The discriminator mirrors a generator with these widths; the same bounds apply.
        check_stylegan2(
            {"resolution": 2 ** (num_blocks + 2), "channels": list(reversed(by_resolution)),
             "mapping_layers": 0, "w_dim": 1},
            available,
        )  # fmt: skip
    except LimitError as exc:
        raise CheckpointError(path, str(exc)) from exc
    resolution = 2 ** (num_blocks + 2)
    discriminator = StyleGAN2Discriminator(resolution, list(reversed(by_resolution)))
    state = dict(state)
    for key in discriminator.state_dict():
        if key not in state and key.endswith(".kernel"):
            state[key] = make_kernel(BLUR_KERNEL)  # the down-sampling blur, normalised to sum 1
    load_state_dict_strict(discriminator, state, path)
    return discriminator.float().eval().requires_grad_(False)
