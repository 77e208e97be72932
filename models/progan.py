"""Progressive GAN generator (Karras et al., "Progressive Growing of GANs", 2018).

Parameters are named and shaped exactly like facebookresearch ``pytorch_GAN_zoo``'s ``GNet`` (the
``netG``/``avgG`` state dicts of its PGAN checkpoints), so those load with no missing or unexpected
keys; the arithmetic matches its fp32 output:

- every layer is an "equalized" torch layer kept as ``.module``; its *output, bias included*, is
  multiplied by sqrt(2 / fan_in) (ToRGB too), and weights start N(0, 1) with zero bias;
- z is pixel-normalised; ``formatLayer`` (linear) -> leaky ReLU -> reshape to [N, d0, 4, 4] ->
  pixel norm; ``groupScale0`` (3x3 conv) -> leaky ReLU -> pixel norm;
- each further scale: nearest-neighbour x2, then two 3x3 convs each followed by leaky ReLU and
  pixel norm; ``toRGBLayers[-1]`` (1x1) makes the image;
- fade-in: with ``alpha > 0`` the output is ``alpha * up(toRGB[-2](features before the last
  scale)) + (1 - alpha) * toRGB[-1](...)``;
- no output activation for WGAN-GP/logistic training, tanh for the zoo's DCGAN/MSE losses.

In the app's vocabulary a ProGAN has ``num_ws == 1`` and ``w_dim == z_dim``: ``mapping`` is the
identity, so z is the editable latent, and ``w_avg`` is zero (truncation scales z; because the
network pixel-normalises z first, that changes little).

Training (for a ProGAN trainer):

- ``ProGANGenerator(z_dim, depths=[512])`` is the 4x4 network; ``depths=[512, 512, 256]`` builds
  the 16x16 network directly (``for_resolution`` picks depths from ``DEFAULT_DEPTHS``);
- ``grow(depth)`` adds a scale (new layers freshly initialised, ``alpha`` set to 1 so the new
  scale fades in) and ``set_alpha(alpha)`` moves the fade; ``alpha`` is part of
  ``architecture()``, so a native file saved mid-fade reloads mid-fade;
- ``synthesis(ws, max_resolution=r)`` renders through the ToRGB of a lower scale (a cheap preview,
  and the network a discriminator at that scale sees when alpha is 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.generator import Generator, NoiseMode, check_shape

DEFAULT_DEPTHS = (512, 512, 512, 512, 256, 128, 64, 32, 16)  # the zoo's default depthScales
OUTPUT_ACTIVATIONS = (None, "tanh")


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each position to unit root-mean-square over channels (dim 1)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class EqualizedLayer(nn.Module):
    """A torch layer kept as ``.module`` whose output (bias included) is scaled by He's constant."""

    def __init__(self, module: nn.Linear | nn.Conv2d, equalized: bool = True) -> None:
        super().__init__()
        self.module = module
        fan_in = module.weight[0].numel()
        self.scale = math.sqrt(2.0 / fan_in) if equalized else 1.0
        with torch.no_grad():
            if module.bias is not None:
                module.bias.zero_()
            if equalized:
                module.weight.normal_(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) * self.scale


def equalized_conv(
    in_channels: int, out_channels: int, kernel_size: int, equalized: bool = True
) -> EqualizedLayer:
    """An equalized ``nn.Conv2d`` with 'same' padding."""
    return EqualizedLayer(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2), equalized
    )


