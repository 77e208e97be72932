"""NVIDIA's StyleGAN2-ADA forward pass computed from its definitions on NVIDIA-named tensors.

One sample at a time, sharing no code with ``models/``: the oracle for the NVIDIA pickle tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def _filter() -> torch.Tensor:
    """NVIDIA's [1, 3, 3, 1] resampling filter, normalised."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(taps, taps)
    return kernel / kernel.sum()


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
        # Upsample-then-convolve, fused: zero insertion, a true 3x3 convolution, the 4-gain FIR.
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
