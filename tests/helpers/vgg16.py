"""VGG16 weights with torchvision's key names (random values) for loss and loader tests."""

from __future__ import annotations

import torch

CONV_LAYERS = {
    0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256),
    14: (256, 256), 17: (256, 512), 19: (512, 512), 21: (512, 512), 24: (512, 512),
    26: (512, 512), 28: (512, 512),
}  # fmt: skip


def torchvision_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with torchvision's key names (random weights, small fake classifier)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for index, (cin, cout) in CONV_LAYERS.items():
        state[f"features.{index}.weight"] = (
            torch.randn(cout, cin, 3, 3, generator=g) * (2 / (cin * 9)) ** 0.5
        )
        state[f"features.{index}.bias"] = torch.randn(cout, generator=g) * 0.1
    for index in (0, 3, 6):  # the real classifier is [4096, 25088]...; only names matter here
        state[f"classifier.{index}.weight"] = torch.randn(4, 4, generator=g)
        state[f"classifier.{index}.bias"] = torch.randn(4, generator=g)
    return state


def lpips_state(seed: int = 5) -> dict[str, torch.Tensor]:
    """LPIPS v0.1's lin-layer keys and shapes (random non-negative weights)."""
    g = torch.Generator().manual_seed(seed)
    return {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g)
        for i, c in enumerate((64, 128, 256, 512, 512))
    }
