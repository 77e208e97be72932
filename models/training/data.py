"""Training images and labels: a folder or zip, decoded once into a cached uint8 array.

Images of any size and mode are centre-cropped to a square, resized and stored in one ``.npy``
file ([N, H, W, 3] uint8) under the cache folder, keyed by the file list, sizes, modification
times, resolution and preprocessing, so later runs (and later epochs) never decode a JPEG again.
Unreadable files are skipped and counted. Face alignment is a callback (``Preprocess``) supplied
by the caller, so this module needs nothing from ``editors``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from models.formats.native import atomic_write
from models.jobs import OnStep, Progress, ShouldStop, check_stop, report
from models.runtime import cache_dir

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm"}
)
CACHE_VERSION = 1
_CHUNK = 64  # images decoded per progress report / stop check


@dataclass(frozen=True, slots=True)
class Preprocess:
    """An image operation applied before resizing, e.g. face alignment.

    ``fn`` returns the processed image, or None to drop the image (e.g. no face found).
    ``key`` names the operation and its settings; it is part of the cache key.
    """

    key: str
    fn: Callable[[Image.Image], Image.Image | None]


@dataclass(frozen=True, slots=True)
class ImageDataset:
    """Decoded training images, ready to batch."""

    images: np.ndarray  # [N, H, W, 3] uint8 (read-only memory map)
    names: tuple[str, ...]  # source-relative name of each image, in order
    source: Path  # the folder or zip it was read from
    skipped: tuple[tuple[str, str], ...]  # (name, reason) of every file left out
    cache_path: Path  # the .npy file holding ``images``

    def __len__(self) -> int:
        return len(self.names)

    @property
    def resolution(self) -> int:
        """Side of the square images in pixels."""
        return int(self.images.shape[1])

    def batch(
        self, indices: Sequence[int] | np.ndarray, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Images ``indices`` as float [B, 3, H, W] in [-1, 1] on ``device``."""
        index = np.asarray(indices, dtype=np.int64)
        # A sorted read is kinder to the memory map; the order is restored afterwards.
        order = np.argsort(index, kind="stable")
        rows = np.empty((len(index), *self.images.shape[1:]), dtype=np.uint8)
        rows[order] = self.images[index[order]]
        tensor = torch.from_numpy(rows).to(device).permute(0, 3, 1, 2)
        return tensor.to(torch.float32).div_(127.5).sub_(1.0)

    def summary(self) -> dict[str, object]:
        """Counts for logs and the run folder."""
        return {
            "source": str(self.source),
            "images": len(self),
            "resolution": self.resolution,
            "skipped": len(self.skipped),
            "skipped_examples": [f"{name}: {reason}" for name, reason in self.skipped[:10]],
            "cache": str(self.cache_path),
        }


# ---------------------------------------------------------------------------------------------
# Listing sources


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str  # relative POSIX path inside the source
    size: int
    stamp: int  # mtime in ns (folder) or CRC (zip): changes when the content does


