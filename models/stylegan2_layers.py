"""StyleGAN2 building blocks with rosinality's parameter names (see ``models/stylegan2.py``).

Written for speed on CPUs (oneDNN) as well as GPUs, while staying within float rounding of
rosinality's fp32 output:

- the modulated weight is one multiply of the raw weight by an [out, in] outer product of
  style and demodulation; the demodulation comes from a cached sum of squared weights
  (``sum_k W^2``) times the squared style, a matrix-vector product, instead of squaring the
  whole modulated weight;
- the leaky-ReLU gain sqrt(2) is folded into the weights, bias and noise strength
  (leaky_relu(g * x) = g * leaky_relu(x) for g > 0), the bias goes into the convolution;
- symmetric FIR padding is the convolution's own padding (no padded copy), down-sampling is
  the convolution's stride (no discarded outputs);
- without autograd, noise and activation run in place on the convolution's output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
BLUR_KERNEL = (1, 3, 3, 1)
# A single image modulates the weights (one weight-sized multiply per layer); batches modulate
# the activations so that one shared-weight convolution serves every sample, and so does a
# single image whose gradient skips the weight (projection, drag). False: batch 1 always
# modulates activations (NVIDIA's non-fused path), measured slower here (bench/README.md).
WEIGHT_MODULATION_AT_BATCH_1 = True


def make_kernel(taps: Sequence[float]) -> torch.Tensor:
    """Return the separable 2-D FIR kernel outer(taps, taps), normalised to sum 1."""
    k1 = torch.tensor(taps, dtype=torch.float32)
    kernel = k1[None, :] * k1[:, None]
    return kernel / kernel.sum()


def may_modify(x: torch.Tensor) -> bool:
    """True when ``x`` can be overwritten in place: autograd is not recording it."""
    return not (torch.is_grad_enabled() and x.requires_grad)


def _layout_of(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), convolve with ``kernel``, downsample.

    ``x`` is [N, C, H, W]; ``pad`` = (before, after) applies to both axes. The convolution is a
    true convolution (the kernel is flipped), as in NVIDIA's and rosinality's ``upfirdn2d``.
    ``bias`` [C] is added to the result (free inside the convolution).
    """
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    pad0, pad1 = pad
    padding = 0
    if pad0 == pad1 and pad0 >= 0:
        padding = pad0
    else:
        x = F.pad(x, [max(pad0, 0), max(pad1, 0), max(pad0, 0), max(pad1, 0)])
        if pad0 < 0 or pad1 < 0:
            x = x[
                :,
                :,
                max(-pad0, 0) : x.shape[2] - max(-pad1, 0),
                max(-pad0, 0) : x.shape[3] - max(-pad1, 0),
            ]
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(channels, 1, *kernel.shape)
    return F.conv2d(x, weight, bias, stride=down, padding=padding, groups=channels)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Return leaky_relu(x + bias, 0.2) * sqrt(2), bias broadcast over channels (dim 1)."""
    shape = [1, -1] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), LRELU_SLOPE) * LRELU_GAIN


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each sample to unit root-mean-square over dim 1."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class PixelNorm(nn.Module):
    """Module form of ``pixel_norm`` (the first entry of the mapping network)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate; weights are stored divided by ``lr_mul``."""

    def __init__(
        self,
        in_dim: int,  # input features
        out_dim: int,  # output features
        bias_init: float = 0.0,  # initial bias value (1 for style modulation)
        lr_mul: float = 1.0,  # learning-rate multiplier (0.01 in the mapping network)
        activate: bool = False,  # apply fused leaky ReLU after the layer
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            # Scaling the product, not the [out, in] weight: one op, no weight-sized temporary.
            out = torch.addmm(self.bias * self.lr_mul, x, self.weight.t(), alpha=self.scale)
        else:
            out = F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)
        if self.activate:
            return F.leaky_relu(out, LRELU_SLOPE) * LRELU_GAIN
        return out

    def extra_repr(self) -> str:
        return (
            f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, lr_mul={self.lr_mul}, "
            f"activate={self.activate}"
        )


class _Blur(nn.Module):
    """Holds a FIR kernel as the buffer ``kernel`` (rosinality stores it in the state dict)."""

    def __init__(self, kernel: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("kernel", kernel)


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by a style, optionally demodulated.

    With ``upsample`` the convolution is a stride-2 transposed convolution followed by a FIR blur,
    which is how rosinality and NVIDIA both fuse "upsample, then convolve".
    """

    def __init__(
        self,
        in_channels: int,  # input feature maps
        out_channels: int,  # output feature maps
        kernel_size: int,  # square kernel size (3 for convs, 1 for ToRGB)
        w_dim: int,  # style vector size
        demodulate: bool = True,  # normalise each output filter to unit norm (off for ToRGB)
        upsample: bool = False,  # double the resolution
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.modulation = EqualLinear(w_dim, in_channels, bias_init=1.0)
        if upsample:
            factor = 2
            # The transposed conv output is 2H + k - 2; this padding crops the blur back to 2H.
            p = (len(BLUR_KERNEL) - factor) - (kernel_size - 1)
            self.blur_pad = ((p + 1) // 2 + factor - 1, p // 2 + 1)
            self.blur = _Blur(make_kernel(BLUR_KERNEL) * factor**2)
        self._derived_key: tuple[object, ...] | None = None
        self._derived: dict[str, torch.Tensor] = {}

    def _derived_from_weight(self, name: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        # Values that depend on the weight alone, cached while it is unchanged; never cached
        # while autograd tracks the weight (training), which needs them in its graph.
        weight = self.weight
        if torch.is_grad_enabled() and weight.requires_grad:
            return compute()
        key = (
            id(weight),
            weight.data_ptr(),
            weight._version,
            weight.dtype,
            weight.device,
            torch.is_inference_mode_enabled(),  # inference tensors cannot enter autograd later
        )
        if self._derived_key != key:
            self._derived = {}
            self._derived_key = key
        if name not in self._derived:
            with torch.no_grad():
                self._derived[name] = compute()
        return self._derived[name]

    def weight_square(self) -> torch.Tensor:
        """Sum over the kernel taps of weight^2, [out, in]; cached while the weight is unchanged."""
        return self._derived_from_weight("square", lambda: self.weight[0].square().sum([2, 3]))

    def _weight_like(self, x: torch.Tensor) -> torch.Tensor:
        # The weight in the input's memory format: oneDNN would otherwise reorder every
        # modulated weight to NHWC on each call.
        layout = _layout_of(x)
        if layout == torch.contiguous_format:
            return self.weight[0]
        return self._derived_from_weight(
            "nhwc", lambda: self.weight[0].contiguous(memory_format=layout)
        )

    def _transposed_weight_like(self, x: torch.Tensor) -> torch.Tensor:
        # conv_transpose2d takes [in, out, k, k]; kept in that layout (and the input's memory
        # format) so that oneDNN copies no weight per call.
        layout = _layout_of(x)
        return self._derived_from_weight(
            f"transposed {layout}",
            lambda: self.weight[0].transpose(0, 1).contiguous(memory_format=layout),
        )

    def _gradient_skips_weight(self, x: torch.Tensor, style: torch.Tensor) -> bool:
        # Gradients for the latent but not the weight (projection, drag): modulating the
        # activations spares the weight-gradient convolution that a modulated weight would
        # need, one of the three convolutions per layer of a step (bench/README.md).
        # A parametrized weight (pivotal tuning) is taken as trained without building it here.
        return (
            torch.is_grad_enabled()
            and (style.requires_grad or x.requires_grad)
            and not parametrize.is_parametrized(self, "weight")
            and not self.weight.requires_grad
        )

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        style_offset: torch.Tensor | None = None,
        *,
        gain: float = 1.0,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``style_offset`` [N or 1, in_channels] is added to the affine output (StyleSpace).

        The result is multiplied by ``gain`` and gets ``bias`` [out] (already multiplied by
        ``gain``) added, both for free inside the convolution.
        """
        batch = x.shape[0]
        style = self.modulation(w)
        if style_offset is not None:
            style = style + style_offset
        coef = style * self.scale  # [N, in]
        demod = None
        if self.demodulate:
            # sum_{i,k} (W[o,i,k] * coef[i])^2 = sum_i coef[i]^2 * sum_k W[o,i,k]^2
            demod = torch.rsqrt(F.linear(coef.square(), self.weight_square()) + 1e-8)
        if (
            batch == 1
            and WEIGHT_MODULATION_AT_BATCH_1
            and not self._gradient_skips_weight(x, style)
        ):
            # One [out, in] outer product folds style, demodulation and gain into the weight.
            outer = coef * gain if demod is None else (demod[0] * gain)[:, None] * coef
            if self.upsample:
                weight = self._transposed_weight_like(x) * outer.t()[:, :, None, None]
                out = F.conv_transpose2d(x, weight, stride=2)
                return upfirdn2d(out, self.blur.kernel, pad=self.blur_pad, bias=bias)
            weight = self._weight_like(x) * outer[:, :, None, None]
            return F.conv2d(x, weight, bias, padding=self.padding)
        # Batches: scale input and output instead, so one shared-weight convolution serves
        # every sample (several times faster on CPUs than a grouped convolution).
        x = x * coef.view(batch, -1, 1, 1).to(x.dtype)
        if self.upsample:
            out = F.conv_transpose2d(x, self._transposed_weight_like(x), stride=2)
            out = upfirdn2d(out, self.blur.kernel, pad=self.blur_pad)
        else:
            out = F.conv2d(x, self._weight_like(x), padding=self.padding)
        scale = demod * gain if demod is not None else None
        if scale is None:
            if gain != 1.0:
                out = out * gain
            return out if bias is None else out + bias.view(1, -1, 1, 1)
        scale = scale.view(batch, -1, 1, 1).to(out.dtype)
        if bias is None:
            return out * scale
        return torch.addcmul(bias.view(1, -1, 1, 1), out, scale)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, out={self.out_channels}, kernel={self.kernel_size}, "
            f"upsample={self.upsample}, demodulate={self.demodulate}"
        )


class NoiseInjection(nn.Module):
    """Adds per-pixel noise scaled by a learned strength (``weight``, initialised to 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    """Bias plus leaky ReLU with gain sqrt(2); the bias is named like rosinality's ``activate``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ConstantInput(nn.Module):
    """The learned 4x4 constant the synthesis starts from."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    """Modulated conv, then noise, then bias + leaky ReLU (+ optional clamp, as NVIDIA does)."""

    def __init__(
        self,
        in_channels: int,  # input feature maps
        out_channels: int,  # output feature maps
        w_dim: int,  # style vector size
        upsample: bool = False,  # double the resolution
        conv_clamp: float | None = None,  # clamp activations to +-conv_clamp; None = no clamp
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)
        self.conv_clamp = conv_clamp

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise: torch.Tensor | None,
        style_offset: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # gain * leaky_relu(conv + noise + bias) = leaky_relu(gain*conv + gain*noise + gain*bias)
        bias = (self.activate.bias * LRELU_GAIN).to(x.dtype)
        out = self.conv(x, w, style_offset, gain=LRELU_GAIN, bias=bias)
        strength = (self.noise.weight * LRELU_GAIN).to(out.dtype)
        if may_modify(out):
            if noise is not None:
                out.addcmul_(noise.to(out.dtype), strength)
            F.leaky_relu_(out, LRELU_SLOPE)
            if self.conv_clamp is not None:
                out.clamp_(-self.conv_clamp, self.conv_clamp)
            return out
        if noise is not None:
            out = torch.addcmul(out, noise.to(out.dtype), strength)
        out = F.leaky_relu(out, LRELU_SLOPE)
        if self.conv_clamp is not None:
            out = out.clamp(-self.conv_clamp, self.conv_clamp)
        return out


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB (no demodulation), added to the upsampled running image."""

    def __init__(
        self,
        in_channels: int,  # input feature maps
        w_dim: int,  # style vector size
        upsample: bool = True,  # upsample the incoming skip image (False for the 4x4 block)
        conv_clamp: float | None = None,  # clamp the RGB contribution; None = no clamp
    ) -> None:
        super().__init__()
        if upsample:
            # rosinality names this buffer ``upsample.kernel``; the x4 keeps the mean after zero
            # insertion.
            self.upsample = _Blur(make_kernel(BLUR_KERNEL) * 4)
        self.conv = ModulatedConv2d(in_channels, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.conv_clamp = conv_clamp

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        skip: torch.Tensor | None = None,
        style_offset: torch.Tensor | None = None,
    ) -> torch.Tensor:
        out = self.conv(x, w, style_offset, bias=self.bias.view(3).to(x.dtype))
        if self.conv_clamp is not None:
            out = out.clamp(-self.conv_clamp, self.conv_clamp)
        if skip is not None:
            skip = upsample_skip(skip, self.upsample.kernel)
            out = out.add_(skip) if may_modify(out) else out + skip
        return out


def upsample_skip(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Double the resolution of a running RGB image (zero insertion + FIR, pad (2, 1))."""
    if _is_default_upsample_kernel(kernel):
        return _upsample_axis(_upsample_axis(image, 3), 2)
    return upfirdn2d(image, kernel, up=2, pad=(2, 1))


_default_kernels: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _is_default_upsample_kernel(kernel: torch.Tensor) -> bool:
    # Compared by value on every call (a 4x4 equality costs microseconds): a cache keyed by
    # the buffer's address would answer for a different tensor once that memory is reused.
    if kernel.shape != (4, 4):
        return False
    key = (kernel.device, kernel.dtype)
    if key not in _default_kernels:
        _default_kernels[key] = make_kernel(BLUR_KERNEL).to(kernel.device, kernel.dtype) * 4
    return bool(torch.equal(kernel, _default_kernels[key]))


def _upsample_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    # The [1, 3, 3, 1] / 4 FIR after zero insertion, one axis, as its two phases:
    # out[2m] = (x[m-1] + 3 x[m]) / 4 and out[2m+1] = (3 x[m] + x[m+1]) / 4 (zeros outside).
    # Element-wise, this is ~100x faster on CPUs than oneDNN's 3-channel depthwise convolution.
    size = x.shape[dim]
    padded = F.pad(x, [0, 0] * (x.ndim - 1 - dim) + [1, 1])
    before, centre, after = (padded.narrow(dim, i, size) for i in range(3))
    out = torch.stack([torch.lerp(centre, before, 0.25), torch.lerp(centre, after, 0.25)], dim + 1)
    shape = list(x.shape)
    shape[dim] = 2 * size
    return out.reshape(shape)


class ResidualUpsample(nn.Module):
    """Shortcut of NVIDIA's 'resnet' synthesis blocks: 1x1 conv (no bias), then FIR upsampling x2.

    Only generators built with ``architecture="resnet"`` have these (keys ``skips.{k}.*``).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.upsample = _Blur(make_kernel(BLUR_KERNEL) * 4)
        self.scale = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample_skip(F.conv2d(x, self.weight * self.scale), self.upsample.kernel)
