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
from typing import TYPE_CHECKING, Any

import numpy as np

from editors.direction_files import directions_from_json, directions_to_json
from editors.directions import DirectionSet
from editors.local_edits_io import local_edits_from_file, local_edits_to_file
from editors.mixing import LatentSource, StyleMix
from editors.state import EditState
from models.formats.limits import finite_number
from models.formats.native import atomic_write
from models.formats.npz import read_npz
from models.generator import NOISE_MODES

if TYPE_CHECKING:
    from editors.pivotal import TuningDelta

FILE_KIND = "latentstudio-session"
SCHEMA_VERSION = 1
SESSION_SUFFIX = ".lsession"
SESSION_FILTER = f"Sessions (*{SESSION_SUFFIX})"  # for file dialogs
TUNING_PREFIX = "tuning/"  # arrays of the pivotal-tuning delta (editors.pivotal)


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
    tuning: TuningDelta | None = None  # pivotal tuning of the model for the session's photo

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


def save_session(
    path: str | Path, state: EditState, model: ModelReference, tuning: TuningDelta | None = None
) -> Path:
    """Write ``state``, the model reference and any tuning delta to ``path`` (atomically)."""
    from editors.pivotal import delta_arrays

    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    if tuning is not None:
        arrays.update({TUNING_PREFIX + k: v for k, v in delta_arrays(tuning).items()})
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
    local_document, local_arrays = local_edits_to_file(state)  # style channels, masks
    document.update(local_document)
    arrays.update(local_arrays)
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
    if not path.exists():
        raise SessionFileError(path, "file not found")
    try:
        arrays = read_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SessionFileError(path, f"not a readable session file ({exc})") from exc
    except MemoryError as exc:
        raise SessionFileError(path, "asks for more memory than is available") from exc
    try:
        text = arrays["session"]
        if text.ndim != 0 or text.dtype.kind != "U":
            raise ValueError("the session document is not a string")
        document = json.loads(str(text[()]))
    except (KeyError, ValueError, RecursionError) as exc:
        raise SessionFileError(path, "not a Latent Studio session (no session document)") from exc
    if not isinstance(document, dict) or document.get("kind") != FILE_KIND:
        raise SessionFileError(path, "not a Latent Studio session")
    version = document.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise SessionFileError(
            path, f"written by a newer version of the app (schema {version!r:.20})"
        )
    try:
        return SessionFile(_state(document, arrays), _model(document), _tuning(arrays, path))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        raise SessionFileError(path, f"damaged session ({type(exc).__name__}: {exc})") from exc


def _tuning(arrays: dict[str, np.ndarray], path: Path) -> TuningDelta | None:
    from editors.pivotal import delta_from_arrays

    parts = {k[len(TUNING_PREFIX) :]: v for k, v in arrays.items() if k.startswith(TUNING_PREFIX)}
    return delta_from_arrays(parts, path) if parts else None


def _model(document: dict[str, Any]) -> ModelReference:
    model = document.get("model") or {}
    if not isinstance(model, dict):
        raise TypeError("the model reference is not an object")
    path, fingerprint = model.get("path"), model.get("fingerprint")
    if not isinstance(path, str | None) or not isinstance(fingerprint, str | None):
        raise TypeError("the model path and fingerprint must be text")
    return ModelReference(path, fingerprint, str(model.get("name") or ""))


def _latent(arrays: dict[str, np.ndarray], key: str) -> np.ndarray | None:
    """A [rows, w_dim] latent of finite floats from the archive, or None when absent."""
    array = arrays.get(key)
    if array is None:
        return None
    if array.ndim != 2 or array.dtype.kind != "f":
        raise ValueError(
            f"{key} must be a [num_ws, w_dim] float array, got {array.dtype} {list(array.shape)}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{key} contains NaN or infinite values")
    return array.astype(np.float32)


def _numbers(values: Any, what: str) -> dict[str, float]:
    if not isinstance(values, dict):
        raise TypeError(f"{what} must be an object of numbers")
    return {str(k): finite_number(v, f"{what} {k!r:.40}") for k, v in values.items()}


def _seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ValueError(f"seed must be an integer in 0..2**32-1, got {value!r:.40}")
    return value


def _directions(
    document: dict[str, Any], arrays: dict[str, np.ndarray], key: str
) -> DirectionSet | None:
    index = document.get(key)
    if index is None:
        return None
    if not isinstance(index, dict):
        raise TypeError(f"{key} must be an object")
    source = Path(str(index["source"])) if index.get("source") else None
    vectors = arrays[f"{key}_vectors"]
    if vectors.dtype.kind != "f" or not np.isfinite(vectors).all():
        raise ValueError(f"the {key} vectors are not finite floating-point numbers")
    return directions_from_json(index, vectors, source)


def _state(document: dict[str, Any], arrays: dict[str, np.ndarray]) -> EditState:
    directions = _directions(document, arrays, "directions")
    components = _directions(document, arrays, "components")
    mix = None
    if document.get("mix") is not None:
        entry = document["mix"]
        donor_entry = entry["donor"]
        donor = LatentSource(
            seed=None if "donor_ws" in arrays else _seed(donor_entry.get("seed")),
            truncation_psi=finite_number(
                donor_entry.get("truncation_psi", 1.0), "donor truncation"
            ),
            ws=_latent(arrays, "donor_ws"),
            label=str(donor_entry.get("label") or ""),
        )
        weights = entry["row_weights"]
        if not isinstance(weights, list):
            raise TypeError("row_weights must be a list")
        mix = StyleMix(donor, tuple(finite_number(v, "row weight") for v in weights))
    names = set(directions.names) if directions is not None else set()
    amounts = _numbers(document.get("attribute_amounts", {}), "attribute amount")
    unknown = sorted(set(amounts) - names)
    if unknown:
        raise ValueError(
            f"amounts for directions that are not in the session: {', '.join(unknown)}"
        )
    base_ws = _latent(arrays, "base_ws")
    noise_mode = document.get("noise_mode", "const")
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"unknown noise mode {noise_mode!r:.40} (one of {', '.join(NOISE_MODES)})")
    noise = document.get("noise_strength")
    if noise is not None and not isinstance(noise, list):
        raise TypeError("noise_strength must be a list")
    layers = document.get("component_layers")
    if layers and (
        not isinstance(layers, list)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in layers)
    ):
        raise TypeError("component_layers must be a list of integers")
    locked = document.get("locked", [])
    if not isinstance(locked, list):
        raise TypeError("locked must be a list of names")
    state = EditState(
        seed=_seed(document.get("seed")),
        base_ws=base_ws,
        truncation_psi=finite_number(document.get("truncation_psi", 1.0), "truncation"),
        noise_mode=noise_mode,
        noise_strength=tuple(finite_number(v, "noise strength") for v in noise)
        if noise is not None
        else None,
        directions=directions,
        attribute_amounts=amounts,
        locked=frozenset(str(n) for n in locked),
        components=components,
        component_amounts=_numbers(document.get("component_amounts", {}), "component amount"),
        component_layers=tuple(layers) if layers else None,
        mix=mix,
    )
    return local_edits_from_file(state, document, arrays)


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
