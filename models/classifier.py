"""A small CNN that predicts face attributes from images; the TL-GAN recipe uses it as a labeler.

Binary attributes give logits (``predict`` turns them into probabilities); continuous attributes
(e.g. age) are regressed in standardised units and ``predict`` maps them back to the label scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.conv import conv2d
from models.formats.native import read_network_file, write_network_file
from models.generator import check_shape

KIND = "attribute-classifier"


class _ResidualStage(nn.Module):
    """Two 3x3 conv-BN-ReLU layers, the first with stride 2, plus a strided 1x1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        # models.conv.conv2d, not the module's own call: strided 1x1 weight gradients crash oneDNN
        shortcut = conv2d(x, self.shortcut.weight, stride=self.shortcut.stride[0])
        return F.relu(out + shortcut)


class AttributeClassifier(nn.Module):
    """Predicts several attributes at once from images in [-1, 1]."""

    def __init__(
        self,
        attributes: Sequence[str],  # attribute names, e.g. ["Smiling", "Eyeglasses", "age"]
        binary: Sequence[bool],  # per attribute: True = 0/1 label, False = continuous value
        input_size: int = 64,  # images are resized to this square size
        width: int = 32,  # channels of the first stage (doubling per stage)
        num_stages: int = 4,  # stride-2 residual stages
    ) -> None:
        super().__init__()
        if len(attributes) != len(binary) or not attributes:
            raise ValueError("attributes and binary must be non-empty and of equal length")
        self.attributes = list(attributes)
        self.binary = [bool(b) for b in binary]
        self.input_size = input_size
        self.width = width
        self.num_stages = num_stages
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages = []
        channels = width
        for _ in range(num_stages):
            stages.append(_ResidualStage(channels, channels * 2))
            channels *= 2
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(channels, len(self.attributes))
        # Continuous targets are learned standardised; these map predictions back to label units.
        self.register_buffer("target_mean", torch.zeros(len(self.attributes)))
        self.register_buffer("target_std", torch.ones(len(self.attributes)))

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments as JSON data."""
        return {
            "attributes": self.attributes,
            "binary": self.binary,
            "input_size": self.input_size,
            "width": self.width,
            "num_stages": self.num_stages,
        }

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Resize images [N, 3, H, W] to the input size (area filter when shrinking)."""
        check_shape(images, (None, 3, None, None), "images")
        if images.shape[-1] != self.input_size or images.shape[-2] != self.input_size:
            mode = "area" if images.shape[-1] > self.input_size else "bilinear"
            kwargs = {} if mode == "area" else {"align_corners": False}
            images = F.interpolate(
                images, size=(self.input_size, self.input_size), mode=mode, **kwargs
            )
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw outputs [N, A]: logits for binary attributes, standardised values otherwise."""
        x = self.stages(self.stem(self.prepare(images)))
        return self.head(self.dropout(x.mean(dim=(2, 3))))

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities (binary) or values in label units (continuous), [N, A]."""
        raw = self.forward(images)
        mask = torch.tensor(self.binary, device=raw.device)
        values = raw * self.target_std + self.target_mean
        return torch.where(mask, torch.sigmoid(raw), values)


def save_classifier(
    classifier: AttributeClassifier, path: str | Path, metrics: dict[str, Any] | None = None
) -> Path:
    """Write a classifier (atomically) with its architecture and validation metrics."""
    header = {
        "kind": KIND,
        "architecture": classifier.architecture(),
        "metrics": dict(metrics or {}),
    }
    return write_network_file(path, classifier.state_dict(), header)


def load_classifier(path: str | Path) -> AttributeClassifier:
    """Read a classifier written by ``save_classifier`` (eval mode, CPU).

    Raises:
        CheckpointError: missing, corrupted or not a classifier file.
    """
    from models.formats.native import load_state_dict_strict

    tensors, header = read_network_file(path, KIND)
    classifier = AttributeClassifier(**header["architecture"])
    load_state_dict_strict(classifier, tensors, Path(path))
    classifier.metrics = header.get("metrics", {})  # type: ignore[attr-defined]
    return classifier.eval()
