"""Differentiable augmentations shown to the discriminator, for training GANs on small data sets.

Two recipes share one module:

* DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", 2020):
  colour jitter, translation by up to 1/8 of the size with zero fill, and a cutout of half the
  size, applied to every real and fake image.
* ADA-style (Karras et al., "Training Generative Adversarial Networks with Limited Data", 2020):
  flips, 90-degree rotations, integer translation, scaling/rotation/fractional translation and
  colour transforms, each applied to a sample with probability ``p``; ``AdaController`` raises p
  when the discriminator overfits (r_t = E[sign(D(real))] above the target) and lowers it
  otherwise. This is a simplified pipeline (bilinear resampling, reflection padding), not
  NVIDIA's wavelet-filtered one; keep p below about 0.8 so the augmentations do not leak.

All randomness comes from the global torch generator, whose state the trainer checkpoints.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.training.config import AugmentMode

DIFFAUGMENT_OPS = ("color", "translation", "cutout")
_LUMA = torch.tensor([1.0, 1.0, 1.0]) / math.sqrt(3.0)  # grey axis of RGB colour space


# ---------------------------------------------------------------------------------------------
# DiffAugment


def _rand(batch: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(batch, 1, 1, 1, device=like.device, dtype=like.dtype)


def diff_color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image."""
    batch = x.shape[0]
    x = x + (_rand(batch, x) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(batch, x) * 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(batch, x) + 0.5) + mean


def _shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, fill_zero: bool) -> torch.Tensor:
    """Move each image by integer (dy, dx) [B]; uncovered pixels become 0 or repeat the edge."""
    batch, _, height, width = x.shape
    rows = torch.arange(height, device=x.device).view(1, height, 1) - dy.view(batch, 1, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width) - dx.view(batch, 1, 1)
    if fill_zero:
        padded = F.pad(x, [1, 1, 1, 1])
        rows = rows.clamp(-1, height) + 1
        cols = cols.clamp(-1, width) + 1
    else:
        padded = x
        rows = rows.clamp(0, height - 1)
        cols = cols.clamp(0, width - 1)
    index = torch.arange(batch, device=x.device).view(batch, 1, 1)
    return padded.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2)


