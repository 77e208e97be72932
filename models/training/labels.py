"""Training labels: a CSV joined to the images by file name, splits, and sampling weights.

A labels CSV names each image (relative path or base name) and gives numeric attributes (0/1
or real values, ``-1/1`` read as 0/1). ``read_labels`` joins it to an image list and reports
what did not match; ``split_indices`` holds out a share of rows (or of groups, e.g. identities);
``balance_repeats`` turns attribute rules into integer sampling weights for oversampling.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np


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


def balance_repeats(
    table: LabelTable, rules: Sequence[tuple[str, float, int]], base: int = 1
) -> np.ndarray:
    """How often each labelled row is drawn: ``base`` plus the extra repeats of every rule it meets.

    Args:
        table: labels (``read_labels``); rows with a missing value meet no rule on that column.
        rules: (column, value, extra repeats): a row whose ``column`` equals ``value`` gets
            ``extra`` more draws. Rules add up, so a bearded man with glasses gets both.
        base: draws of a row that meets no rule.

    Returns:
        int64 [rows of ``table``] repeat counts, in the order of ``table.image_index``.

    Raises:
        ValueError: a rule names a column the table does not hold, or a count is negative.
    """
    if base < 0 or any(extra < 0 for _, _, extra in rules):
        raise ValueError("repeat counts must not be negative")
    repeats = np.full(len(table.image_index), base, dtype=np.int64)
    for column, value, extra in rules:
        if column not in table.columns:
            raise ValueError(
                f"no label column {column!r} to balance on (columns: {', '.join(table.columns)})"
            )
        values = table.values[:, table.columns.index(column)]
        repeats += np.where(values == np.float32(value), extra, 0)
    return repeats