def _is_image_name(name: str) -> bool:
    path = PurePosixPath(name)
    if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
        return False
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(source: str | Path) -> list[_Entry]:
    """The image files of a folder (recursively) or a zip, sorted by name.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: it holds no image files, or is neither a folder nor a zip.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such folder or file")
    entries: list[_Entry] = []
    if source.is_dir():
        for root, dirs, files in os.walk(source):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file_name in files:
                full = Path(root) / file_name
                rel = full.relative_to(source).as_posix()
                if _is_image_name(rel):
                    stat = full.stat()
                    entries.append(_Entry(rel, stat.st_size, stat.st_mtime_ns))
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if not info.is_dir() and _is_image_name(info.filename):
                    entries.append(_Entry(info.filename, info.file_size, info.CRC))
    else:
        raise ValueError(f"{source}: not a folder or a .zip of images")
    if not entries:
        raise ValueError(
            f"{source}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    entries.sort(key=lambda entry: entry.name)
    return entries


class _SourceReader:
    """Reads file bytes from a folder or a zip (zip reads serialised; decoding stays parallel)."""

    def __init__(self, source: Path) -> None:
        self._folder = source if source.is_dir() else None
        self._archive = None if self._folder is not None else zipfile.ZipFile(source)
        self._lock = threading.Lock()

    def read(self, name: str) -> bytes:
        if self._folder is not None:
            return (self._folder / name).read_bytes()
        assert self._archive is not None
        with self._lock:
            return self._archive.read(name)

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()


# ---------------------------------------------------------------------------------------------
# Decoding


def load_square_rgb(
    data: bytes, resolution: int, preprocess: Preprocess | None = None
) -> np.ndarray | None:
    """Decode an image file's bytes to uint8 [resolution, resolution, 3].

    EXIF rotation is applied, transparency is composited on white, the largest centred square is
    kept and resized with a Lanczos filter. Returns None when ``preprocess`` drops the image.

    Raises:
        OSError, ValueError: the bytes are not a readable image.
    """
    import io

    with Image.open(io.BytesIO(data)) as opened:
        image: Image.Image = opened
        if preprocess is None and image.format == "JPEG":
            # Let libjpeg decode at a reduced scale that is still >= 2x the target: far faster.
            image.draft("RGB", (resolution * 2, resolution * 2))
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA") or (
            image.mode == "P" and "transparency" in image.info
        ):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        image = image.convert("RGB")
        if preprocess is not None:
            processed = preprocess.fn(image)
            if processed is None:
                return None
            image = processed.convert("RGB")
        image = ImageOps.fit(image, (resolution, resolution), Image.Resampling.LANCZOS)
        return np.asarray(image, dtype=np.uint8)


def _decode_one(
    reader: Callable[[str], bytes], name: str, resolution: int, preprocess: Preprocess | None
) -> tuple[np.ndarray | None, str]:
    """(pixels, "") or (None, reason) for one file; never raises for a bad image."""
    try:
        pixels = load_square_rgb(reader(name), resolution, preprocess)
    except (
        OSError,
        ValueError,
        SyntaxError,
        UnidentifiedImageError,
        Image.DecompressionBombError,
    ) as exc:
        return None, f"unreadable ({type(exc).__name__}: {exc})"
    if pixels is None:
        return None, "dropped by preprocessing (e.g. no face found)"
    return pixels, ""


def _cache_key(
    source: Path, entries: Sequence[_Entry], resolution: int, preprocess: Preprocess | None
) -> str:
    digest = hashlib.sha256()
    header = [
        CACHE_VERSION,
        str(source.resolve()),
        resolution,
        preprocess.key if preprocess else "",
    ]
    digest.update(json.dumps(header).encode())
    for entry in entries:
        digest.update(f"{entry.name}\0{entry.size}\0{entry.stamp}\n".encode())
    return digest.hexdigest()[:20]


def prepare_images(
    source: str | Path,
    resolution: int,
    *,
    preprocess: Preprocess | None = None,
    cache_root: str | Path | None = None,
    threads: int = 0,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> ImageDataset:
    """Decode every image of ``source`` once into a cached array (or reuse the cache).

    Args:
        source: folder (searched recursively) or zip of images of any size and mode.
        resolution: side of the square output images in pixels.
        preprocess: optional operation applied before resizing (face alignment).
        cache_root: folder for the cache; default ``<cache_dir>/datasets``.
        threads: decoding threads; 0 = one per CPU core.
        on_step, should_stop: the job protocol (reports "reading images i/N").

    Raises:
        FileNotFoundError: ``source`` is missing.
        ValueError: no images, or none of them could be read.
        Cancelled: ``should_stop`` asked to stop (nothing is cached).
    """
    source = Path(source)
    entries = list_images(source)
    root = Path(cache_root) if cache_root is not None else cache_dir() / "datasets"
    key = _cache_key(source, entries, resolution, preprocess)
    stem = f"{_safe(source.stem)}-{resolution}px-{key}"
    array_path, meta_path = root / f"{stem}.npy", root / f"{stem}.json"
    cached = _load_cache(array_path, meta_path, source)
    if cached is not None:
        log.info("using cached images %s", array_path)
        return cached

    root.mkdir(parents=True, exist_ok=True)
    reader = _SourceReader(source)
    total = len(entries)
    tmp_array = array_path.with_name(f".{array_path.name}.{os.getpid()}.tmp")
    names: list[str] = []
    skipped: list[tuple[str, str]] = []
    workers = threads or os.cpu_count() or 1
    try:
        out = np.lib.format.open_memmap(
            tmp_array, mode="w+", dtype=np.uint8, shape=(total, resolution, resolution, 3)
        )
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for start in range(0, total, _CHUNK):
                check_stop(should_stop)
                chunk = entries[start : start + _CHUNK]
                results = pool.map(
                    lambda e: _decode_one(reader.read, e.name, resolution, preprocess), chunk
                )
                for entry, (pixels, reason) in zip(chunk, results, strict=True):
                    if pixels is None:
                        skipped.append((entry.name, reason))
                        continue
                    out[len(names)] = pixels
                    names.append(entry.name)
                report(
                    on_step,
                    Progress(
                        min(start + _CHUNK, total),
                        total,
                        f"reading images {min(start + _CHUNK, total)}/{total}",
                    ),
                )
        out.flush()
        del out
        if not names:
            examples = "; ".join(f"{n}: {r}" for n, r in skipped[:3])
            raise ValueError(f"{source}: none of the {total} images could be read ({examples})")
        os.replace(tmp_array, array_path)
    finally:
        tmp_array.unlink(missing_ok=True)
        reader.close()
    meta = {
        "version": CACHE_VERSION,
        "count": len(names),
        "names": names,
        "skipped": [list(item) for item in skipped],
        "resolution": resolution,
    }
    atomic_write(meta_path, lambda tmp: tmp.write_text(json.dumps(meta)))
    if skipped:
        log.warning(
            "%s: skipped %d of %d files (first: %s)", source, len(skipped), total, skipped[0]
        )
    loaded = _load_cache(array_path, meta_path, source)
    assert loaded is not None
    return loaded


def _load_cache(array_path: Path, meta_path: Path, source: Path) -> ImageDataset | None:
    if not (array_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != CACHE_VERSION:
            return None
        array = np.load(array_path, mmap_mode="r")
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        log.warning("ignoring a damaged image cache %s (%s)", array_path, exc)
        return None
    count = int(meta["count"])
    return ImageDataset(
        images=array[:count],
        names=tuple(meta["names"]),
        source=source,
        skipped=tuple((str(a), str(b)) for a, b in meta["skipped"]),
        cache_path=array_path,
    )


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)[:40] or "data"


# ---------------------------------------------------------------------------------------------
# Data order


class EpochSampler:
    """Shuffled batches of indices whose order depends only on (seed, step).

    Each epoch is a fresh permutation drawn from a generator seeded with (seed, epoch), so a run
    resumed at step k reads exactly the batches an uninterrupted run would.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int) -> None:
        if num_items < 1:
            raise ValueError("no items to sample from")
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self._epoch = -1
        self._perm = np.empty(0, dtype=np.int64)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._perm = rng.permutation(self.num_items)
            self._epoch = epoch
        return self._perm

    def batch(self, step: int) -> np.ndarray:
        """Indices [batch_size] for global step ``step`` (wraps across epochs)."""
        start = step * self.batch_size
        out = np.empty(self.batch_size, dtype=np.int64)
        for i in range(self.batch_size):
            epoch, offset = divmod(start + i, self.num_items)
            out[i] = self._permutation(epoch)[offset]
        return out

    def epoch_of(self, step: int) -> float:
        """Epochs completed (fractional) after ``step`` steps."""
        return step * self.batch_size / self.num_items


