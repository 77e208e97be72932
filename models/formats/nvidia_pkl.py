"""NVIDIA network pickles: stylegan2-ada-pytorch / stylegan3 ``.pkl`` and TF-era StyleGAN2 ``.pkl``.

Files are read with ``safe_pickle`` (nothing from them runs) and converted into
``StyleGAN2Generator`` in rosinality's layout:

- PyTorch pickles (``{'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}``): the
  generator is ``G_ema`` (else ``G``); its tensors are walked from the persistent-module tree and
  the configuration is read from the modules' recorded attributes (``conv_clamp``,
  ``architecture``, ``bias_gain``, ...), falling back to ``_init_kwargs`` and then to defaults
  parsed (not executed) from the embedded source. Architectures 'skip', 'orig' and 'resnet',
  class-conditional mapping, ``w_avg`` and the fixed ``noise_const`` maps are kept; fp16 blocks
  run in fp32; ``conv_clamp`` is honoured as NVIDIA does in fp32.
- TF pickles (a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` states): ``Gs``'s
  variables are mapped to the same names as NVIDIA's own converter does (transposes, spatial
  flips of up-sampling kernels, +1 on the modulation bias), then converted like the above.
- StyleGAN3 generators, ProGAN/StyleGAN1 TF pickles and discriminator-only files are refused
  with a message saying so.

Key mapping NVIDIA -> rosinality: ``mapping.fc{i}`` -> ``style.{i+1}``; ``synthesis.b4.const`` ->
``input.input``; ``b4.conv1`` -> ``conv1``; ``b{r}.conv0/conv1`` -> ``convs.{2k}/{2k+1}`` (weight
gains a leading 1, ``affine`` -> ``conv.modulation``, ``bias`` -> ``activate.bias``,
``noise_strength`` -> ``noise.weight``, ``noise_const`` -> ``noises.noise_j``); ``torgb`` ->
``to_rgb1``/``to_rgbs.{k}`` (``to_rgb`` for 'orig'/'resnet'); FIR kernels are 4x
``resample_filter``; ``mapping.w_avg`` -> ``w_avg``.
"""

from __future__ import annotations

import ast
import logging
import math
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.discriminator import StyleGAN2Discriminator
from models.errors import CheckpointError
from models.formats import safe_pickle
from models.formats.limits import MAX_RESOLUTION, LimitError, check_stylegan2, check_tensors
from models.formats.native import load_state_dict_strict
from models.formats.safe_pickle import InertObject, PersistentObject
from models.generator import CheckpointSource, Generator
from models.stylegan2 import BLUR_KERNEL, StyleGAN2Generator, make_kernel

log = logging.getLogger(__name__)

NAME = "NVIDIA network pickle"
CONTAINERS = frozenset({"pickle"})

_TF_NETWORK = "dnnlib.tflib.network.Network"
_MAX_SOURCE = 1_000_000


# -- reading ------------------------------------------------------------------------------------


def read_pickle(path: Path, should_stop: Callable[[], bool] | None = None) -> Any:
    """Unpickle ``path`` without running anything from it.

    Raises:
        CheckpointError: unsafe globals (named), truncated or corrupted data.
        InterruptedError: ``should_stop()`` turned true while reading.
    """
    try:
        return safe_pickle.load_path(path, should_stop)
    except safe_pickle.UnsafePickleError as exc:
        raise CheckpointError(
            path,
            f"unsafe or unsupported pickle: it asks for {exc.global_name}; nothing from it was run",
        ) from exc
    except InterruptedError:
        raise  # should_stop asked to stop: the caller cancels
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({exc.strerror or exc})") from exc
    except pickle.UnpicklingError as exc:
        if not str(exc).startswith("refused"):
            raise CheckpointError(path, f"truncated or corrupted pickle ({exc})") from exc
        raise CheckpointError(path, f"unsafe pickle: {exc}; nothing from it was run") from exc
    except (
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        RuntimeError,
        MemoryError,
        OverflowError,
        RecursionError,
    ) as exc:
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(path, f"truncated or corrupted pickle ({detail})") from exc


def accepts(payload: Any) -> bool:
    """Every bare pickle is tried here: ``build`` says precisely what a pickle holds otherwise."""
    return isinstance(payload, Path)


