"""Session files: the current latent, its edits, the directions they use and the model reference.

One ``.lsession`` file is an ``.npz`` archive (read with ``allow_pickle=False``): arrays for the
latents and direction vectors, and a JSON document under the key ``session``. Written atomically.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from editors.directions import DirectionSet, directions_from_json, directions_to_json
from editors.mixing import LatentSource, StyleMix
from editors.state import EditState
from models.formats.native import atomic_write

FILE_KIND = "latentstudio-session"
SCHEMA_VERSION = 1
SESSION_SUFFIX = ".lsession"


class SessionFileError(ValueError):
    """A session file is missing, corrupted or inconsistent."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True, slots=True)
class ModelReference:
    """Which model a session was made with."""

    path: str | None  # checkpoint path as it was opened (may have moved since)
    fingerprint: str | None  # Generator.fingerprint()
    name: str = ""  # display name


@dataclass(frozen=True, slots=True, eq=False)
class SessionFile:
    """What a session file holds."""

    state: EditState
    model: ModelReference

    def mismatch(self, fingerprint: str | None) -> str | None:
        """Why the session does not fit the model with ``fingerprint`` (None when it does)."""
        if (
            self.model.fingerprint is None
            or fingerprint is None
            or fingerprint == self.model.fingerprint
        ):
            return None
        where = f" ({self.model.path})" if self.model.path else ""
        return (
            f"the session was made with model {self.model.name or '?'}{where}, fingerprint "
            f"{self.model.fingerprint}; the open model's fingerprint is {fingerprint}"
        )


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{what} is not a finite number")
    return float(value)


def save_session(path: str | Path, state: EditState, model: ModelReference) -> Path:
    """Write ``state`` and the model reference to ``path`` (atomically)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    document: dict[str, Any] = {
        "kind": FILE_KIND,
        "schema_version": SCHEMA_VERSION,
        "model": {"path": model.path, "fingerprint": model.fingerprint, "name": model.name},
        "seed": state.seed,
        "truncation_psi": _finite(state.truncation_psi, "truncation"),
        "noise_mode": state.noise_mode,
        "noise_strength": list(state.noise_strength) if state.noise_strength is not None else None,
        "attribute_amounts": dict(state.attribute_amounts),
        "locked": sorted(state.locked),
        "component_amounts": dict(state.component_amounts),
        "component_layers": list(state.component_layers) if state.component_layers else None,
        "mix": None,
    }
    if state.base_ws is not None:
        arrays["base_ws"] = np.asarray(state.base_ws, np.float32)
    for key in ("directions", "components"):
        directions: DirectionSet | None = getattr(state, key)
        if directions is not None and len(directions):
            index, vectors = directions_to_json(directions)
            index["source"] = str(directions.source) if directions.source is not None else None
            document[key] = index
            arrays[f"{key}_vectors"] = vectors
        else:
            document[key] = None
    if state.mix is not None:
        donor = state.mix.donor
        document["mix"] = {
            "row_weights": list(state.mix.row_weights),
            "donor": {
                "seed": donor.seed,
                "truncation_psi": donor.truncation_psi,
                "label": donor.label,
            },
        }
        if donor.ws is not None:
            arrays["donor_ws"] = np.asarray(donor.ws, np.float32)
    text = json.dumps(document, allow_nan=False)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, session=np.array(text), **arrays)

    atomic_write(path, write)
    return path


def load_session(path: str | Path) -> SessionFile:
    """Read a session written by ``save_session``.

    Raises:
        SessionFileError: missing, not a session, corrupted or inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise SessionFileError(path, "file not found")
    try:
        # Our own handle: np.load leaks the one it opens when the zip is damaged.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {key: np.asarray(archive[key]) for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SessionFileError(path, f"not a readable session file ({exc})") from exc
    try:
        document = json.loads(str(arrays["session"][()]))
    except (KeyError, json.JSONDecodeError) as exc:
        raise SessionFileError(path, "not a Latent Studio session (no session document)") from exc
    if not isinstance(document, dict) or document.get("kind") != FILE_KIND:
        raise SessionFileError(path, "not a Latent Studio session")
    if int(document.get("schema_version", 0)) > SCHEMA_VERSION:
        raise SessionFileError(path, "written by a newer version of the app")
    try:
        return SessionFile(_state(document, arrays), _model(document))
    except (KeyError, TypeError, ValueError) as exc:
        raise SessionFileError(path, f"damaged session ({exc})") from exc


