"""Convolution helpers that keep every x86-64 CPU on a safe oneDNN path.

oneDNN 3.12 (PyTorch 2.13's CPU build) corrupts the heap in the weight gradient of a *strided 1x1*
convolution when the input is channels-last and has fewer than about 8 channels, on CPUs whose best
ISA is AVX2 (implementation ``jit_1x1:avx2``, ``backward_weights``; batch > 1, one thread). AMX and
AVX-512 machines pick other kernels and never showed it; ``ONEDNN_MAX_CPU_ISA=AVX2`` selects the
same kernel there. Reproducer, outside the project (aborts with "corrupted double-linked list" or
"free(): invalid size" within a few iterations on an AVX2-only CPU)::

    torch.set_num_threads(1)
    for _ in range(200):
        x = torch.randn(4, 8, 8, 4).permute(0, 3, 1, 2)  # NHWC, 4 channels
        w = torch.randn(8, 4, 1, 1, requires_grad=True)
        F.conv2d(x, w, stride=2).sum().backward()

A 1x1 convolution with stride s and no padding reads only every s-th pixel, so subsampling first
and convolving with stride 1 is the same arithmetic and never reaches that kernel (it is also
cheaper: the convolution sees s*s times fewer pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
) -> torch.Tensor:
    """``F.conv2d`` for square kernels, with strided 1x1 convolutions done as subsample + 1x1."""
    if stride > 1 and padding == 0 and weight.shape[-1] == 1 and weight.shape[-2] == 1:
        return F.conv2d(x[:, :, ::stride, ::stride], weight, bias)
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)
