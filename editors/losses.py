"""Image distances for photo projection, and the PSNR/SSIM metrics reported after it.

A loss term compares a batch of generated images [N, 3, H, W] in [-1, 1] with one fixed target
and returns one value per image ([N], differentiable). Terms combine into a ``CompositeLoss``
whose ``name`` says what was used ("vgg16-lpips", "vgg16-baseline", "pixel+ms-ssim+identity").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


# ---------------------------------------------------------------------------------------------
# SSIM family (images in [0, 1])


def _gaussian_window(
    size: int, sigma: float, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    window = torch.exp(-(coords**2) / (2 * sigma**2))
    return window / window.sum()


def _ssim_maps(
    x: torch.Tensor, y: torch.Tensor, window_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and contrast-structure maps ([N, C, h, w], valid convolution) for x, y in [0, 1]."""
    channels = x.shape[1]
    g = _gaussian_window(window_size, SSIM_SIGMA, x.device, x.dtype)
    gx = g.view(1, 1, 1, -1).expand(channels, 1, 1, window_size)
    gy = g.view(1, 1, -1, 1).expand(channels, 1, window_size, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, gx, groups=channels), gy, groups=channels)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    ssim = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs
    return ssim, cs


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image [N] of x, y [N, C, H, W] in [0, 1] (Gaussian window 11, sigma 1.5).

    Images smaller than 11 px use a window as large as they are.
    """
    window = min(SSIM_WINDOW, x.shape[-1], x.shape[-2])
    return _ssim_maps(x, y, window)[0].mean(dim=(1, 2, 3))


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM per image [N] of x, y [N, C, H, W] in [0, 1].

    Uses as many of the five standard scales as the image size allows (each scale needs at
    least an 11 px side); the weights of the scales used are renormalised to sum to 1.
    """
    window = min(SSIM_WINDOW, x.shape[-1], x.shape[-2])
    scales = 1
    size = min(x.shape[-2:])
    while scales < len(MS_SSIM_WEIGHTS) and size // 2 >= window:
        size //= 2
        scales += 1
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], device=x.device, dtype=x.dtype)
    weights = weights / weights.sum()
    result = x.new_ones(x.shape[0])
    for scale in range(scales):
        ssim_map, cs_map = _ssim_maps(x, y, window)
        if scale == scales - 1:
            value = ssim_map.mean(dim=(1, 2, 3))
        else:
            value = cs_map.mean(dim=(1, 2, 3))
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        # Clamped: fractional powers of a negative contrast term are undefined.
        result = result * value.clamp(min=1e-6) ** weights[scale]
    return result


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images of the same shape (inf when identical)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim_u8(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 [H, W, 3] images (averaged over channels)."""

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(image, np.float64) / 255.0).permute(2, 0, 1)[None]

    return float(ssim(tensor(a), tensor(b))[0])


# ---------------------------------------------------------------------------------------------
# Loss terms


class LossTerm(Protocol):
    """One distance to a fixed target."""

    name: str

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Distances [N] of images [N, 3, H, W] in [-1, 1] to the target."""
        ...


class PixelMSE:
    """Mean squared error in [-1, 1] units."""

    name = "pixel"

    def __init__(self, target: torch.Tensor) -> None:
        self.target = target.detach()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.target).square().mean(dim=(1, 2, 3))


class MultiScaleSSIM:
    """1 - MS-SSIM, computed in [0, 1] units."""

    name = "ms-ssim"

    def __init__(self, target: torch.Tensor) -> None:
        self.target = ((target.detach() + 1) / 2).clamp(0, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = ((images + 1) / 2).clamp(0, 1)
        return 1.0 - ms_ssim(x, self.target.expand_as(x))


class VGGPerceptual:
    """VGG16 LPIPS distance (``models.vgg16.LPIPSDistance``) to a fixed target.

    Named "vgg16-lpips" with LPIPS's learned channel weights, "vgg16-baseline" without them.
    """

    def __init__(self, distance: torch.nn.Module, target: torch.Tensor) -> None:
        self.distance = distance
        self.name = f"vgg16-{getattr(distance, 'variant', 'baseline')}"
        with torch.no_grad():
            self.target_features = [f.detach() for f in distance.features(target)]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.distance.distance_to(self.target_features, images)


class DiscriminatorFeatures:
    """Distance between discriminator activations, each layer normalised by the target's energy."""

    name = "discriminator"

    def __init__(self, discriminator: torch.nn.Module, target: torch.Tensor) -> None:
        self.discriminator = discriminator
        with torch.no_grad():
            self.target_features = [f.detach() for f in discriminator.features(target)]
        self.scales = [1.0 / (f.square().mean().item() + 1e-8) for f in self.target_features]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        total = images.new_zeros(images.shape[0])
        features = self.discriminator.features(images)
        for mine, theirs, scale in zip(features, self.target_features, self.scales, strict=True):
            total = total + (mine - theirs).square().mean(dim=(1, 2, 3)) * scale
        return total / len(features)


class IdentityDistance:
    """dlib face-descriptor distance to the target face (``editors.identity.IdentityMeter``)."""

    name = "identity"

    def __init__(self, meter: object) -> None:
        self.meter = meter

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        pixels = (images + 1) * 127.5  # the descriptor network takes 0..255 RGB
        return self.meter.distances(pixels)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class WeightedTerm:
    """A loss term and its weight in the sum."""

    term: LossTerm
    weight: float


class CompositeLoss:
    """Weighted sum of loss terms; ``last_values`` keeps each term's batch mean for reporting."""

    def __init__(self, terms: Sequence[WeightedTerm]) -> None:
        if not terms:
            raise ValueError("a loss needs at least one term")
        self.terms = list(terms)
        self.last_values: dict[str, float] = {}

    @property
    def name(self) -> str:
        """Term names joined with '+', e.g. 'pixel+ms-ssim+identity'."""
        return "+".join(t.term.name for t in self.terms)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Total loss [N] for images [N, 3, H, W] in [-1, 1]."""
        total = images.new_zeros(images.shape[0])
        values = {}
        for weighted in self.terms:
            value = weighted.term(images)
            values[weighted.term.name] = float(value.detach().mean())
            total = total + weighted.weight * value
        self.last_values = values
        return total