def diff_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Translate each image by up to ``ratio`` of its size, filling with zeros."""
    batch, _, height, width = x.shape
    sy, sx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (batch,), device=x.device)
    dx = torch.randint(-sx, sx + 1, (batch,), device=x.device)
    return _shift(x, dy, dx, fill_zero=True)


def diff_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` times the image size at a random place in each image."""
    batch, _, height, width = x.shape
    ch, cw = int(height * ratio + 0.5), int(width * ratio + 0.5)
    cy = torch.randint(0, height + (1 - ch % 2), (batch, 1, 1), device=x.device)
    cx = torch.randint(0, width + (1 - cw % 2), (batch, 1, 1), device=x.device)
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    inside = (
        (rows >= cy - ch // 2)
        & (rows < cy - ch // 2 + ch)
        & (cols >= cx - cw // 2)
        & (cols < cx - cw // 2 + cw)
    )
    return x * (~inside).unsqueeze(1).to(x.dtype)


def diffaugment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Apply the comma-separated DiffAugment ``policy`` ("color,translation,cutout")."""
    for op in filter(None, (p.strip() for p in policy.split(","))):
        if op == "color":
            x = diff_color(x)
        elif op == "translation":
            x = diff_translation(x)
        elif op == "cutout":
            x = diff_cutout(x)
        else:
            raise ValueError(f"unknown DiffAugment op {op!r}; use {', '.join(DIFFAUGMENT_OPS)}")
    return x


# ---------------------------------------------------------------------------------------------
# ADA-style pipeline


def _chance(batch: int, p: float, device: torch.device) -> torch.Tensor:
    return torch.rand(batch, device=device) < p


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, *([1] * (a.ndim - 1))), a, b)


def ada_augment(x: torch.Tensor, p: float) -> torch.Tensor:
    """Augment images [B, 3, H, W] (square) with every transform at probability ``p``."""
    if p <= 0:
        return x
    batch, _, height, width = x.shape
    device = x.device
    # Pixel blitting: exact and cheap.
    x = _where(_chance(batch, p, device), x.flip(3), x)
    turns = torch.randint(0, 4, (batch,), device=device) * _chance(batch, p, device)
    if height == width:
        rotated = x
        for k in (1, 2, 3):
            rotated = _where(turns == k, torch.rot90(x, k, dims=(2, 3)), rotated)
        x = rotated
    shift_on = _chance(batch, p, device)
    dy = (torch.rand(batch, device=device) * 2 - 1) * 0.125 * height
    dx = (torch.rand(batch, device=device) * 2 - 1) * 0.125 * width
    x = _shift(x, dy.round().long() * shift_on, dx.round().long() * shift_on, fill_zero=False)

    # General geometry: one resampling for scale, rotation and fractional translation.
    scale = torch.exp2(torch.randn(batch, device=device) * 0.2)
    scale = torch.where(_chance(batch, p, device), scale, torch.ones_like(scale))
    p_rot = 1 - math.sqrt(max(0.0, 1 - p))  # two chances to rotate, as ADA does
    angle = (torch.rand(batch, device=device) * 2 - 1) * math.pi
    angle = torch.where(_chance(batch, p_rot, device), angle, torch.zeros_like(angle))
    shift = torch.randn(batch, 2, device=device) * 0.125 * 2  # grid units span 2 per image side
    shift = torch.where(_chance(batch, p, device)[:, None], shift, torch.zeros_like(shift))
    if bool((scale != 1).any() or (angle != 0).any() or (shift != 0).any()):
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
        ).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # Colour: one 3x3 matrix plus offset per image, around the grey axis.
    eye = torch.eye(3, device=device).expand(batch, 3, 3)
    v = _LUMA.to(device)
    vvt = torch.outer(v, v).expand(batch, 3, 3)
    brightness = torch.randn(batch, device=device) * 0.2 * _chance(batch, p, device)
    contrast = torch.exp2(torch.randn(batch, device=device) * 0.5)
    contrast = torch.where(_chance(batch, p, device), contrast, torch.ones_like(contrast))
    hue = (torch.rand(batch, device=device) * 2 - 1) * math.pi * _chance(batch, p, device)
    saturation = torch.exp2(torch.randn(batch, device=device))
    saturation = torch.where(_chance(batch, p, device), saturation, torch.ones_like(saturation))
    if bool(
        (brightness != 0).any()
        or (contrast != 1).any()
        or (hue != 0).any()
        or (saturation != 1).any()
    ):
        cross = torch.tensor(
            [[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]], device=device
        )
        c, s = torch.cos(hue).view(-1, 1, 1), torch.sin(hue).view(-1, 1, 1)
        rotate = c * eye + s * cross + (1 - c) * vvt  # Rodrigues: rotation about the grey axis
        saturate = vvt + saturation.view(-1, 1, 1) * (eye - vvt)
        matrix = contrast.view(-1, 1, 1) * (saturate @ rotate)
        x = torch.einsum("bij,bjhw->bihw", matrix.to(x.dtype), x) + brightness.view(-1, 1, 1, 1).to(
            x.dtype
        )
    return x


class Augmenter:
    """The augmentation the discriminator sees, with its (checkpointed) adaptive probability."""

    def __init__(
        self,
        mode: AugmentMode,
        *,
        policy: str = "color,translation,cutout",
        p: float = 0.0,
        target: float = 0.6,
        interval: int = 4,
        speed_images: float = 100_000.0,
    ) -> None:
        self.mode = mode
        self.policy = policy
        self.p = float(p)
        self.target = target
        self.interval = interval
        self.speed_images = speed_images
        self.sign_sum = 0.0  # sum of sign(D(real)) since the last adjustment
        self.count = 0.0  # logits summed in sign_sum
        self.steps = 0  # steps since the last adjustment
        self.rt = 0.0  # last r_t, for logs
        if mode == "diffaugment":
            diffaugment(torch.zeros(1, 3, 8, 8), policy)  # validate the policy now

    @property
    def adaptive(self) -> bool:
        """True when p follows r_t."""
        return self.mode == "ada" and self.target > 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.mode == "diffaugment":
            return diffaugment(images, self.policy)
        if self.mode == "ada":
            return ada_augment(images, self.p)
        return images

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Record D's logits on (augmented) real images for the next adjustment."""
        if self.adaptive:
            self.sign_sum += float(torch.sign(real_logits.detach()).sum())
            self.count += real_logits.numel()

    def maybe_adjust(self, batch_size: int, reduce: object = None) -> None:
        """Every ``interval`` steps, move p by sign(r_t - target) * images / speed.

        ``reduce`` sums a float tensor over processes (distributed training) when given.
        """
        if not self.adaptive:
            return
        self.steps += 1
        if self.steps < self.interval:
            return
        stats = torch.tensor([self.sign_sum, self.count], dtype=torch.float64)
        if callable(reduce):
            stats = reduce(stats)
        sign_sum, count = stats.tolist()
        if count > 0:
            self.rt = sign_sum / count
            sign = float(self.rt > self.target) - float(self.rt < self.target)
            step = sign * batch_size * self.interval / self.speed_images
            self.p = min(max(self.p + step, 0.0), 1.0)
        self.sign_sum = self.count = 0.0
        self.steps = 0

    def state_dict(self) -> dict[str, float | int | str]:
        """Everything needed to continue exactly."""
        return {
            "mode": self.mode,
            "p": self.p,
            "sign_sum": self.sign_sum,
            "count": self.count,
            "steps": self.steps,
            "rt": self.rt,
        }

    def load_state_dict(self, state: dict[str, float | int | str]) -> None:
        """Restore ``state_dict`` output."""
        self.p = float(state["p"])
        self.sign_sum = float(state["sign_sum"])
        self.count = float(state["count"])
        self.steps = int(state["steps"])
        self.rt = float(state["rt"])
