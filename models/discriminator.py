"""StyleGAN2 residual discriminator in rosinality's parameter layout (the ``d`` entry of its files).

Keeping the public layout lets a user fine-tune a downloaded model that ships its discriminator,
and lets projection use the discriminator's features as an offline perceptual space.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.conv import conv2d
from models.generator import check_shape
from models.stylegan2 import BLUR_KERNEL, EqualLinear, FusedLeakyReLU, _Blur, make_kernel, upfirdn2d


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate (weights scaled by 1/sqrt(fan_in) at run time)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        out_channels, in_channels, k, _ = self.weight.shape
        return (
            f"in={in_channels}, out={out_channels}, kernel={k}, stride={self.stride}, "
            f"padding={self.padding}"
        )


class _DownBlur(_Blur):
    """FIR blur before a stride-2 convolution (kernel normalised to sum 1)."""

    def __init__(self, pad: tuple[int, int]) -> None:
        super().__init__(make_kernel(BLUR_KERNEL))
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


def conv_layer(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    downsample: bool = False,
    bias: bool = True,
    activate: bool = True,
) -> nn.Sequential:
    """rosinality's ``ConvLayer``: [blur,] equalized conv, [bias + leaky ReLU]."""
    layers: list[nn.Module] = []
    if downsample:
        p = (len(BLUR_KERNEL) - 2) + (kernel_size - 1)
        layers.append(_DownBlur(((p + 1) // 2, p // 2)))
        stride, padding = 2, 0
    else:
        stride, padding = 1, kernel_size // 2
    layers.append(
        EqualConv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=bias and not activate
        )
    )
    if activate:
        layers.append(FusedLeakyReLU(out_channels) if bias else _ScaledLeakyReLU())
    return nn.Sequential(*layers)


class _ScaledLeakyReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2) * math.sqrt(2.0)


class ResBlock(nn.Module):
    """Two 3x3 convs (the second halves the size) plus a 1x1 down-sampled shortcut, / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = conv_layer(in_channels, in_channels, 3)
        self.conv2 = conv_layer(in_channels, out_channels, 3, downsample=True)
        self.skip = conv_layer(
            in_channels, out_channels, 1, downsample=True, bias=False, activate=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2.0)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_features: int = 1) -> torch.Tensor:
    """Append the per-group standard deviation of features as extra channels (ProGAN's trick)."""
    batch, channels, height, width = x.shape
    group = min(batch, group_size)
    while batch % group:
        group -= 1  # the largest group size that divides the batch
    stddev = x.view(group, -1, num_features, channels // num_features, height, width)
    stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
    stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
    stddev = stddev.repeat(group, 1, height, width)
    return torch.cat([x, stddev], 1)


class StyleGAN2Discriminator(nn.Module):
    """Residual discriminator; ``forward`` gives one logit per image."""

    kind = "stylegan2-discriminator"

    def __init__(
        self,
        resolution: int,  # input size in pixels, a power of two >= 8
        channels: list[int] | tuple[int, ...],  # feature maps at 4, 8, ..., resolution
        mbstd_group: int = 4,  # minibatch-stddev group size
    ) -> None:
        super().__init__()
        log_size = int(math.log2(resolution))
        if len(channels) != log_size - 1:
            raise ValueError(f"channels must list one count per resolution 4..{resolution}")
        self.resolution = resolution
        self.channels = tuple(int(c) for c in channels)
        self.mbstd_group = mbstd_group
        by_res = {2 ** (i + 2): c for i, c in enumerate(self.channels)}
        convs: list[nn.Module] = [conv_layer(3, by_res[resolution], 1)]
        in_channels = by_res[resolution]
        for i in range(log_size, 2, -1):
            out_channels = by_res[2 ** (i - 1)]
            convs.append(ResBlock(in_channels, out_channels))
            in_channels = out_channels
        self.convs = nn.Sequential(*convs)
        self.final_conv = conv_layer(in_channels + 1, by_res[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(by_res[4] * 16, by_res[4], activate=True), EqualLinear(by_res[4], 1)
        )

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments as JSON data."""
        return {
            "resolution": self.resolution,
            "channels": list(self.channels),
            "mbstd_group": self.mbstd_group,
        }

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Activations after the input layer and after every residual block (coarsest last)."""
        check_shape(images, (None, 3, self.resolution, self.resolution), "images")
        feats = []
        x = images
        for layer in self.convs:
            x = layer(x)
            feats.append(x)
        return feats

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits [N, 1] (real > fake) for images [N, 3, resolution, resolution] in [-1, 1]."""
        x = self.features(images)[-1]
        x = minibatch_stddev(x, self.mbstd_group)
        x = self.final_conv(x)
        return self.final_linear(x.flatten(1))
