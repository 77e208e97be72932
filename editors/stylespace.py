"""Style space ``S`` (Wu et al., StyleSpace): per-channel edits of StyleGAN2's style vectors.

Every modulated convolution reads a style vector, the output of its affine layer; an edit here
adds an offset to single channels of those vectors (``synthesis(style_offsets=...)``), so the
generator is never changed. Edit amounts are keyed ``(style layer index, channel)`` and are in
raw style units; ``ChannelAtlas.std`` converts them to the σ the sliders show.

Localized attribute directions (``StyleDirection``) are sparse channel edits per σ of slider,
stored beside a direction set as ``<name>.stylespace.json``; ``load_directions`` attaches them to
the set, and the same slider (and ``main.py edit --direction smile=+2``) then edits locally.
Channel discovery (``discover_channels``) is in ``editors.channel_discovery``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch

from editors.named import NamedItems
from models.formats.native import atomic_write

if TYPE_CHECKING:
    from models.stylegan2 import StyleLayer

StyleKey = tuple[int, int]  # (style layer index, channel)
FloatArray = npt.NDArray[np.float32]

FILE_KIND = "latentstudio-style-directions"
SCHEMA_VERSION = 1
STYLE_SUFFIX = ".stylespace.json"


class StyleFileError(ValueError):
    """A style-direction file is missing, corrupted or does not fit the model."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def style_amounts(values: Mapping[Any, float]) -> Mapping[StyleKey, float]:
    """Read-only ``{(layer, channel): amount}`` with zero amounts dropped."""
    result = {}
    for key, value in dict(values).items():
        layer, channel = int(key[0]), int(key[1])
        if not math.isfinite(float(value)):
            raise ValueError(f"style channel {layer}:{channel} has a non-finite amount")
        if float(value) != 0.0:
            result[(layer, channel)] = float(value)
    return MappingProxyType(result)


def check_style_keys(keys: Iterable[StyleKey], layers: Sequence[StyleLayer]) -> None:
    """Raise ``ValueError`` naming the first key that is not a channel of ``layers``."""
    for layer, channel in keys:
        if not 0 <= layer < len(layers):
            raise ValueError(
                f"style layer {layer} does not exist; this model has {len(layers)} style layers"
            )
        if not 0 <= channel < layers[layer].channels:
            raise ValueError(
                f"style layer {layer} ({layers[layer].name}) has {layers[layer].channels} "
                f"channels; channel {channel} does not exist"
            )


def add_amounts(*parts: Mapping[StyleKey, float]) -> dict[StyleKey, float]:
    """Sum several ``{(layer, channel): amount}`` maps."""
    total: dict[StyleKey, float] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0.0) + float(value)
    return total


def offsets_for(
    amounts: Mapping[StyleKey, float],
    layers: Sequence[StyleLayer],
    device: torch.device | str = "cpu",
) -> dict[int, torch.Tensor]:
    """``synthesis(style_offsets=...)`` for channel amounts: ``{layer: [1, channels]}``."""
    check_style_keys(amounts, layers)
    offsets: dict[int, torch.Tensor] = {}
    for (layer, channel), value in sorted(amounts.items()):
        if layer not in offsets:
            offsets[layer] = torch.zeros(1, layers[layer].channels)
        offsets[layer][0, channel] += value
    return {layer: tensor.to(device) for layer, tensor in offsets.items()}


def flat_index(layers: Sequence[StyleLayer]) -> list[int]:
    """Start of each style layer in a flat vector of every channel (length ``len + 1``)."""
    starts = [0]
    for layer in layers:
        starts.append(starts[-1] + layer.channels)
    return starts


def key_of(flat: int, layers: Sequence[StyleLayer]) -> StyleKey:
    """The ``(layer, channel)`` of position ``flat`` in the flat channel vector."""
    starts = flat_index(layers)
    layer = int(np.searchsorted(starts, flat, side="right") - 1)
    return (layer, flat - starts[layer])


# -------------------------------------------------------------------------------------------
# Localized directions