def _model(document: dict[str, Any]) -> ModelReference:
    model = document.get("model") or {}
    return ModelReference(model.get("path"), model.get("fingerprint"), str(model.get("name") or ""))


def _directions(
    document: dict[str, Any], arrays: dict[str, np.ndarray], key: str
) -> DirectionSet | None:
    index = document.get(key)
    if index is None:
        return None
    source = Path(index["source"]) if index.get("source") else None
    return directions_from_json(index, arrays[f"{key}_vectors"], source)


def _state(document: dict[str, Any], arrays: dict[str, np.ndarray]) -> EditState:
    directions = _directions(document, arrays, "directions")
    components = _directions(document, arrays, "components")
    mix = None
    if document.get("mix") is not None:
        entry = document["mix"]
        donor_entry = entry["donor"]
        donor = LatentSource(
            seed=None if "donor_ws" in arrays else donor_entry.get("seed"),
            truncation_psi=float(donor_entry.get("truncation_psi", 1.0)),
            ws=arrays.get("donor_ws"),
            label=str(donor_entry.get("label") or ""),
        )
        mix = StyleMix(donor, tuple(entry["row_weights"]))
    names = set(directions.names) if directions is not None else set()
    amounts = {str(k): float(v) for k, v in document.get("attribute_amounts", {}).items()}
    unknown = sorted(set(amounts) - names)
    if unknown:
        raise ValueError(
            f"amounts for directions that are not in the session: {', '.join(unknown)}"
        )
    base_ws = arrays.get("base_ws")
    if base_ws is not None and base_ws.ndim != 2:
        raise ValueError(f"the latent must be [num_ws, w_dim], got {list(base_ws.shape)}")
    noise = document.get("noise_strength")
    layers = document.get("component_layers")
    return EditState(
        seed=None if document.get("seed") is None else int(document["seed"]),
        base_ws=base_ws,
        truncation_psi=float(document.get("truncation_psi", 1.0)),
        noise_mode=document.get("noise_mode", "const"),
        noise_strength=tuple(noise) if noise is not None else None,
        directions=directions,
        attribute_amounts=amounts,
        locked=frozenset(str(n) for n in document.get("locked", [])),
        components=components,
        component_amounts={
            str(k): float(v) for k, v in document.get("component_amounts", {}).items()
        },
        component_layers=tuple(layers) if layers else None,
        mix=mix,
    )


def check_session_fits(
    session: SessionFile, num_ws: int, w_dim: int, num_noise_layers: int | None = None
) -> None:
    """Raise ``ValueError`` when the session's latents cannot be used with a model of this shape."""
    state = session.state
    shapes = []
    if state.base_ws is not None:
        shapes.append(("latent", state.base_ws.shape))
    if state.mix is not None and state.mix.donor.ws is not None:
        shapes.append(("mixing donor", state.mix.donor.ws.shape))
    for what, shape in shapes:
        if tuple(shape) != (num_ws, w_dim):
            raise ValueError(
                f"the session's {what} is {list(shape)}; this model needs [{num_ws}, {w_dim}]"
            )
    if state.mix is not None and len(state.mix.row_weights) != num_ws:
        raise ValueError(
            f"the session mixes {len(state.mix.row_weights)} rows; this model has {num_ws}"
        )
    for directions in (state.directions, state.components):
        if directions is not None and directions.w_dim not in (None, w_dim):
            raise ValueError(
                f"the session's directions have {directions.w_dim} dimensions; "
                f"this model has {w_dim}"
            )
    if state.noise_strength is not None:
        if any(s < 0 for s in state.noise_strength):
            raise ValueError("noise strengths must not be negative")
        if num_noise_layers is not None and len(state.noise_strength) != num_noise_layers:
            raise ValueError(
                f"the session sets {len(state.noise_strength)} noise strengths; "
                f"this model has {num_noise_layers} noise layers"
            )
