"""The generator facade every other part of the app uses, whatever network or file is behind it.

Vocabulary follows NVIDIA: ``z`` is ``[N, z_dim]``, ``w`` is ``[N, w_dim]``, ``ws`` is
``[N, num_ws, w_dim]`` (one w per style input), images are float ``[N, 3, H, W]`` in [-1, 1] and
``rgb`` is ``uint8 [H, W, 3]`` for display.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

NoiseMode = Literal["const", "random", "none"]
NOISE_MODES: tuple[NoiseMode, ...] = ("const", "random", "none")
GeneratorKind = Literal["stylegan2", "progan"]


@dataclass(frozen=True, slots=True)
class CheckpointSource:
    """Where a loaded generator came from."""

    path: Path | None  # file it was read from; None for a network built in memory
    format_name: str  # e.g. "latentstudio", "rosinality .pt"
    detail: str = ""  # extra human-readable facts, e.g. "g_ema + latent_avg"


def check_shape(tensor: torch.Tensor, shape: Sequence[int | None], name: str) -> None:
    """Raise ``ValueError`` naming ``name`` when ``tensor`` does not have ``shape`` (None = any)."""
    if tensor.ndim != len(shape) or any(
        want is not None and have != want for have, want in zip(tensor.shape, shape, strict=True)
    ):
        expected = "[" + ", ".join("N" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name} must have shape {expected}, got {list(tensor.shape)}")


class Generator(nn.Module):
    """Base class of every generator: mapping (z -> w) and synthesis (ws -> images).

    Subclasses set the attributes below in ``__init__`` and implement ``mapping_raw`` and
    ``synthesis``. Truncation, seeds and image conversion are shared here.
    """

    kind: GeneratorKind
    resolution: int  # output height and width in pixels
    z_dim: int  # input latent size
    w_dim: int  # intermediate latent size
    num_ws: int  # number of style inputs (rows of ws)
    c_dim: int = 0  # class-label size; 0 = unconditional
    w_avg: torch.Tensor  # [w_dim] buffer, centre of truncation

    def __init__(self) -> None:
        super().__init__()
        self.name = ""  # display name
        self.source: CheckpointSource | None = None  # set by the loader
        self.provenance: dict[str, Any] = {}  # JSON facts about the weights (data, training)

    # -- to implement -------------------------------------------------------------------------
    def mapping_raw(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Map ``z`` [N, z_dim] to untruncated ``w`` [N, w_dim]."""
        raise NotImplementedError

    def synthesis(
        self,
        ws: torch.Tensor,
        *,
        noise_mode: NoiseMode = "const",
        **options: Any,
    ) -> torch.Tensor:
        """Render ``ws`` [N, num_ws, w_dim] to images [N, 3, H, W] in [-1, 1]."""
        raise NotImplementedError

    def architecture(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-compatible data (the native file format)."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def mapping(
        self,
        z: torch.Tensor,
        *,
        truncation_psi: float = 1.0,
        c: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Map ``z`` [N, z_dim] to ``w`` [N, w_dim] truncated to ``w_avg`` by ``truncation_psi``."""
        check_shape(z, (None, self.z_dim), "z")
        w = self.mapping_raw(z, c)
        return self.truncate(w, truncation_psi)

    def truncate(self, w: torch.Tensor, truncation_psi: float) -> torch.Tensor:
        """Return ``w_avg + psi * (w - w_avg)`` for w [..., w_dim]."""
        if truncation_psi == 1.0:
            return w
        w_avg = self.w_avg.to(w.dtype)
        return w_avg.lerp(w, truncation_psi)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """Repeat ``w`` [N, w_dim] to ``ws`` [N, num_ws, w_dim]."""
        check_shape(w, (None, self.w_dim), "w")
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    def forward(
        self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: NoiseMode = "const"
    ) -> torch.Tensor:
        """Render images [N, 3, H, W] from ``z`` [N, z_dim]."""
        return self.synthesis(
            self.broadcast(self.mapping(z, truncation_psi=truncation_psi)), noise_mode=noise_mode
        )

    @property
    def device(self) -> torch.device:
        """The device the generator's weights live on."""
        return self.w_avg.device

    def num_parameters(self) -> int:
        """Count learnable parameters."""
        return sum(p.numel() for p in self.parameters())

    def fingerprint(self) -> str:
        """A short stable hash of the architecture and weights, to tie files to this model."""
        digest = hashlib.sha256(repr(sorted(self.architecture().items())).encode())
        for key, tensor in sorted(self.state_dict().items()):
            digest.update(key.encode())
            # A strided sample keeps this fast on 1024-px models while still telling weights apart.
            flat = tensor.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 4096)].to(torch.float32).cpu().numpy()
            digest.update(sample.tobytes())
        return digest.hexdigest()[:16]


def seed_to_z(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """Return ``z`` [len(seeds), z_dim] the way NVIDIA's ``generate.py`` makes it from seeds."""
    rows = [np.random.RandomState(seed % (2**32)).randn(z_dim) for seed in seeds]
    return torch.from_numpy(np.stack(rows)).to(torch.float32)


def to_rgb_u8(images: torch.Tensor) -> list[np.ndarray]:
    """Convert images [N, 3, H, W] in [-1, 1] to a list of ``uint8`` arrays [H, W, 3]."""
    check_shape(images, (None, 3, None, None), "images")
    scaled = (images.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return [np.ascontiguousarray(img.permute(1, 2, 0).cpu().numpy()) for img in scaled]


def parse_seeds(text: str, max_count: int = 1_000_000) -> list[int]:
    """Parse '0-7', '3,5,9' or '1-3,10' into a list of seeds (each below 2**32).

    Raises:
        ValueError: the text is not a comma-separated list of integers and ranges, or names
            more than ``max_count`` seeds.
    """
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        low_text, _, high_text = part.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if high_text else low
        except ValueError:
            raise ValueError(f"bad seed list {text!r}: use e.g. '0-7' or '1,5,9'") from None
        if low < 0 or high < low or high >= 2**32:
            raise ValueError(f"bad seed range {part!r} in {text!r}: seeds are ordered, 0..2**32-1")
        if len(seeds) + high - low + 1 > max_count:
            raise ValueError(f"too many seeds in {text!r} (at most {max_count:,})")
        seeds.extend(range(low, high + 1))
    if not seeds:
        raise ValueError(f"bad seed list {text!r}: no seeds given")
    return seeds
