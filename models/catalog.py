"""The catalog of public checkpoints the model manager offers (``resources/catalog.json``).

Each entry names one downloadable file: what it is (kind, format, resolution), where it comes
from (URL, source page), its licence, and how to check it (exact size and SHA-256, or the
SHA-256 prefix torch.hub puts in file names) where those are published. Unknown facts stay None
and show as "not published"; nothing is guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.runtime import cache_dir

CATALOG_PATH = Path(__file__).resolve().parent.parent / "resources" / "catalog.json"
NOT_PUBLISHED = "not published"
GENERATOR_KINDS = ("stylegan2", "progan")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One downloadable checkpoint."""

    name: str  # short id used on the command line
    title: str  # human description
    kind: str  # "stylegan2", "progan" or a helper network ("vgg16")
    format: str  # the checkpoint format, e.g. "NVIDIA network pickle"
    resolution: int | None
    url: str
    filename: str  # file name in the models cache
    licence: str
    source_page: str
    size_bytes: int | None = None  # exact size, only where published
    approx_size: str | None = None  # human text from mirrors/docs; never used to verify
    sha256: str | None = None  # full digest, only where published
    sha256_prefix: str | None = None  # leading hex digits (torch.hub file-name convention)
    notes: str = ""

    @property
    def is_generator(self) -> bool:
        """True for entries the window can open as a model."""
        return self.kind in GENERATOR_KINDS

    def size_text(self) -> str:
        """'381.5 MB', '≈364 MB (third-party mirror)' or 'not published'."""
        if self.size_bytes is not None:
            return format_bytes(self.size_bytes)
        if self.approx_size:
            return f"≈{self.approx_size}"
        return NOT_PUBLISHED

    def checksum_text(self) -> str:
        """How the download is verified, for display."""
        if self.sha256:
            return f"SHA-256 {self.sha256[:12]}…"
        if self.sha256_prefix:
            return f"SHA-256 prefix {self.sha256_prefix}"
        return NOT_PUBLISHED

    def destination(self, cache: str | Path | None = None) -> Path:
        """Where the downloaded file lives: ``<cache>/models/<filename>``."""
        return models_dir(cache) / self.filename

    def is_downloaded(self, cache: str | Path | None = None) -> bool:
        """True when the final file is in the cache (partial downloads end in ``.part``)."""
        return self.destination(cache).is_file()


def models_dir(cache: str | Path | None = None) -> Path:
    """The folder downloads go to: ``models.runtime.cache_dir()/models`` (created on demand)."""
    path = cache_dir(cache) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def format_bytes(count: float) -> str:
    """Decimal units, as download sites print them: '381.5 MB'."""
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


_FIELDS = set(CatalogEntry.__dataclass_fields__)


def parse_catalog(data: dict[str, Any]) -> list[CatalogEntry]:
    """Build entries from the JSON structure ``{"models": [{...}, ...]}``.

    Raises:
        ValueError: an entry lacks a required field, has an unknown one, or a name repeats.
    """
    entries = []
    for raw in data.get("models", []):
        unknown = set(raw) - _FIELDS
        if unknown:
            raise ValueError(
                f"catalog entry {raw.get('name')!r} has unknown fields {sorted(unknown)}"
            )
        try:
            entries.append(CatalogEntry(**raw))
        except TypeError as exc:
            raise ValueError(f"catalog entry {raw.get('name')!r} is incomplete ({exc})") from exc
    names = [entry.name for entry in entries]
    if len(names) != len(set(names)):
        raise ValueError("catalog names must be unique")
    return entries


def load_catalog(path: str | Path | None = None) -> list[CatalogEntry]:
    """Read the catalog shipped in ``resources/`` (or ``path``).

    Raises:
        ValueError: the file is not valid JSON or an entry is malformed.
        OSError: the file cannot be read.
    """
    path = Path(path) if path is not None else CATALOG_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    return parse_catalog(data)


def find_entry(name: str, entries: list[CatalogEntry] | None = None) -> CatalogEntry:
    """The entry called ``name``.

    Raises:
        ValueError: no such entry (the message lists the known names).
    """
    entries = load_catalog() if entries is None else entries
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(entry.name for entry in entries)
    raise ValueError(f"no catalog entry named {name!r}; known: {known}")