# ---------------------------------------------------------------------------------------------
# Labels


@dataclass(frozen=True, slots=True)
class LabelReport:
    """What happened when joining a labels CSV to the images."""

    rows: int  # data rows in the CSV
    matched: int  # rows joined to an image
    dropped_rows: int  # rows left out by skip_rows_with
    missing_files: tuple[str, ...]  # CSV names with no readable image
    unlabelled_images: int  # images with no row
    skipped_columns: dict[str, str] = field(default_factory=dict)  # column -> why not used

    def describe(self) -> str:
        """One paragraph for logs and the wizard."""
        parts = [f"{self.matched} of {self.rows} label rows matched an image"]
        if self.dropped_rows:
            parts.append(f"{self.dropped_rows} rows skipped on request")
        if self.missing_files:
            shown = ", ".join(self.missing_files[:5])
            more = f" and {len(self.missing_files) - 5} more" if len(self.missing_files) > 5 else ""
            parts.append(
                f"{len(self.missing_files)} rows name files that are missing or unreadable "
                f"({shown}{more})"
            )
        if self.unlabelled_images:
            parts.append(f"{self.unlabelled_images} images have no label row")
        for column, reason in self.skipped_columns.items():
            parts.append(f"column {column!r} not used: {reason}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class LabelTable:
    """Labels aligned with a list of images (row i belongs to image ``image_index[i]``)."""

    columns: tuple[str, ...]  # attribute names
    binary: tuple[bool, ...]  # per column: 0/1 labels
    image_index: np.ndarray  # [M] int64 index into the image list
    values: np.ndarray  # [M, A] float32; NaN = missing
    groups: tuple[str, ...] | None  # [M] group key per row, or None
    report: LabelReport


def read_csv_header(path: str | Path) -> list[str]:
    """Column names of a CSV file (for the wizard's column list)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle), [])


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: labels file not found")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise ValueError(f"{path}: the labels file is empty")
    header = [name.strip() for name in rows[0]]
    return header, [row for row in rows[1:] if any(cell.strip() for cell in row)]


def _guess_file_column(header: list[str], path: Path) -> str:
    for candidate in ("filename", "file", "file_name", "image", "image_id", "path", "name"):
        for name in header:
            if name.lower() == candidate:
                return name
    if header:
        return header[0]
    raise ValueError(f"{path}: no columns")


def _parse_number(text: str) -> float | None:
    """float, NaN for an empty cell, None when not a number."""
    text = text.strip()
    if text == "" or text.lower() in ("nan", "na", "n/a"):
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def read_labels(
    path: str | Path,
    image_names: Sequence[str],
    *,
    columns: Sequence[str] = (),
    file_column: str = "",
    group_column: str = "",
    group_file: str | Path = "",
    skip_rows_with: str = "",
) -> LabelTable:
    """Join a labels CSV to images by file name (relative path, else base name).

    Args:
        path: CSV with a header row.
        image_names: the dataset's names (``ImageDataset.names``).
        columns: attributes to read; empty = every column whose values are all numbers.
        file_column: column with file names; "" = guess ("filename", "file", ... or the first).
        group_column: column of group keys (e.g. identity) for a grouped split.
        group_file: a second CSV holding ``group_column`` (joined by its own file column).
        skip_rows_with: drop rows where this column is non-empty.

    Raises:
        FileNotFoundError: a CSV is missing.
        ValueError: a named column is absent, a chosen column holds a non-number (row and value
            named), no row matches an image, or no usable column is left.
    """
    path = Path(path)
    header, rows = _read_rows(path)
    file_column = file_column or _guess_file_column(header, path)
    col = {name: i for i, name in enumerate(header)}
    for needed in (file_column, skip_rows_with):
        if needed and needed not in col:
            raise ValueError(f"{path}: no column {needed!r} (columns: {', '.join(header)})")

    by_path = {name: i for i, name in enumerate(image_names)}
    by_base: dict[str, int] = {}
    duplicates: set[str] = set()
    for i, name in enumerate(image_names):
        base = PurePosixPath(name).name
        if base in by_base:
            duplicates.add(base)
        by_base[base] = i

    def find(cell: str) -> int | None:
        cell = cell.strip().replace("\\", "/")
        if cell in by_path:
            return by_path[cell]
        base = PurePosixPath(cell).name
        return by_base.get(base) if base not in duplicates else None

    dropped = 0
    kept_rows: list[tuple[int, list[str], int]] = []  # (image index, row, csv line number)
    missing: list[str] = []
    for line, row in enumerate(rows, start=2):
        row = row + [""] * (len(header) - len(row))
        if skip_rows_with and row[col[skip_rows_with]].strip():
            dropped += 1
            continue
        index = find(row[col[file_column]])
        if index is None:
            missing.append(row[col[file_column]].strip())
            continue
        kept_rows.append((index, row, line))
    if not kept_rows:
        raise ValueError(
            f"{path}: none of its {len(rows)} rows names one of the {len(image_names)} images "
            f"(column {file_column!r}, e.g. {rows[0][col[file_column]] if rows else '-'!r} vs "
            f"{image_names[0] if image_names else '-'!r})"
        )

    skipped_columns: dict[str, str] = {}
    if columns:
        for name in columns:
            if name not in col:
                raise ValueError(f"{path}: no column {name!r} (columns: {', '.join(header)})")
        chosen = list(columns)
    else:
        reserved = {file_column, group_column, skip_rows_with}
        chosen = []
        for name in header:
            if name in reserved:
                continue
            bad = next(
                (r[col[name]] for _, r, _ in kept_rows if _parse_number(r[col[name]]) is None), None
            )
            if bad is not None:
                skipped_columns[name] = f"not numeric (e.g. {bad.strip()!r})"
            else:
                chosen.append(name)
        if not chosen:
            raise ValueError(f"{path}: no numeric label columns (columns: {', '.join(header)})")

    values = np.empty((len(kept_rows), len(chosen)), dtype=np.float32)
    for r, (_, row, line) in enumerate(kept_rows):
        for c, name in enumerate(chosen):
            number = _parse_number(row[col[name]])
            if number is None:
                raise ValueError(
                    f"{path}: line {line}, column {name!r}: "
                    f"{row[col[name]].strip()!r} is not a number"
                )
            values[r, c] = number
    binary = []
    for c, name in enumerate(chosen):
        present = values[:, c][~np.isnan(values[:, c])]
        if present.size == 0:
            raise ValueError(f"{path}: column {name!r} has no values for the matched images")
        unique = set(np.unique(present).tolist())
        if unique <= {-1.0, 1.0} and -1.0 in unique:
            values[:, c] = np.where(
                np.isnan(values[:, c]), np.nan, (values[:, c] > 0).astype(np.float32)
            )
            unique = {0.0, 1.0}
        binary.append(unique <= {0.0, 1.0})

    groups: tuple[str, ...] | None = None
    if group_column:
        groups = _read_groups(
            path, header, kept_rows, col, group_column, group_file, image_names, find
        )

    image_index = np.array([index for index, _, _ in kept_rows], dtype=np.int64)
    if len(np.unique(image_index)) != len(image_index):
        raise ValueError(f"{path}: several rows name the same image")
    labelled = set(image_index.tolist())
    report_ = LabelReport(
        rows=len(rows),
        matched=len(kept_rows),
        dropped_rows=dropped,
        missing_files=tuple(missing),
        unlabelled_images=len(image_names) - len(labelled),
        skipped_columns=skipped_columns,
    )
    return LabelTable(tuple(chosen), tuple(binary), image_index, values, groups, report_)


def _read_groups(
    path: Path,
    header: list[str],
    kept_rows: list[tuple[int, list[str], int]],
    col: dict[str, int],
    group_column: str,
    group_file: str | Path,
    image_names: Sequence[str],
    find: Callable[[str], int | None],
) -> tuple[str, ...]:
    if not group_file or Path(group_file) == path:
        if group_column not in col:
            raise ValueError(f"{path}: no column {group_column!r} (columns: {', '.join(header)})")
        return tuple(row[col[group_column]].strip() for _, row, _ in kept_rows)
    group_path = Path(group_file)
    g_header, g_rows = _read_rows(group_path)
    if group_column not in g_header:
        raise ValueError(
            f"{group_path}: no column {group_column!r} (columns: {', '.join(g_header)})"
        )
    g_file = _guess_file_column(g_header, group_path)
    gi, fi = g_header.index(group_column), g_header.index(g_file)
    by_image: dict[int, str] = {}
    for row in g_rows:
        index = find(row[fi]) if fi < len(row) else None
        if index is not None and gi < len(row):
            by_image[index] = row[gi].strip()
    groups = []
    for index, _, line in kept_rows:
        if index not in by_image:
            raise ValueError(
                f"{group_path}: no {group_column!r} for {image_names[index]!r} (labels line {line})"
            )
        groups.append(by_image[index])
    return tuple(groups)


def split_indices(
    count: int, validation_fraction: float, seed: int, groups: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices; with ``groups`` no group is on both sides.

    Raises:
        ValueError: too few rows (or groups) to hold out any.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        order = rng.permutation(count)
        n_val = max(1, round(count * validation_fraction))
        if n_val >= count:
            raise ValueError(f"{count} labelled images are too few for a validation split")
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    keys = sorted(set(groups))
    if len(keys) < 2:
        raise ValueError("the group column has a single value: cannot split by group")
    shuffled = [keys[i] for i in rng.permutation(len(keys))]
    n_val = max(1, round(len(keys) * validation_fraction))
    held_out = set(shuffled[:n_val])
    mask = np.array([g in held_out for g in groups])
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def iter_chunks(indices: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of ``indices`` of at most ``size`` items."""
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


@dataclass(frozen=True, slots=True)
class FolderPreview:
    """What the wizard shows about a data folder before training."""

    count: int  # image files found
    thumbnails: tuple[np.ndarray, ...]  # [size, size, 3] uint8 of the first readable ones
    unreadable: int  # of the files tried for thumbnails, how many failed


def preview_images(source: str | Path, count: int = 8, size: int = 64) -> FolderPreview:
    """Count the images of a folder or zip and decode the first ``count`` as thumbnails.

    Raises:
        FileNotFoundError, ValueError: as ``list_images``.
    """
    source = Path(source)
    entries = list_images(source)
    reader = _SourceReader(source)
    thumbnails: list[np.ndarray] = []
    unreadable = 0
    try:
        for entry in entries:
            if len(thumbnails) >= count or unreadable > 2 * count:
                break
            pixels, _ = _decode_one(reader.read, entry.name, size, None)
            if pixels is None:
                unreadable += 1
            else:
                thumbnails.append(pixels)
    finally:
        reader.close()
    return FolderPreview(len(entries), tuple(thumbnails), unreadable)
