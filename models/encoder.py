"""An encoder from images to W+ latents, used to start photo projection close to the answer.

It predicts offsets from the generator's average latent (``ws = w_avg + net(image)``), so an
untrained encoder starts exactly where projection otherwise starts. Files record the fingerprint
of the generator they were trained for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.formats.native import load_state_dict_strict, read_network_file, write_network_file
from models.generator import check_shape

KIND = "latent-encoder"
ENCODER_SUFFIX = ".encoder.safetensors"


class LatentEncoder(nn.Module):
    """Convolutional pyramid down to 4x4, then a linear head to [num_ws, w_dim] offsets."""

    def __init__(
        self,
        num_ws: int,  # style rows of the target generator
        w_dim: int,  # latent size of the target generator
        input_size: int = 64,  # images are resized to this square size
        width: int = 32,  # channels at full resolution (doubling per halving, capped)
        max_channels: int = 256,  # channel cap
        generator_fingerprint: str = "",  # Generator.fingerprint() of the generator it encodes for
    ) -> None:
        super().__init__()
        self.num_ws = num_ws
        self.w_dim = w_dim
        self.input_size = input_size
        self.width = width
        self.max_channels = max_channels
        self.generator_fingerprint = generator_fingerprint
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.LeakyReLU(0.2)]
        channels, size = width, input_size
        while size > 4:
            out_channels = min(channels * 2, max_channels)
            layers += [
                nn.Conv2d(channels, out_channels, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(out_channels, out_channels, 3, padding=1),
                nn.LeakyReLU(0.2),
            ]
            channels, size = out_channels, size // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * 16, num_ws * w_dim)
        nn.init.zeros_(self.head.weight)  # untrained = w_avg, the projection's default start
        nn.init.zeros_(self.head.bias)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        if 2 ** int(math.log2(input_size)) != input_size or input_size < 8:
            raise ValueError(f"input_size must be a power of two >= 8, got {input_size}")

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments as JSON data."""
        return {
            "num_ws": self.num_ws,
            "w_dim": self.w_dim,
            "input_size": self.input_size,
            "width": self.width,
            "max_channels": self.max_channels,
            "generator_fingerprint": self.generator_fingerprint,
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map images [N, 3, H, W] in [-1, 1] to ws [N, num_ws, w_dim]."""
        check_shape(images, (None, 3, None, None), "images")
        if images.shape[-1] != self.input_size or images.shape[-2] != self.input_size:
            mode = "area" if images.shape[-1] > self.input_size else "bilinear"
            kwargs = {} if mode == "area" else {"align_corners": False}
            images = F.interpolate(
                images, size=(self.input_size, self.input_size), mode=mode, **kwargs
            )
        offsets = self.head(self.features(images).flatten(1))
        return self.w_avg + offsets.view(-1, self.num_ws, self.w_dim)


def save_encoder(
    encoder: LatentEncoder,
    path: str | Path,
    metrics: dict[str, Any] | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write an encoder (atomically) with its architecture and metrics.

    ``dtype`` (e.g. ``torch.float16`` to halve a shipped file) converts the floating-point
    tensors; ``load_encoder`` always returns fp32.
    """
    header = {"kind": KIND, "architecture": encoder.architecture(), "metrics": dict(metrics or {})}
    return write_network_file(path, encoder.state_dict(), header, dtype=dtype)


def load_encoder(path: str | Path) -> LatentEncoder:
    """Read an encoder written by ``save_encoder`` (eval mode, CPU, fp32).

    Raises:
        CheckpointError: missing, corrupted or not an encoder file.
    """
    tensors, header = read_network_file(path, KIND)
    encoder = LatentEncoder(**header["architecture"])
    load_state_dict_strict(encoder, tensors, Path(path))
    encoder.metrics = header.get("metrics", {})  # type: ignore[attr-defined]
    return encoder.float().eval()


def encoder_path_for(model_path: str | Path) -> Path:
    """Where the encoder for a model file lives: ``<model stem>.encoder.safetensors`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.split(".")[0] + ENCODER_SUFFIX)


def find_encoder_for(model_path: str | Path | None) -> Path | None:
    """The encoder file beside ``model_path`` if there is one."""
    if model_path is None:
        return None
    candidate = encoder_path_for(model_path)
    return candidate if candidate.is_file() else None
