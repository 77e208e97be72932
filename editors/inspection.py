"""Layer inspection (NVIDIA's visualizer's layer widget): feature maps of any synthesis block.

``block_features`` renders the current edit state once, recording the features after every
block; ``feature_image`` turns one channel (or the mean over channels) into a grey picture with a
chosen normalisation; ``feature_stats`` summarises the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

NORMALISATIONS = ("channel", "layer", "signed")  # min-max of the map / of the block / zero grey


@dataclass(frozen=True, slots=True)
class BlockFeatures:
    """Features after each synthesis block: ``maps[block]`` is float32 [C, h, w]."""

    maps: tuple[np.ndarray, ...]
    resolutions: tuple[int, ...]


def block_features(generator: Any, state: Any) -> BlockFeatures:
    """Render ``state`` (an ``EditState``) once and keep every block's features (CPU, float32).

    Style-channel edits and localized sliders are applied; masked edits are not (they blend two
    renders, so there is no single set of features to show).

    Raises:
        ValueError: the model has no synthesis blocks to inspect (ProGAN).
    """
    from editors.rendering import Renderer
    from editors.state import resolve_styles
    from editors.stylespace import offsets_for

    if not hasattr(generator, "style_layers"):
        raise ValueError("layer inspection needs a StyleGAN2 model")
    renderer = Renderer(generator)
    args = state.render_args()
    ws = renderer.resolve_ws(args)
    offsets = offsets_for(resolve_styles(state), generator.style_layers(), ws.device)
    recorded: dict[int, np.ndarray] = {}

    def record(block: int, x: torch.Tensor) -> None:
        recorded[block] = x[0].detach().float().cpu().numpy()

    with torch.inference_mode():
        generator.synthesis(
            ws, noise_mode=state.noise_mode, style_offsets=offsets or None, feature_hook=record
        )
    order = sorted(recorded)
    return BlockFeatures(
        tuple(recorded[b] for b in order), tuple(int(recorded[b].shape[-1]) for b in order)
    )


def feature_map(features: np.ndarray, channel: int | None) -> np.ndarray:
    """One channel [h, w] of block features [C, h, w]; None = the mean over channels."""
    if channel is None:
        return features.mean(axis=0)
    if not 0 <= channel < features.shape[0]:
        raise ValueError(f"channel {channel} does not exist; the block has {features.shape[0]}")
    return features[channel]


def feature_image(
    features: np.ndarray, channel: int | None, normalisation: str = "channel"
) -> np.ndarray:
    """A grey uint8 [h, w] picture of one channel (see ``NORMALISATIONS``)."""
    values = feature_map(features, channel).astype(np.float64)
    if normalisation == "channel":
        low, high = float(values.min()), float(values.max())
    elif normalisation == "layer":
        low, high = float(features.min()), float(features.max())
    elif normalisation == "signed":
        peak = float(np.abs(values).max())
        low, high = -peak, peak
    else:
        raise ValueError(f"normalisation must be one of {', '.join(NORMALISATIONS)}")
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values) + 0.5
    return np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)


def feature_stats(features: np.ndarray, channel: int | None) -> dict[str, float]:
    """Mean, std, min, max of one channel (or the mean map) and the block's channel count."""
    values = feature_map(features, channel)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "channels": float(features.shape[0]),
    }
