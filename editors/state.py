"""The edit state: an immutable value describing what the user is looking at.

Every change the user makes produces a new ``EditState`` (``editors.history`` keeps one per
step), so arrays inside are flagged read-only and never mutated. ``resolve_ws`` turns a
state plus its base latent into the latent to render; it is pure and keeps every row that no
active edit touches bit-identical to the base, so the synthesis cache can skip those blocks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from editors.directions import DirectionSet, Layers, check_layers, effective_vectors, shift
from editors.masks import MaskedEdit
from editors.mixing import StyleMix, mix_ws
from editors.stylespace import StyleKey, add_amounts, style_amounts
from models.generator import NoiseMode

if TYPE_CHECKING:
    from editors.rendering import RenderArgs

FloatArray = npt.NDArray[np.float32]


def frozen_array(array: npt.ArrayLike | None) -> np.ndarray | None:
    """A read-only float32 copy of ``array`` (None stays None)."""
    if array is None:
        return None
    copy = np.array(array, dtype=np.float32, copy=True)
    copy.setflags(write=False)
    return copy


def _amounts(values: Mapping[str, float]) -> Mapping[str, float]:
    # Zero amounts are dropped so "moved back to 0" equals "never moved".
    return MappingProxyType({str(k): float(v) for k, v in dict(values).items() if float(v) != 0.0})


@dataclass(frozen=True, slots=True, eq=False)
class EditState:
    """What is being edited and how (immutable; use ``replace`` or the ``with_*`` helpers)."""

    seed: int | None = 0  # latent drawn from this seed when base_ws is None
    base_ws: np.ndarray | None = None  # [num_ws, w_dim] latent from a projection or file
    truncation_psi: float = 0.7  # pull seed latents towards the average w (1 = off)
    noise_mode: NoiseMode = "const"
    noise_strength: tuple[float, ...] | None = None  # per-layer noise multipliers; None = all 1
    directions: DirectionSet | None = None  # the attribute directions the sliders use
    attribute_amounts: Mapping[str, float] = field(default_factory=dict)  # name -> latent units
    locked: frozenset[str] = frozenset()  # attributes held constant when others move
    components: DirectionSet | None = None  # unsupervised directions (PCA / SeFa)
    component_amounts: Mapping[str, float] = field(default_factory=dict)  # name -> latent units
    component_layers: Layers | None = None  # rows the components act on; None = their own
    mix: StyleMix | None = None  # style mixing with a donor latent
    style_amounts: Mapping[StyleKey, float] = field(default_factory=dict)  # StyleSpace channels
    masked: tuple[MaskedEdit, ...] = ()  # edits limited to painted masks, bottom first
    attribute_space: str = "auto"  # "auto": localized (style) sliders where the set has them; "w"

    def __post_init__(self) -> None:
        object.__setattr__(self, "style_amounts", style_amounts(self.style_amounts))
        object.__setattr__(self, "masked", tuple(self.masked))
        if self.attribute_space not in ("auto", "w"):
            raise ValueError(f"attribute_space must be 'auto' or 'w', got {self.attribute_space!r}")
        if self.base_ws is not None and self.base_ws.flags.writeable:
            object.__setattr__(self, "base_ws", frozen_array(self.base_ws))
        object.__setattr__(self, "attribute_amounts", _amounts(self.attribute_amounts))
        object.__setattr__(self, "component_amounts", _amounts(self.component_amounts))
        object.__setattr__(self, "locked", frozenset(self.locked))
        object.__setattr__(self, "component_layers", check_layers(self.component_layers))
        if self.noise_strength is not None:
            object.__setattr__(self, "noise_strength", tuple(float(s) for s in self.noise_strength))

    def replace(self, **changes: Any) -> EditState:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    @property
    def has_edits(self) -> bool:
        """True when any slider, mix or noise setting differs from the unedited latent."""
        return bool(
            self.attribute_amounts
            or self.component_amounts
            or (self.mix is not None and self.mix.is_active)
            or self.noise_strength is not None
            or bool(self.style_amounts)
            or any(edit.has_edits for edit in self.masked)
        )

    def render_args(self, *, draft: bool = False, measure_identity: bool = False) -> RenderArgs:
        """The render request for this state."""
        from editors.rendering import RenderArgs

        return RenderArgs(
            seed=None if self.base_ws is not None else self.seed,
            ws=self.base_ws,
            truncation_psi=self.truncation_psi,
            noise_mode=self.noise_mode,
            noise_strength=self.noise_strength,
            draft=draft,
            state=self,
            measure_identity=measure_identity,
        )


# -------------------------------------------------------------------------------------------
# Pure helpers producing new states


def with_amount(state: EditState, name: str, amount: float) -> EditState:
    """``state`` with attribute ``name`` at ``amount`` (latent units)."""
    return state.replace(attribute_amounts={**state.attribute_amounts, name: amount})


def with_component(state: EditState, name: str, amount: float) -> EditState:
    """``state`` with component ``name`` at ``amount`` (latent units)."""
    return state.replace(component_amounts={**state.component_amounts, name: amount})


def with_lock(state: EditState, name: str, locked: bool) -> EditState:
    """``state`` with attribute ``name`` locked or unlocked."""
    names = set(state.locked)
    if locked:
        names.add(name)
    else:
        names.discard(name)
    return state.replace(locked=frozenset(names))


def with_directions(state: EditState, directions: DirectionSet | None) -> EditState:
    """``state`` using another direction set; amounts and locks of vanished names are dropped."""
    names = set(directions.names) if directions is not None else set()
    return state.replace(
        directions=directions,
        attribute_amounts={k: v for k, v in state.attribute_amounts.items() if k in names},
        locked=frozenset(n for n in state.locked if n in names),
    )


def with_components(
    state: EditState, components: DirectionSet | None, layers: Layers | None = None
) -> EditState:
    """``state`` using another component set (amounts reset) acting on ``layers``."""
    return state.replace(components=components, component_amounts={}, component_layers=layers)


def reset_edits(state: EditState) -> EditState:
    """``state`` back to its unedited latent: sliders at 0, no mixing, default noise.

    The latent, truncation, noise mode, direction sets and locks are kept.
    """
    return state.replace(
        attribute_amounts={},
        component_amounts={},
        mix=None,
        noise_strength=None,
        style_amounts={},
        masked=(),
    )


def with_style_amount(state: EditState, key: StyleKey, amount: float) -> EditState:
    """``state`` with style channel ``key`` = (layer, channel) at ``amount`` (style units)."""
    return state.replace(style_amounts={**state.style_amounts, key: amount})


def with_masked(state: EditState, masked: Iterable[MaskedEdit]) -> EditState:
    """``state`` with the stack of masked edits replaced by ``masked``."""
    return state.replace(masked=tuple(masked))


def states_equal(a: EditState | None, b: EditState | None) -> bool:
    """True when ``a`` and ``b`` describe the same picture (direction sets compared by identity)."""
    if a is None or b is None:
        return a is b
    if a is b:
        return True
    if (a.base_ws is None) != (b.base_ws is None):
        return False
    if a.base_ws is not None and b.base_ws is not None and not np.array_equal(a.base_ws, b.base_ws):
        return False
    if (a.mix is None) != (b.mix is None) or (a.mix is not None and not a.mix.same_as(b.mix)):
        return False
    return (
        (a.seed, a.truncation_psi, a.noise_mode, a.noise_strength)
        == (b.seed, b.truncation_psi, b.noise_mode, b.noise_strength)
        and a.directions is b.directions
        and a.components is b.components
        and dict(a.attribute_amounts) == dict(b.attribute_amounts)
        and dict(a.component_amounts) == dict(b.component_amounts)
        and a.locked == b.locked
        and a.component_layers == b.component_layers
        and dict(a.style_amounts) == dict(b.style_amounts)
        and a.attribute_space == b.attribute_space
        and len(a.masked) == len(b.masked)
        and all(x.same_as(y) for x, y in zip(a.masked, b.masked, strict=True))
    )


# -------------------------------------------------------------------------------------------
# Resolution


def _ordered(amounts: Mapping[str, float], directions: DirectionSet) -> Iterable[tuple[str, float]]:
    # Set order, not dict order: the float sums must not depend on which slider moved first.
    return ((name, amounts[name]) for name in directions.names if name in amounts)


def resolve_ws(
    state: EditState,
    base_ws: npt.ArrayLike,
    donor_ws: npt.ArrayLike | None = None,
    *,
    directions: DirectionSet | None = None,
    components: DirectionSet | None = None,
) -> FloatArray:
    """The latent to render for ``state`` (pure).

    Order: the base latent, then style mixing, then attribute directions (locked attributes per
    TL-GAN, see ``effective_vectors``), then components. Rows no active edit touches stay
    bit-identical to ``base_ws``.

    Args:
        state: the edits.
        base_ws: [num_ws, w_dim] the unedited latent (the seed's truncated w broadcast, or
            ``state.base_ws``); the caller maps seeds because that needs the network.
        donor_ws: [num_ws, w_dim] the mixing donor's latent, needed when ``state.mix`` is active.
        directions: overrides ``state.directions``.
        components: overrides ``state.components``.

    Returns:
        [num_ws, w_dim] float32.

    Raises:
        ValueError: an active mix without ``donor_ws``, or shapes that do not fit.
    """
    ws = np.array(base_ws, dtype=np.float32, copy=True)
    if ws.ndim != 2:
        raise ValueError(f"base_ws must be [num_ws, w_dim], got {list(ws.shape)}")
    if state.mix is not None and state.mix.is_active:
        if donor_ws is None:
            raise ValueError("the style mix needs the donor's latent")
        ws = mix_ws(ws, donor_ws, state.mix.row_weights)
    directions = directions if directions is not None else state.directions
    ws = _shift_attributes(ws, state, state.attribute_amounts, directions)
    components = components if components is not None else state.components
    if components is not None and state.component_amounts:
        layers: Any = state.component_layers if state.component_layers is not None else "direction"
        for name, amount in _ordered(state.component_amounts, components):
            ws = shift(ws, components[name], amount, layers=layers)
    return ws


# -------------------------------------------------------------------------------------------
# Style space and masked edits


def localized_names(state: EditState, directions: DirectionSet | None = None) -> frozenset[str]:
    """Attributes whose sliders act in style space (their set ships a localized version)."""
    directions = directions if directions is not None else state.directions
    styles = getattr(directions, "styles", None)
    if state.attribute_space == "w" or styles is None:
        return frozenset()
    return frozenset(name for name in styles.names if name in directions)


def _shift_attributes(
    ws: np.ndarray,
    state: EditState,
    amounts: Mapping[str, float],
    directions: DirectionSet | None,
) -> np.ndarray:
    if directions is None or not amounts:
        return ws
    local = localized_names(state, directions)
    vectors = effective_vectors(directions, state.locked)
    for name, amount in _ordered(amounts, directions):
        if name not in local:
            ws = shift(ws, directions[name], amount, vector=vectors[name])
    return ws


def _attribute_styles(
    state: EditState,
    amounts: Mapping[str, float],
    directions: DirectionSet | None,
    *,
    regional: bool = False,
) -> dict[StyleKey, float]:
    # regional=False leaves out the sliders blended inside a landmark region (resolve_regions).
    local = localized_names(state, directions)
    if not local or directions is None:
        return {}
    styles = directions.styles  # type: ignore[attr-defined]
    parts = [
        styles[name].amounts(amount / directions[name].scale)
        for name, amount in _ordered(amounts, directions)
        if name in local and (regional or not styles[name].mask_region)
    ]
    return add_amounts(*parts)


def resolve_regions(
    state: EditState, *, directions: DirectionSet | None = None
) -> list[tuple[Any, dict[StyleKey, float]]]:
    """Localized sliders blended inside a landmark region: (style direction, its offsets)."""
    directions = directions if directions is not None else state.directions
    local = localized_names(state, directions)
    if not local or directions is None:
        return []
    styles = directions.styles  # type: ignore[attr-defined]
    return [
        (styles[name], styles[name].amounts(amount / directions[name].scale))
        for name, amount in _ordered(state.attribute_amounts, directions)
        if name in local and styles[name].mask_region
    ]


def resolve_styles(
    state: EditState, *, directions: DirectionSet | None = None
) -> dict[StyleKey, float]:
    """The style-channel offsets of ``state`` (channel edits plus localized sliders)."""
    directions = directions if directions is not None else state.directions
    return add_amounts(
        state.style_amounts, _attribute_styles(state, state.attribute_amounts, directions)
    )


def resolve_masked(
    state: EditState, edited_ws: npt.ArrayLike, *, directions: DirectionSet | None = None
) -> list[tuple[MaskedEdit, FloatArray, dict[StyleKey, float]]]:
    """Per masked edit with edits: (the edit, its latent, its style offsets), bottom first.

    Each acts on top of the unmasked result: ``edited_ws`` (``resolve_ws``) and
    ``resolve_styles``, plus its own sliders and channels.
    """
    directions = directions if directions is not None else state.directions
    base_styles = resolve_styles(state, directions=directions)
    layers = []
    for edit in state.masked:
        if not edit.has_edits:
            continue
        ws = _shift_attributes(
            np.array(edited_ws, np.float32, copy=True), state, edit.attribute_amounts, directions
        )
        styles = add_amounts(
            base_styles,
            edit.style_amounts,
            _attribute_styles(state, edit.attribute_amounts, directions, regional=True),
        )
        layers.append((edit, ws, styles))
    return layers
