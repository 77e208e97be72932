"""Write network pickles with the structure NVIDIA's training code writes, without NVIDIA's code.

The classes below carry the names, attributes, parameters and buffers of stylegan2-ada-pytorch's
``training/networks.py`` modules and pickle themselves the way ``torch_utils.persistence``
decorated classes do: ``_reconstruct_persistent_obj(meta)`` with ``meta = {type, version,
module_src, class_name, state}``, where ``state`` is the module's ``__dict__`` (OrderedDict
``_parameters``/``_buffers``/``_modules``, hook dicts, numpy-scalar gains, ``_init_kwargs`` as
``dnnlib.util.EasyDict``). The embedded ``module_src`` is a payload that would create a marker
file if anything executed it.

NVIDIA's forward pass computed from the definitions is ``tests/helpers/nvidia_reference.py``;
TF-era pickles are ``tests/helpers/nvidia_tf.py``; outputs of NVIDIA's own code are the golden
files in ``tests/golden/``.
"""

from __future__ import annotations

import contextlib
import io
import math
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

SQRT2 = math.sqrt(2.0)


class EasyDict(dict):
    """Pickled under the name ``dnnlib.util.EasyDict``."""


def _reconstruct_persistent_obj(meta: dict) -> Any:  # pragma: no cover - never called here
    raise AssertionError("the loader must not call NVIDIA's reconstruct function")


@contextlib.contextmanager
def nvidia_names() -> Iterator[None]:
    """Make ``torch_utils.persistence`` and ``dnnlib.util`` importable by name while pickling."""
    fakes = {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": types.ModuleType("torch_utils.persistence"),
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": types.ModuleType("dnnlib.util"),
    }
    fakes["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    fakes["dnnlib.util"].EasyDict = EasyDict
    saved = {name: sys.modules.get(name) for name in fakes}
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    EasyDict.__module__ = "dnnlib.util"
    sys.modules.update(fakes)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def payload_source(marker: Path) -> str:
    """Module source that would create ``marker`` if it were ever executed."""
    return (
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\nclass Generator: pass\n"
    )


class Persistent(nn.Module):
    """Pickles like a ``@persistence.persistent_class`` instance."""

    module_src = "raise SystemExit('never executed')\n"

    def __init__(self, **init_kwargs: Any) -> None:
        super().__init__()
        self._init_args = ()
        self._init_kwargs = EasyDict(init_kwargs)

    def __reduce__(self) -> tuple:
        fields = list(super().__reduce__())
        fields += [None] * max(3 - len(fields), 0)
        meta = dict(
            type="class",
            version=6,
            module_src=type(self).module_src,
            class_name=type(self).__name__,
            state=fields[2],
        )
        return (_reconstruct_persistent_obj, (meta,), None)


def _filter() -> torch.Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(taps, taps)
    return kernel / kernel.sum()


class FullyConnectedLayer(Persistent):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__(
            in_features=in_features,
            out_features=out_features,
            activation=activation,
            lr_multiplier=lr_multiplier,
            bias_init=bias_init,
        )
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(
            torch.full([out_features], float(bias_init)) + torch.randn(out_features) * 0.2
        )
        self.weight_gain = np.float64(lr_multiplier / np.sqrt(in_features))
        self.bias_gain = lr_multiplier


class MappingNetwork(Persistent):
    def __init__(
        self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8
    ) -> None:
        super().__init__(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers
        )
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, 0.995
        embed = w_dim if c_dim else 0
        if c_dim:
            self.embed = FullyConnectedLayer(c_dim, embed)
        for i in range(num_layers):
            setattr(
                self,
                f"fc{i}",
                FullyConnectedLayer(z_dim + embed if i == 0 else w_dim, w_dim, "lrelu", 0.01),
            )
        self.register_buffer("w_avg", torch.randn(w_dim))


class SynthesisLayer(Persistent):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: int = 1,
        conv_clamp: float | None = None,
        use_noise: bool = True,
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            w_dim=w_dim,
            resolution=resolution,
            up=up,
            conv_clamp=conv_clamp,
            use_noise=use_noise,
        )
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp, self.padding = "lrelu", conv_clamp, 1
        self.act_gain = np.float64(SQRT2)
        self.register_buffer("resample_filter", _filter())
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.randn([]) * 0.3)
        self.bias = nn.Parameter(torch.randn(out_channels) * 0.2)


class ToRGBLayer(Persistent):
    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None
    ) -> None:
        super().__init__(
            in_channels=in_channels, out_channels=out_channels, w_dim=w_dim, conv_clamp=conv_clamp
        )
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.randn(out_channels) * 0.2)
        self.weight_gain = np.float64(1 / np.sqrt(in_channels))