@dataclass(frozen=True, slots=True, eq=False)
class StyleDirection:
    """A sparse style-space edit per σ of slider: ``amount σ`` adds ``amount * values``."""

    name: str  # the attribute it localizes, e.g. "smile"
    channels: tuple[StyleKey, ...]  # the channels it moves
    values: FloatArray  # [K] style units per σ
    region: str = ""  # where it is meant to act, e.g. "lower face"
    metrics: Mapping[str, float] = field(default_factory=dict)  # measured locality etc.
    fitted_with: Mapping[str, object] = field(default_factory=dict)
    # Blended only inside this landmark region of the picture (``regions.region_mask``), for
    # models whose channels are not local by themselves; "" = applied everywhere.
    mask_region: str = ""
    mask_grow: float = 1.0  # the region's hull scaled about its centre
    feather: float = 0.03  # edge softness as a fraction of the picture size
    block_resolution: int = 16  # synthesis block where the features are blended

    def __post_init__(self) -> None:
        channels = tuple((int(a), int(b)) for a, b in self.channels)
        values = np.array(self.values, dtype=np.float32, copy=True).reshape(-1)
        if not self.name.strip():
            raise ValueError("a style direction needs a name")
        if len(channels) != values.size or not channels:
            raise ValueError(
                f"style direction {self.name!r}: {len(channels)} channels, {values.size} values"
            )
        if len(set(channels)) != len(channels) or not np.isfinite(values).all():
            raise ValueError(f"style direction {self.name!r}: repeated channels or bad values")
        values.setflags(write=False)
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "values", values)
        metrics = {str(k): float(v) for k, v in dict(self.metrics).items()}
        object.__setattr__(self, "metrics", MappingProxyType(metrics))
        object.__setattr__(self, "fitted_with", MappingProxyType(dict(self.fitted_with)))

    def amounts(self, sigma: float) -> dict[StyleKey, float]:
        """Channel amounts for ``sigma`` σ of slider."""
        return {
            key: float(sigma) * float(v) for key, v in zip(self.channels, self.values, strict=True)
        }


@dataclass(frozen=True, slots=True, eq=False)
class StyleDirectionSet(NamedItems["StyleDirection"]):
    """Localized versions of some directions of a set, tied to one model."""

    directions: tuple[StyleDirection, ...] = ()
    fingerprint: str | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        directions = tuple(self.directions)
        names = [d.name for d in directions]
        if len(set(names)) != len(names):
            raise ValueError("style direction names must be unique")
        object.__setattr__(self, "directions", directions)

    def merged(self, directions: Iterable[StyleDirection]) -> StyleDirectionSet:
        """A set with ``directions`` added; one with an existing name replaces it."""
        incoming = {d.name: d for d in directions}
        kept = [incoming.pop(d.name, d) for d in self.directions]
        return StyleDirectionSet((*kept, *incoming.values()), self.fingerprint, self.source)


