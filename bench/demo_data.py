"""Training data of the built-in demo model, rebuilt from ``../shared/data`` (never from the repo).

    python bench/demo_data.py celeba  --out runs/demo-data/celeba    # training identities
    python bench/demo_data.py utkface --out runs/demo-data/utkface   # padding transparent
    python bench/demo_data.py balance --out runs/demo-data/balanced \\
        --celeba runs/demo-data/celeba [--utkface runs/demo-data/utkface]

``celeba`` aligns the CelebA images of the training identities (the held-out 15 % of identities
are those of ``bench/demo_model.py``) FFHQ-style with the app's dlib aligner and writes them as
PNG with a ``labels.csv`` (the 40 attributes and the identity). ``utkface`` aligns the UTKFace
chips the same way; the chips are tight, so the FFHQ frame reaches past them: those pixels are
written transparent (alpha 0) instead of the aligner's blurred mirror padding, and the StyleGAN2
trainer leaves transparent pixels out of the discriminator's view (see ``models.training.images``).
``balance`` writes a folder of links in which each image appears as often as its sampling weight
(``models.training.labels.balance_repeats``): eyeglasses, beards, older faces and men are drawn
more often than CelebA's own shares. ``pack`` zips a folder as WebP (alpha kept) small enough to
carry to a GPU machine (``bench/train_on_gpu.sh``).

    python bench/demo_data.py pack --source runs/demo-data/balanced --out runs/demo-data/pack.zip
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
ALIGN_SIZE = 128

# Sampling weight rules: (label column, value, extra repeats). CelebA: beard = No_Beard 0,
# older = Young 0. UTKFace rows are mapped onto the same columns (male; Young = age < 40).
CELEBA_RULES = (("Eyeglasses", 1, 2), ("No_Beard", 0, 1), ("Young", 0, 1), ("Male", 1, 0))


def _align_one(task: tuple[str, str, bool]) -> tuple[str, str]:
    """Align one photo into ``out``; returns (name, "") or (name, reason)."""
    from PIL import Image

    from editors.alignment import align_landmarks
    from editors.errors import AlignmentError, ImageLoadError
    from editors.face_detection import detect_faces
    from editors.images import load_image

    source, out, transparent_outside = task
    name = Path(source).name.split(".")[0] + ".png"
    target = Path(out) / name
    if target.is_file():
        return name, ""
    try:
        rgb = load_image(source)
        # UTKFace chips: upsampling finds fewer faces than none (its README); CelebA needs it.
        faces = detect_faces(rgb, upsample=0 if transparent_outside else None)
        if not faces:
            return name, "no face"
        # 2x supersampling: 4x (the default) costs 8x the time for no visible change at 64 px.
        aligned = align_landmarks(
            rgb, faces[0].landmarks, ALIGN_SIZE, transform_size=2 * ALIGN_SIZE
        )
    except (ImageLoadError, AlignmentError, OSError) as exc:
        return name, str(exc)
    pixels = np.asarray(aligned.image)
    if transparent_outside:
        alpha = inside_source_mask(aligned.to_source, rgb.size, ALIGN_SIZE)
        pixels = np.dstack([pixels, alpha])
    tmp = target.with_name(f".{name}.tmp.png")
    Image.fromarray(pixels).save(tmp)
    os.replace(tmp, target)
    return name, ""


def inside_source_mask(
    to_source: np.ndarray, source_size: tuple[int, int], size: int
) -> np.ndarray:
    """uint8 [size, size]: 255 where the aligned pixel's footprint lies inside the photo.

    The footprint is the pixel centre +- half a pixel mapped to the source, so pixels that the
    resampling filter blends with padding are left out too.
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    width, height = source_size
    inside = np.ones((size, size), dtype=bool)
    for dx in (-0.5, 0.5):
        for dy in (-0.5, 0.5):
            points = np.stack([xs + dx, ys + dy], axis=-1)
            src = points @ to_source[:, :2].T + to_source[:, 2]
            inside &= (src[..., 0] >= -0.5) & (src[..., 0] <= width - 0.5)
            inside &= (src[..., 1] >= -0.5) & (src[..., 1] <= height - 0.5)
    return np.where(inside, 255, 0).astype(np.uint8)


def _run_alignment(sources: list[Path], out: Path, transparent: bool, workers: int) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(str(path), str(out), transparent) for path in sources]
    done: list[str] = []
    failed = 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, (name, reason) in enumerate(pool.map(_align_one, tasks, chunksize=32)):
            if reason:
                failed += 1
            else:
                done.append(name)
            if (i + 1) % 500 == 0:
                print(f"  {i + 1}/{len(tasks)} ({failed} without a face)", flush=True)
    print(f"{out}: {len(done)} aligned, {failed} without a detectable face")
    return done


def build_celeba(out: Path, workers: int, limit: int = 0) -> None:
    from demo_model import celeba_split

    train, _ = celeba_split()
    train = train[:limit] if limit else train
    _run_alignment(train, out, False, workers)
    write_celeba_labels(out)