def describe_content(data: Any) -> str:
    """A short phrase for what a pickle holds (for messages)."""
    if isinstance(data, dict):
        return "a dict with keys " + ", ".join(sorted(str(k) for k in data)[:8])
    if isinstance(data, tuple):
        return f"a tuple of {len(data)} items"
    return f"a {type(data).__name__}"


def _is_tf_network(value: Any) -> bool:
    return isinstance(value, InertObject) and value.qualname == _TF_NETWORK


def _is_progan_tf(value: Any) -> bool:
    return isinstance(value, InertObject) and value.qualname.startswith("tfutil")


# -- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """What a StyleGAN2 generator in NVIDIA's layout needs to be rebuilt here."""

    z_dim: int
    c_dim: int
    w_dim: int
    resolution: int
    img_channels: int
    mapping_layers: int
    lr_mlp: float
    conv_clamp: float | None
    architecture: str
    embed_features: int
    channels: tuple[int, ...]  # feature maps at 4, 8, ..., resolution
    num_fp16_layers: int = 0  # blocks NVIDIA runs in fp16 (run in fp32 here)


def _plain(value: Any, depth: int = 0) -> Any:
    """numpy scalars and EasyDicts to plain Python values (nesting beyond 16 levels is refused)."""
    if depth > 16:
        raise LimitError("configuration nested too deeply")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    return value


