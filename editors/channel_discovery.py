"""Where each style channel acts: finite-difference maps against landmark face regions.

For a few generated faces, every style channel is pushed by a few of its standard deviations
and the absolute pixel change is mapped at low resolution; the share of that change falling in
each face region (``editors.regions``) is averaged over the faces. The result, a
``ChannelAtlas``, is cached per model in the user cache folder. ``localize_direction`` then turns
a W attribute direction into a sparse style edit from the channels it moves most that act inside
the attribute's region (StyleSpace's attribute-specific, localized channels).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from editors.regions import REGION_NAMES, face_landmarks, intended_mask, region_masks
from editors.stylespace import (
    StyleDirection,
    StyleDirectionSet,
    flat_index,
    key_of,
    style_delta,
    style_statistics,
)
from models.generator import seed_to_z, to_rgb_u8
from models.jobs import OnStep, Progress, ShouldStop, check_stop, report

ATLAS_REGIONS = (*REGION_NAMES, "lower face", "face")
ATLAS_VERSION = 1
MAP_SIZE = 64  # change maps are compared with the regions at most at this size


@dataclass(frozen=True, slots=True, eq=False)
class ChannelAtlas:
    """Per style channel: where its change lands, how strong it is, and its spread."""

    shares: np.ndarray  # [C, len(ATLAS_REGIONS)] mean share of the change per region
    magnitude: np.ndarray  # [C] mean absolute change per pixel (0-255 RGB units, summed)
    mean: np.ndarray  # [C] mean style value over samples
    std: np.ndarray  # [C] std of the style value (the σ of channel sliders)
    layer_sizes: tuple[int, ...]  # channels per style layer
    faces: int  # faces the maps were averaged over
    step_sigmas: float  # how far each channel was pushed
    fingerprint: str = ""

    def region_share(self, region: str) -> np.ndarray:
        """[C] share of each channel's change inside ``region`` (one of ``ATLAS_REGIONS``)."""
        if region not in ATLAS_REGIONS:
            raise ValueError(f"unknown region {region!r}; use one of {', '.join(ATLAS_REGIONS)}")
        return self.shares[:, ATLAS_REGIONS.index(region)]

    def top_channels(self, region: str, count: int = 20, min_share: float = 0.5) -> list[int]:
        """Flat indices of the strongest channels acting mostly inside ``region``."""
        share = self.region_share(region)
        score = np.where(share >= min_share, share * self.magnitude, -1.0)
        order = np.argsort(-score)
        return [int(i) for i in order[:count] if score[i] > 0]


def _region_stack(landmarks: np.ndarray, size: int) -> torch.Tensor:
    masks = region_masks(landmarks, size)
    planes = [masks[name] for name in REGION_NAMES]
    planes += [intended_mask("lower face", landmarks, size), intended_mask("face", landmarks, size)]
    return torch.from_numpy(np.stack(planes).astype(np.float32))


