"""StyleGAN2 generator (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN").

Parameters and buffers are named and shaped exactly like rosinality's ``stylegan2-pytorch``
``Generator`` (the ``g_ema`` state dict that e4e, pSp, StyleCLIP and many model zoos ship), so such
a state dict loads with no missing or unexpected keys. The arithmetic is pure PyTorch (no compiled
ops); the layers are in ``models/stylegan2_layers.py``, and the output matches that
implementation's fp32 output within float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.generator import Generator, NoiseMode, check_shape
from models.stylegan2_layers import (
    BLUR_KERNEL,
    LRELU_GAIN,
    LRELU_SLOPE,
    ConstantInput,
    EqualLinear,
    FusedLeakyReLU,
    ModulatedConv2d,
    NoiseInjection,
    PixelNorm,
    ResidualUpsample,
    StyledConv,
    ToRGB,
    _Blur,
    fused_leaky_relu,
    make_kernel,
    pixel_norm,
    upfirdn2d,
    upsample_skip,
)

# The layers live in models/stylegan2_layers.py; they are re-exported here for the formats,
# the discriminator and the tests.
__all__ = [
    "BLUR_KERNEL",
    "LRELU_GAIN",
    "LRELU_SLOPE",
    "ConstantInput",
    "EqualLinear",
    "FusedLeakyReLU",
    "ModulatedConv2d",
    "NoiseInjection",
    "PixelNorm",
    "ResidualUpsample",
    "StyleGAN2Generator",
    "StyleLayer",
    "StyledConv",
    "SynthesisCache",
    "ToRGB",
    "_Blur",
    "channels_from_base",
    "fused_leaky_relu",
    "make_kernel",
    "pixel_norm",
    "rosinality_channels",
    "stylegan2_from_architecture",
    "upfirdn2d",
    "upsample_skip",
]


# ---------------------------------------------------------------------------------------------
# Synthesis cache


@dataclass(frozen=True, slots=True)
class StyleLayer:
    """One modulated convolution seen from style space ``S`` (Wu et al., StyleSpace)."""

    index: int  # position in ``style_layers()`` and the key of ``synthesis(style_offsets=...)``
    name: str  # parameter prefix, e.g. "convs.3" or "to_rgbs.1"
    ws_row: int  # the ws row its affine layer reads
    block: int  # synthesis block (0 = 4x4)
    resolution: int  # resolution of the features it modulates
    channels: int  # style vector length (its input feature maps)
    is_rgb: bool  # True for ToRGB layers


FeatureHook = Callable[[int, torch.Tensor], "torch.Tensor | None"]


@dataclass(slots=True)
class _CachedBlock:
    rows: torch.Tensor  # the ws rows the block consumed
    x: torch.Tensor  # feature maps after the block
    skip: torch.Tensor | None  # running RGB image after the block (None: no ToRGB yet)


@dataclass(slots=True)
class SynthesisCache:
    """Activations of the last synthesis, per block, to resume from the first block that changed.

    Valid only for deterministic noise ("const" or "none"); a change of noise settings, batch
    size, dtype or device drops it. ``last_start_block`` tells which block the last call started
    from (0 = full render), for tests and benchmarks.
    """

    key: tuple[Any, ...] | None = None
    blocks: list[_CachedBlock] = field(default_factory=list)
    last_start_block: int = 0

    def clear(self) -> None:
        """Forget every cached activation."""
        self.key = None
        self.blocks.clear()


# ---------------------------------------------------------------------------------------------
# Generator


def rosinality_channels(resolution: int, channel_multiplier: int = 2) -> tuple[int, ...]:
    """Channel counts per resolution (4, 8, ..., resolution) of rosinality's channel table."""
    return channels_from_base(resolution, channel_base=16384 * channel_multiplier, channel_max=512)