class Conv2dLayer(Persistent):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            bias=bias,
            activation=activation,
            up=up,
            down=down,
            conv_clamp=conv_clamp,
        )
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", _filter())
        self.padding = kernel_size // 2
        self.weight_gain = np.float64(1 / np.sqrt(in_channels * kernel_size**2))
        self.act_gain = np.float64(SQRT2 if activation == "lrelu" else 1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.randn(out_channels) * 0.2) if bias else None


class SynthesisBlock(Persistent):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        is_last: bool,
        architecture: str,
        conv_clamp: float | None,
        use_fp16: bool,
        use_noise: bool = True,
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            w_dim=w_dim,
            resolution=resolution,
            img_channels=3,
            is_last=is_last,
            architecture=architecture,
            conv_clamp=conv_clamp,
            use_fp16=use_fp16,
        )
        self.in_channels, self.w_dim, self.resolution, self.img_channels = (
            in_channels,
            w_dim,
            resolution,
            3,
        )
        self.is_last, self.architecture, self.use_fp16, self.channels_last = (
            is_last,
            architecture,
            use_fp16,
            False,
        )
        self.register_buffer("resample_filter", _filter())
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim,
                resolution,
                up=2,
                conv_clamp=conv_clamp,
                use_noise=use_noise,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels,
            out_channels,
            w_dim,
            resolution,
            conv_clamp=conv_clamp,
            use_noise=use_noise,
        )
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, 3, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, up=2)


def channel_table(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    return {
        2**i: min(channel_base // 2**i, channel_max)
        for i in range(2, int(math.log2(resolution)) + 1)
    }


class SynthesisNetwork(Persistent):
    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        channel_base: int,
        channel_max: int,
        num_fp16_res: int,
        conv_clamp: float | None,
        architecture: str,
        use_noise: bool,
    ) -> None:
        super().__init__(
            w_dim=w_dim,
            img_resolution=img_resolution,
            img_channels=3,
            channel_base=channel_base,
            channel_max=channel_max,
            num_fp16_res=num_fp16_res,
            conv_clamp=conv_clamp,
            architecture=architecture,
        )
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, 3
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        channels = channel_table(img_resolution, channel_base, channel_max)
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0,
                channels[res],
                w_dim,
                res,
                res == img_resolution,
                architecture,
                conv_clamp,
                res >= fp16_resolution,
                use_noise,
            )
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)


class Generator(Persistent):
    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int = 3,
        mapping_kwargs: dict | None = None,
        synthesis_kwargs: dict | None = None,
    ) -> None:
        mapping_kwargs = EasyDict(mapping_kwargs or {})
        synthesis_kwargs = EasyDict(synthesis_kwargs or {})
        super().__init__(
            z_dim=z_dim,
            c_dim=c_dim,
            w_dim=w_dim,
            img_resolution=img_resolution,
            img_channels=img_channels,
            mapping_kwargs=mapping_kwargs,
            synthesis_kwargs=synthesis_kwargs,
        )
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(
            w_dim,
            img_resolution,
            synthesis_kwargs.get("channel_base", 32768),
            synthesis_kwargs.get("channel_max", 512),
            synthesis_kwargs.get("num_fp16_res", 0),
            synthesis_kwargs.get("conv_clamp"),
            synthesis_kwargs.get("architecture", "skip"),
            synthesis_kwargs.get("use_noise", True),
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim, c_dim, w_dim, self.num_ws, mapping_kwargs.get("num_layers", 8)
        )


class DiscriminatorBlock(Persistent):
    def __init__(
        self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int
    ) -> None:
        super().__init__(
            in_channels=in_channels,
            tmp_channels=tmp_channels,
            out_channels=out_channels,
            resolution=resolution,
            img_channels=3,
            first_layer_idx=0,
        )
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, 3
        self.architecture, self.use_fp16, self.channels_last = "resnet", False, False
        self.register_buffer("resample_filter", _filter())
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(3, tmp_channels, 1, activation="lrelu")
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)


class MinibatchStdLayer(Persistent):
    def __init__(self, group_size: int, num_channels: int = 1) -> None:
        super().__init__(group_size=group_size, num_channels=num_channels)
        self.group_size, self.num_channels = group_size, num_channels


