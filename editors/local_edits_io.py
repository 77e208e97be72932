"""Style-channel edits, masked edits and localized sliders in session files.

``editors.session_io`` calls these so the session format stays in one place while this part
(StyleSpace and masks) keeps its own reading and checking. Masks are stored as float16 arrays
(painted masks are 0/1, which float16 holds exactly).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from editors.masks import MaskedEdit
from editors.state import EditState
from editors.stylespace import style_directions_from_json, style_directions_to_json
from models.formats.limits import finite_number

MASK_PREFIX = "masked_"
MAX_MASKED = 64  # more masked edits than this in a file means it is damaged


def _style_list(amounts: Any) -> list[list[float]]:
    return [[int(layer), int(channel), float(v)] for (layer, channel), v in amounts.items()]


def _style_map(entries: Any, what: str) -> dict[tuple[int, int], float]:
    if not isinstance(entries, list):
        raise TypeError(f"{what} must be a list of [layer, channel, amount]")
    result = {}
    for entry in entries:
        if not isinstance(entry, list) or len(entry) != 3:
            raise TypeError(f"{what} must be a list of [layer, channel, amount]")
        layer, channel = entry[0], entry[1]
        if not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (layer, channel)
        ):
            raise TypeError(f"{what}: layer and channel must be non-negative integers")
        result[(layer, channel)] = finite_number(entry[2], what)
    return result


def local_edits_to_file(state: EditState) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON entries and arrays that record ``state``'s local edits."""
    document: dict[str, Any] = {
        "style_amounts": _style_list(state.style_amounts),
        "attribute_space": state.attribute_space,
        "masked": [],
    }
    arrays: dict[str, np.ndarray] = {}
    for index, edit in enumerate(state.masked):
        document["masked"].append(
            {
                "feather": edit.feather,
                "block_resolution": edit.block_resolution,
                "label": edit.label,
                "attribute_amounts": dict(edit.attribute_amounts),
                "style_amounts": _style_list(edit.style_amounts),
            }
        )
        arrays[f"{MASK_PREFIX}{index}"] = edit.mask.astype(np.float16)
    styles = getattr(state.directions, "styles", None)
    if styles is not None:
        document["directions_styles"] = style_directions_to_json(styles)
    return document, arrays


def local_edits_from_file(
    state: EditState, document: dict[str, Any], arrays: dict[str, np.ndarray]
) -> EditState:
    """``state`` (read by the session loader) with the local edits of the file added.

    Raises:
        TypeError, ValueError, KeyError: damaged entries (the loader reports the file).
    """
    directions = state.directions
    if document.get("directions_styles") is not None and directions is not None:
        styles = style_directions_from_json(document["directions_styles"])
        directions = dataclasses.replace(directions, styles=styles)
    entries = document.get("masked", [])
    if not isinstance(entries, list) or len(entries) > MAX_MASKED:
        raise TypeError(f"masked must be a list of at most {MAX_MASKED} edits")
    names = set(directions.names) if directions is not None else set()
    masked = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise TypeError("a masked edit must be an object")
        mask = np.asarray(arrays[f"{MASK_PREFIX}{index}"], np.float32)
        if mask.ndim != 2 or not np.isfinite(mask).all():
            raise ValueError(f"mask {index} must be a finite [H, W] array")
        amounts = entry.get("attribute_amounts", {})
        if not isinstance(amounts, dict) or set(amounts) - names:
            raise ValueError(f"masked edit {index} moves directions that are not in the session")
        masked.append(
            MaskedEdit(
                mask,
                feather=finite_number(entry.get("feather", 0.0), "feather"),
                block_resolution=int(entry.get("block_resolution", 16)),
                attribute_amounts={
                    str(k): finite_number(v, "masked amount") for k, v in amounts.items()
                },
                style_amounts=_style_map(entry.get("style_amounts", []), "masked style amount"),
                label=str(entry.get("label") or ""),
            )
        )
    space = document.get("attribute_space", "auto")
    return state.replace(
        directions=directions,
        style_amounts=_style_map(document.get("style_amounts", []), "style amount"),
        masked=tuple(masked),
        attribute_space=space if space in ("auto", "w") else "auto",
    )
