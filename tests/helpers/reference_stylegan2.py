"""A deliberately naive StyleGAN2 forward pass, written from the paper's definitions.

Loops over samples, builds every modulated kernel explicitly and uses only ``F.conv2d`` on
zero-inserted or padded inputs, so it shares no code path with ``models/stylegan2.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def fir_kernel() -> torch.Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(taps, taps)
    return kernel / kernel.sum()


def naive_upfirdn(
    x: torch.Tensor, kernel: torch.Tensor, up: int, pad0: int, pad1: int
) -> torch.Tensor:
    """[C, H, W]: insert up-1 zeros after each sample, pad, then a true 2-D convolution by loops."""
    channels, height, width = x.shape
    up_x = torch.zeros(channels, height * up, width * up, dtype=x.dtype)
    up_x[:, ::up, ::up] = x
    padded = F.pad(up_x, [pad0, pad1, pad0, pad1])
    kh, kw = kernel.shape
    out_h, out_w = padded.shape[1] - kh + 1, padded.shape[2] - kw + 1
    out = torch.zeros(channels, out_h, out_w, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # true convolution: kernel index flipped relative to the window offset
            out += kernel[kh - 1 - i, kw - 1 - j] * padded[:, i : i + out_h, j : j + out_w]
    return out


def modulated_kernel(weight: torch.Tensor, style: torch.Tensor, demodulate: bool) -> torch.Tensor:
    """weight [out, in, k, k] (as stored), style [in] -> the sample's effective kernel."""
    out_c, in_c, k, _ = weight.shape
    kernel = weight / math.sqrt(in_c * k * k) * style.view(1, in_c, 1, 1)
    if demodulate:
        norms = torch.sqrt((kernel**2).sum(dim=(1, 2, 3)) + 1e-8)
        kernel = kernel / norms.view(out_c, 1, 1, 1)
    return kernel


def affine(state: dict, prefix: str, w: torch.Tensor) -> torch.Tensor:
    weight = state[f"{prefix}.modulation.weight"]
    bias = state[f"{prefix}.modulation.bias"]
    return w @ (weight / math.sqrt(weight.shape[1])).T + bias


def lrelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    y = x + bias.view(-1, 1, 1)
    return torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2.0)


def styled_conv(
    state: dict, prefix: str, x: torch.Tensor, w: torch.Tensor, noise, up: bool
) -> torch.Tensor:
    weight = state[f"{prefix}.conv.weight"][0]
    kernel = modulated_kernel(weight, affine(state, f"{prefix}.conv", w), True)
    if up:
        # transposed stride-2 conv == zero insertion + full conv with the flipped kernel
        stuffed = naive_upfirdn(x, torch.ones(1, 1), 2, 0, 0)[
            :, : 2 * x.shape[1] - 1, : 2 * x.shape[2] - 1
        ]
        out = F.conv2d(stuffed[None], torch.flip(kernel, [2, 3]), padding=2)[0]
        out = naive_upfirdn(out, fir_kernel() * 4, 1, 1, 1)
    else:
        out = F.conv2d(x[None], kernel, padding=1)[0]
    if noise is not None:
        out = out + state[f"{prefix}.noise.weight"] * noise[0]
    return lrelu(out, state[f"{prefix}.activate.bias"])


def to_rgb(state: dict, prefix: str, x: torch.Tensor, w: torch.Tensor, skip) -> torch.Tensor:
    weight = state[f"{prefix}.conv.weight"][0]
    kernel = modulated_kernel(weight, affine(state, f"{prefix}.conv", w), False)
    out = F.conv2d(x[None], kernel)[0] + state[f"{prefix}.bias"].view(3, 1, 1)
    if skip is not None:
        out = out + naive_upfirdn(skip, fir_kernel() * 4, 2, 2, 1)
    return out


def naive_mapping(state: dict, z: torch.Tensor, lr_mlp: float = 0.01) -> torch.Tensor:
    x = z / torch.sqrt((z**2).mean(dim=1, keepdim=True) + 1e-8)
    index = 1
    while f"style.{index}.weight" in state:
        weight = state[f"style.{index}.weight"]
        bias = state[f"style.{index}.bias"]
        y = x @ (weight * lr_mlp / math.sqrt(weight.shape[1])).T + bias * lr_mlp
        x = torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2.0)
        index += 1
    return x


def naive_synthesis(state: dict, ws: torch.Tensor, use_noise: bool = True) -> torch.Tensor:
    """ws [N, num_ws, w_dim] -> images [N, 3, H, W], one sample at a time."""
    num_blocks = sum(
        1 for key in state if key.startswith("to_rgbs.") and key.endswith("conv.weight")
    )
    outputs = []
    for sample in ws:
        noise = lambda j: state[f"noises.noise_{j}"][0] if use_noise else None  # noqa: E731
        x = state["input.input"][0]
        x = styled_conv(state, "conv1", x, sample[0], noise(0), up=False)
        skip = to_rgb(state, "to_rgb1", x, sample[1], None)
        for block in range(num_blocks):
            i = 2 * block + 1
            x = styled_conv(state, f"convs.{2 * block}", x, sample[i], noise(i), up=True)
            x = styled_conv(
                state, f"convs.{2 * block + 1}", x, sample[i + 1], noise(i + 1), up=False
            )
            skip = to_rgb(state, f"to_rgbs.{block}", x, sample[i + 2], skip)
        outputs.append(skip)
    return torch.stack(outputs)
