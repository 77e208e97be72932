"""VGG16 feature trunk (Simonyan & Zisserman 2015, configuration D) and an LPIPS-style distance.

The layers are numbered exactly like torchvision's ``vgg16().features`` so that its ImageNet
weight file ``vgg16-397923af.pth`` loads by key name (``features.{i}.weight``/``.bias``) without
torchvision. The distance follows LPIPS v0.1 (Zhang et al. 2018; NVIDIA's projector uses the same
through its ``vgg16.pt``): features after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, unit
normalised across channels, squared differences weighted per channel, averaged over space and
summed over layers (``../shared/reference/formats.md`` §4.1-4.2).

LPIPS's learned per-channel weights (v0.1, BSD-2-Clause, Zhang et al.) ship inside the ``lpips``
wheel on PyPI as ``lpips/weights/v0.1/vgg.pth``. The ``lpips`` package itself needs torchvision,
which this project does not install, so it is never imported: the weights are read as a plain
state dict (``weights_only``) from an installed ``lpips`` package's folder when there is one, or
from the wheel file the model manager downloads (catalog entry ``lpips-vgg``). With both files the
distance is real LPIPS; with VGG16 alone it is LPIPS's unweighted "baseline" and says so.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import CheckpointError
from models.generator import check_shape
from models.runtime import cache_dir

WEIGHTS_FILE = "vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1
# Configuration D: output channels per conv, "M" = 2x2 max pool.
CONFIG_D: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip
LPIPS_TAPS = (3, 8, 15, 22, 29)  # indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
# LPIPS input scaling: ImageNet mean/std expressed for images in [-1, 1].
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_WHEEL = "lpips-0.1.4-py3-none-any.whl"  # the catalog's download (PyPI)
LPIPS_MEMBER = "lpips/weights/v0.1/vgg.pth"  # inside the wheel / the installed package
LPIPS_TAP_CHANNELS = (64, 128, 256, 512, 512)


class VGG16Features(nn.Module):
    """The convolutional part of VGG16 with torchvision's layer indices."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for item in CONFIG_D:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(item, int)
                layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU()]
                in_channels = item
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, taps: Sequence[int] = LPIPS_TAPS) -> list[torch.Tensor]:
        """Activations after the layers ``taps`` for x [N, 3, H, W] (ImageNet-normalised)."""
        check_shape(x, (None, 3, None, None), "x")
        wanted = set(taps)
        last = max(wanted)
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                outputs.append(x)
            if index == last:
                break
        return outputs


def vgg16_weights_path(cache: str | Path | None = None) -> Path:
    """Where the model manager keeps ``vgg16-397923af.pth``: ``<cache>/models/``."""
    return cache_dir(cache) / "models" / WEIGHTS_FILE


def find_vgg16_weights(cache: str | Path | None = None) -> Path | None:
    """The VGG16 weight file in the model cache, or None when it has not been downloaded."""
    path = vgg16_weights_path(cache)
    return path if path.is_file() else None


