"""Latent files: our ``latent.npz`` (NVIDIA ``projected_w.npz``-compatible) and foreign ones.

Our file holds key ``w``: float32 [1, num_ws, w_dim] (exactly NVIDIA's ``projected_w.npz``) and
key ``metadata``: a 0-d string array with a JSON object (schema version, model name and
fingerprint, space, source photo, loss, steps, PSNR, ...), plus optional ``noise_{i}`` maps.
``load_latent`` also reads NVIDIA's file and rosinality's projector output (``.pt``:
``{filename: {img, latent, noise}}``), always without executing code from the file.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from editors.errors import LatentFileError
from models.formats.native import atomic_write

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FORMAT_OURS = "latentstudio latent.npz"
FORMAT_NVIDIA = "NVIDIA projected_w.npz"
FORMAT_ROSINALITY = "rosinality projector .pt"


@dataclass(frozen=True, slots=True, eq=False)
class LatentFile:
    """A latent read from a file."""

    ws: np.ndarray  # [rows, w_dim] float32; rows == num_ws, or 1 for a single w
    metadata: dict[str, Any]  # JSON facts from our files; {} for foreign ones
    format_name: str  # FORMAT_OURS, FORMAT_NVIDIA or FORMAT_ROSINALITY
    path: Path
    noise: tuple[np.ndarray, ...] | None = None  # noise maps when the file has them
    names: tuple[str, ...] = field(default_factory=tuple)  # entries of a multi-image .pt

    @property
    def model_fingerprint(self) -> str | None:
        """The fingerprint of the model the latent was made with, when recorded."""
        value = self.metadata.get("model", {}).get("fingerprint")
        return str(value) if value else None

    def fitted(self, num_ws: int, w_dim: int) -> np.ndarray:
        """ws [num_ws, w_dim] for a model; a single w is repeated to every row.

        Raises:
            LatentFileError: the latent has another shape (e.g. it is for another model size).
        """
        rows, dim = self.ws.shape
        if dim == w_dim and rows == 1:
            return np.repeat(self.ws, num_ws, axis=0)
        if (rows, dim) == (num_ws, w_dim):
            return self.ws.copy()
        raise LatentFileError(
            self.path,
            f"the latent is {rows} x {dim} but this model takes {num_ws} x {w_dim} "
            f"(a latent made with a model of another size?)",
        )


def save_latent(
    path: str | Path,
    ws: np.ndarray,
    *,
    metadata: Mapping[str, Any] | None = None,
    noise: Sequence[np.ndarray] | None = None,
) -> Path:
    """Write ws [num_ws, w_dim] (or [1, num_ws, w_dim]) atomically as ``latent.npz``.

    Args:
        path: output file; should end in ``.npz``.
        ws: the latent.
        metadata: JSON-compatible facts; ``schema_version`` is added.
        noise: optional noise maps, saved as ``noise_0``, ``noise_1``, ...

    Raises:
        ValueError: ws has the wrong number of dimensions or is not finite.
    """
    path = Path(path)
    array = np.asarray(ws, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[0] != 1:
        raise ValueError(
            f"ws must be [num_ws, w_dim] or [1, num_ws, w_dim], got {list(array.shape)}"
        )
    if not np.isfinite(array).all():
        raise ValueError("ws contains NaN or infinite values")
    meta = {"schema_version": SCHEMA_VERSION, **dict(metadata or {})}
    arrays: dict[str, np.ndarray] = {
        "w": array,
        "metadata": np.array(json.dumps(meta, sort_keys=True)),
    }
    for index, maps in enumerate(noise or ()):
        arrays[f"noise_{index}"] = np.asarray(maps, dtype=np.float32)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a file object: np.savez must not append ".npz"
            np.savez(handle, **arrays)

    atomic_write(path, write)
    return path


def load_latent(path: str | Path, *, index: int = 0) -> LatentFile:
    """Read a latent file of any supported kind, detected from its content.

    Args:
        path: ``.npz`` (ours or NVIDIA's) or rosinality's ``.pt``.
        index: which entry of a multi-image rosinality file (in file order).

    Raises:
        LatentFileError: missing, unreadable, not a latent file, or a latent of a bad shape.
    """
    path = Path(path)
    if not path.is_file():
        raise LatentFileError(path, "no such file")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] != b"PK":
        raise LatentFileError(
            path, "not a latent file (expected an .npz or a torch .pt zip archive)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise LatentFileError(path, f"damaged archive: {exc}") from None
    if any(name.endswith("data.pkl") for name in names):
        return _load_rosinality(path, index)
    return _load_npz(path)


def _load_npz(path: Path) -> LatentFile:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise LatentFileError(path, f"cannot read the .npz file: {exc}") from None
    if "w" not in arrays:
        raise LatentFileError(path, f"no 'w' array (has {', '.join(sorted(arrays)) or 'nothing'})")
    w = arrays["w"]
    if w.ndim == 3 and w.shape[0] >= 1:
        if w.shape[0] > 1:
            log.info("%s holds %d latents; using the first", path, w.shape[0])
        w = w[0]
    if w.ndim != 2 or w.shape[1] == 0:
        raise LatentFileError(
            path, f"'w' must be [1, num_ws, w_dim], got {list(arrays['w'].shape)}"
        )
    metadata: dict[str, Any] = {}
    format_name = FORMAT_NVIDIA
    if "metadata" in arrays:
        try:
            metadata = json.loads(str(arrays["metadata"]))
        except json.JSONDecodeError as exc:
            raise LatentFileError(path, f"metadata is not JSON: {exc}") from None
        if not isinstance(metadata, dict):
            raise LatentFileError(path, "metadata is not a JSON object")
        format_name = FORMAT_OURS
        version = metadata.get("schema_version", 0)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            log.warning("%s: written by a newer version (schema %s)", path, version)
    noise_keys = sorted((k for k in arrays if k.startswith("noise_")), key=lambda k: int(k[6:]))
    noise = tuple(arrays[k].astype(np.float32) for k in noise_keys) or None
    return LatentFile(_checked(w, path), metadata, format_name, path, noise)


def _load_rosinality(path: Path, index: int) -> LatentFile:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for foreign or unsafe content
        raise LatentFileError(path, f"cannot read the .pt file safely: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise LatentFileError(
            path, "not rosinality projector output ({filename: {img, latent, noise}})"
        )
    names = tuple(str(k) for k in data)
    entries = list(data.values())
    if not 0 <= index < len(entries):
        raise LatentFileError(path, f"entry {index} asked for, but the file has {len(entries)}")
    entry = entries[index]
    if not isinstance(entry, dict) or "latent" not in entry:
        raise LatentFileError(
            path, "not rosinality projector output: entries need a 'latent' tensor"
        )
    latent = entry["latent"]
    if not isinstance(latent, torch.Tensor):
        raise LatentFileError(path, "'latent' is not a tensor")
    w = latent.detach().float().cpu().numpy()
    if w.ndim == 1:
        w = w[None]  # projected without --w_plus: one w for every layer
    noise = None
    if isinstance(entry.get("noise"), (list, tuple)):
        noise = tuple(
            n.detach().float().cpu().numpy() for n in entry["noise"] if isinstance(n, torch.Tensor)
        )
    metadata = {"source_name": names[index]}
    return LatentFile(_checked(w, path), metadata, FORMAT_ROSINALITY, path, noise, names)


def _checked(w: np.ndarray, path: Path) -> np.ndarray:
    if w.ndim != 2 or min(w.shape) == 0:
        raise LatentFileError(path, f"latent must be [rows, w_dim], got {list(w.shape)}")
    w = np.ascontiguousarray(w, dtype=np.float32)
    if not np.isfinite(w).all():
        raise LatentFileError(path, "latent contains NaN or infinite values")
    return w


def latent_metadata(
    *,
    model_name: str = "",
    model_fingerprint: str = "",
    space: str = "w+",
    source_photo: str | Path | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The metadata dict ``save_latent`` expects (extra keys: loss, steps, psnr, ssim, ...)."""
    meta: dict[str, Any] = {
        "model": {"name": model_name, "fingerprint": model_fingerprint},
        "space": space,
        "source_photo": str(source_photo) if source_photo is not None else None,
    }
    for key, value in extra.items():
        meta[key] = value.item() if isinstance(value, np.generic) else value
    return meta
