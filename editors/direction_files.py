"""Direction files: ``NAME.directions.json`` (the index: names, layers, scores, provenance) beside
``NAME.directions.npz`` (the vectors), written atomically and read without pickle.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from editors.directions import Direction, DirectionSet, FloatArray, json_value
from models.formats.native import atomic_write
from models.formats.npz import read_npz

FILE_KIND = "latentstudio-directions"
SCHEMA_VERSION = 1
DIRECTIONS_SUFFIX = ".directions.json"
# Provenance entries naming files (the labeller's classifier): stored relative to the directions
# file, which sits beside its model, so a file records no machine's folders.
PATH_FACTS = ("classifier",)


class DirectionFileError(ValueError):
    """A direction file is missing, corrupted or does not fit the model."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def default_directions_path(model_path: str | Path) -> Path:
    """``<model stem>.directions.json`` beside the model file (the vectors go in ``.npz``)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + DIRECTIONS_SUFFIX)


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix.lower() == ".npz":
        path = path.with_suffix(".json")
    elif path.suffix.lower() != ".json":
        path = path.with_name(path.name + ".json")
    return path, path.with_suffix(".npz")


def directions_to_json(directions: DirectionSet) -> tuple[dict[str, Any], FloatArray]:
    """Split a set into JSON data (names, layers, metrics, provenance) and vectors [K, w_dim]."""
    entries = [
        {
            "name": d.name,
            "layers": list(d.layers) if d.layers is not None else None,
            "space": d.space,
            "metrics": dict(d.metrics),
            "fitted_with": json_value(dict(d.fitted_with)),
        }
        for d in directions
    ]
    index = {
        "model_fingerprint": directions.fingerprint,
        "model_name": directions.model_name,
        "w_dim": directions.w_dim,
        "directions": entries,
    }
    return index, directions.matrix()


def directions_from_json(
    index: Mapping[str, Any], vectors: np.ndarray, source: Path | None = None
) -> DirectionSet:
    """Rebuild a set from ``directions_to_json`` output.

    Raises:
        ValueError: the data is inconsistent (counts, shapes, names, layer ranges).
    """
    entries = index.get("directions")
    vectors = np.asarray(vectors, dtype=np.float32)
    if not isinstance(entries, list) or vectors.ndim != 2 or vectors.shape[0] != len(entries):
        raise ValueError(
            f"the index lists {len(entries) if isinstance(entries, list) else '?'} directions "
            f"but there are {vectors.shape[0] if vectors.ndim == 2 else '?'} vectors"
        )
    try:
        directions = tuple(
            Direction(
                name=str(entry["name"]),
                vector=vectors[row],
                layers=tuple(entry["layers"]) if entry.get("layers") is not None else None,
                space=entry.get("space", "w"),
                metrics=entry.get("metrics") or {},
                fitted_with=entry.get("fitted_with") or {},
            )
            for row, entry in enumerate(entries)
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"invalid direction entry ({exc})") from exc
    return DirectionSet(
        directions, index.get("model_fingerprint"), str(index.get("model_name") or ""), source
    )


def save_directions(directions: DirectionSet, path: str | Path) -> Path:
    """Write ``directions`` atomically as ``path`` (JSON index) plus ``path`` with ``.npz``.

    Returns:
        The JSON path.
    """
    json_path, npz_path = _paths(path)
    if not directions.directions:
        raise ValueError("there are no directions to save")
    data, vectors = directions_to_json(directions)
    for entry in data["directions"]:
        facts = entry["fitted_with"]
        for key in PATH_FACTS:
            if isinstance(facts.get(key), str) and Path(facts[key]).is_absolute():
                facts[key] = Path(os.path.relpath(facts[key], json_path.parent)).as_posix()
    index = {
        "kind": FILE_KIND,
        "schema_version": SCHEMA_VERSION,
        "vectors_file": npz_path.name,
        **data,
    }

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, vectors=vectors)

    atomic_write(npz_path, write_npz)
    text = json.dumps(index, indent=2, allow_nan=False)
    atomic_write(json_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return json_path


def load_directions(path: str | Path) -> DirectionSet:
    """Read a direction set written by ``save_directions`` (the JSON or the ``.npz`` path).

    Raises:
        DirectionFileError: missing, corrupted or inconsistent files.
    """
    json_path, npz_path = _paths(path)
    if not json_path.is_file():
        raise DirectionFileError(json_path, "file not found")
    try:
        index = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DirectionFileError(json_path, f"not a readable JSON file ({exc})") from exc
    if not isinstance(index, dict) or index.get("kind") != FILE_KIND:
        raise DirectionFileError(json_path, "not a Latent Studio direction file")
    version = index.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise DirectionFileError(
            json_path, f"written by a newer version of the app ({version!r:.20})"
        )
    npz_path = json_path.with_name(str(index.get("vectors_file") or npz_path.name))
    if not npz_path.is_file():
        raise DirectionFileError(npz_path, "vector file not found (it belongs beside the .json)")
    try:
        # Bounded reading: member sizes and the array header are checked before allocating.
        vectors = np.asarray(read_npz(npz_path)["vectors"], dtype=np.float32)
        if not np.isfinite(vectors).all():
            raise ValueError("the vectors contain NaN or infinite values")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DirectionFileError(npz_path, f"not a readable vector file ({exc})") from exc
    try:
        directions = directions_from_json(index, vectors, json_path)
    except ValueError as exc:
        message = str(exc).replace("there are", f"{npz_path.name} holds")
        raise DirectionFileError(json_path, message) from exc
    from editors.stylespace import find_style_directions

    # Localized versions shipped beside the set make its sliders act in style space.
    styles = find_style_directions(json_path)
    return dataclasses.replace(directions, styles=styles) if styles is not None else directions
