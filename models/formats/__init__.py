"""Checkpoint formats, detected from the file's content (never its extension).

A file is first classified by its container (safetensors, zip-based torch file, legacy torch
file, bare pickle). Torch containers are read once with ``torch.load(weights_only=True)``, which
cannot execute code, and each layout module in ``LAYOUTS`` is asked whether it recognises the
payload. Every layout module exposes:

- ``NAME``: a short human name ("rosinality .pt");
- ``CONTAINERS``: the containers it reads;
- ``accepts(payload) -> bool`` and ``build(payload, path) -> Generator``;
- optionally ``SAFE_GLOBALS``: inert classes ``torch.load`` may rebuild for this layout.

For ``Container.PICKLE`` the payload is the path itself: such layouts do their own restricted
unpickling.
"""

from __future__ import annotations

import enum
import logging
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from models.discriminator import StyleGAN2Discriminator
from models.errors import CheckpointError, UnsupportedFormatError
from models.formats import native, nvidia_pkl, pgan, rosinality
from models.generator import Generator

log = logging.getLogger(__name__)

# Legacy (pre-1.6) torch.save files start with a pickled magic number: protocol 2, then LONG1.
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


class Container(enum.StrEnum):
    """How a checkpoint's bytes are packaged."""

    SAFETENSORS = "safetensors"
    TORCH_ZIP = "zip-based torch file"
    TORCH_LEGACY = "legacy torch file"
    PICKLE = "pickle"
    UNKNOWN = "unknown"


LAYOUTS: tuple[ModuleType, ...] = (native, rosinality, pgan, nvidia_pkl)


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """What ``main.py info`` reports about a checkpoint."""

    path: Path
    container: Container
    format_name: str
    kind: str
    resolution: int
    z_dim: int
    w_dim: int
    num_ws: int
    c_dim: int
    num_parameters: int
    detail: str

    def lines(self) -> list[str]:
        """Human-readable ``key: value`` lines."""
        return [
            f"file:        {self.path}",
            f"format:      {self.format_name} ({self.container})",
            f"kind:        {self.kind}",
            f"resolution:  {self.resolution}x{self.resolution}",
            f"z_dim:       {self.z_dim}",
            f"w_dim:       {self.w_dim}",
            f"style layers (num_ws): {self.num_ws}",
            f"class labels (c_dim):  {self.c_dim}",
            f"parameters:  {self.num_parameters:,}",
        ] + ([f"contents:    {self.detail}"] if self.detail else [])


def sniff_container(path: Path) -> Container:
    """Classify a file by its first bytes.

    Raises:
        CheckpointError: the file is missing, is a folder, or cannot be read.
    """
    if not path.exists():
        raise CheckpointError(path, "file not found")
    if path.is_dir():
        raise CheckpointError(path, "is a folder, not a checkpoint file")
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if not head:
        raise CheckpointError(path, "file is empty")
    if head.startswith(b"PK\x03\x04"):
        return Container.TORCH_ZIP
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return Container.TORCH_LEGACY
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 2 <= header_len <= 100_000_000:
            return Container.SAFETENSORS
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:
        return Container.PICKLE
    return Container.UNKNOWN


def _safe_globals() -> list[Any]:
    found: list[Any] = []
    for layout in LAYOUTS:
        found.extend(getattr(layout, "SAFE_GLOBALS", ()))
    return found


def read_torch_file(path: Path) -> Any:
    """Read a torch file without executing code from it (``weights_only=True``).

    Raises:
        CheckpointError: the file is truncated, corrupted or asks for code it may not run.
    """
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, EOFError, RuntimeError) as exc:
        raise CheckpointError(
            path, f"truncated or corrupted torch file ({_first_line(exc)})"
        ) from exc
    except Exception as exc:  # torch raises UnpicklingError and others for refused globals
        raise CheckpointError(
            path, f"unsafe or unsupported content in torch file ({_first_line(exc)})"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _read_payload(path: Path, container: Container) -> Any:
    if container is Container.SAFETENSORS:
        return native.read_file(path)
    if container in (Container.TORCH_ZIP, Container.TORCH_LEGACY):
        return read_torch_file(path)
    return path


def load_generator_file(path: str | Path) -> Generator:
    """Load a generator from any supported checkpoint (on the CPU, fp32, eval mode).

    Raises:
        CheckpointError: missing, unreadable, corrupted or unsupported file; message names it.
    """
    path = Path(path)
    container = sniff_container(path)
    if container is Container.UNKNOWN:
        raise UnsupportedFormatError(
            path,
            [c.value for c in Container if c is not Container.UNKNOWN],
            "unrecognised file content",
        )
    payload = _read_payload(path, container)
    tried: list[str] = []
    for layout in LAYOUTS:
        if container not in layout.CONTAINERS:
            continue
        tried.append(layout.NAME)
        if layout.accepts(payload):
            generator: Generator = layout.build(payload, path)
            generator.float().eval().requires_grad_(False)
            if not generator.name:
                generator.name = path.stem
            return generator
    if rosinality.discriminator_state(payload) is not None:
        raise CheckpointError(
            path, "holds only a StyleGAN2 discriminator ('d'), no generator to open"
        )
    detail = f"a {container} whose contents no layout recognises"
    if isinstance(payload, dict):
        keys = ", ".join(sorted(str(k) for k in payload)[:8])
        detail += f" (top-level keys: {keys})"
    raise UnsupportedFormatError(path, tried or [container.value], detail)


def load_discriminator_file(path: str | Path) -> StyleGAN2Discriminator | None:
    """Load the discriminator stored in a checkpoint (CPU, fp32, eval mode), or None if it has none.

    Layout modules that can hold a discriminator expose
    ``build_discriminator(payload, path) -> StyleGAN2Discriminator | None``.

    Raises:
        CheckpointError: missing, unreadable or corrupted file; a damaged discriminator entry.
    """
    path = Path(path)
    container = sniff_container(path)
    if container is Container.UNKNOWN:
        raise UnsupportedFormatError(
            path,
            [c.value for c in Container if c is not Container.UNKNOWN],
            "unrecognised file content",
        )
    payload = _read_payload(path, container)
    for layout in LAYOUTS:
        build = getattr(layout, "build_discriminator", None)
        if container not in layout.CONTAINERS or build is None:
            continue
        discriminator = build(payload, path)
        if discriminator is not None:
            return discriminator
    log.info("%s: no usable discriminator in this checkpoint", path)
    return None


def inspect_checkpoint(path: str | Path) -> CheckpointInfo:
    """Load a checkpoint and describe it.

    Raises:
        CheckpointError: as ``load_generator_file``.
    """
    path = Path(path)
    generator = load_generator_file(path)
    source = generator.source
    return CheckpointInfo(
        path=path,
        container=sniff_container(path),
        format_name=source.format_name if source else "unknown",
        kind=generator.kind,
        resolution=generator.resolution,
        z_dim=generator.z_dim,
        w_dim=generator.w_dim,
        num_ws=generator.num_ws,
        c_dim=generator.c_dim,
        num_parameters=generator.num_parameters(),
        detail=source.detail if source else "",
    )
