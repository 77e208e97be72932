"""Write network pickles with the structure NVIDIA's training code writes, without NVIDIA's code.

The classes below carry the names, attributes, parameters and buffers of stylegan2-ada-pytorch's
``training/networks.py`` modules and pickle themselves the way ``torch_utils.persistence``
decorated classes do: ``_reconstruct_persistent_obj(meta)`` with ``meta = {type, version,
module_src, class_name, state}``, where ``state`` is the module's ``__dict__`` (OrderedDict
``_parameters``/``_buffers``/``_modules``, hook dicts, numpy-scalar gains, ``_init_kwargs`` as
``dnnlib.util.EasyDict``). The embedded ``module_src`` is a payload that would create a marker
file if anything executed it.

Also: ``naive_mapping``/``naive_synthesis``/``naive_discriminator`` compute NVIDIA's forward pass
on NVIDIA-named tensors from the definitions, one sample at a time, sharing no code with
``models/``.
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
import torch.nn.functional as F
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


# -- naive NVIDIA forward pass ----------------------------------------------------------------


def _lrelu(x: torch.Tensor, gain: float = 1.0, clamp: float | None = None) -> torch.Tensor:
    y = torch.where(x >= 0, x, 0.2 * x) * SQRT2 * gain
    return y if clamp is None else y.clamp(-clamp * gain, clamp * gain)


def _fir(x: torch.Tensor, up: int, pad0: int, pad1: int, gain: float) -> torch.Tensor:
    """[C, H, W]: zero insertion, padding, true convolution with the [1,3,3,1] filter times gain."""
    channels, height, width = x.shape
    stuffed = torch.zeros(channels, height * up, width * up, dtype=x.dtype)
    stuffed[:, ::up, ::up] = x
    padded = F.pad(stuffed, [pad0, pad1, pad0, pad1])
    kernel = torch.flip(_filter() * gain, [0, 1])
    return F.conv2d(padded[:, None], kernel[None, None])[:, 0]


def naive_mapping(
    state: dict[str, torch.Tensor], z: torch.Tensor, c: torch.Tensor | None = None, lr: float = 0.01
) -> torch.Tensor:
    def norm(v: torch.Tensor) -> torch.Tensor:
        return v / torch.sqrt((v * v).mean(dim=1, keepdim=True) + 1e-8)

    x = norm(z)
    if c is not None:
        weight, bias = state["mapping.embed.weight"], state["mapping.embed.bias"]
        x = torch.cat([x, norm(c @ (weight / math.sqrt(weight.shape[1])).T + bias)], dim=1)
    i = 0
    while f"mapping.fc{i}.weight" in state:
        weight, bias = state[f"mapping.fc{i}.weight"], state[f"mapping.fc{i}.bias"]
        x = _lrelu(x @ (weight * lr / math.sqrt(weight.shape[1])).T + bias * lr)
        i += 1
    return x


def _styles(state: dict, prefix: str, w: torch.Tensor) -> torch.Tensor:
    weight, bias = state[f"{prefix}.affine.weight"], state[f"{prefix}.affine.bias"]
    return (weight / math.sqrt(weight.shape[1])) @ w + bias


def _layer(
    state: dict,
    prefix: str,
    x: torch.Tensor,
    w: torch.Tensor,
    up: bool,
    clamp: float | None,
    gain: float = 1.0,
) -> torch.Tensor:
    weight = state[f"{prefix}.weight"] * _styles(state, prefix, w).view(1, -1, 1, 1)
    weight = weight / torch.sqrt((weight * weight).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
    if up:
        # Upsample-then-convolve, fused: zero insertion, a true 3x3 convolution, then the 4-gain FIR.
        stuffed = torch.zeros(x.shape[0], 2 * x.shape[1] - 1, 2 * x.shape[2] - 1)
        stuffed[:, ::2, ::2] = x
        out = F.conv2d(stuffed[None], torch.flip(weight, [2, 3]), padding=2)[0]
        out = _fir(out, 1, 1, 1, 4.0)
    else:
        out = F.conv2d(x[None], weight, padding=1)[0]
    if f"{prefix}.noise_const" in state:
        out = out + state[f"{prefix}.noise_strength"] * state[f"{prefix}.noise_const"]
    return _lrelu(out + state[f"{prefix}.bias"].view(-1, 1, 1), gain, clamp)


def _torgb(
    state: dict, prefix: str, x: torch.Tensor, w: torch.Tensor, clamp: float | None
) -> torch.Tensor:
    weight = state[f"{prefix}.weight"]
    kernel = weight * (_styles(state, prefix, w) / math.sqrt(weight.shape[1])).view(1, -1, 1, 1)
    out = F.conv2d(x[None], kernel)[0] + state[f"{prefix}.bias"].view(-1, 1, 1)
    return out if clamp is None else out.clamp(-clamp, clamp)


def naive_synthesis(
    state: dict[str, torch.Tensor],
    ws: torch.Tensor,
    architecture: str = "skip",
    conv_clamp: float | None = None,
) -> torch.Tensor:
    """ws [N, num_ws, w_dim] -> images [N, 3, H, W], NVIDIA semantics, noise 'const', fp32."""
    resolutions = sorted({int(k.split(".")[1][1:]) for k in state if k.startswith("synthesis.b")})
    images = []
    for sample in ws:
        x = state["synthesis.b4.const"]
        x = _layer(state, "synthesis.b4.conv1", x, sample[0], False, conv_clamp)
        img = (
            _torgb(state, "synthesis.b4.torgb", x, sample[1], conv_clamp)
            if architecture == "skip"
            else None
        )
        index = 1
        for r in resolutions[1:]:
            block = f"synthesis.b{r}"
            if architecture == "resnet":
                shortcut = F.conv2d(x[None], state[f"{block}.skip.weight"] / math.sqrt(x.shape[0]))[
                    0
                ]
                shortcut = _fir(shortcut, 2, 2, 1, 4.0) * math.sqrt(0.5)
            x = _layer(state, f"{block}.conv0", x, sample[index], True, conv_clamp)
            gain = math.sqrt(0.5) if architecture == "resnet" else 1.0
            x = _layer(state, f"{block}.conv1", x, sample[index + 1], False, conv_clamp, gain)
            if architecture == "resnet":
                x = shortcut + x
            if architecture == "skip":
                img = _fir(img, 2, 2, 1, 4.0) + _torgb(
                    state, f"{block}.torgb", x, sample[index + 2], conv_clamp
                )
            elif r == resolutions[-1]:
                img = _torgb(state, f"{block}.torgb", x, sample[index + 2], conv_clamp)
            index += 2
        images.append(img)
    return torch.stack(images)


def _conv(
    state: dict, prefix: str, x: torch.Tensor, down: bool, lrelu: bool, gain: float = 1.0
) -> torch.Tensor:
    weight = state[f"{prefix}.weight"]
    weight = weight / math.sqrt(weight[0].numel())
    k = weight.shape[-1]
    if down:
        pad = (2, 2) if k == 3 else (1, 1)
        blurred = _fir(x, 1, pad[0], pad[1], 1.0)
        out = F.conv2d(blurred[None], weight)[0][:, ::2, ::2]
    else:
        out = F.conv2d(x[None], weight, padding=k // 2)[0]
    if f"{prefix}.bias" in state:
        out = out + state[f"{prefix}.bias"].view(-1, 1, 1)
    return _lrelu(out, gain) if lrelu else out * gain


def naive_discriminator(state: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """images [4, 3, H, W] -> logits [4, 1]; NVIDIA's resnet D, mbstd group 4, one feature."""
    resolutions = sorted(
        {int(k.split(".")[0][1:]) for k in state if k[0] == "b" and k.split(".")[0] != "b4"},
        reverse=True,
    )
    features = []
    for image in images:
        x = _conv(state, f"b{resolutions[0]}.fromrgb", image, False, True)
        for r in resolutions:
            shortcut = _conv(state, f"b{r}.skip", x, True, False, math.sqrt(0.5))
            x = _conv(state, f"b{r}.conv0", x, False, True)
            x = _conv(state, f"b{r}.conv1", x, True, True, math.sqrt(0.5))
            x = shortcut + x
        features.append(x)
    x = torch.stack(features)
    std = torch.sqrt(x.var(dim=0, unbiased=False) + 1e-8).mean()
    x = torch.cat([x, std.expand(x.shape[0], 1, *x.shape[2:])], dim=1)
    out = []
    for sample in x:
        y = _conv(state, "b4.conv", sample, False, True).reshape(-1)
        weight, bias = state["b4.fc.weight"], state["b4.fc.bias"]
        y = _lrelu(y @ (weight / math.sqrt(weight.shape[1])).T + bias)
        weight, bias = state["b4.out.weight"], state["b4.out.bias"]
        out.append(y @ (weight / math.sqrt(weight.shape[1])).T + bias)
    return torch.stack(out)


# -- TF-era pickles ---------------------------------------------------------------------------


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


def dumps_reduce_payload(command_callable: Any, argument: Any) -> bytes:
    """A pickle whose loading would call ``command_callable(argument)`` (the classic exploit)."""

    class Payload:
        def __reduce__(self) -> tuple:
            return (command_callable, (argument,))

    buffer = io.BytesIO()
    pickle.Pickler(buffer, protocol=4).dump({"G_ema": Payload()})
    return buffer.getvalue()
