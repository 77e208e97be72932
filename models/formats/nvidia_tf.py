"""TF-era StyleGAN2 pickles: ``(G, D, Gs)`` tuples of ``dnnlib.tflib.network.Network`` states.

``Gs``'s variables are mapped to the names NVIDIA's PyTorch networks use (as NVIDIA's own
``legacy.py`` converter does: transposes, spatial flips of up-sampling kernels, +1 on the
modulation bias) and then converted like an ADA pickle by ``nvidia_pkl``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.errors import CheckpointError
from models.formats.limits import LimitError
from models.formats.nvidia_pkl import _finish_config, _plain, build_generator
from models.formats.safe_pickle import InertObject
from models.generator import CheckpointSource, Generator


def _tf_state(network: Any) -> dict[str, Any]:
    state = network.state if isinstance(network, InertObject) else None
    return state if isinstance(state, dict) else {}


def _tf_variables(network: Any, prefix: str = "", depth: int = 0) -> dict[str, np.ndarray]:
    if depth > 8:  # Gs nests mapping/synthesis one level deep; shared or cyclic parts stop here
        raise LimitError("TensorFlow networks nested too deeply")
    state = _tf_state(network)
    found: dict[str, np.ndarray] = {}
    for entry in state.get("variables") or []:
        if isinstance(entry, tuple | list) and len(entry) == 2 and isinstance(entry[1], np.ndarray):
            found[prefix + str(entry[0])] = entry[1]
    for name, component in (state.get("components") or {}).items():
        found.update(_tf_variables(component, f"{prefix}{name}/", depth + 1))
    return found


def tf_generator(data: tuple[Any, ...], path: Path) -> Generator:
    gs = data[2]
    state = _tf_state(gs)
    synthesis = _tf_state((state.get("components") or {}).get("synthesis"))
    build_funcs = (state.get("build_func_name"), synthesis.get("build_func_name"))
    if build_funcs[1] != "G_synthesis_stylegan2":
        raise CheckpointError(
            path,
            f"a TensorFlow pickle of an unsupported network ({build_funcs[1] or build_funcs[0]}); "
            "only StyleGAN2 TF pickles convert (not StyleGAN1)",
        )
    kwargs = _plain(state.get("static_kwargs") or {})
    kwargs.update(
        {k: v for k, v in _plain(synthesis.get("static_kwargs") or {}).items() if k not in kwargs}
    )
    variables = _tf_variables(gs)
    if any(re.fullmatch(r"synthesis/ToRGB_lod\d+/.*", name) for name in variables):
        raise CheckpointError(
            path, "a TensorFlow StyleGAN2 pickle with per-LOD ToRGB (config a-d) is not supported"
        )
    try:
        tensors = _tf_to_nvidia_names(variables)
    except KeyError as exc:
        raise CheckpointError(
            path, f"incomplete TensorFlow StyleGAN2 pickle (no variable {exc})"
        ) from exc
    resolution = int(kwargs.get("resolution", 1024))
    config = _finish_config(
        tensors,
        path,
        z_dim=int(kwargs.get("latent_size", 512)),
        c_dim=int(kwargs.get("label_size", 0) or 0),
        w_dim=int(kwargs.get("dlatent_size", 512)),
        resolution=resolution,
        img_channels=int(kwargs.get("num_channels", 3)),
        mapping_layers=sum(1 for k in tensors if re.fullmatch(r"mapping\.fc\d+\.weight", k)),
        lr_mlp=float(kwargs.get("mapping_lrmul", 0.01)),
        conv_clamp=None if kwargs.get("conv_clamp") is None else float(kwargs["conv_clamp"]),
        architecture=str(kwargs.get("architecture", "skip")),
    )
    generator = build_generator(tensors, config, path)
    generator.source = CheckpointSource(
        path, "NVIDIA TensorFlow pickle", f"Gs converted, architecture {config.architecture}"
    )
    generator.provenance = {"converted_from": "NVIDIA TensorFlow pickle", "network": "Gs"}
    return generator


def _tf_to_nvidia_names(variables: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map TF variable names to the names NVIDIA's PyTorch networks use (as its legacy.py does)."""

    def t(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def conv(weight: np.ndarray, flip: bool = False) -> torch.Tensor:
        # TF kernels are [kh, kw, in, out]; TF's up-sampling conv flips them spatially.
        if flip:
            weight = weight[::-1, ::-1]
        return t(weight.transpose(3, 2, 0, 1))

    out: dict[str, torch.Tensor] = {}
    if "dlatent_avg" in variables:
        out["mapping.w_avg"] = t(variables["dlatent_avg"])
    for name, value in variables.items():
        if m := re.fullmatch(r"mapping/Dense(\d+)/(weight|bias)", name):
            out[f"mapping.fc{m.group(1)}.{m.group(2)}"] = t(
                value.T if m.group(2) == "weight" else value
            )
        elif m := re.fullmatch(r"mapping/LabelEmbed/(weight|bias)", name):
            out[f"mapping.embed.{m.group(1)}"] = t(value.T if m.group(1) == "weight" else value)
    out["synthesis.b4.const"] = t(variables["synthesis/4x4/Const/const"][0])
    resolutions = sorted(
        {int(m.group(1)) for n in variables if (m := re.fullmatch(r"synthesis/(\d+)x\d+/.*", n))}
    )
    for r in resolutions:
        layers = (
            [("conv1", "Conv", False)]
            if r == 4
            else [("conv0", "Conv0_up", True), ("conv1", "Conv1", False)]
        )
        for dst, src, flip in layers:
            base = f"synthesis/{r}x{r}/{src}"
            out[f"synthesis.b{r}.{dst}.weight"] = conv(variables[f"{base}/weight"], flip)
            out[f"synthesis.b{r}.{dst}.bias"] = t(variables[f"{base}/bias"])
            out[f"synthesis.b{r}.{dst}.affine.weight"] = t(variables[f"{base}/mod_weight"].T)
            out[f"synthesis.b{r}.{dst}.affine.bias"] = t(variables[f"{base}/mod_bias"] + 1)
            if f"{base}/noise_strength" in variables:
                index = 0 if r == 4 else int(math.log2(r)) * 2 - (5 if dst == "conv0" else 4)
                out[f"synthesis.b{r}.{dst}.noise_strength"] = t(variables[f"{base}/noise_strength"])
                out[f"synthesis.b{r}.{dst}.noise_const"] = t(
                    variables[f"synthesis/noise{index}"][0, 0]
                )
        if f"synthesis/{r}x{r}/ToRGB/weight" in variables:
            base = f"synthesis/{r}x{r}/ToRGB"
            out[f"synthesis.b{r}.torgb.weight"] = conv(variables[f"{base}/weight"])
            out[f"synthesis.b{r}.torgb.bias"] = t(variables[f"{base}/bias"])
            out[f"synthesis.b{r}.torgb.affine.weight"] = t(variables[f"{base}/mod_weight"].T)
            out[f"synthesis.b{r}.torgb.affine.bias"] = t(variables[f"{base}/mod_bias"] + 1)
        if f"synthesis/{r}x{r}/Skip/weight" in variables:
            out[f"synthesis.b{r}.skip.weight"] = conv(
                variables[f"synthesis/{r}x{r}/Skip/weight"], flip=True
            )
    return out