def style_directions_path(directions_path: str | Path) -> Path:
    """``X.stylespace.json`` beside a direction file ``X.directions.json``."""
    path = Path(directions_path)
    name = path.name
    for suffix in (".directions.json", ".directions.npz", ".json", ".npz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + STYLE_SUFFIX)


def style_directions_to_json(styles: StyleDirectionSet) -> dict[str, Any]:
    """JSON data for ``styles`` (channels and values inline: they are few)."""
    return {
        "kind": FILE_KIND,
        "schema_version": SCHEMA_VERSION,
        "model_fingerprint": styles.fingerprint,
        "directions": [
            {
                "name": d.name,
                "region": d.region,
                "channels": [list(key) for key in d.channels],
                "values": [round(float(v), 6) for v in d.values],
                "metrics": dict(d.metrics),
                "fitted_with": dict(d.fitted_with),
                "mask_region": d.mask_region,
                "mask_grow": d.mask_grow,
                "feather": d.feather,
                "block_resolution": d.block_resolution,
            }
            for d in styles
        ],
    }


def style_directions_from_json(
    document: Mapping[str, Any], source: Path | None = None
) -> StyleDirectionSet:
    """Rebuild a set from ``style_directions_to_json`` data.

    Raises:
        ValueError: wrong kind, newer schema or inconsistent entries.
    """
    if document.get("kind") != FILE_KIND:
        raise ValueError("not a Latent Studio style-direction file")
    if int(document.get("schema_version", 0)) > SCHEMA_VERSION:
        raise ValueError("written by a newer version of the app")
    entries = document.get("directions")
    if not isinstance(entries, list):
        raise ValueError("no list of directions")
    try:
        directions = tuple(
            StyleDirection(
                name=str(entry["name"]),
                channels=tuple(tuple(key) for key in entry["channels"]),
                values=np.asarray(entry["values"], np.float32),
                region=str(entry.get("region") or ""),
                metrics=entry.get("metrics") or {},
                fitted_with=entry.get("fitted_with") or {},
                mask_region=str(entry.get("mask_region") or ""),
                mask_grow=float(entry.get("mask_grow", 1.0)),
                feather=float(entry.get("feather", 0.03)),
                block_resolution=int(entry.get("block_resolution", 16)),
            )
            for entry in entries
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"invalid style direction entry ({exc})") from exc
    return StyleDirectionSet(directions, document.get("model_fingerprint"), source)


def save_style_directions(styles: StyleDirectionSet, path: str | Path) -> Path:
    """Write ``styles`` to ``path`` (atomically)."""
    path = Path(path)
    text = json.dumps(style_directions_to_json(styles), indent=1, allow_nan=False)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def load_style_directions(path: str | Path) -> StyleDirectionSet:
    """Read a file written by ``save_style_directions``.

    Raises:
        StyleFileError: missing, unreadable or inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise StyleFileError(path, "file not found")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StyleFileError(path, f"not a readable JSON file ({exc})") from exc
    if not isinstance(document, dict):
        raise StyleFileError(path, "not a Latent Studio style-direction file")
    try:
        return style_directions_from_json(document, path)
    except ValueError as exc:
        raise StyleFileError(path, str(exc)) from exc


def find_style_directions(directions_path: str | Path) -> StyleDirectionSet | None:
    """The localized directions beside ``directions_path``, or None when there are none.

    Raises:
        StyleFileError: the file exists but is broken.
    """
    path = style_directions_path(directions_path)
    return load_style_directions(path) if path.is_file() else None


# -------------------------------------------------------------------------------------------
# Style space of a W direction


def style_delta(
    generator: Any, vector: npt.ArrayLike, rows: range | None = None
) -> list[np.ndarray]:
    """How a W step along ``vector`` moves each style vector: one [channels] array per layer.

    The affine layers are linear plus a bias, so the change does not depend on the latent.
    Layers whose ws row is outside ``rows`` get zeros.
    """
    layers = generator.style_layers()
    step = torch.tensor(np.asarray(vector, np.float32), device=generator.device)
    zero = torch.zeros_like(step)
    deltas = []
    with torch.no_grad():
        for layer in layers:
            modulation = generator.get_submodule(layer.name).conv.modulation
            if rows is not None and layer.ws_row not in rows:
                deltas.append(np.zeros(layer.channels, np.float32))
                continue
            change = modulation(step[None].float()) - modulation(zero[None].float())
            deltas.append(change[0].float().cpu().numpy())
    return deltas


def style_statistics(
    generator: Any, *, num_samples: int = 2000, seed: int = 0, truncation_psi: float = 1.0
) -> tuple[FloatArray, FloatArray]:
    """Mean and std of every style channel over sampled latents (flat vectors, ``flat_index``)."""
    from models.generator import seed_to_z

    rng = np.random.RandomState(seed)
    seeds = [int(s) for s in rng.randint(0, 2**31 - 1, num_samples)]
    total: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, num_samples, 500):
            z = seed_to_z(seeds[start : start + 500], generator.z_dim).to(generator.device)
            ws = generator.broadcast(generator.mapping(z, truncation_psi=truncation_psi))
            styles = generator.styles(ws.float())
            total.append(torch.cat(styles, dim=1).float().cpu().numpy())
    values = np.concatenate(total)
    return values.mean(0).astype(np.float32), values.std(0).astype(np.float32)
