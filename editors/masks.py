"""Painted masks: edits limited to a part of the picture, blended inside the generator.

A ``MaskedEdit`` holds a mask painted at image resolution and the edits that act only under it
(attribute amounts and style-channel amounts). Rendering (``render_layers``) runs the unmasked
picture once, recording its features; each masked edit is then rendered with its own edits, and
at its chosen block the features are blended with the unmasked ones through the mask resized to
the block, so the layers after that block smooth the seam; the final pixels are composited
through the same feathered mask, so nothing outside the mask changes beyond the feathering.
Edits stack in order, each on top of the previous result, without changing the ones below
(Chunkmogrify "freezes" instead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from editors.state import EditState

FloatArray = npt.NDArray[np.float32]
MIN_FACE_OVERLAP = 0.02  # share of the mask that must lie on the face (else: a hint)


class MaskError(ValueError):
    """A mask cannot do what it is asked (empty, off the face, wrong size)."""


def frozen_mask(mask: npt.ArrayLike) -> FloatArray:
    """A read-only float32 [H, W] copy of ``mask`` clipped to [0, 1]."""
    array = np.clip(np.array(mask, dtype=np.float32, copy=True), 0.0, 1.0)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise MaskError(f"a mask is a 2-D array, got shape {list(array.shape)}")
    array.setflags(write=False)
    return array


def feathered(mask: npt.ArrayLike, radius: float) -> FloatArray:
    """``mask`` blurred so its edge fades over about ``radius`` pixels (0 = hard edge).

    A Gaussian of sigma ``radius / 2``: beyond ``2 * radius`` from the paint the weight is
    below 1 % of the edge's, so "outside the mask" means outside the paint grown by that much.
    """
    from editors.alignment import gaussian_blur

    array = np.asarray(mask, np.float32)
    if radius <= 0:
        return array.copy()
    sigma = radius / 2.0
    blurred = gaussian_blur(array[..., None], sigma)[..., 0]
    return np.clip(blurred, 0.0, 1.0).astype(np.float32)


def paint_disc(
    mask: np.ndarray, x: float, y: float, radius: float, value: float = 1.0
) -> tuple[int, int, int, int]:
    """Paint (value 1) or erase (value 0) a disc of ``radius`` pixels into ``mask`` in place.

    Returns:
        The touched box (x0, y0, x1, y1), for partial repaints.
    """
    height, width = mask.shape
    x0, x1 = max(0, int(np.floor(x - radius))), min(width, int(np.ceil(x + radius)) + 1)
    y0, y1 = max(0, int(np.floor(y - radius))), min(height, int(np.ceil(y + radius)) + 1)
    if x0 >= x1 or y0 >= y1:
        return (x0, y0, x0, y0)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    # Pixel centres at +0.5: the disc covers a pixel when its centre is within the radius.
    inside = (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= radius * radius
    mask[y0:y1, x0:x1][inside] = value
    return (x0, y0, x1, y1)


def paint_stroke(
    mask: np.ndarray,
    start: tuple[float, float],
    end: tuple[float, float],
    radius: float,
    value: float = 1.0,
) -> None:
    """Paint discs along the segment ``start`` -> ``end`` (spaced a quarter radius apart)."""
    length = float(np.hypot(end[0] - start[0], end[1] - start[1]))
    steps = max(1, int(np.ceil(length / max(radius / 4.0, 0.5))))
    for t in np.linspace(0.0, 1.0, steps + 1):
        paint_disc(
            mask,
            start[0] + t * (end[0] - start[0]),
            start[1] + t * (end[1] - start[1]),
            radius,
            value,
        )


def check_mask(mask: npt.ArrayLike, face: npt.ArrayLike | None = None) -> None:
    """Raise ``MaskError`` with a hint when ``mask`` would make its edit do nothing visible.

    Args:
        mask: [H, W] in [0, 1].
        face: boolean [H, W] of the face (e.g. ``regions.hull_mask(landmarks, size)``); when given,
            a mask with almost nothing on the face is refused too.
    """
    array = np.asarray(mask, np.float32)
    weight = float(array.sum())
    if weight < 0.5:
        raise MaskError(
            "the mask is empty: paint over the part of the picture the edit should change"
        )
    if face is not None:
        face_array = np.asarray(face, bool)
        if face_array.shape != array.shape:
            raise MaskError(
                f"the face map is {list(face_array.shape)} but the mask is {list(array.shape)}"
            )
        on_face = float(array[face_array].sum()) / weight
        if on_face < MIN_FACE_OVERLAP:
            raise MaskError(
                "the mask covers nothing of the face; paint over the mouth, eyes or whatever "
                "part of the face the edit should change"
            )


def _amounts(values: Mapping) -> Mapping:
    return MappingProxyType({k: float(v) for k, v in dict(values).items() if float(v) != 0.0})


@dataclass(frozen=True, slots=True, eq=False)
class MaskedEdit:
    """Edits that act only under a painted mask (immutable)."""

    mask: FloatArray  # [H, W] in [0, 1], painted at the picture's resolution, unfeathered
    feather: float = 2.0  # edge softness in picture pixels
    block_resolution: int = 16  # blend features at the synthesis block of this resolution
    attribute_amounts: Mapping[str, float] = field(default_factory=dict)  # name -> latent units
    style_amounts: Mapping[tuple[int, int], float] = field(default_factory=dict)  # (layer, ch)
    label: str = ""  # shown in the list of masked edits

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", frozen_mask(self.mask))
        object.__setattr__(self, "feather", float(self.feather))
        object.__setattr__(self, "block_resolution", int(self.block_resolution))
        object.__setattr__(self, "attribute_amounts", _amounts(self.attribute_amounts))
        styles = {(int(k[0]), int(k[1])): v for k, v in dict(self.style_amounts).items()}
        object.__setattr__(self, "style_amounts", _amounts(styles))

    @property
    def has_edits(self) -> bool:
        """True when the edit changes anything under its mask."""
        return bool(self.attribute_amounts or self.style_amounts)

    def same_as(self, other: MaskedEdit) -> bool:
        """True when both describe the same masked edit."""
        return (
            self.mask.shape == other.mask.shape
            and np.array_equal(self.mask, other.mask)
            and (self.feather, self.block_resolution, self.label)
            == (other.feather, other.block_resolution, other.label)
            and dict(self.attribute_amounts) == dict(other.attribute_amounts)
            and dict(self.style_amounts) == dict(other.style_amounts)
        )

    def soft_mask(self, size: int) -> FloatArray:
        """The feathered mask at ``size`` x ``size`` pixels (the picture's resolution)."""
        mask = self.mask
        scale = size / mask.shape[0]
        if mask.shape != (size, size):
            mask = resize_mask(mask, size)
        return feathered(mask, self.feather * scale)


def resize_mask(mask: npt.ArrayLike, size: int) -> FloatArray:
    """``mask`` [H, W] resized to ``size`` x ``size`` (area averaging down, bilinear up)."""
    tensor = torch.as_tensor(np.asarray(mask, np.float32))[None, None]
    if tensor.shape[-1] > size:
        resized = F.interpolate(tensor, size=(size, size), mode="area")
    else:
        resized = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)
    return resized[0, 0].numpy().astype(np.float32)