def discover_channels(
    generator: Any,
    *,
    faces: int = 6,
    step_sigmas: float = 3.0,
    truncation_psi: float = 0.7,
    seed: int = 2024,
    batch_size: int = 32,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> ChannelAtlas:
    """Map every style channel of ``generator`` against the face regions of ``faces`` faces.

    Cost: ``faces * channels / batch_size`` syntheses of ``batch_size`` pictures (the demo model:
    about 1,400 channels, a minute or two on one CPU core).

    Raises:
        ValueError: not a StyleGAN2 model, or no face was detected in the samples.
        Cancelled: ``should_stop`` said so.
    """
    if not hasattr(generator, "style_layers"):
        raise ValueError("style space needs a StyleGAN2 model")
    layers = generator.style_layers()
    starts = flat_index(layers)
    mean, std = style_statistics(generator, num_samples=1000, seed=seed)
    total = starts[-1]
    size = min(MAP_SIZE, generator.resolution)
    share_sum = np.zeros((total, len(ATLAS_REGIONS)), np.float64)
    magnitude_sum = np.zeros(total, np.float64)
    used = 0
    candidates = iter(range(seed, seed + 20 * faces))
    steps = faces * sum(-(-layer.channels // batch_size) for layer in layers)
    done = 0
    while used < faces:
        face_seed = next(candidates, None)
        if face_seed is None:
            break
        with torch.no_grad():
            z = seed_to_z([face_seed], generator.z_dim).to(generator.device)
            ws = generator.broadcast(generator.mapping(z, truncation_psi=truncation_psi))
            base = generator.synthesis(ws).float()
        landmarks = face_landmarks(to_rgb_u8(base)[0])
        if landmarks is None:
            continue
        regions = _region_stack(landmarks * size / generator.resolution, size)
        for layer in layers:
            for first in range(0, layer.channels, batch_size):
                check_stop(should_stop)
                count = min(batch_size, layer.channels - first)
                sigma = torch.from_numpy(std[starts[layer.index] + first :][:count].copy())
                offsets = torch.zeros(count, layer.channels)
                offsets[torch.arange(count), torch.arange(first, first + count)] = (
                    step_sigmas * sigma
                )
                with torch.no_grad():
                    images = generator.synthesis(
                        ws.expand(count, -1, -1),
                        style_offsets={layer.index: offsets.to(generator.device)},
                    ).float()
                change = (images - base).abs().sum(1, keepdim=True) * 127.5
                if change.shape[-1] != size:
                    change = F.interpolate(change, size=(size, size), mode="area")
                change = change[:, 0].cpu().double()
                mass = torch.einsum("chw,rhw->cr", change, regions.double())
                totals = change.sum((1, 2)).clamp_min(1e-9)
                rows = slice(starts[layer.index] + first, starts[layer.index] + first + count)
                share_sum[rows] += (mass / totals[:, None]).numpy()
                magnitude_sum[rows] += (totals / (size * size)).numpy()
                done += 1
                report(on_step, Progress(done, steps, f"face {used + 1}/{faces}, {layer.name}"))
        used += 1
    if used == 0:
        raise ValueError("no face was detected in the samples; channel discovery needs faces")
    fingerprint = generator.fingerprint() if hasattr(generator, "fingerprint") else ""
    return ChannelAtlas(
        shares=(share_sum / used).astype(np.float32),
        magnitude=(magnitude_sum / used).astype(np.float32),
        mean=mean,
        std=std,
        layer_sizes=tuple(layer.channels for layer in layers),
        faces=used,
        step_sigmas=float(step_sigmas),
        fingerprint=fingerprint,
    )


# -------------------------------------------------------------------------------------------
# Cache


def atlas_cache_path(fingerprint: str, cache: str | Path | None = None) -> Path:
    """Where the atlas of the model with ``fingerprint`` is cached."""
    from models.runtime import cache_dir

    return cache_dir(cache) / "stylespace" / f"{fingerprint}.atlas.npz"


def save_atlas(atlas: ChannelAtlas, path: str | Path) -> Path:
    """Write ``atlas`` to ``path`` (atomically)."""
    from models.formats.native import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                version=np.array(ATLAS_VERSION),
                regions=np.array(ATLAS_REGIONS),
                shares=atlas.shares,
                magnitude=atlas.magnitude,
                mean=atlas.mean,
                std=atlas.std,
                layer_sizes=np.array(atlas.layer_sizes),
                faces=np.array(atlas.faces),
                step_sigmas=np.array(atlas.step_sigmas),
                fingerprint=np.array(atlas.fingerprint),
            )

    atomic_write(path, write)
    return path


def load_atlas(path: str | Path) -> ChannelAtlas | None:
    """The atlas in ``path``; None when it is missing, stale (other version) or unreadable."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            if int(data["version"]) != ATLAS_VERSION or tuple(data["regions"]) != ATLAS_REGIONS:
                return None
            return ChannelAtlas(
                shares=np.asarray(data["shares"], np.float32),
                magnitude=np.asarray(data["magnitude"], np.float32),
                mean=np.asarray(data["mean"], np.float32),
                std=np.asarray(data["std"], np.float32),
                layer_sizes=tuple(int(n) for n in data["layer_sizes"]),
                faces=int(data["faces"]),
                step_sigmas=float(data["step_sigmas"]),
                fingerprint=str(data["fingerprint"]),
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def cached_atlas(
    generator: Any,
    *,
    cache: str | Path | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
    **options: Any,
) -> ChannelAtlas:
    """The model's atlas from the cache, discovered (and cached) when missing."""
    fingerprint = generator.fingerprint()
    path = atlas_cache_path(fingerprint, cache)
    atlas = load_atlas(path)
    layer_sizes = tuple(layer.channels for layer in generator.style_layers())
    if atlas is not None and atlas.layer_sizes == layer_sizes:
        return atlas
    atlas = discover_channels(generator, on_step=on_step, should_stop=should_stop, **options)
    save_atlas(atlas, path)
    return atlas


# -------------------------------------------------------------------------------------------
# Localized attribute directions


def localize_direction(
    generator: Any,
    atlas: ChannelAtlas,
    direction: Any,
    region: str,
    *,
    count: int = 12,
    min_share: float = 0.5,
    gain: float = 1.0,
) -> StyleDirection:
    """A sparse style edit from a W ``direction``: its strongest channels acting in ``region``.

    Each channel's relevance is how far one σ of the W direction moves it, in that channel's
    own σ; only channels whose change lands at least ``min_share`` inside ``region`` qualify,
    and the ``count`` most relevant of them keep their W-induced change times ``gain`` (the
    dropped channels carried part of the effect).

    Raises:
        ValueError: no channel of the model acts mostly inside ``region``.
    """
    layers = generator.style_layers()
    delta = np.concatenate(style_delta(generator, direction.vector * direction.scale))
    relevance = np.abs(delta) / np.maximum(atlas.std, 1e-8)
    share = atlas.region_share(region)
    relevance = np.where(share >= min_share, relevance, -1.0)
    chosen = [int(i) for i in np.argsort(-relevance)[:count] if relevance[i] > 0]
    if not chosen:
        raise ValueError(
            f"no style channel acts mostly inside the {region} (share >= {min_share:.0%}); "
            "lower the share or pick another region"
        )
    return StyleDirection(
        name=direction.name,
        channels=tuple(key_of(i, layers) for i in chosen),
        values=delta[chosen] * gain,
        region=region,
        fitted_with={
            "method": "stylespace",
            "from": "w direction",
            "count": count,
            "min_share": min_share,
            "gain": gain,
            "atlas_faces": atlas.faces,
        },
    )


def channel_effects(
    generator: Any,
    keys: Sequence[int],
    atlas: ChannelAtlas,
    scorer: Callable[[np.ndarray], float | None],
    seeds: Sequence[int],
    *,
    step_sigmas: float = 3.0,
    truncation_psi: float = 0.7,
) -> np.ndarray:
    """Mean change of ``scorer(rgb)`` when each flat channel in ``keys`` moves ``step_sigmas``.

    The attribute-specific test of StyleSpace: ``scorer`` is a classifier score or a landmark
    measure; faces where it returns None are skipped. Returns [len(keys)] (NaN: never scored).
    """
    layers = generator.style_layers()
    sums = np.zeros(len(keys))
    counts = np.zeros(len(keys))
    for seed in seeds:
        with torch.no_grad():
            z = seed_to_z([seed], generator.z_dim).to(generator.device)
            ws = generator.broadcast(generator.mapping(z, truncation_psi=truncation_psi))
            before = scorer(to_rgb_u8(generator.synthesis(ws))[0])
            if before is None:
                continue
            for row, flat in enumerate(keys):
                layer, channel = key_of(flat, layers)
                offset = torch.zeros(1, layers[layer].channels, device=generator.device)
                offset[0, channel] = step_sigmas * float(atlas.std[flat])
                after = scorer(to_rgb_u8(generator.synthesis(ws, style_offsets={layer: offset}))[0])
                if after is not None:
                    sums[row] += after - before
                    counts[row] += 1
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def localize_set(
    generator: Any,
    atlas: ChannelAtlas,
    directions: Any,
    names: Sequence[str],
    *,
    count: int = 12,
    min_share: float = 0.5,
    gain: float = 1.0,
) -> StyleDirectionSet:
    """Localized versions of ``directions[name]`` for ``names``, each in its intended region.

    Directions whose region has no qualifying channel are left out.
    """
    from editors.regions import intended_region

    found = []
    for name in names:
        try:
            found.append(
                localize_direction(
                    generator,
                    atlas,
                    directions[name],
                    intended_region(name),
                    count=count,
                    min_share=min_share,
                    gain=gain,
                )
            )
        except ValueError:
            continue
    return StyleDirectionSet(tuple(found), directions.fingerprint)


def score_channels(
    generator: Any,
    atlas: ChannelAtlas,
    candidates: Sequence[int],
    seeds: Sequence[int],
    measure: Callable[[np.ndarray], float | None],
    *,
    step_sigmas: float = 3.0,
    truncation_psi: float = 0.7,
    latents: Sequence[np.ndarray] = (),
    blend: StyleDirection | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """StyleSpace's attribute-specific test, with identity cost: per candidate channel, the
    change of ``measure(rgb)`` (a classifier score or a landmark measure) and the dlib identity
    drift when it moves ``step_sigmas`` of its σ, on the faces of ``seeds``.

    ``latents`` ([num_ws, w_dim] each, e.g. projected photos) are scored after the seeds.
    ``blend``: a region-blended direction whose landmark region, growth, feather and block
    each channel is blended with, as its slider will be (a channel that acts outside the
    region scores only what it does inside).

    Returns:
        (effect, drift), each [len(seeds) + len(latents), len(candidates)], NaN where unmeasured.
    """
    from editors.identity import IdentityMeter
    from editors.locality import _upscaled

    layers = generator.style_layers()
    starts = flat_index(layers)
    faces: list[torch.Tensor] = []
    with torch.no_grad():
        for seed in seeds:
            z = seed_to_z([seed], generator.z_dim).to(generator.device)
            faces.append(generator.broadcast(generator.mapping(z, truncation_psi=truncation_psi)))
    faces += [
        torch.as_tensor(np.asarray(w, np.float32))[None].to(generator.device) for w in latents
    ]
    effect = np.full((len(faces), len(candidates)), np.nan)
    drift = np.full_like(effect, np.nan)
    by_layer: dict[int, list[tuple[int, int]]] = {}
    for column, flat in enumerate(candidates):
        layer, channel = key_of(int(flat), layers)
        by_layer.setdefault(layer, []).append((column, channel))
    for row, ws in enumerate(faces):
        with torch.no_grad():
            base = to_rgb_u8(generator.synthesis(ws))[0]
        landmarks, before = face_landmarks(base), measure(base)
        if landmarks is None or before is None:
            continue
        big = _upscaled(base)
        factor = big.shape[0] / base.shape[0]
        meter = IdentityMeter(big, landmarks=(landmarks + 0.5) * factor - 0.5)
        for layer, items in by_layer.items():
            offsets = torch.zeros(len(items), layers[layer].channels)
            for index, (_, channel) in enumerate(items):
                offsets[index, channel] = step_sigmas * float(atlas.std[starts[layer] + channel])
            offsets = {layer: offsets.to(generator.device)}
            with torch.no_grad():
                if blend is None:
                    images = generator.synthesis(
                        ws.expand(len(items), -1, -1), style_offsets=offsets
                    )
                else:
                    images = _blended(generator, ws, offsets, blend, landmarks)
            for (column, _), rgb in zip(items, to_rgb_u8(images), strict=True):
                after = measure(rgb)
                effect[row, column] = after - before if after is not None else np.nan
                drift[row, column] = meter.distance(_upscaled(rgb))
    return effect, drift


def _blended(
    generator: Any,
    ws: torch.Tensor,
    offsets: dict[int, torch.Tensor],
    blend: StyleDirection,
    landmarks: np.ndarray,
) -> torch.Tensor:
    """Pictures of ``ws`` with each row of ``offsets`` blended inside ``blend``'s region."""
    from editors.masks import LayerRender, _nearest_block, feathered, render_layers
    from editors.regions import region_mask

    size = generator.resolution
    hard = region_mask(blend.mask_region, landmarks, size, blend.mask_grow)
    mask = torch.from_numpy(feathered(hard.astype(np.float32), blend.feather * size))
    count = next(iter(offsets.values())).shape[0]
    layer = LayerRender(
        ws.expand(count, -1, -1),
        offsets,
        mask.to(generator.device),
        _nearest_block(generator, blend.block_resolution),
    )
    # render_layers broadcasts the one unedited picture against the batch of edited ones.
    return render_layers(
        lambda latent, **extra: generator.synthesis(latent, **extra), ws, {}, [layer]
    )


def regional_direction(
    name: str,
    layers: Sequence[Any],
    atlas: ChannelAtlas,
    candidates: Sequence[int],
    effect: np.ndarray,
    drift: np.ndarray,
    *,
    count: int = 12,
    sigmas: float = 1.4,
    region: str = "mouth",
    grow: float = 1.4,
    min_agreement: float = 0.8,
    rank_rows: Sequence[int] | None = None,
    weighted: bool = False,
) -> StyleDirection:
    """A localized direction from ``score_channels`` results, blended inside the landmark
    ``region``: the ``count`` channels with the most effect per identity drift, each moved in
    the direction that raises the measure.

    A channel qualifies when its effect has the same sign on at least ``min_agreement`` of the
    faces and, averaged, on the ``rank_rows`` faces and on the others alike.

    Args:
        rank_rows: rows (faces) whose mean effect ranks the channels, e.g. the encoded photos,
            on which an edit picked on generated faces alone acts weakest. The drift is the
            larger of the two groups' means. None: every row.
        weighted: amounts proportional to effect / (drift + 0.02)² (the matched filter: the
            most effect for a given total drift while the channels' identity changes are
            independent), the strongest channel moving ``sigmas`` of its σ per σ of slider;
            otherwise every channel moves ``sigmas``.

    Raises:
        ValueError: no channel moves the measure consistently.
    """
    rows = np.arange(effect.shape[0])
    ranked = rows if rank_rows is None else np.asarray(rank_rows, int)
    others = np.setdiff1d(rows, ranked)
    rank_effect = np.nanmean(effect[ranked], axis=0)
    sign = np.sign(rank_effect)
    agreement = np.nanmean(np.sign(effect) == sign, axis=0)
    consistent = (agreement >= min_agreement) & (sign != 0)
    cost = np.nanmean(drift[ranked], axis=0)
    if others.size:
        consistent &= np.sign(np.nanmean(effect[others], axis=0)) == sign
        cost = np.maximum(cost, np.nanmean(drift[others], axis=0))
    power = 2 if weighted else 1
    quality = np.where(consistent, np.abs(rank_effect) / (cost + 0.02) ** power, -1.0)
    chosen = [int(j) for j in np.argsort(-quality)[:count] if quality[j] > 0]
    if not chosen:
        raise ValueError(f"no style channel moves {name} the same way on every face")
    flats = [int(candidates[j]) for j in chosen]
    weights = quality[chosen] / quality[chosen[0]] if weighted else np.ones(len(chosen))
    return StyleDirection(
        name=name,
        channels=tuple(key_of(flat, layers) for flat in flats),
        values=sign[chosen] * weights * sigmas * atlas.std[flats],
        region=region,
        mask_region=region,
        mask_grow=grow,
        fitted_with={
            "method": "stylespace channels scored by a landmark measure per identity drift",
            "candidates": len(candidates),
            "faces": int(effect.shape[0]),
            "ranked_on_faces": int(ranked.size),
            "count": count,
            "weights": "effect / (drift + 0.02)^2" if weighted else "equal",
            "sigmas_per_slider_sigma": sigmas,
            "min_agreement": min_agreement,
            "atlas_faces": atlas.faces,
        },
    )
