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
import re
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from models.discriminator import StyleGAN2Discriminator
from models.errors import CheckpointError, UnsupportedFormatError
from models.formats import native, nvidia_pkl, pgan, rosinality
from models.formats.limits import LimitError, check_zip_members, require_regular_file
from models.generator import Generator
from models.jobs import Cancelled

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
        require_regular_file(path)  # a FIFO would block the open below forever
    except (LimitError, OSError) as exc:
        raise CheckpointError(path, str(exc)) from exc
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


def check_torch_zip(path: Path) -> None:
    """Check a zip-based torch file's member sizes before ``torch.load`` inflates any of them.

    Raises:
        CheckpointError: a member claims more than the file holds or would inflate too much.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip_members(archive, path.stat().st_size)
    except LimitError as exc:
        raise CheckpointError(path, str(exc)) from exc
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(path, f"truncated or corrupted torch file ({exc})") from exc


def read_torch_file(path: Path, safe_globals: list[Any] | None = None) -> Any:
    """Read a torch file without executing code from it (``weights_only=True``).

    Zip members are size-checked first; the message for a refused class names it.

    Raises:
        CheckpointError: the file is truncated, corrupted or asks for code it may not run.
    """
    if zipfile.is_zipfile(path):
        check_torch_zip(path)
    allowed = _safe_globals() if safe_globals is None else safe_globals
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types; a refused global is worded apart
        raise CheckpointError(path, describe_torch_error(exc)) from exc


# torch words a refused class as "Unsupported global: GLOBAL os.system was not an allowed ..."
_REFUSED_GLOBAL = re.compile(r"(?:GLOBAL|global|function|class) ([\w.]+\.[\w]+)")


def describe_torch_error(exc: BaseException) -> str:
    """One line for a failed ``torch.load``: the refused global, or what broke."""
    text = str(exc)
    if isinstance(exc, MemoryError):
        return "the file asks for more memory than is available (damaged or hostile file)"
    if "Weights only load failed" in text or "Unsupported" in text:
        found = _REFUSED_GLOBAL.search(text.split("Check the documentation")[0])
        what = f"it asks for {found.group(1)}" if found else _first_line(exc)
        return f"unsafe or unsupported content in torch file: {what}; nothing from it was run"
    return f"truncated or corrupted torch file ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    useful = [line for line in lines if "weights_only" not in line and "re-run" not in line]
    text = (useful or lines or [type(exc).__name__])[0]
    return text[:200]


def _read_payload(path: Path, container: Container) -> Any:
    if container is Container.SAFETENSORS:
        return native.read_file(path)
    if container in (Container.TORCH_ZIP, Container.TORCH_LEGACY):
        return read_torch_file(path)
    return path


def load_generator_file(
    path: str | Path, should_stop: Callable[[], bool] | None = None
) -> Generator:
    """Load a generator from any supported checkpoint (on the CPU, fp32, eval mode).

    Args:
        path: the checkpoint.
        should_stop: polled between the loading steps (and while unpickling); when it turns
            true, ``Cancelled`` is raised.

    Raises:
        CheckpointError: missing, unreadable, corrupted, unsupported or hostile file; the
            message names it. Every failure of loading ends as this error.
        Cancelled: ``should_stop`` asked to stop.
    """
    path = Path(path)
    return _guarded(path, lambda: _load_generator(path, should_stop or (lambda: False)))


def load_generator_job(
    path: str | Path,
    device: str | torch.device | None = None,
    *,
    on_step: Callable[[Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Generator:
    """``load_generator`` as a cancellable background job (the GUI's model loading).

    Raises:
        CheckpointError: as ``load_generator_file``.
        Cancelled: ``should_stop`` turned true; nothing is returned.
    """
    from models.runtime import resolve_device

    stop = should_stop or (lambda: False)
    target = resolve_device(device)
    generator = load_generator_file(path, stop)
    if stop():
        raise Cancelled(None)
    generator = generator.to(target)
    if stop():
        raise Cancelled(None)
    return generator


def _guarded(path: Path, load: Callable[[], Any]) -> Any:
    """Run ``load``; every failure other than cancelling becomes a ``CheckpointError``."""
    try:
        return load()
    except (CheckpointError, Cancelled):
        raise
    except InterruptedError:
        raise Cancelled(None) from None
    except LimitError as exc:
        raise CheckpointError(path, str(exc)) from exc
    except MemoryError as exc:
        raise CheckpointError(path, "asks for more memory than is available") from exc
    except RecursionError as exc:
        raise CheckpointError(path, "nested too deeply to be a checkpoint") from exc
    except Exception as exc:  # the loading boundary: no file may end in a traceback
        log.debug("loading %s failed", path, exc_info=True)
        raise CheckpointError(
            path, f"damaged or unsupported checkpoint ({type(exc).__name__}: {_first_line(exc)})"
        ) from exc


def _load_generator(path: Path, should_stop: Callable[[], bool]) -> Generator:
    container = sniff_container(path)
    if container is Container.UNKNOWN:
        raise UnsupportedFormatError(
            path,
            [c.value for c in Container if c is not Container.UNKNOWN],
            "unrecognised file content",
        )
    payload = _read_payload(path, container)
    if should_stop():
        raise Cancelled(None)
    tried: list[str] = []
    for layout in LAYOUTS:
        if container not in layout.CONTAINERS:
            continue
        tried.append(layout.NAME)
        if layout.accepts(payload):
            generator: Generator = (
                layout.build(payload, path, should_stop=should_stop)
                if container is Container.PICKLE  # only pickles are read inside ``build``
                else layout.build(payload, path)
            )
            if should_stop():
                raise Cancelled(None)
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
    return _guarded(path, lambda: _load_discriminator(path))


def _load_discriminator(path: Path) -> StyleGAN2Discriminator | None:
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
