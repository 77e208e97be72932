"""Quality of the built-in demo model: face rate, face-descriptor FD, directions, projection.

Needs ``../shared/data`` (CelebA held-out identities, portraits) and, for the direction table, the
attribute classifiers the demo's directions were fitted with (``--classifier``, repeatable).

    python bench/demo_model.py --classifier RUN/classifier.safetensors --json out.json \\
        --grid grid.png

Numbers:
- face rate: share of N samples (truncation 0.7, upscaled to 256 px) in which dlib's frontal
  detector (no upsampling) finds a face;
- face FD: Fréchet distance between 128-D dlib face descriptors of the samples and of N held-out
  real faces (CelebA identities the generator never saw, aligned like the training data), next
  to the same distance between two disjoint sets of real faces (its floor);
- directions: change of every attribute score per +1 sigma step along each direction, without
  and with the other attributes locked;
- projection: PSNR and identity distance on the portraits after the encoder alone and after
  100 / 500 steps.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
HELD_OUT_SEED = 2026  # the identity split the demo model was trained with (see its model card)
HELD_OUT_SHARE = 0.15


def celeba_split() -> tuple[list[Path], list[Path]]:
    """CelebA files of training and held-out identities (15 % of identities, seeded shuffle)."""
    rows = list(csv.DictReader((SHARED / "celeba_10k" / "identity.csv").open()))
    people = sorted({row["identity"] for row in rows})
    random.Random(HELD_OUT_SEED).shuffle(people)
    held_out = set(people[: int(len(people) * HELD_OUT_SHARE)])
    images = SHARED / "celeba_10k" / "images"
    train = [images / r["filename"] for r in rows if r["identity"] not in held_out]
    test = [images / r["filename"] for r in rows if r["identity"] in held_out]
    return train, test


def upscale(rgb: np.ndarray, size: int = 256) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BICUBIC))


def sample_rgb(generator, seeds: list[int], psi: float = 0.7, batch: int = 32) -> list[np.ndarray]:
    from models.generator import seed_to_z, to_rgb_u8

    out: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(seeds), batch):
            z = seed_to_z(seeds[start : start + batch], generator.z_dim)
            ws = generator.broadcast(generator.mapping(z, truncation_psi=psi))
            out += to_rgb_u8(generator.synthesis(ws))
    return out


def real_faces(paths: list[Path], resolution: int, count: int, seed: int) -> list[np.ndarray]:
    """Align real photos like the training data: FFHQ crop at 128, then down to the model size."""
    from editors.alignment import align_face
    from editors.errors import AlignmentError, ImageLoadError

    chosen = list(paths)
    random.Random(seed).shuffle(chosen)
    faces: list[np.ndarray] = []
    for path in chosen:
        try:
            aligned = align_face(path, 128)
        except (AlignmentError, ImageLoadError):
            continue
        small = aligned.image.resize((resolution, resolution), Image.Resampling.LANCZOS)
        faces.append(np.asarray(small))
        if len(faces) == count:
            break
    return faces


def resize(rgb: np.ndarray, size: int) -> np.ndarray:
    if rgb.shape[0] == size:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.LANCZOS))


def real_descriptors(
    count: int, size: int, cache: str | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Descriptors of held-out and of training real faces at ``size``; held-out face rate."""
    key = f"{count}-{size}"
    if cache and Path(cache).is_file():
        stored = np.load(cache)
        if str(stored["key"]) == key:
            return stored["heldout"], stored["train"], float(stored["rate"])
    train, test = celeba_split()
    real_a = [upscale(x) for x in real_faces(test, size, count, seed=1)]
    real_b = [upscale(x) for x in real_faces(train, size, count, seed=2)]
    marks_a, marks_b = detect(real_a), detect(real_b)
    d_a, d_b = descriptors(real_a, marks_a), descriptors(real_b, marks_b)
    rate = sum(m is not None for m in marks_a) / len(real_a)
    if cache:
        np.savez(cache, key=key, heldout=d_a, train=d_b, rate=rate)
    return d_a, d_b, rate


def detect(images256: list[np.ndarray]) -> list[np.ndarray | None]:
    """68 landmarks per image from dlib's frontal detector without upsampling (None = no face)."""
    from editors.identity import detect_landmarks

    return [detect_landmarks(image, upsample=0) for image in images256]


