"""Training images: a folder or zip, decoded once into a cached uint8 array, and the data order.

Images of any size and mode are centre-cropped to a square, resized and stored in one ``.npy``
file ([N, H, W, 3] uint8) under the cache folder, keyed by the file list, sizes, modification
times, resolution and preprocessing, so later runs (and later epochs) never decode a JPEG again.
Unreadable files are skipped and counted. Face alignment is a callback (``Preprocess``) supplied
by the caller, so this module needs nothing from ``editors``.

With ``alpha_mask`` the images' transparency is kept as a validity mask ([N, H, W] uint8 in a
second ``.npy``) instead of being composited away: a transparent pixel is one the photo does not
show (e.g. the part of an aligned frame that lies outside a tight face crop), and trainers that
support masks hide it from the discriminator.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
OPAQUE = 255  # mask value of a pixel the image shows
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
    # [N, H, W] uint8, 255 = shown, 0 = not in the photo; None when every pixel is shown.
    masks: np.ndarray | None = None

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

    def batch_masks(
        self, indices: Sequence[int] | np.ndarray, device: torch.device | str = "cpu"
    ) -> torch.Tensor | None:
        """Masks of images ``indices`` as float [B, 1, H, W] in [0, 1], or None without masks."""
        if self.masks is None:
            return None
        index = np.asarray(indices, dtype=np.int64)
        rows = torch.from_numpy(np.ascontiguousarray(self.masks[index]))
        return rows.to(device).unsqueeze(1).to(torch.float32).div_(OPAQUE)

    def summary(self) -> dict[str, object]:
        """Counts for logs and the run folder."""
        return {
            "source": str(self.source),
            "images": len(self),
            "resolution": self.resolution,
            "skipped": len(self.skipped),
            "skipped_examples": [f"{name}: {reason}" for name, reason in self.skipped[:10]],
            "cache": str(self.cache_path),
            "masked_images": 0
            if self.masks is None
            else int((self.masks < OPAQUE).any((1, 2)).sum()),
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
    data: bytes,
    resolution: int,
    preprocess: Preprocess | None = None,
    *,
    with_alpha: bool = False,
) -> np.ndarray | None:
    """Decode an image file's bytes to uint8 [resolution, resolution, 3].

    EXIF rotation is applied, transparency is composited on white, the largest centred square is
    kept and resized with a Lanczos filter. Returns None when ``preprocess`` drops the image.
    With ``with_alpha`` the result is [resolution, resolution, 4]: the same RGB plus the image's
    alpha (255 for an opaque image), cropped and resized the same way.

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
        if preprocess is not None:
            processed = preprocess.fn(_flatten_alpha(image)[0])
            if processed is None:
                return None
            image = processed
        image, alpha = _flatten_alpha(image)
        size = (resolution, resolution)
        rgb = np.asarray(ImageOps.fit(image, size, Image.Resampling.LANCZOS), dtype=np.uint8)
        if not with_alpha:
            return rgb
        if alpha is None:
            mask = np.full(size, OPAQUE, dtype=np.uint8)
        else:
            mask = np.asarray(ImageOps.fit(alpha, size, Image.Resampling.LANCZOS), dtype=np.uint8)
        return np.dstack([rgb, mask])


def _flatten_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(RGB composited on white, the alpha channel or None when the image has none)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB"), rgba.getchannel("A")
    return image.convert("RGB"), None


def _decode_one(
    reader: Callable[[str], bytes],
    name: str,
    resolution: int,
    preprocess: Preprocess | None,
    with_alpha: bool = False,
) -> tuple[np.ndarray | None, str]:
    """(pixels, "") or (None, reason) for one file; never raises for a bad image."""
    try:
        pixels = load_square_rgb(reader(name), resolution, preprocess, with_alpha=with_alpha)
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
    source: Path,
    entries: Sequence[_Entry],
    resolution: int,
    preprocess: Preprocess | None,
    alpha_mask: bool = False,
) -> str:
    digest = hashlib.sha256()
    header = [
        CACHE_VERSION,
        str(source.resolve()),
        resolution,
        preprocess.key if preprocess else "",
    ]
    if alpha_mask:  # appended only when set, so existing caches keep their keys
        header.append("alpha-mask")
    digest.update(json.dumps(header).encode())
    for entry in entries:
        digest.update(f"{entry.name}\0{entry.size}\0{entry.stamp}\n".encode())
    return digest.hexdigest()[:20]


def prepare_images(
    source: str | Path,
    resolution: int,
    *,
    preprocess: Preprocess | None = None,
    alpha_mask: bool = False,
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
        alpha_mask: keep transparency as ``ImageDataset.masks`` (None when all are opaque).
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
    key = _cache_key(source, entries, resolution, preprocess, alpha_mask)
    stem = f"{_safe(source.stem)}-{resolution}px-{key}"
    array_path, meta_path = root / f"{stem}.npy", root / f"{stem}.json"
    mask_path = root / f"{stem}.mask.npy"
    cached = _load_cache(array_path, meta_path, source)
    if cached is not None:
        log.info("using cached images %s", array_path)
        return cached

    root.mkdir(parents=True, exist_ok=True)
    reader = _SourceReader(source)
    total = len(entries)
    tmp_array = array_path.with_name(f".{array_path.name}.{os.getpid()}.tmp")
    tmp_masks = mask_path.with_name(f".{mask_path.name}.{os.getpid()}.tmp")
    names: list[str] = []
    skipped: list[tuple[str, str]] = []
    workers = threads or os.cpu_count() or 1
    try:
        out = np.lib.format.open_memmap(
            tmp_array, mode="w+", dtype=np.uint8, shape=(total, resolution, resolution, 3)
        )
        masks = (
            np.lib.format.open_memmap(
                tmp_masks, mode="w+", dtype=np.uint8, shape=(total, resolution, resolution)
            )
            if alpha_mask
            else None
        )
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for start in range(0, total, _CHUNK):
                check_stop(should_stop)
                chunk = entries[start : start + _CHUNK]
                results = pool.map(
                    lambda e: _decode_one(reader.read, e.name, resolution, preprocess, alpha_mask),
                    chunk,
                )
                for entry, (pixels, reason) in zip(chunk, results, strict=True):
                    if pixels is None:
                        skipped.append((entry.name, reason))
                        continue
                    out[len(names)] = pixels[..., :3]
                    if masks is not None:
                        masks[len(names)] = pixels[..., 3]
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
        has_masks = masks is not None and bool((masks[: len(names)] < OPAQUE).any())
        if masks is not None:
            masks.flush()
            del masks
        if has_masks:
            os.replace(tmp_masks, mask_path)
        os.replace(tmp_array, array_path)
    finally:
        tmp_array.unlink(missing_ok=True)
        tmp_masks.unlink(missing_ok=True)
        reader.close()
    meta = {
        "version": CACHE_VERSION,
        "count": len(names),
        "names": names,
        "skipped": [list(item) for item in skipped],
        "resolution": resolution,
        "masks": has_masks,
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
        mask_path = array_path.with_name(array_path.name.removesuffix(".npy") + ".mask.npy")
        masks = np.load(mask_path, mmap_mode="r") if meta.get("masks") else None
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
        masks=None if masks is None else masks[:count],
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