class ProGANGenerator(Generator):
    """pytorch_GAN_zoo's PGAN generator; see the module docstring for layout and arithmetic."""

    kind = "progan"

    def __init__(
        self,
        z_dim: int = 512,  # latent size (noise plus any category dims of an AC-GAN)
        depths: Sequence[int] = (512,),  # feature maps per scale: 4x4, 8x8, ... (one per scale)
        alpha: float = 0.0,  # fade-in factor of the last scale (0 = off, 1 = previous scale only)
        leaky_relu: float = 0.2,  # negative slope of the leaky ReLUs
        output_activation: str | None = None,  # None (WGAN-GP, logistic) or "tanh" (DCGAN, MSE)
        out_channels: int = 3,  # 3 = RGB; 1 = grey levels (repeated to RGB on output)
        equalized: bool = True,  # equalized learning rate (He's constant at run time)
    ) -> None:
        super().__init__()
        if not depths:
            raise ValueError("depths must list at least the 4x4 scale")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}"
            )
        if out_channels not in (1, 3):
            raise ValueError(f"out_channels must be 1 or 3, got {out_channels}")
        self.z_dim = z_dim
        self.w_dim = z_dim
        self.num_ws = 1
        self.leaky_relu = leaky_relu
        self.output_activation = output_activation
        self.out_channels = out_channels
        self.equalized = equalized
        self.depths: list[int] = [int(depths[0])]
        self.formatLayer = EqualizedLayer(nn.Linear(z_dim, 16 * self.depths[0]), equalized)
        self.groupScale0 = nn.ModuleList(
            [equalized_conv(self.depths[0], self.depths[0], 3, equalized)]
        )
        self.scaleLayers = nn.ModuleList()
        self.toRGBLayers = nn.ModuleList(
            [equalized_conv(self.depths[0], out_channels, 1, equalized)]
        )
        self.register_buffer("w_avg", torch.zeros(z_dim))
        self.alpha = 0.0
        for depth in depths[1:]:
            self.grow(int(depth))
        self.set_alpha(alpha)

    @classmethod
    def for_resolution(cls, resolution: int, z_dim: int = 512, **options: Any) -> ProGANGenerator:
        """A fresh generator with ``DEFAULT_DEPTHS`` up to ``resolution`` (4, 8, ..., 1024)."""
        scales = int(math.log2(resolution)) - 1
        if resolution < 4 or 2 ** (scales + 1) != resolution or scales > len(DEFAULT_DEPTHS):
            raise ValueError(f"resolution must be a power of two from 4 to 1024, got {resolution}")
        return cls(z_dim, DEFAULT_DEPTHS[:scales], **options)

    # -- growing ----------------------------------------------------------------------------
    @property
    def resolution(self) -> int:  # type: ignore[override]
        """Output size in pixels: 4 * 2^(number of added scales)."""
        return 4 * 2 ** len(self.scaleLayers)

    @property
    def depth(self) -> int:
        """Index of the last scale (0 = 4x4)."""
        return len(self.scaleLayers)

    def grow(self, depth: int) -> None:
        """Add a scale with ``depth`` feature maps, doubling the resolution; alpha becomes 1.

        The new layers are initialised like the zoo's (N(0, 1) weights, zero bias) on the device
        of the existing ones. Optimisers must be rebuilt afterwards (new parameters).
        """
        device = self.w_avg.device
        previous = self.depths[-1]
        self.scaleLayers.append(
            nn.ModuleList(
                [
                    equalized_conv(previous, depth, 3, self.equalized),
                    equalized_conv(depth, depth, 3, self.equalized),
                ]
            ).to(device)
        )
        self.toRGBLayers.append(
            equalized_conv(depth, self.out_channels, 1, self.equalized).to(device)
        )
        self.depths.append(depth)
        self.alpha = 1.0

    def set_alpha(self, alpha: float) -> None:
        """Set the fade-in: 1 shows only the previous scale (upsampled), 0 only the new one."""
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if alpha > 0 and not self.scaleLayers:
            raise ValueError("alpha needs at least two scales (there is nothing to fade from)")
        self.alpha = float(alpha)

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments as JSON data (the native file format)."""
        return {
            "z_dim": self.z_dim,
            "depths": list(self.depths),
            "alpha": self.alpha,
            "leaky_relu": self.leaky_relu,
            "output_activation": self.output_activation,
            "out_channels": self.out_channels,
            "equalized": self.equalized,
        }

    # -- mapping ----------------------------------------------------------------------------
    def mapping_raw(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The identity: a ProGAN's z is its style vector."""
        if c is not None:
            raise ValueError("this ProGAN takes no class label (AC-GAN categories are part of z)")
        return z

    # -- synthesis --------------------------------------------------------------------------
    def block_resolutions(self) -> list[int]:
        """Output resolution of each scale."""
        return [4 * 2**index for index in range(len(self.depths))]

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(F.leaky_relu(x, self.leaky_relu))

    def _to_image(self, x: torch.Tensor) -> torch.Tensor:
        if self.output_activation == "tanh":
            x = torch.tanh(x)
        return x.expand(-1, 3, -1, -1) if self.out_channels == 1 else x

    def synthesis(
        self,
        ws: torch.Tensor,
        *,
        noise_mode: NoiseMode = "const",
        max_resolution: int | None = None,
        **_ignored: Any,
    ) -> torch.Tensor:
        """Render ``ws`` [N, 1, z_dim] to images [N, 3, H, W] (nominally in [-1, 1]).

        Args:
            ws: the latents z as one style row.
            noise_mode: accepted for the common API; a ProGAN has no noise inputs.
            max_resolution: stop at this scale and use its ToRGB (a cheap preview, no fade).
        """
        del noise_mode
        check_shape(ws, (None, 1, self.z_dim), "ws")
        last = len(self.depths) - 1
        if max_resolution is not None:
            if max_resolution not in self.block_resolutions():
                raise ValueError(f"max_resolution must be one of {self.block_resolutions()}")
            last = self.block_resolutions().index(max_resolution)
        fade = self.alpha > 0 and last == len(self.depths) - 1

        x = pixel_norm(ws[:, 0])
        x = F.leaky_relu(self.formatLayer(x), self.leaky_relu)
        x = pixel_norm(x.view(x.shape[0], self.depths[0], 4, 4))
        for conv in self.groupScale0:
            x = self._activate(conv(x))
        previous_rgb: torch.Tensor | None = None
        for scale in range(1, last + 1):
            if fade and scale == last:
                previous_rgb = F.interpolate(
                    self.toRGBLayers[scale - 1](x), scale_factor=2.0, mode="nearest"
                )
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            for conv in self.scaleLayers[scale - 1]:
                x = self._activate(conv(x))
        image = self.toRGBLayers[last](x)
        if previous_rgb is not None:
            image = self.alpha * previous_rgb + (1.0 - self.alpha) * image
        return self._to_image(image)


def progan_from_architecture(arch: dict[str, Any]) -> ProGANGenerator:
    """Build a ProGAN from its ``architecture()`` dict (used by the native file format)."""
    allowed = {
        "z_dim",
        "depths",
        "alpha",
        "leaky_relu",
        "output_activation",
        "out_channels",
        "equalized",
    }
    unknown = set(arch) - allowed
    if unknown:
        raise ValueError(f"unknown ProGAN architecture keys: {sorted(unknown)}")
    return ProGANGenerator(**arch)