def descriptors(images256: list[np.ndarray], marks: list[np.ndarray | None]) -> np.ndarray:
    from editors.identity import face_descriptors

    found = [(img, m) for img, m in zip(images256, marks, strict=True) if m is not None]
    result = []
    for start in range(0, len(found), 64):
        chunk = found[start : start + 64]
        result += face_descriptors([c[0] for c in chunk], landmarks=[c[1] for c in chunk])
    kept = [d for d in result if d is not None]
    return np.stack(kept).astype(np.float64) if kept else np.zeros((0, 128))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two descriptor sets."""
    from scipy import linalg

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    root = root.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


class Scorer:
    """All attribute scores of images: classifier outputs plus landmark yaw/pitch."""

    def __init__(self, classifier_paths: list[Path]) -> None:
        from models.classifier import load_classifier

        self.classifiers = [load_classifier(path) for path in classifier_paths]
        self.names = [name for c in self.classifiers for name in c.attributes] + ["yaw", "pitch"]

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """images [N, 3, H, W] in [-1, 1] -> scores [N, A] (NaN where no face for yaw/pitch)."""
        from editors.labelers import head_pose
        from models.generator import to_rgb_u8

        columns = []
        with torch.inference_mode():
            for classifier in self.classifiers:
                columns.append(classifier.predict(images).numpy())
        poses = []
        for rgb in to_rgb_u8(images):
            big = upscale(rgb)
            marks = detect([big])[0]
            poses.append(
                head_pose(marks, big.shape[:2])[:2] if marks is not None else (np.nan, np.nan)
            )
        columns.append(np.asarray(poses, dtype=np.float64))
        return np.concatenate(columns, axis=1)


def direction_table(generator, directions, scorer: Scorer, count: int) -> list[dict]:
    """Score change per +1 sigma for each direction, unlocked and with all others locked."""
    from editors.directions import effective_vectors, shift
    from models.generator import seed_to_z

    z = seed_to_z(list(range(10_000, 10_000 + count)), generator.z_dim)
    with torch.inference_mode():
        base = generator.broadcast(generator.mapping(z, truncation_psi=0.7)).numpy()
    rows = []
    for direction in directions.directions:
        entry = {"direction": direction.name, "metrics": dict(direction.metrics)}
        for mode in ("free", "locked"):
            locked = (
                [d.name for d in directions.directions if d.name != direction.name]
                if mode == "locked"
                else []
            )
            vector = effective_vectors(directions, locked)[direction.name]
            scores = []
            for sign in (-1.0, 1.0):
                moved = np.stack(
                    [shift(ws, direction, sign * direction.scale, vector=vector) for ws in base]
                )
                with torch.inference_mode():
                    images = generator.synthesis(torch.from_numpy(moved.astype(np.float32)))
                scores.append(scorer(images))
            delta = (scores[1] - scores[0]) / 2.0  # per +1 sigma
            entry[mode] = {
                name: float(np.nanmean(delta[:, i])) for i, name in enumerate(scorer.names)
            }
        rows.append(entry)
    return rows


def sweep_grid(generator, directions, seeds: list[int], amounts: tuple[float, ...]) -> np.ndarray:
    """One row per (direction, seed): the sample moved by each amount (in sigma), others free."""
    from editors.directions import shift
    from editors.images import make_grid
    from models.generator import seed_to_z, to_rgb_u8

    with torch.inference_mode():
        base = generator.broadcast(
            generator.mapping(seed_to_z(seeds, generator.z_dim), truncation_psi=0.7)
        )
    tiles = []
    for direction in directions.directions:
        for ws in base.numpy():
            moved = np.stack([shift(ws, direction, a * direction.scale) for a in amounts])
            with torch.inference_mode():
                tiles += to_rgb_u8(generator.synthesis(torch.from_numpy(moved)))
    return make_grid(tiles, len(amounts))


def projection_table(generator, steps_list: list[int]) -> list[dict]:
    from editors.alignment import align_face
    from editors.identity import IdentityMeter
    from editors.images import load_image
    from editors.losses import psnr_u8
    from editors.projection import project
    from models.encoder import find_encoder_for, load_encoder
    from models.generator import to_rgb_u8

    encoder = load_encoder(find_encoder_for(generator.source.path))
    rows = []
    for path in sorted((SHARED / "portraits" / "images").iterdir()):
        aligned = align_face(load_image(path), generator.resolution)
        target = np.asarray(aligned.image)
        try:
            meter = IdentityMeter(upscale(target))
        except ValueError:
            meter = None
        entry = {"photo": path.name}
        for steps in steps_list:
            started = time.perf_counter()
            if steps == 0:
                # the encoder alone: render its latent without optimising
                with torch.inference_mode():
                    tensor = torch.from_numpy(target).permute(2, 0, 1)[None].float() / 127.5 - 1
                    image = to_rgb_u8(generator.synthesis(encoder(tensor)))[0]
                psnr = psnr_u8(image, target)
            else:
                result = project(generator, aligned, steps=steps, space="w+", init="auto")
                image, psnr = result.image, result.psnr
            identity = meter.distance(upscale(image)) if meter is not None else float("nan")
            entry[str(steps)] = {
                "psnr": float(psnr),
                "identity": float(identity),
                "seconds": time.perf_counter() - started,
            }
        rows.append(entry)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="generator (default: the built-in demo model)")
    parser.add_argument(
        "--samples", type=int, default=1000, help="samples and real faces for the face metrics"
    )
    parser.add_argument(
        "--classifier", action="append", default=[], help="attribute classifier file(s)"
    )
    parser.add_argument("--direction-samples", type=int, default=200)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["faces", "directions", "projection"]
    )
    parser.add_argument("--grid", help="write a grid of 64 samples (truncation 0.7) here")
    parser.add_argument(
        "--eval-resolution",
        type=int,
        default=0,
        help="face metrics at this size (samples and real faces resized; default: the model's), "
        "to compare models of different resolutions",
    )
    parser.add_argument(
        "--real-cache",
        help="store (or reuse) the real faces' descriptors in this .npz: they do not depend on "
        "the model, only on --samples and the resolution",
    )
    parser.add_argument("--json", help="write all numbers here")
    parser.add_argument(
        "--sweeps", help="write every direction's sweep (-3..+3 sigma, 2 seeds) here"
    )
    args = parser.parse_args()

    import models
    from editors.direction_files import default_directions_path, load_directions
    from editors.images import make_grid, save_rgb

    torch.manual_seed(0)
    generator = (
        models.load_generator(args.model, "cpu") if args.model else models.load_default("cpu")
    )
    report: dict = {"model": generator.name, "resolution": generator.resolution}
    if args.grid:
        save_rgb(make_grid(sample_rgb(generator, list(range(64))), 8), args.grid)
        print(f"grid of 64 samples: {args.grid}")

    if args.sweeps:
        directions = load_directions(default_directions_path(generator.source.path))
        save_rgb(sweep_grid(generator, directions, [1, 7], (-3, -2, -1, 0, 1, 2, 3)), args.sweeps)
        print(f"sweeps ({', '.join(directions.names)}; 2 rows each): {args.sweeps}")

    if "faces" not in args.skip:
        started = time.perf_counter()
        size = args.eval_resolution or generator.resolution
        samples = [
            upscale(resize(rgb, size)) for rgb in sample_rgb(generator, list(range(args.samples)))
        ]
        sample_marks = detect(samples)
        face_rate = sum(m is not None for m in sample_marks) / len(samples)
        d_samples = descriptors(samples, sample_marks)
        d_a, d_b, real_rate = real_descriptors(args.samples, size, args.real_cache)
        report["faces"] = {
            "eval_resolution": size,
            "face_rate": face_rate,
            "real_face_rate": real_rate,
            "fd_samples_vs_heldout": frechet_distance(d_samples, d_a),
            "fd_real_vs_real": frechet_distance(d_b, d_a),
            "counts": [len(d_samples), len(d_a), len(d_b)],
            "seconds": time.perf_counter() - started,
        }
        f = report["faces"]
        print(
            f"\nface rate (dlib, {len(samples)} samples at psi 0.7, {size} px upscaled to 256): "
            f"{100 * f['face_rate']:.1f} %"
            f"   (held-out real faces: {100 * f['real_face_rate']:.1f} %)"
        )
        print(
            f"face-descriptor FD: samples vs held-out real {f['fd_samples_vs_heldout']:.4f}; "
            f"real vs real (floor) {f['fd_real_vs_real']:.4f}   descriptors used: {f['counts']}"
        )

    if "directions" not in args.skip and args.classifier:
        path = default_directions_path(generator.source.path)
        directions = load_directions(path)
        scorer = Scorer([Path(p) for p in args.classifier])
        rows = direction_table(generator, directions, scorer, args.direction_samples)
        report["directions"] = rows
        names = scorer.names
        print(
            f"\nscore change per +1 sigma ({args.direction_samples} latents; "
            "probabilities, years, degrees)"
        )
        print(
            f"{'direction':<20} {'mode':<7} {'acc/R2':>7} " + " ".join(f"{n[:9]:>9}" for n in names)
        )
        for row in rows:
            quality = row["metrics"].get(
                "heldout_accuracy", row["metrics"].get("heldout_r2", float("nan"))
            )
            for mode in ("free", "locked"):
                print(
                    f"{row['direction']:<20} {mode:<7} {quality:>7.3f} "
                    + " ".join(f"{row[mode][n]:>9.3f}" for n in names)
                )

    if "projection" not in args.skip:
        rows = projection_table(generator, [0, 100, 500])
        report["projection"] = rows
        print("\nprojection of the portraits (W+, encoder init): PSNR dB / identity distance")
        print(f"{'photo':<36} {'encoder':>14} {'100 steps':>14} {'500 steps':>14}")
        for row in rows:
            cells = [
                f"{row[k]['psnr']:5.1f} / {row[k]['identity']:.2f}" for k in ("0", "100", "500")
            ]
            print(f"{row['photo']:<36} " + " ".join(f"{c:>14}" for c in cells))
        for key in ("0", "100", "500"):
            psnr = np.mean([r[key]["psnr"] for r in rows])
            ident = np.nanmean([r[key]["identity"] for r in rows])
            print(
                f"{'mean ' + (key + ' steps' if key != '0' else 'encoder'):<36} "
                f"{psnr:5.1f} dB / {ident:.3f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