@dataclass(frozen=True, slots=True)
class LayerRender:
    """One masked layer ready to render: its latent, style offsets, mask and blend block."""

    ws: torch.Tensor  # [1, num_ws, w_dim]
    style_offsets: Mapping[int, torch.Tensor]  # style layer -> [1, channels]
    mask: torch.Tensor  # [H, W] feathered, picture resolution
    block: int  # synthesis block whose features are blended


SynthesisFn = Callable[..., torch.Tensor]


def render_layers(
    synthesis: SynthesisFn,
    base_ws: torch.Tensor,
    base_offsets: Mapping[int, torch.Tensor],
    layers: Sequence[LayerRender],
    region_layers: Callable[[torch.Tensor], Sequence[LayerRender]] | None = None,
) -> torch.Tensor:
    """The picture with every masked layer stacked on the unmasked one.

    Args:
        synthesis: ``generator.synthesis`` with noise options bound (keyword arguments
            ``style_offsets`` and ``feature_hook`` are passed through).
        base_ws: [1, num_ws, w_dim] the unmasked latent (global edits included).
        base_offsets: the unmasked style offsets.
        layers: the masked layers, bottom first.
        region_layers: called with the unmasked picture; the layers it returns (whose masks
            come from that picture's landmarks) go below ``layers``.

    Returns:
        Images [1, 3, H, W] in [-1, 1].
    """
    features: dict[int, torch.Tensor] = {}

    def record(block: int, x: torch.Tensor) -> None:
        features[block] = x

    result = synthesis(base_ws, style_offsets=dict(base_offsets) or None, feature_hook=record)
    if region_layers is not None:
        layers = [*region_layers(result), *layers]
    for layer in layers:
        mask = layer.mask.to(result.device, result.dtype)

        def blend(
            block: int, x: torch.Tensor, layer: LayerRender = layer, mask: torch.Tensor = mask
        ) -> torch.Tensor | None:
            if block != layer.block:
                return None
            size = x.shape[-1]
            small = F.interpolate(mask[None, None], size=(size, size), mode="area")
            base = features[block].to(x.dtype)
            return base + small * (x - base)

        edited = synthesis(
            layer.ws, style_offsets=dict(layer.style_offsets) or None, feature_hook=blend
        )
        if edited.shape[-1] != mask.shape[-1]:  # a draft preview: smaller than the mask
            mask = F.interpolate(mask[None, None], size=edited.shape[-2:], mode="area")[0, 0]
        result = result + mask * (edited - result)
    return result


