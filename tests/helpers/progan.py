"""pytorch_GAN_zoo's ProGAN forward from its definitions, and random ``ProGANGenerator``s."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.progan import ProGANGenerator


def naive_progan(
    state: dict[str, torch.Tensor],
    z: torch.Tensor,
    alpha: float = 0.0,
    slope: float = 0.2,
    tanh: bool = False,
    last_scale: int | None = None,
) -> torch.Tensor:
    """pytorch_GAN_zoo's GNet forward from its definitions, one sample at a time.

    ``state`` uses the zoo's key names; every layer's output (bias included) is scaled by
    sqrt(2 / fan_in).
    """

    def norm(x: torch.Tensor) -> torch.Tensor:  # over channels, dim 0 of a single sample
        return x / torch.sqrt((x * x).mean(dim=0, keepdim=True) + 1e-8)

    def lrelu(x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, slope * x)

    def conv(prefix: str, x: torch.Tensor) -> torch.Tensor:
        weight, bias = state[f"{prefix}.module.weight"], state[f"{prefix}.module.bias"]
        gain = math.sqrt(2.0 / weight[0].numel())
        return (
            F.conv2d(x[None], weight, padding=weight.shape[-1] // 2)[0] + bias.view(-1, 1, 1)
        ) * gain

    def upscale(x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)

    scales = 0
    while f"scaleLayers.{scales}.0.module.weight" in state:
        scales += 1
    last = scales if last_scale is None else last_scale
    images = []
    for sample in z:
        weight, bias = state["formatLayer.module.weight"], state["formatLayer.module.bias"]
        x = (weight @ (sample / torch.sqrt((sample * sample).mean() + 1e-8)) + bias) * math.sqrt(
            2.0 / weight.shape[1]
        )
        x = norm(lrelu(x).view(-1, 4, 4))
        x = norm(lrelu(conv("groupScale0.0", x)))
        previous = None
        for scale in range(last):
            if alpha > 0 and scale == last - 1:
                previous = upscale(conv(f"toRGBLayers.{scale}", x))
            x = upscale(x)
            x = norm(lrelu(conv(f"scaleLayers.{scale}.0", x)))
            x = norm(lrelu(conv(f"scaleLayers.{scale}.1", x)))
        image = conv(f"toRGBLayers.{last}", x)
        if previous is not None:
            image = alpha * previous + (1 - alpha) * image
        images.append(torch.tanh(image) if tanh else image)
    return torch.stack(images)


def random_progan(depths: list[int], z_dim: int = 16, seed: int = 0, **options) -> ProGANGenerator:
    torch.manual_seed(seed)
    generator = ProGANGenerator(z_dim, depths, **options)
    with torch.no_grad():
        for name, param in generator.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.3)
    return generator.eval().requires_grad_(False)