class DiscriminatorEpilogue(Persistent):
    def __init__(self, in_channels: int, cmap_dim: int, resolution: int) -> None:
        super().__init__(
            in_channels=in_channels, cmap_dim=cmap_dim, resolution=resolution, img_channels=3
        )
        self.in_channels, self.cmap_dim, self.resolution, self.architecture = (
            in_channels,
            cmap_dim,
            resolution,
            "resnet",
        )
        self.mbstd = MinibatchStdLayer(4, 1)
        self.conv = Conv2dLayer(in_channels + 1, in_channels, 3, activation="lrelu")
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, cmap_dim or 1)


class Discriminator(Persistent):
    def __init__(
        self, c_dim: int, img_resolution: int, channel_base: int, channel_max: int
    ) -> None:
        super().__init__(
            c_dim=c_dim,
            img_resolution=img_resolution,
            img_channels=3,
            channel_base=channel_base,
            channel_max=channel_max,
        )
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, 3
        log2 = int(np.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = channel_table(img_resolution, channel_base, channel_max)
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < img_resolution else 0, channels[res], channels[res // 2], res
            )
            setattr(self, f"b{res}", block)
        cmap_dim = channels[4] if c_dim else 0
        if c_dim:
            self.mapping = MappingNetwork(0, c_dim, cmap_dim, None, 2)  # type: ignore[arg-type]
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim, 4)


def make_generator(
    resolution: int = 16,
    *,
    z_dim: int = 32,
    w_dim: int = 32,
    c_dim: int = 0,
    mapping_layers: int = 2,
    channel_base: int = 256,
    channel_max: int = 32,
    architecture: str = "skip",
    conv_clamp: float | None = None,
    num_fp16_res: int = 0,
    use_noise: bool = True,
    seed: int = 0,
) -> Generator:
    """A random generator with NVIDIA's structure (what ``train.py`` would construct)."""
    torch.manual_seed(seed)
    return (
        Generator(
            z_dim,
            c_dim,
            w_dim,
            resolution,
            mapping_kwargs={"num_layers": mapping_layers},
            synthesis_kwargs={
                "channel_base": channel_base,
                "channel_max": channel_max,
                "num_fp16_res": num_fp16_res,
                "conv_clamp": conv_clamp,
                "architecture": architecture,
                "use_noise": use_noise,
            },
        )
        .eval()
        .requires_grad_(False)
    )


def make_discriminator(
    resolution: int = 16,
    *,
    c_dim: int = 0,
    channel_base: int = 256,
    channel_max: int = 32,
    seed: int = 1,
) -> Discriminator:
    torch.manual_seed(seed)
    return Discriminator(c_dim, resolution, channel_base, channel_max).eval().requires_grad_(False)


NUMPY1_NAMES = (b"numpy._core.multiarray", b"numpy.core.multiarray")


def pickle_bytes(
    snapshot: dict[str, Any],
    *,
    protocol: int = 4,
    numpy1_names: bool = False,
    module_src: str | None = None,
) -> bytes:
    """Pickle a training snapshot dict as NVIDIA's ``training_loop`` does (``pickle.dump``).

    ``numpy1_names`` writes numpy's globals under their numpy 1.x module name, as real files
    from 2020-2021 have them (protocol <= 3 spells globals as text lines, so renaming is safe).
    """
    if module_src is not None:
        Persistent.module_src = module_src
    try:
        with nvidia_names():
            data = pickle.dumps(snapshot, protocol=protocol)
    finally:
        Persistent.module_src = "raise SystemExit('never executed')\n"
    if numpy1_names:
        assert protocol <= 3
        data = data.replace(b"c" + NUMPY1_NAMES[0] + b"\n", b"c" + NUMPY1_NAMES[1] + b"\n")
        assert NUMPY1_NAMES[0] not in data
    return data


def write_snapshot(
    path: Path,
    G: nn.Module | None = None,
    D: nn.Module | None = None,
    G_ema: nn.Module | None = None,
    **options: Any,
) -> Path:
    """Write ``{'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}`` to ``path``."""
    snapshot = {
        "G": G,
        "D": D,
        "G_ema": G_ema,
        "augment_pipe": None,
        "training_set_kwargs": EasyDict(
            class_name="training.dataset.ImageFolderDataset", path="/data/faces.zip"
        ),
    }
    path.write_bytes(pickle_bytes(snapshot, **options))
    return path


def flat_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def dumps_reduce_payload(command_callable: Any, argument: Any) -> bytes:
    """A pickle whose loading would call ``command_callable(argument)`` (the classic exploit)."""

    class Payload:
        def __reduce__(self) -> tuple:
            return (command_callable, (argument,))

    buffer = io.BytesIO()
    pickle.Pickler(buffer, protocol=4).dump({"G_ema": Payload()})
    return buffer.getvalue()