# Landmarks of recent unedited pictures: a slider drag re-renders the same base many times.
_LANDMARKS: dict[bytes, Any] = {}
LandmarkFinder = Callable[[np.ndarray], "np.ndarray | None"]


def cached_landmarks(rgb: np.ndarray, finder: LandmarkFinder | None = None) -> np.ndarray | None:
    """``regions.face_landmarks(rgb)``, remembered for the last few pictures."""
    import hashlib

    from editors.regions import face_landmarks

    key = hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).digest()
    if key not in _LANDMARKS:
        if len(_LANDMARKS) > 32:
            _LANDMARKS.clear()
        _LANDMARKS[key] = (finder or face_landmarks)(rgb)
    return _LANDMARKS[key]


def _nearest_block(generator: Any, resolution: int) -> int:
    resolutions = list(generator.block_resolutions())
    return min(range(len(resolutions)), key=lambda i: abs(resolutions[i] - resolution))


def local_synthesis(
    generator: Any,
    state: EditState | None,
    ws: torch.Tensor,
    *,
    landmarks: LandmarkFinder | None = None,
    **options: Any,
) -> torch.Tensor:
    """``generator.synthesis(ws, **options)`` plus ``state``'s style-channel and masked edits.

    ``ws`` [1, num_ws, w_dim] is the latent with the state's W edits resolved
    (``state.resolve_ws``). Without style or masked edits this is the plain synthesis.
    Localized sliders with a landmark region are blended inside that region of the picture;
    when no face is found they act on the whole picture.

    Args:
        landmarks: finds 68 landmarks in an RGB picture (default ``regions.face_landmarks``).

    Raises:
        ValueError: style or masked edits on a model without style space (ProGAN).
    """
    from editors.regions import region_mask
    from editors.state import resolve_masked, resolve_regions, resolve_styles
    from editors.stylespace import add_amounts, offsets_for
    from models.generator import to_rgb_u8

    if state is None:
        return generator.synthesis(ws, **options)
    styles = resolve_styles(state)
    masked = resolve_masked(state, ws[0].float().cpu().numpy())
    regions = resolve_regions(state)
    if not styles and not masked and not regions:
        return generator.synthesis(ws, **options)
    if not hasattr(generator, "style_layers"):
        raise ValueError("style-channel and masked edits need a StyleGAN2 model")
    layers = generator.style_layers()
    device = ws.device
    options.pop("cache", None)  # offsets and hooks bypass the activation cache
    if options.get("noise_mode") == "random" and (masked or regions):
        # One draw for every layer of the stack, so the noise does not differ outside the mask.
        options["noise"] = [
            torch.randn(1, 1, *buffer.shape[2:], device=device)
            for buffer in generator.noise_buffers()
        ]
    base_offsets = offsets_for(styles, layers, device)
    if not masked and not regions:
        return generator.synthesis(ws, style_offsets=base_offsets, **options)
    renders = []
    for edit, edit_ws, edit_styles in masked:
        mask = torch.from_numpy(edit.soft_mask(generator.resolution)).to(device)
        renders.append(
            LayerRender(
                torch.from_numpy(edit_ws)[None].to(device, ws.dtype),
                offsets_for(edit_styles, layers, device),
                mask,
                _nearest_block(generator, edit.block_resolution),
            )
        )

    def region_layers(picture: torch.Tensor) -> list[LayerRender]:
        rgb = to_rgb_u8(picture)[0]
        points = cached_landmarks(rgb, landmarks)
        size = picture.shape[-1]
        found = []
        for direction, amounts in regions:
            if points is None:
                soft = np.ones((size, size), np.float32)  # no face: the slider acts everywhere
            else:
                hard = region_mask(direction.mask_region, points, size, direction.mask_grow)
                soft = feathered(hard.astype(np.float32), direction.feather * size)
            found.append(
                LayerRender(
                    ws,
                    offsets_for(add_amounts(styles, amounts), layers, device),
                    torch.from_numpy(soft).to(device),
                    _nearest_block(generator, direction.block_resolution),
                )
            )
        return found

    def synthesis(latent: torch.Tensor, **extra: Any) -> torch.Tensor:
        return generator.synthesis(latent, **options, **extra)

    return render_layers(synthesis, ws, base_offsets, renders, region_layers)
