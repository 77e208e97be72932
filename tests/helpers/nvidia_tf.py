"""TF-era StyleGAN2 pickles (``dnnlib.tflib.network.Network`` states) written without TF."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import torch


class TFNetwork:
    """Pickled under the name ``dnnlib.tflib.network.Network`` with its ``__getstate__`` dict."""

    def __init__(self, state: dict) -> None:
        self.state = state

    def __reduce__(self) -> tuple:
        return (TFNetwork, (), self.state)


def tf_pickle_bytes(
    networks: tuple, module: str = "dnnlib.tflib.network", protocol: int = 3
) -> bytes:
    fakes = {name: types.ModuleType(name) for name in ("dnnlib", "dnnlib.tflib", module)}
    fakes[module].Network = TFNetwork
    saved = {name: sys.modules.get(name) for name in fakes}
    TFNetwork.__module__, TFNetwork.__qualname__ = module, "Network"
    sys.modules.update(fakes)
    try:
        return pickle.dumps(networks, protocol=protocol)
    finally:
        for name, value in saved.items():
            if value is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value


def tf_state(
    name: str,
    variables: list,
    components: dict,
    build_func: str,
    static_kwargs: dict,
    source: str = "import os\nos.system('echo never')\n",
) -> TFNetwork:
    return TFNetwork(
        {
            "version": 4,
            "name": name,
            "static_kwargs": static_kwargs,
            "components": components,
            "build_module_src": source,
            "build_func_name": build_func,
            "variables": variables,
        }
    )


def to_tf_variables(state: dict[str, torch.Tensor]) -> tuple[list, list, list]:
    """Express an NVIDIA PyTorch generator state as TF StyleGAN2 variables (inverse of legacy.py).

    Returns (top-level, mapping, synthesis) variable lists of (name, float32 ndarray).
    """

    def a(t: torch.Tensor) -> np.ndarray:
        return t.detach().numpy().astype(np.float32)

    def kernel(t: torch.Tensor, flip: bool = False) -> np.ndarray:
        array = a(t).transpose(2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
        return np.ascontiguousarray(array[::-1, ::-1] if flip else array)

    mapping = []
    i = 0
    while f"mapping.fc{i}.weight" in state:
        mapping += [
            (f"Dense{i}/weight", a(state[f"mapping.fc{i}.weight"]).T.copy()),
            (f"Dense{i}/bias", a(state[f"mapping.fc{i}.bias"])),
        ]
        i += 1
    synthesis = [("4x4/Const/const", a(state["synthesis.b4.const"])[None])]
    resolutions = sorted({int(k.split(".")[1][1:]) for k in state if k.startswith("synthesis.b")})
    noise = 0
    for r in resolutions:
        names = [("conv1", "Conv")] if r == 4 else [("conv0", "Conv0_up"), ("conv1", "Conv1")]
        for src, dst in names:
            p, base = f"synthesis.b{r}.{src}", f"{r}x{r}/{dst}"
            synthesis += [
                (f"{base}/weight", kernel(state[f"{p}.weight"], flip=src == "conv0")),
                (f"{base}/bias", a(state[f"{p}.bias"])),
                (f"{base}/mod_weight", a(state[f"{p}.affine.weight"]).T.copy()),
                (f"{base}/mod_bias", a(state[f"{p}.affine.bias"]) - 1),
                (f"{base}/noise_strength", a(state[f"{p}.noise_strength"])),
                (f"noise{noise}", a(state[f"{p}.noise_const"])[None, None]),
            ]
            noise += 1
        p, base = f"synthesis.b{r}.torgb", f"{r}x{r}/ToRGB"
        synthesis += [
            (f"{base}/weight", kernel(state[f"{p}.weight"])),
            (f"{base}/bias", a(state[f"{p}.bias"])),
            (f"{base}/mod_weight", a(state[f"{p}.affine.weight"]).T.copy()),
            (f"{base}/mod_bias", a(state[f"{p}.affine.bias"]) - 1),
        ]
    return [("dlatent_avg", a(state["mapping.w_avg"]))], mapping, synthesis


def tf_generator_pickle(
    state: dict[str, torch.Tensor], resolution: int, z_dim: int, w_dim: int
) -> bytes:
    """A TF StyleGAN2 ``(G, D, Gs)`` pickle whose Gs holds the weights of ``state``."""
    top, mapping, synthesis = to_tf_variables(state)
    kwargs = {
        "resolution": resolution,
        "latent_size": z_dim,
        "dlatent_size": w_dim,
        "num_channels": 3,
        "mapping_layers": sum(1 for n, _ in mapping if n.endswith("weight")),
    }
    gs = tf_state(
        "G",
        top,
        {
            "mapping": tf_state("G_mapping", mapping, {}, "G_mapping", {}),
            "synthesis": tf_state("G_synthesis", synthesis, {}, "G_synthesis_stylegan2", {}),
        },
        "G_main",
        kwargs,
    )
    d = tf_state("D", [], {}, "D_stylegan2", {})
    return tf_pickle_bytes((gs, d, gs))