def find_lpips_weights(cache: str | Path | None = None) -> Path | None:
    """LPIPS v0.1 VGG channel weights: an installed ``lpips`` package's file, else the wheel in
    the model cache; None when neither is there. ``lpips`` is located, never imported."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(folder) / "weights" / "v0.1" / "vgg.pth"
        if candidate.is_file():
            return candidate
    wheel = cache_dir(cache) / "models" / LPIPS_WHEEL
    return wheel if wheel.is_file() else None


def load_lpips_weights(path: str | Path) -> list[torch.Tensor]:
    """The five per-channel weight vectors [C_l] of LPIPS-VGG v0.1 (``lin{l}.model.1.weight``).

    Args:
        path: ``vgg.pth`` itself, or the ``lpips`` wheel that contains it.

    Raises:
        CheckpointError: unreadable, or not LPIPS-VGG weights.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path) and path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                data = io.BytesIO(wheel.read(LPIPS_MEMBER))
        else:
            data = io.BytesIO(path.read_bytes())
        state = torch.load(data, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, I/O and torch errors all mean "not usable"
        raise CheckpointError(path, f"cannot read LPIPS weights: {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(path, "LPIPS weights are not a state dict")
    weights = []
    for index, channels in enumerate(LPIPS_TAP_CHANNELS):
        tensor = state.get(f"lin{index}.model.1.weight")
        if not isinstance(tensor, torch.Tensor) or tensor.numel() != channels:
            raise CheckpointError(path, f"lin{index} is missing or not {channels} channel weights")
        weights.append(tensor.detach().float().reshape(channels).clone())
    return weights


def load_vgg16(path: str | Path | None = None) -> VGG16Features:
    """Load torchvision's VGG16 ImageNet weights into ``VGG16Features`` (CPU, eval, frozen).

    Only ``features.*`` tensors are used; the classifier in the file is ignored.

    Args:
        path: the ``.pth`` file; None = the model cache.

    Raises:
        CheckpointError: missing file, unreadable file, or tensors that do not fit VGG16.
    """
    path = Path(path) if path is not None else vgg16_weights_path()
    if not path.is_file():
        raise CheckpointError(path, "VGG16 weights not found (File -> Get models… downloads them)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or foreign files
        raise CheckpointError(path, f"cannot read VGG16 weights: {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(path, "not a state dict")
    network = VGG16Features()
    expected = network.state_dict()
    tensors = {key: value for key, value in state.items() if key.startswith("features.")}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            path,
            f"not torchvision VGG16 weights (missing {missing[:3]}, unexpected {unexpected[:3]})",
        )
    for key, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[key].shape:
            raise CheckpointError(path, f"{key} has the wrong shape for VGG16")
    network.load_state_dict({k: v.float() for k, v in tensors.items()})
    return network.eval().requires_grad_(False)


class LPIPSDistance(nn.Module):
    """LPIPS-style perceptual distance between images in [-1, 1].

    Args:
        trunk: the VGG16 features.
        channel_weights: per-layer non-negative weights [C_l] (LPIPS v0.1's ``lin`` layers);
            None = 1 for every channel (LPIPS's "baseline" variant, no learned weights).
        max_size: images larger than this are area-downsampled to it first (NVIDIA: 256).

    ``variant`` is "lpips" with learned weights and "baseline" without.
    """

    def __init__(
        self,
        trunk: VGG16Features,
        channel_weights: Sequence[torch.Tensor] | None = None,
        max_size: int = 256,
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.max_size = max_size
        tap_channels = LPIPS_TAP_CHANNELS
        self.variant = "baseline" if channel_weights is None else "lpips"
        if channel_weights is None:
            channel_weights = [torch.ones(c) for c in tap_channels]
        if len(channel_weights) != len(LPIPS_TAPS):
            raise ValueError(f"channel_weights needs {len(LPIPS_TAPS)} tensors")
        for index, (weights, count) in enumerate(zip(channel_weights, tap_channels, strict=True)):
            self.register_buffer(f"weight_{index}", weights.reshape(1, count, 1, 1).float())
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Channel-normalised features of images [N, 3, H, W] in [-1, 1]."""
        check_shape(images, (None, 3, None, None), "images")
        if images.shape[-1] > self.max_size or images.shape[-2] > self.max_size:
            images = F.interpolate(images, size=(self.max_size, self.max_size), mode="area")
        feats = self.trunk((images - self.shift) / self.scale)
        return [f / (f.square().sum(dim=1, keepdim=True).sqrt() + 1e-10) for f in feats]

    def distance_to(self, features: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        """Distances [N] from images [N, 3, H, W] to precomputed ``features`` (batch 1 or N)."""
        total = images.new_zeros(images.shape[0])
        for index, (mine, theirs) in enumerate(zip(self.features(images), features, strict=True)):
            weights = getattr(self, f"weight_{index}")
            total = total + ((mine - theirs).square() * weights).sum(dim=1).mean(dim=(1, 2))
        return total

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances [N] between image batches a and b, [N, 3, H, W] in [-1, 1]."""
        return self.distance_to(self.features(b), a)
