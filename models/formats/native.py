"""The app's own format: one safetensors file whose header metadata holds the architecture as JSON.

Weights (and buffers such as ``w_avg`` and the noise maps) are the tensors; the metadata entry
``latentstudio`` holds ``{"schema_version", "kind", "architecture", "name", "provenance"}``.
Writing is atomic (temp file, then rename) and save -> load is bit-exact.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from models.errors import CheckpointError
from models.formats.limits import LimitError, check_progan, check_stylegan2, check_tensors
from models.generator import CheckpointSource, Generator
from models.progan import progan_from_architecture
from models.stylegan2 import stylegan2_from_architecture

NAME = "latentstudio safetensors"
METADATA_KEY = "latentstudio"
SCHEMA_VERSION = 1
CONTAINERS = frozenset({"safetensors"})

# kind -> function building an untrained network from its architecture dict
BUILDERS: dict[str, Callable[[dict[str, Any]], Generator]] = {
    "stylegan2": stylegan2_from_architecture,
    "progan": progan_from_architecture,
}
# kind -> check of the architecture against the limits and the file's tensors, before building
CHECKS: dict[str, Callable[[dict[str, Any], int | None], None]] = {
    "stylegan2": check_stylegan2,
    "progan": check_progan,
}

Payload = tuple[dict[str, torch.Tensor], dict[str, str]]


def read_file(path: Path) -> Payload:
    """Read all tensors and the header metadata of a safetensors file.

    Raises:
        CheckpointError: the file is truncated or not valid safetensors.
    """
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"truncated or corrupted safetensors file ({exc})") from exc
    return tensors, metadata


def accepts(payload: Payload) -> bool:
    """True when the safetensors metadata carries this app's header."""
    return METADATA_KEY in payload[1]


def build(payload: Payload, path: Path) -> Generator:
    """Rebuild the generator described by the metadata and load the tensors into it."""
    tensors, metadata = payload
    try:
        header = json.loads(metadata[METADATA_KEY])
        kind = header["kind"]
        architecture = header["architecture"]
    except (json.JSONDecodeError, KeyError, TypeError, RecursionError) as exc:
        raise CheckpointError(path, f"damaged {METADATA_KEY} metadata ({exc})") from exc
    version = header.get("schema_version", 0)
    if not isinstance(version, int) or not isinstance(architecture, dict):
        raise CheckpointError(path, f"damaged {METADATA_KEY} metadata (wrong types)")
    if version > SCHEMA_VERSION:
        raise CheckpointError(path, f"written by a newer version of the app (schema {version})")
    if not isinstance(kind, str) or kind not in BUILDERS:
        raise CheckpointError(path, f"unknown generator kind {kind!r:.60}")
    try:
        CHECKS[kind](architecture, check_tensors(tensors))
        generator = BUILDERS[kind](architecture)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(path, f"invalid architecture: {exc}") from exc
    load_state_dict_strict(generator, tensors, path)
    generator.name = str(header.get("name") or path.stem)[:200]
    provenance = header.get("provenance") or {}
    if not isinstance(provenance, dict):
        provenance = {}
    generator.source = CheckpointSource(path, NAME, _describe(provenance))
    generator.provenance = dict(provenance)
    return generator


def _describe(provenance: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{key}: {value}"
        for key, value in provenance.items()
        if isinstance(value, str | int | float)
    )


def load_state_dict_strict(
    module: torch.nn.Module, tensors: Mapping[str, torch.Tensor], path: Path
) -> None:
    """Copy ``tensors`` into ``module``, refusing missing, unexpected or mis-shaped entries.

    Raises:
        CheckpointError: naming the first few offending keys.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        key for key in set(expected) & set(tensors) if expected[key].shape != tensors[key].shape
    )
    problems = []
    if missing:
        problems.append(f"missing tensors {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {_few(unexpected)}")
    if wrong:
        key = wrong[0]
        problems.append(
            f"wrong shapes for {_few(wrong)} (e.g. {key}: file {list(tensors[key].shape)}, "
            f"network {list(expected[key].shape)})"
        )
    if problems:
        raise CheckpointError(path, "; ".join(problems))
    for key in expected:
        try:
            check_tensors({key: tensors[key]})
        except LimitError as exc:
            raise CheckpointError(path, str(exc)) from exc
        value = tensors[key]
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(path, f"tensor {key} holds NaN or infinite values")
    with torch.no_grad():
        for key, value in expected.items():
            value.copy_(tensors[key].to(value.dtype))


def _few(keys: list[str]) -> str:
    shown = ", ".join(keys[:4])
    return shown + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")


def write_network_file(
    path: str | Path,
    tensors: Mapping[str, torch.Tensor],
    header: Mapping[str, Any],
    *,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write tensors plus a JSON header atomically as safetensors (any network the app saves).

    ``header`` must hold ``kind``; ``schema_version`` is added.
    """
    path = Path(path)
    prepared = {}
    for key, value in tensors.items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        prepared[key] = value.contiguous()
    full_header = {"schema_version": SCHEMA_VERSION, **header}
    metadata = {METADATA_KEY: json.dumps(full_header)}
    atomic_write(path, lambda tmp: save_file(prepared, str(tmp), metadata=metadata))
    return path


def read_network_file(
    path: str | Path, kind: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by ``write_network_file`` and check it holds a network of ``kind``.

    Raises:
        CheckpointError: missing, corrupted, or another kind of file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file not found")
    tensors, metadata = read_file(path)
    try:
        header = json.loads(metadata[METADATA_KEY])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, "not a Latent Studio network file") from exc
    if header.get("kind") != kind:
        raise CheckpointError(path, f"holds a {header.get('kind')!r} network, not a {kind!r}")
    if header.get("schema_version", 0) > SCHEMA_VERSION:
        raise CheckpointError(path, "written by a newer version of the app")
    return tensors, header


def save_generator(
    generator: Generator,
    path: str | Path,
    *,
    dtype: torch.dtype | None = None,
    name: str | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``generator`` atomically in the native format.

    Args:
        generator: the network to save.
        path: destination file (conventionally ``*.safetensors``).
        dtype: store floating-point tensors in this type (e.g. ``torch.float16``); None = as is.
        name: display name stored in the file; defaults to ``generator.name``.
        provenance: JSON-compatible facts about where the weights come from.
    """
    header = {
        "kind": generator.kind,
        "architecture": generator.architecture(),
        "name": name or generator.name or Path(path).stem,
        "provenance": dict(provenance if provenance is not None else generator.provenance),
    }
    return write_network_file(path, generator.state_dict(), header, dtype=dtype)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import (os.umask can only be read by setting it, which is not thread-safe later).
NEW_FILE_MODE = 0o666 & ~_read_umask()


def atomic_temp_file(path: Path, suffix: str = ".tmp") -> Path:
    """An empty temp file beside ``path`` with the permissions a newly created file would get.

    ``mkstemp`` makes files readable by the owner only; after the rename that would leave the
    user's saved image or model private, unlike every other file they save.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    os.chmod(tmp_name, NEW_FILE_MODE)
    return Path(tmp_name)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temp file beside ``path``, then rename it over ``path``.

    The data is flushed to disk before the rename (and the rename itself after it), so that a
    power loss leaves either the old file or the complete new one, never an empty one.
    """
    tmp = atomic_temp_file(path)
    try:
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_file(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename durable; not possible everywhere (Windows cannot open folders).
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
