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
from models.formats.limits import (
    MAX_LATENT_DIM,
    LimitError,
    check_tensors,
    check_zip_members,
    require_regular_file,
)
from models.formats.native import atomic_write
from models.formats.npz import DEFAULT_MAX_TOTAL, read_npz

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FORMAT_OURS = "latentstudio latent.npz"
FORMAT_NVIDIA = "NVIDIA projected_w.npz"
FORMAT_ROSINALITY = "rosinality projector .pt"
MAX_ROWS = 1024  # style layers of a latent (18 for a 1024 px StyleGAN2)
_MAX_METADATA = 1_000_000  # characters of the JSON metadata


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
    def tuning_path(self) -> Path | None:
        """The pivotal-tuning delta the latent was made with, when it refers to one.

        Only a file beside the latent is ever used (a name with folders is reduced to its name).
        """
        entry = self.metadata.get("tuning")
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not Path(name).name:
            return None
        return self.path.parent / Path(name).name

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
        LatentFileError: missing, unreadable, not a latent file, a latent of a bad shape or
            with NaN/infinite values; every failure of reading ends as this error.
    """
    path = Path(path)
    try:
        return _load_latent(path, index)
    except LatentFileError:
        raise
    except (LimitError, OSError, zipfile.BadZipFile) as exc:
        raise LatentFileError(path, str(exc)) from None
    except MemoryError:
        raise LatentFileError(path, "asks for more memory than is available") from None
    except RecursionError:
        raise LatentFileError(path, "nested too deeply to be a latent file") from None
    except Exception as exc:  # the loading boundary: no file may end in a traceback
        log.debug("reading %s failed", path, exc_info=True)
        raise LatentFileError(path, f"damaged latent file ({type(exc).__name__}: {exc})") from None


def _load_latent(path: Path, index: int) -> LatentFile:
    if not path.exists():
        raise LatentFileError(path, "no such file")
    require_regular_file(path)
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] != b"PK":
        raise LatentFileError(
            path, "not a latent file (expected an .npz or a torch .pt zip archive)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip_members(archive, path.stat().st_size, max_total=DEFAULT_MAX_TOTAL)
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise LatentFileError(path, f"damaged archive: {exc}") from None
    if any(name.endswith("data.pkl") for name in names):
        return _load_rosinality(path, index)
    return _load_npz(path)


def _load_npz(path: Path) -> LatentFile:
    try:
        arrays = read_npz(path)
    except ValueError as exc:
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
        text = arrays["metadata"]
        if text.ndim != 0 or text.dtype.kind != "U" or text.dtype.itemsize > 4 * _MAX_METADATA:
            raise LatentFileError(path, "metadata is not a JSON string")
        try:
            metadata = json.loads(str(text))
        except (json.JSONDecodeError, RecursionError) as exc:
            raise LatentFileError(path, f"metadata is not JSON: {exc}") from None
        if not isinstance(metadata, dict):
            raise LatentFileError(path, "metadata is not a JSON object")
        format_name = FORMAT_OURS
        version = metadata.get("schema_version", 0)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            log.warning("%s: written by a newer version (schema %s)", path, version)
    noise_keys = [k for k in arrays if k.startswith("noise_")]
    if any(not k[6:].isdigit() for k in noise_keys):
        raise LatentFileError(path, f"unexpected entries {', '.join(noise_keys)[:80]}")
    noise_keys.sort(key=lambda k: int(k[6:]))
    noise = tuple(_checked_noise(arrays[k], k, path) for k in noise_keys) or None
    return LatentFile(_checked(w, path), metadata, format_name, path, noise)


def _load_rosinality(path: Path, index: int) -> LatentFile:
    import torch

    from models.errors import CheckpointError
    from models.formats import read_torch_file

    try:
        data = read_torch_file(path, safe_globals=[])
    except CheckpointError as exc:
        raise LatentFileError(path, f"cannot read the .pt file safely: {exc.reason}") from None
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
    noises = entry.get("noise") if isinstance(entry.get("noise"), list | tuple) else []
    check_tensors({"latent": latent, **{f"noise {i}": n for i, n in enumerate(noises)}})
    if not latent.is_floating_point():
        raise LatentFileError(path, f"'latent' holds {latent.dtype}, not floating-point numbers")
    w = latent.detach().float().cpu().numpy()
    if w.ndim == 1:
        w = w[None]  # projected without --w_plus: one w for every layer
    noise = (
        tuple(
            _checked_noise(n.detach().cpu().numpy(), f"noise {i}", path)
            for i, n in enumerate(noises)
        )
        if noises
        else None
    )
    metadata = {"source_name": names[index]}
    return LatentFile(_checked(w, path), metadata, FORMAT_ROSINALITY, path, noise, names)


def _checked(w: np.ndarray, path: Path) -> np.ndarray:
    if w.ndim != 2 or min(w.shape) == 0:
        raise LatentFileError(path, f"latent must be [rows, w_dim], got {list(w.shape)}")
    if w.shape[0] > MAX_ROWS or w.shape[1] > MAX_LATENT_DIM:
        raise LatentFileError(path, f"a latent of {list(w.shape)} is larger than any model's")
    if w.dtype.kind != "f":
        raise LatentFileError(path, f"latent holds {w.dtype}, not floating-point numbers")
    w = np.ascontiguousarray(w, dtype=np.float32)
    if not np.isfinite(w).all():
        raise LatentFileError(path, "latent contains NaN or infinite values")
    return w


def _checked_noise(array: np.ndarray, key: str, path: Path) -> np.ndarray:
    if array.dtype.kind != "f" or not np.isfinite(array).all():
        raise LatentFileError(path, f"{key} is not a map of finite floating-point numbers")
    return array.astype(np.float32)


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