def write_celeba_labels(out: Path) -> None:
    """``out/labels.csv``: the 40 attributes and the identity of every aligned image in ``out``."""
    done = {path.name for path in out.glob("*.png")}
    identity = {
        r["filename"]: r["identity"]
        for r in csv.DictReader((SHARED / "celeba_10k" / "identity.csv").open())
    }
    with (SHARED / "celeba_10k" / "labels.csv").open() as handle:
        rows = list(csv.reader(handle))
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*rows[0], "identity"])
        for row in rows[1:]:
            name = Path(row[0]).stem + ".png"
            if name in done:
                writer.writerow([name, *row[1:], identity[row[0]]])


def build_utkface(out: Path, workers: int, limit: int = 0, min_age: float = 0) -> None:
    rows = [
        r
        for r in csv.DictReader((SHARED / "utkface" / "labels.csv").open())
        if not r["duplicate_of"]
    ]
    rows = [r for r in rows if float(r["age"]) >= min_age]
    if limit:  # a seeded random subset, not the first names (sorted by age)
        rows = [rows[i] for i in sorted(np.random.default_rng(0).permutation(len(rows))[:limit])]
    images = SHARED / "utkface" / "images"
    done = set(_run_alignment([images / r["filename"] for r in rows], out, True, workers))
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "age", "Male", "Young"])
        for r in rows:
            name = r["filename"].split(".")[0] + ".png"
            if name in done:
                writer.writerow([name, r["age"], r["male"], int(float(r["age"]) < 40)])


def build_balanced(out: Path, celeba: Path, utkface: Path | None, utk_share: float) -> None:
    from models.training.labels import balance_repeats, read_labels

    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_symlink():
            old.unlink()
    sets = [(celeba, CELEBA_RULES)]
    if utkface is not None:
        sets.append((utkface, (("Young", 0, 1), ("Male", 1, 0))))
    counts: dict[str, int] = {}
    for folder, rules in sets:
        names = sorted(p.name for p in folder.glob("*.png"))
        table = read_labels(folder / "labels.csv", names, columns=[c for c, _, _ in rules])
        repeats = balance_repeats(table, rules)
        if folder == utkface and utk_share > 0:
            # Thin UTKFace out so it makes up about utk_share of all drawn images.
            total_celeba = sum(counts.values())
            wanted = total_celeba * utk_share / (1 - utk_share)
            rng = np.random.default_rng(0)
            keep = rng.random(len(repeats)) < min(1.0, wanted / max(1, repeats.sum()))
            repeats = np.where(keep, repeats, 0)
        prefix = folder.name
        print(f"{folder}: {int(repeats.sum())} links for {int((repeats > 0).sum())} images")
        for row, count in zip(table.image_index, repeats, strict=True):
            name = names[row]
            for k in range(int(count)):
                link = out / f"{prefix}-{Path(name).stem}-{k}.png"
                os.symlink(os.path.relpath(folder / name, out), link)
            counts[f"{prefix}/{name}"] = int(count)
        for i, (column, value, _) in enumerate(rules):
            hit = table.values[:, i] == value
            print(
                f"  share {column}={value}: {100 * hit.mean():.1f} % of images -> "
                f"{100 * (hit * repeats).sum() / max(1, repeats.sum()):.1f} % of draws"
            )
    print(f"{out}: {sum(counts.values())} links")


def build_pack(out: Path, source: Path, quality: int, limit: int = 0) -> None:
    """A zip of WebP files (alpha kept) of every image in ``source``, links resolved.

    At quality 90 a 128 px face is about 5 KB, so the balanced set fits the 64 MiB that a
    remote (GPU) run can carry; lossy WebP keeps the alpha channel exact.
    """
    import io
    import zipfile

    from PIL import Image

    from models.formats.native import atomic_write

    files = sorted(p for p in source.iterdir() if p.suffix.lower() == ".png")
    files = files[:limit] if limit else files
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
            for path in files:
                buffer = io.BytesIO()
                with Image.open(path) as image:
                    image.save(buffer, "WEBP", quality=quality, method=4, exact=True)
                archive.writestr(path.stem + ".webp", buffer.getvalue())

    atomic_write(out, write)
    print(f"{out}: {len(files)} images, {out.stat().st_size / 2**20:.1f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["celeba", "utkface", "balance", "pack"])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--celeba", type=Path, help="aligned CelebA folder (balance)")
    parser.add_argument("--source", type=Path, help="folder of images to zip (pack)")
    parser.add_argument("--quality", type=int, default=90, help="WebP quality (pack)")
    parser.add_argument("--utkface", type=Path, help="aligned UTKFace folder (balance)")
    parser.add_argument(
        "--utk-share", type=float, default=0.25, help="UTKFace share of drawn images (balance)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="N photos only (UTKFace: at random)")
    parser.add_argument("--min-age", type=float, default=0, help="UTKFace: leave out younger")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.what == "celeba":
        build_celeba(args.out, args.workers, args.limit)
    elif args.what == "utkface":
        build_utkface(args.out, args.workers, args.limit, args.min_age)
    elif args.what == "pack":
        if args.source is None:
            parser.error("pack needs --source")
        build_pack(args.out, args.source, args.quality, args.limit)
    else:
        if args.celeba is None:
            parser.error("balance needs --celeba")
        build_balanced(args.out, args.celeba, args.utkface, args.utk_share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