def source_default(module_src: str, class_name: str, argument: str) -> Any:
    """The default of ``argument`` in ``class_name.__init__``, parsed (never run) from source text.

    Returns None when the class, the argument or a literal default is not found.
    """
    if len(module_src) > _MAX_SOURCE:
        return None  # NVIDIA's networks.py is ~40 kB; a huge source would only cost memory
    try:
        tree = ast.parse(module_src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args.args[-len(item.args.defaults) :] if item.args.defaults else []
                    for arg, default in zip(args, item.args.defaults, strict=False):
                        if arg.arg == argument:
                            try:
                                return ast.literal_eval(default)
                            except ValueError:
                                return None
    return None


def _attr(module: Any, name: str, fallback: Any = None) -> Any:
    if isinstance(module, PersistentObject) and name in module.state:
        return _plain(module.state[name])
    return fallback


def _ada_config(
    network: PersistentObject, tensors: Mapping[str, torch.Tensor], path: Path
) -> GeneratorConfig:
    kwargs = _plain(network.init_kwargs)
    mapping = network.child("mapping")
    synthesis = network.child("synthesis")
    if not isinstance(mapping, PersistentObject) or not isinstance(synthesis, PersistentObject):
        raise CheckpointError(path, "the generator has no mapping/synthesis networks")
    mapping_kwargs = kwargs.get("mapping_kwargs") or {}
    synthesis_kwargs = kwargs.get("synthesis_kwargs") or {}

    resolution = int(_attr(network, "img_resolution", kwargs.get("img_resolution", 0)) or 0)
    img_channels = int(_attr(network, "img_channels", kwargs.get("img_channels", 3)))
    z_dim = int(_attr(network, "z_dim", kwargs.get("z_dim", 512)))
    c_dim = int(_attr(network, "c_dim", kwargs.get("c_dim", 0)) or 0)
    w_dim = int(_attr(network, "w_dim", kwargs.get("w_dim", 512)))
    mapping_layers = sum(1 for k in tensors if re.fullmatch(r"mapping\.fc\d+\.weight", k))

    fc0 = mapping.child("fc0")
    activation = _attr(fc0, "activation", mapping_kwargs.get("activation", "lrelu"))
    if activation != "lrelu":
        raise CheckpointError(
            path, f"mapping activation {activation!r} is not supported (only 'lrelu')"
        )
    lr_mlp = _attr(fc0, "bias_gain", mapping_kwargs.get("lr_multiplier"))
    if lr_mlp is None:
        lr_mlp = source_default(mapping.module_src, "MappingNetwork", "lr_multiplier") or 0.01

    first_block = synthesis.child("b4")
    first_layer = first_block.child("conv1") if isinstance(first_block, PersistentObject) else None
    conv_clamp = _attr(first_layer, "conv_clamp", synthesis_kwargs.get("conv_clamp", "missing"))
    if conv_clamp == "missing":
        conv_clamp = source_default(synthesis.module_src, "SynthesisBlock", "conv_clamp")
    architecture = _attr(first_block, "architecture", synthesis_kwargs.get("architecture"))
    if architecture is None:
        architecture = (
            source_default(synthesis.module_src, "SynthesisBlock", "architecture") or "skip"
        )
    layer_activation = _attr(first_layer, "activation", synthesis_kwargs.get("activation", "lrelu"))
    if layer_activation != "lrelu":
        raise CheckpointError(path, f"synthesis activation {layer_activation!r} is not supported")

    if not resolution:
        resolution = max(
            int(m.group(1)) for k in tensors if (m := re.match(r"synthesis\.b(\d+)\.", k))
        )
    fp16 = sum(
        1
        for name, module in safe_pickle.named_modules(synthesis)
        if re.fullmatch(r"b\d+", name) and bool(_attr(module, "use_fp16", False))
    )
    return _finish_config(
        tensors,
        path,
        z_dim=z_dim,
        c_dim=c_dim,
        w_dim=w_dim,
        resolution=resolution,
        img_channels=img_channels,
        mapping_layers=mapping_layers,
        lr_mlp=float(lr_mlp),
        conv_clamp=None if conv_clamp is None else float(conv_clamp),
        architecture=str(architecture),
        num_fp16_layers=fp16,
    )


def _finish_config(
    tensors: Mapping[str, torch.Tensor], path: Path, **values: Any
) -> GeneratorConfig:
    resolution = values["resolution"]
    log2 = int(math.log2(resolution)) if resolution > 0 else 0
    if resolution < 8 or 2**log2 != resolution or resolution > MAX_RESOLUTION:
        raise CheckpointError(
            path,
            f"unsupported resolution {resolution} (a power of two from 8 to {MAX_RESOLUTION})",
        )
    if values["img_channels"] != 3:
        raise CheckpointError(
            path, f"{values['img_channels']}-channel images are not supported (RGB only)"
        )
    if values["architecture"] not in ("skip", "orig", "resnet"):
        raise CheckpointError(path, f"unknown synthesis architecture {values['architecture']!r}")
    try:
        channels = tuple(
            int(tensors[f"synthesis.b{2**i}.conv1.weight"].shape[0]) for i in range(2, log2 + 1)
        )
    except KeyError as exc:
        raise CheckpointError(path, f"incomplete StyleGAN2 generator (no tensor {exc})") from exc
    embed_features = int(tensors["mapping.embed.weight"].shape[0]) if values["c_dim"] > 0 else 0
    if values["c_dim"] > 0 and "mapping.embed.weight" not in tensors:
        raise CheckpointError(path, "a conditional generator without its label embedding")
    return GeneratorConfig(channels=channels, embed_features=embed_features, **values)


# -- tensor mapping -----------------------------------------------------------------------------


def to_rosinality_state(
    tensors: Mapping[str, torch.Tensor], config: GeneratorConfig
) -> dict[str, torch.Tensor]:
    """Rename and reshape NVIDIA generator tensors into ``StyleGAN2Generator``'s state dict."""
    state: dict[str, torch.Tensor] = {}
    for i in range(config.mapping_layers):
        state[f"style.{i + 1}.weight"] = tensors[f"mapping.fc{i}.weight"]
        state[f"style.{i + 1}.bias"] = tensors[f"mapping.fc{i}.bias"]
    if config.c_dim > 0:
        state["embed.weight"] = tensors["mapping.embed.weight"]
        state["embed.bias"] = tensors["mapping.embed.bias"]
    state["input.input"] = tensors["synthesis.b4.const"].unsqueeze(0)

    default_kernel = make_kernel(BLUR_KERNEL)

    def kernel(name: str) -> torch.Tensor:
        # rosinality's kernels are NVIDIA's resample_filter (sum 1) times the x2 gain squared.
        return tensors.get(name, default_kernel) * 4

    def layer(src: str, dst: str, noise_index: int) -> None:
        weight = tensors[f"{src}.weight"]
        state[f"{dst}.conv.weight"] = weight.unsqueeze(0)
        state[f"{dst}.conv.modulation.weight"] = tensors[f"{src}.affine.weight"]
        state[f"{dst}.conv.modulation.bias"] = tensors[f"{src}.affine.bias"]
        state[f"{dst}.activate.bias"] = tensors[f"{src}.bias"]
        size = 2 ** ((noise_index + 5) // 2)
        if (
            f"{src}.noise_const" in tensors
        ):  # absent when the network was built with use_noise=False
            state[f"{dst}.noise.weight"] = tensors[f"{src}.noise_strength"].reshape(1)
            state[f"noises.noise_{noise_index}"] = tensors[f"{src}.noise_const"].reshape(
                1, 1, size, size
            )
        else:
            state[f"{dst}.noise.weight"] = torch.zeros(1)
            state[f"noises.noise_{noise_index}"] = torch.zeros(1, 1, size, size)

    def to_rgb(src: str, dst: str) -> None:
        state[f"{dst}.conv.weight"] = tensors[f"{src}.weight"].unsqueeze(0)
        state[f"{dst}.conv.modulation.weight"] = tensors[f"{src}.affine.weight"]
        state[f"{dst}.conv.modulation.bias"] = tensors[f"{src}.affine.bias"]
        state[f"{dst}.bias"] = tensors[f"{src}.bias"].reshape(1, -1, 1, 1)

    layer("synthesis.b4.conv1", "conv1", 0)
    if config.architecture == "skip":
        to_rgb("synthesis.b4.torgb", "to_rgb1")
    for k in range(1, len(config.channels)):
        r = 2 ** (k + 2)
        block = f"synthesis.b{r}"
        layer(f"{block}.conv0", f"convs.{2 * k - 2}", 2 * k - 1)
        state[f"convs.{2 * k - 2}.conv.blur.kernel"] = kernel(f"{block}.conv0.resample_filter")
        layer(f"{block}.conv1", f"convs.{2 * k - 1}", 2 * k)
        if config.architecture == "skip":
            to_rgb(f"{block}.torgb", f"to_rgbs.{k - 1}")
            state[f"to_rgbs.{k - 1}.upsample.kernel"] = kernel(f"{block}.resample_filter")
        if config.architecture == "resnet":
            state[f"skips.{k - 1}.weight"] = tensors[f"{block}.skip.weight"]
            state[f"skips.{k - 1}.upsample.kernel"] = kernel(f"{block}.skip.resample_filter")
    if config.architecture != "skip":
        to_rgb(f"synthesis.b{config.resolution}.torgb", "to_rgb")
    return state


def build_generator(
    tensors: Mapping[str, torch.Tensor], config: GeneratorConfig, path: Path
) -> StyleGAN2Generator:
    """Build a ``StyleGAN2Generator`` from NVIDIA-named tensors and ``config``.

    The configuration is checked against the limits and the tensors' real size first.
    """
    arch = {
        "resolution": config.resolution,
        "channels": list(config.channels),
        "z_dim": config.z_dim,
        "w_dim": config.w_dim,
        "mapping_layers": config.mapping_layers,
        "c_dim": config.c_dim,
        "embed_features": config.embed_features or None,
        "lr_mlp": config.lr_mlp,
        "conv_clamp": config.conv_clamp,
    }
    try:
        check_stylegan2(arch, check_tensors(tensors))
    except LimitError as exc:
        raise CheckpointError(path, str(exc)) from exc
    generator = StyleGAN2Generator(
        config.resolution,
        config.channels,
        z_dim=config.z_dim,
        w_dim=config.w_dim,
        mapping_layers=config.mapping_layers,
        lr_mlp=config.lr_mlp,
        conv_clamp=config.conv_clamp,
        architecture=config.architecture,
        c_dim=config.c_dim,
        embed_features=config.embed_features or None,
    )
    try:
        state = to_rosinality_state(tensors, config)
    except KeyError as exc:
        raise CheckpointError(path, f"incomplete StyleGAN2 generator (no tensor {exc})") from exc
    w_avg = tensors.get("mapping.w_avg")
    state["w_avg"] = generator.w_avg if w_avg is None else w_avg.reshape(-1)
    load_state_dict_strict(generator, {k: v.to(torch.float32) for k, v in state.items()}, path)
    if w_avg is None:
        generator.update_w_avg()
    return generator


# -- PyTorch pickles ----------------------------------------------------------------------------


def _tensors(network: Any) -> dict[str, torch.Tensor]:
    return dict(safe_pickle.named_tensors(network))


def _is_stylegan3(tensors: Mapping[str, torch.Tensor]) -> bool:
    return any(
        k.startswith("synthesis.input.") or re.match(r"synthesis\.L\d+_", k) for k in tensors
    )


def _pytorch_generator(data: dict[str, Any], path: Path) -> Generator:
    which = "G_ema" if isinstance(data.get("G_ema"), PersistentObject) else "G"
    network = data.get(which)
    if not isinstance(network, PersistentObject):
        if isinstance(data.get("D"), PersistentObject):
            raise CheckpointError(path, "holds only a discriminator (D), no generator to open")
        raise CheckpointError(path, f"not an NVIDIA network pickle ({describe_content(data)})")
    tensors = _tensors(network)
    if _is_stylegan3(tensors):
        raise CheckpointError(
            path,
            "StyleGAN3 generators are not supported (alias-free network); use a StyleGAN2 pickle",
        )
    if network.class_name != "Generator" or not any(k.startswith("synthesis.b4.") for k in tensors):
        raise CheckpointError(
            path, f"{which} is a {network.class_name!r}, not a StyleGAN2 generator"
        )
    config = _ada_config(network, tensors, path)
    generator = build_generator(tensors, config, path)
    parts = [which, f"architecture {config.architecture}"]
    if config.conv_clamp is not None:
        parts.append(f"conv_clamp {config.conv_clamp:g}")
    if config.num_fp16_layers:
        parts.append(f"{config.num_fp16_layers} fp16 blocks run in fp32")
    if config.c_dim:
        parts.append(f"{config.c_dim} classes")
    parts.extend(
        key for key in ("G", "D", "augment_pipe") if key != which and data.get(key) is not None
    )
    generator.source = CheckpointSource(path, NAME, " + ".join(parts))
    generator.provenance = {"converted_from": NAME, "network": which}
    training_set = data.get("training_set_kwargs")
    if isinstance(training_set, dict) and isinstance(training_set.get("path"), str):
        generator.provenance["training_data"] = training_set["path"]
    return generator


# -- entry points -------------------------------------------------------------------------------


def build(payload: Path, path: Path, should_stop: Callable[[], bool] | None = None) -> Generator:
    """Load the generator of an NVIDIA pickle (see the module docstring).

    Raises:
        CheckpointError: unsafe, corrupted, StyleGAN3, ProGAN/StyleGAN1 TF, discriminator-only
            or otherwise unsupported content; the message names the file and the reason.
        InterruptedError: ``should_stop()`` turned true while reading.
    """
    data = read_pickle(path, should_stop)
    if isinstance(data, tuple) and len(data) == 3 and all(_is_tf_network(n) for n in data):
        from models.formats.nvidia_tf import tf_generator  # imports this module

        return tf_generator(data, path)
    if isinstance(data, tuple) and data and all(_is_progan_tf(n) for n in data):
        raise CheckpointError(
            path,
            "a TensorFlow ProGAN pickle (tfutil.Network) is not supported; "
            "use a pytorch_GAN_zoo PGAN .pth instead",
        )
    if _is_tf_network(data):
        raise CheckpointError(
            path, "a single TensorFlow network; expected the (G, D, Gs) tuple of a StyleGAN2 pickle"
        )
    if isinstance(data, dict) and any(isinstance(v, PersistentObject) for v in data.values()):
        return _pytorch_generator(data, path)
    raise CheckpointError(
        path, f"a pickle that is not a network checkpoint ({describe_content(data)})"
    )


def build_discriminator(payload: Path, path: Path) -> StyleGAN2Discriminator | None:
    """Convert the ``D`` of an ADA/SG3 pickle into rosinality's layout, or None when impossible.

    Only unconditional 'resnet' discriminators (NVIDIA's default) with 3 input channels,
    4-image mini-batch groups and one stddev feature map onto that layout. NVIDIA's
    ``conv_clamp`` (activations clamped at +-256 in fp16-trained models) has no counterpart in
    rosinality's network; trained models rarely reach it.
    """
    data = read_pickle(path)
    network = data.get("D") if isinstance(data, dict) else None
    if not isinstance(network, PersistentObject):
        log.info("%s: no PyTorch discriminator in this pickle", path)
        return None
    tensors = _tensors(network)
    reason = _discriminator_unsupported(network, tensors)
    if reason:
        log.info("%s: discriminator not converted: %s", path, reason)
        return None
    resolution = int(_plain(network.attr("img_resolution")) or 0)
    log2 = int(math.log2(resolution))
    by_res = {4: int(tensors["b4.conv.weight"].shape[0])}
    for r in (2**i for i in range(3, log2 + 1)):
        by_res[r] = int(tensors[f"b{r}.conv0.weight"].shape[0])
    discriminator = StyleGAN2Discriminator(resolution, [by_res[2**i] for i in range(2, log2 + 1)])
    state = {
        "convs.0.0.weight": tensors[f"b{resolution}.fromrgb.weight"],
        "convs.0.1.bias": tensors[f"b{resolution}.fromrgb.bias"],
        "final_conv.0.weight": tensors["b4.conv.weight"],
        "final_conv.1.bias": tensors["b4.conv.bias"],
        "final_linear.0.weight": tensors["b4.fc.weight"],
        "final_linear.0.bias": tensors["b4.fc.bias"],
        "final_linear.1.weight": tensors["b4.out.weight"],
        "final_linear.1.bias": tensors["b4.out.bias"],
    }
    default_kernel = make_kernel(BLUR_KERNEL)
    for index, r in enumerate(2**i for i in range(log2, 2, -1)):
        block, dst = f"b{r}", f"convs.{index + 1}"
        state[f"{dst}.conv1.0.weight"] = tensors[f"{block}.conv0.weight"]
        state[f"{dst}.conv1.1.bias"] = tensors[f"{block}.conv0.bias"]
        state[f"{dst}.conv2.0.kernel"] = tensors.get(
            f"{block}.conv1.resample_filter", default_kernel
        )
        state[f"{dst}.conv2.1.weight"] = tensors[f"{block}.conv1.weight"]
        state[f"{dst}.conv2.2.bias"] = tensors[f"{block}.conv1.bias"]
        state[f"{dst}.skip.0.kernel"] = tensors.get(f"{block}.skip.resample_filter", default_kernel)
        state[f"{dst}.skip.1.weight"] = tensors[f"{block}.skip.weight"]
    load_state_dict_strict(discriminator, {k: v.to(torch.float32) for k, v in state.items()}, path)
    return discriminator.float().eval().requires_grad_(False)


def _discriminator_unsupported(
    network: PersistentObject, tensors: Mapping[str, torch.Tensor]
) -> str:
    if network.class_name != "Discriminator":
        return f"D is a {network.class_name!r}"
    if int(_plain(network.attr("c_dim")) or 0) > 0:
        return "class-conditional discriminators have no rosinality counterpart"
    if int(_plain(network.attr("img_channels", 3)) or 3) != 3:
        return "not an RGB discriminator"
    resolution = int(_plain(network.attr("img_resolution")) or 0)
    if resolution < 8 or resolution & (resolution - 1):
        return f"unsupported resolution {resolution}"
    blocks = [
        module for name, module in safe_pickle.named_modules(network) if re.fullmatch(r"b\d+", name)
    ]
    if any(_attr(block, "architecture", "resnet") != "resnet" for block in blocks):
        return "only the 'resnet' discriminator architecture maps onto rosinality's"
    epilogue = network.child("b4")
    mbstd = epilogue.child("mbstd") if isinstance(epilogue, PersistentObject) else None
    if (
        not isinstance(mbstd, PersistentObject)
        or _attr(mbstd, "group_size") != 4
        or _attr(mbstd, "num_channels") != 1
    ):
        return "minibatch-stddev settings differ from rosinality's (group 4, 1 feature)"
    needed = [f"b{resolution}.fromrgb.weight", "b4.conv.weight", "b4.fc.weight", "b4.out.weight"]
    if any(key not in tensors for key in needed) or tensors["b4.out.weight"].shape[0] != 1:
        return "unexpected discriminator tensors"
    return ""