def channels_from_base(resolution: int, channel_base: int, channel_max: int) -> tuple[int, ...]:
    """NVIDIA's rule C(r) = min(channel_base // r, channel_max) for r = 4, 8, ..., resolution."""
    return tuple(
        min(channel_base // (2**i), channel_max) for i in range(2, int(math.log2(resolution)) + 1)
    )


ARCHITECTURES = ("skip", "orig", "resnet")


class StyleGAN2Generator(Generator):
    """StyleGAN2 generator with rosinality's parameter layout.

    The default ('skip' architecture, no class labels) is exactly rosinality's network. NVIDIA's
    variants add keys that exist only for them: 'orig' and 'resnet' have one final ``to_rgb``
    instead of ``to_rgb1``/``to_rgbs``; 'resnet' adds a shortcut per block (``skips.{k}``);
    class-conditional networks (``c_dim > 0``) add the label embedding ``embed``.
    """

    kind = "stylegan2"

    def __init__(
        self,
        resolution: int,  # output size in pixels, a power of two >= 8
        channels: Sequence[int],  # feature maps at 4, 8, ..., resolution
        z_dim: int = 512,  # input latent size
        w_dim: int = 512,  # intermediate latent (style) size
        mapping_layers: int = 8,  # fully connected layers in the mapping network
        lr_mlp: float = 0.01,  # learning-rate multiplier of the mapping network
        conv_clamp: float | None = None,  # NVIDIA's activation clamp; None = no clamp
        architecture: str = "skip",  # 'skip' (StyleGAN2), or NVIDIA's 'orig' / 'resnet'
        c_dim: int = 0,  # class-label size; 0 = unconditional
        embed_features: int | None = None,  # label embedding size; None = w_dim
    ) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        log_size = int(math.log2(resolution))
        if resolution < 8 or 2**log_size != resolution:
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        if len(channels) != log_size - 1:
            raise ValueError(
                f"channels must list one count per resolution 4..{resolution} "
                f"({log_size - 1} values), got {len(channels)}"
            )
        self.resolution = resolution
        self.channels = tuple(int(c) for c in channels)
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.mapping_layers = mapping_layers
        self.lr_mlp = lr_mlp
        self.conv_clamp = conv_clamp
        self.arch = architecture
        self.c_dim = c_dim
        self.embed_features = (embed_features or w_dim) if c_dim > 0 else 0
        self.num_ws = log_size * 2 - 2
        self.num_layers = (log_size - 2) * 2 + 1  # styled convs, one noise map each

        if c_dim > 0:
            # NVIDIA: w = MLP(concat(normalise(z), normalise(embed(c)))).
            self.embed = EqualLinear(c_dim, self.embed_features)
        self.style = nn.ModuleList([PixelNorm()])
        for index in range(mapping_layers):
            in_dim = z_dim + self.embed_features if index == 0 else w_dim
            self.style.append(EqualLinear(in_dim, w_dim, lr_mul=lr_mlp, activate=True))

        c4 = self.channels[0]
        self.input = ConstantInput(c4)
        self.conv1 = StyledConv(c4, c4, w_dim, conv_clamp=conv_clamp)
        if architecture == "skip":
            self.to_rgb1 = ToRGB(c4, w_dim, upsample=False, conv_clamp=conv_clamp)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        if architecture == "resnet":
            self.skips = nn.ModuleList()
        in_channels = c4
        for out_channels in self.channels[1:]:
            self.convs.append(
                StyledConv(in_channels, out_channels, w_dim, upsample=True, conv_clamp=conv_clamp)
            )
            self.convs.append(StyledConv(out_channels, out_channels, w_dim, conv_clamp=conv_clamp))
            if architecture == "skip":
                self.to_rgbs.append(ToRGB(out_channels, w_dim, conv_clamp=conv_clamp))
            if architecture == "resnet":
                self.skips.append(ResidualUpsample(in_channels, out_channels))
            in_channels = out_channels
        if architecture != "skip":
            # 'orig' and 'resnet' turn only the last block's features into RGB.
            self.to_rgb = ToRGB(in_channels, w_dim, upsample=False, conv_clamp=conv_clamp)

        # rosinality keeps fixed noise maps as buffers named noises.noise_{j}; "const" uses them.
        self.noises = nn.Module()
        for layer in range(self.num_layers):
            size = 2 ** ((layer + 5) // 2)
            self.noises.register_buffer(f"noise_{layer}", torch.randn(1, 1, size, size))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments as JSON data (NVIDIA-only options appear when they are used)."""
        arch: dict[str, Any] = {
            "resolution": self.resolution,
            "channels": list(self.channels),
            "z_dim": self.z_dim,
            "w_dim": self.w_dim,
            "mapping_layers": self.mapping_layers,
            "lr_mlp": self.lr_mlp,
            "conv_clamp": self.conv_clamp,
        }
        if self.arch != "skip":
            arch["architecture"] = self.arch
        if self.c_dim > 0:
            arch["c_dim"] = self.c_dim
            arch["embed_features"] = self.embed_features
        return arch

    # -- mapping ----------------------------------------------------------------------------
    def mapping_raw(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Map ``z`` [N, z_dim] to ``w`` [N, w_dim] (no truncation).

        Args:
            z: latents [N, z_dim].
            c: class labels [N, c_dim] (usually one-hot) for conditional networks; None there
                means class 0. Unconditional networks refuse a label.
        """
        if self.c_dim == 0:
            if c is not None:
                raise ValueError("this generator is unconditional: do not pass a class label")
            x = z
            for layer in self.style:
                x = layer(x)
            return x
        if c is None:
            c = torch.zeros(z.shape[0], self.c_dim, dtype=z.dtype, device=z.device)
            c[:, 0] = 1
        check_shape(c, (z.shape[0], self.c_dim), "c")
        x = torch.cat([pixel_norm(z), pixel_norm(self.embed(c.to(z.dtype)))], dim=1)
        for layer in list(self.style)[1:]:
            x = layer(x)
        return x

    @torch.no_grad()
    def update_w_avg(self, num_samples: int = 10000, seed: int = 123) -> None:
        """Set ``w_avg`` to the mean w of ``num_samples`` standard-normal z (fixed seed)."""
        generator = torch.Generator().manual_seed(seed)
        total = torch.zeros(self.w_dim, dtype=torch.float64)
        for start in range(0, num_samples, 1024):
            count = min(1024, num_samples - start)
            z = torch.randn(count, self.z_dim, generator=generator).to(self.w_avg.device)
            total += self.mapping_raw(z).to(torch.float64).sum(0).cpu()
        self.w_avg.copy_((total / num_samples).to(self.w_avg.dtype))

    # -- synthesis --------------------------------------------------------------------------
    def block_rows(self) -> list[slice]:
        """The ws rows each synthesis block reads: block 0 is 4x4, block k is 2^(k+2) px."""
        rows = [slice(0, 2)]
        for block in range(1, len(self.channels)):
            rows.append(slice(2 * block - 1, 2 * block + 2))
        return rows

    def block_resolutions(self) -> list[int]:
        """Output resolution of each synthesis block."""
        return [2 ** (index + 2) for index in range(len(self.channels))]

    def style_layers(self) -> list[StyleLayer]:
        """Every modulated convolution in the order synthesis runs them."""
        layers: list[StyleLayer] = []

        def add(name: str, module: nn.Module, row: int, block: int, rgb: bool) -> None:
            res = 2 ** (block + 2)
            channels = module.conv.in_channels
            layers.append(StyleLayer(len(layers), name, row, block, res, channels, rgb))

        add("conv1", self.conv1, 0, 0, False)
        if self.arch == "skip":
            add("to_rgb1", self.to_rgb1, 1, 0, True)
        for block in range(1, len(self.channels)):
            i = 2 * block - 1
            add(f"convs.{2 * block - 2}", self.convs[2 * block - 2], i, block, False)
            add(f"convs.{2 * block - 1}", self.convs[2 * block - 1], i + 1, block, False)
            if self.arch == "skip":
                add(f"to_rgbs.{block - 1}", self.to_rgbs[block - 1], i + 2, block, True)
        if self.arch != "skip":
            add("to_rgb", self.to_rgb, self.num_ws - 1, len(self.channels) - 1, True)
        return layers

    def styles(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """Style vectors ``S`` (affine outputs) for ``ws``: one [N, channels] per style layer."""
        check_shape(ws, (None, self.num_ws, self.w_dim), "ws")
        out = []
        for layer in self.style_layers():
            modulation = self.get_submodule(layer.name).conv.modulation
            out.append(modulation(ws[:, layer.ws_row]))
        return out

    def noise_buffers(self) -> list[torch.Tensor]:
        """The stored noise maps, one per styled conv (index 0 is the 4x4 conv)."""
        return [getattr(self.noises, f"noise_{layer}") for layer in range(self.num_layers)]

    def _noise(
        self,
        noise_mode: NoiseMode,
        batch: int,
        noise_strength: Sequence[float] | None,
        noise: Sequence[torch.Tensor] | None,
    ) -> list[torch.Tensor | None]:
        if noise is not None:
            maps: list[torch.Tensor | None] = list(noise)
            if len(maps) != self.num_layers:
                raise ValueError(f"noise must hold {self.num_layers} maps, got {len(maps)}")
        elif noise_mode == "none":
            return [None] * self.num_layers
        elif noise_mode == "const":
            maps = list(self.noise_buffers())
        elif noise_mode == "random":
            maps = [
                torch.randn(batch, 1, *buf.shape[2:], device=buf.device)
                for buf in self.noise_buffers()
            ]
        else:
            raise ValueError(f"noise_mode must be one of const, random, none; got {noise_mode!r}")
        if noise_strength is not None:
            if len(noise_strength) != self.num_layers:
                raise ValueError(
                    f"noise_strength must hold {self.num_layers} values, got {len(noise_strength)}"
                )
            maps = [
                m * float(s) if m is not None else None
                for m, s in zip(maps, noise_strength, strict=True)
            ]
        return maps

    def synthesis(
        self,
        ws: torch.Tensor,
        *,
        noise_mode: NoiseMode = "const",
        noise_strength: Sequence[float] | None = None,
        noise: Sequence[torch.Tensor] | None = None,
        max_resolution: int | None = None,
        cache: SynthesisCache | None = None,
        style_offsets: Mapping[int, torch.Tensor] | None = None,
        feature_hook: FeatureHook | None = None,
    ) -> torch.Tensor:
        """Render ``ws`` [N, num_ws, w_dim] to images [N, 3, H, W] in [-1, 1].

        Args:
            ws: one style vector per style input.
            noise_mode: "const" uses the stored noise maps, "random" draws new ones, "none" adds
                none.
            noise_strength: per-layer multipliers of the noise maps ([num_layers] floats).
            noise: explicit noise maps (one per layer, [N or 1, 1, r, r]); overrides noise_mode.
            max_resolution: stop at this block and return its running image (a cheap preview).
            cache: per-block activations to resume from the first block whose rows changed.
            style_offsets: StyleSpace edits, ``{style layer index: [N or 1, channels]}`` added to
                that layer's affine output (see ``style_layers``).
            feature_hook: called as ``hook(block, features)`` after each block; a tensor it
                returns replaces the features (masked blending), None keeps them. Drag editing
                and layer inspection read intermediate features through it.
        """
        check_shape(ws, (None, self.num_ws, self.w_dim), "ws")
        batch = ws.shape[0]
        maps = self._noise(noise_mode, batch, noise_strength, noise)
        last_block = len(self.channels) - 1
        if max_resolution is not None:
            if max_resolution not in self.block_resolutions():
                raise ValueError(f"max_resolution must be one of {self.block_resolutions()}")
            last_block = self.block_resolutions().index(max_resolution)

        if (
            self.arch != "skip"
            and max_resolution is not None
            and last_block < len(self.channels) - 1
        ):
            # Only the last block of 'orig'/'resnet' makes RGB: preview by shrinking the full image.
            full = self.synthesis(
                ws, noise_mode=noise_mode, noise_strength=noise_strength, noise=noise, cache=cache
            )
            return F.interpolate(full, size=(max_resolution, max_resolution), mode="area")

        rows = self.block_rows()
        start = 0
        x: torch.Tensor | None = None
        skip: torch.Tensor | None = None
        offsets = dict(style_offsets or {})
        style_layers = self.style_layers() if offsets else []
        unknown = set(offsets) - set(range(len(style_layers)))
        if unknown:
            raise ValueError(f"style_offsets has unknown layer indices {sorted(unknown)}")

        def offset(block: int, k: int) -> torch.Tensor | None:
            # k-th modulated conv of the block (0, 1 convs; last = ToRGB), in style_layers order
            if not offsets:
                return None
            mine = [layer.index for layer in style_layers if layer.block == block]
            return offsets.get(mine[k]) if k < len(mine) else None

        use_cache = (
            cache is not None
            and noise_mode != "random"
            and noise is None
            and not offsets
            and feature_hook is None
        )
        if use_cache:
            assert cache is not None
            key = (noise_mode, tuple(noise_strength or ()), batch, ws.dtype, ws.device)
            if cache.key != key:
                cache.clear()
                cache.key = key
            while (
                start < len(cache.blocks)
                and start <= last_block
                and torch.equal(cache.blocks[start].rows, ws[:, rows[start]])
            ):
                start += 1
            cache.last_start_block = start
            if start > last_block and cache.blocks[last_block].skip is not None:
                # nothing the requested image depends on has changed
                return cache.blocks[last_block].skip  # type: ignore[return-value]
            start = min(start, last_block)
            del cache.blocks[start:]
            if start > 0:
                x, skip = cache.blocks[start - 1].x, cache.blocks[start - 1].skip

        for block in range(start, last_block + 1):
            if block == 0:
                x = self.input(batch).contiguous(memory_format=self._memory_format(ws))
                x = self.conv1(x, ws[:, 0], maps[0], offset(0, 0))
                x = self._hooked(feature_hook, block, x)
                if self.arch == "skip":
                    skip = self.to_rgb1(x, ws[:, 1], style_offset=offset(0, 1))
            else:
                assert x is not None
                i = 2 * block - 1
                shortcut = self.skips[block - 1](x) if self.arch == "resnet" else None
                x = self.convs[2 * block - 2](x, ws[:, i], maps[i], offset(block, 0))
                x = self.convs[2 * block - 1](x, ws[:, i + 1], maps[i + 1], offset(block, 1))
                if shortcut is not None:
                    x = (shortcut + x) * math.sqrt(0.5)
                x = self._hooked(feature_hook, block, x)
                if self.arch == "skip":
                    skip = self.to_rgbs[block - 1](x, ws[:, i + 2], skip, offset(block, 2))
            if self.arch != "skip" and block == len(self.channels) - 1:
                rgb_offset = offsets.get(len(style_layers) - 1) if offsets else None
                skip = self.to_rgb(x, ws[:, self.num_ws - 1], style_offset=rgb_offset)
            if use_cache:
                assert cache is not None and x is not None
                cache.blocks.append(_CachedBlock(ws[:, rows[block]].clone(), x, skip))
        assert skip is not None
        return skip

    def _memory_format(self, ws: torch.Tensor) -> torch.memory_format:
        # NHWC lets oneDNN skip its layout reorders around every convolution (measured ~10%
        # faster on an AVX2 CPU; its depthwise blur several times faster); on GPUs it pays
        # only with half-precision tensor cores.
        # Weight gradients in NHWC (training, tuning) were measured 1.5x slower than NCHW;
        # latent-only gradients (projection, drag) ~10% faster.
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
            return torch.contiguous_format
        if ws.device.type == "cpu" or ws.dtype in (torch.float16, torch.bfloat16):
            return torch.channels_last
        return torch.contiguous_format

    @staticmethod
    def _hooked(hook: FeatureHook | None, block: int, x: torch.Tensor) -> torch.Tensor:
        if hook is None:
            return x
        replaced = hook(block, x)
        return x if replaced is None else replaced


def stylegan2_from_architecture(arch: dict[str, Any]) -> StyleGAN2Generator:
    """Build a generator from the ``architecture()`` dict (used by the native file format)."""
    allowed = {
        "resolution",
        "channels",
        "z_dim",
        "w_dim",
        "mapping_layers",
        "lr_mlp",
        "conv_clamp",
        "architecture",
        "c_dim",
        "embed_features",
    }
    unknown = set(arch) - allowed
    if unknown:
        raise ValueError(f"unknown StyleGAN2 architecture keys: {sorted(unknown)}")
    return StyleGAN2Generator(**arch)
