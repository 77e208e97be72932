"""Real photos, stage by stage: encoder, W pivot search, pivotal tuning (the default pipeline).

For each portrait (aligned with the app's dlib aligner at the model's resolution) it prints, per
stage: PSNR and MS-SSIM vs the aligned photo, dlib identity distance, CPU and wall seconds, the
tuning delta's size, and editability: the smile direction's effect (mouth width over eye distance,
dlib landmarks on 4x upscaled renders; half the change from -2 to +2 sigma, which halves the
landmarks' noise against a one-sided step) on the reconstruction, relative to its mean effect on
generated faces; "keep" is the tuned model's image change for that smile step projected on the
original model's at the same latent (1: tuning left the edit as it was; dlib-free, noiseless).
Goals (demo model, 2-core CPU): PSNR >= 30 dB, identity <= 0.15, <= 60 s, editability >= 0.9.

CPU seconds are the process's own: on a machine shared with other work they are what the same run
takes on an idle one with one thread; wall seconds are printed too.

    .venv/bin/python bench/projection.py [--model PATH] [--photos ../shared/data/portraits/images]
        [--limit 4] [--pivot-steps 100] [--tune-steps 150] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from editors.direction_files import default_directions_path, load_directions  # noqa: E402
from editors.directions import DirectionSet  # noqa: E402
from editors.losses import ms_ssim, psnr_u8  # noqa: E402
from editors.photo import PIVOT, TUNING, align_photo  # noqa: E402
from editors.pivotal import protected_channels, tune  # noqa: E402
from editors.projection import encode, prepare_target, project  # noqa: E402
from editors.rendering import Renderer  # noqa: E402
from editors.state import EditState  # noqa: E402
from models.generator import Generator, seed_to_z, to_rgb_u8  # noqa: E402

DEMO = ROOT / "resources" / "models" / "demo-faces-64.safetensors"
SMILE_AMOUNT = 2.0  # sigmas, as in `main.py edit --direction smile=+2`
GENERATED_FACES = 24


class Laps:
    """CPU and wall seconds of consecutive stages."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self._last = time.process_time(), time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.process_time(), time.perf_counter()
        self.cpu[stage], self.wall[stage] = now[0] - self._last[0], now[1] - self._last[1]
        self._last = now


def render(generator: Generator, ws: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return to_rgb_u8(generator.synthesis(torch.from_numpy(ws)[None].to(generator.device)))[0]


def ms_ssim_u8(a: np.ndarray, b: np.ndarray) -> float:
    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float64) / 255).permute(2, 0, 1)[None]

    return float(ms_ssim(tensor(a), tensor(b))[0])


def identity(reference: np.ndarray, image: np.ndarray) -> float | None:
    from editors.identity import IdentityMeter

    try:
        return IdentityMeter(reference).distance(image)
    except (ValueError, OSError):
        return None


def mouth_ratio(rgb: np.ndarray) -> float | None:
    """Mouth width over eye distance from dlib landmarks (None when no face is found)."""
    from editors.identity import detect_landmarks

    big = np.asarray(Image.fromarray(rgb).resize((256, 256), Image.Resampling.LANCZOS))
    points = detect_landmarks(big)
    if points is None:
        return None
    eyes = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
    return float(np.linalg.norm(points[54] - points[48]) / eyes)


def smile_effect(generator: Generator, ws: np.ndarray, directions: DirectionSet) -> float | None:
    """Mouth ratio change per SMILE_AMOUNT sigmas of smile, from -that to +that (the app's path)."""
    renderer = Renderer(generator)
    state = EditState(seed=None, base_ws=ws, directions=directions)
    amount = SMILE_AMOUNT * directions["smile"].scale
    ratios = [
        mouth_ratio(
            renderer.render(state.replace(attribute_amounts={"smile": a}).render_args()).rgb
        )
        for a in (-amount, amount)
    ]
    return None if None in ratios else (ratios[1] - ratios[0]) / 2  # type: ignore[operator]


def edit_kept(
    tuned: Generator, original: Generator, ws: np.ndarray, directions: DirectionSet
) -> float:
    """Tuned image change for +SMILE_AMOUNT sigmas of smile, projected on the original's."""
    smile = directions["smile"]
    step = np.zeros_like(ws)
    rows = slice(*smile.layers) if smile.layers is not None else slice(None)
    step[rows] = SMILE_AMOUNT * smile.scale * np.asarray(smile.vector)
    start = torch.from_numpy(ws)[None]
    moved = start + torch.from_numpy(step)
    with torch.no_grad():
        changes = [model.synthesis(moved) - model.synthesis(start) for model in (tuned, original)]
    return float((changes[0] * changes[1]).sum() / changes[1].square().sum())


def generated_smile_effect(generator: Generator, directions: DirectionSet) -> float:
    effects = []
    for seed in range(GENERATED_FACES):
        with torch.no_grad():
            w = generator.mapping(seed_to_z([seed], generator.z_dim), truncation_psi=0.7)
        effect = smile_effect(generator, generator.broadcast(w)[0].numpy(), directions)
        if effect is not None:
            effects.append(effect)
    return float(np.mean(effects))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=str(DEMO))
    parser.add_argument(
        "--photos", default=str(ROOT.parent / "shared" / "data" / "portraits" / "images")
    )
    parser.add_argument("--limit", type=int, default=4, help="portraits to use (sorted by name)")
    parser.add_argument("--match", default="", help="only portraits whose name contains this")
    parser.add_argument("--pivot-steps", type=int, default=PIVOT.steps)
    parser.add_argument("--tune-steps", type=int, default=TUNING.steps)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from models import load_generator

    generator = load_generator(args.model, "cpu")
    model_bytes = Path(args.model).stat().st_size
    directions = load_directions(default_directions_path(args.model))
    reference_effect = generated_smile_effect(generator, directions)
    print(f"model {Path(args.model).name}; smile per {SMILE_AMOUNT:g} sigma on generated faces: "
          f"mouth/eyes ratio {reference_effect:+.4f}")  # fmt: skip
    header = (
        f"{'photo':34} {'stage':8} {'PSNR':>6} {'MS-SSIM':>7} {'ident':>6} {'cpu s':>6} "
        f"{'wall s':>6} {'delta':>13} {'smile':>6} {'keep':>5}"
    )
    print(header)
    photos = sorted(
        p
        for p in Path(args.photos).iterdir()
        if p.suffix.lower() in {".png", ".jpg"} and args.match in p.name
    )
    totals: dict[str, list[list[float]]] = {}
    for path in photos[: args.limit]:
        aligned = align_photo(path, generator.resolution).aligned
        if aligned is None:
            print(f"{path.name:34} no face found")
            continue
        target = prepare_target(aligned, generator.resolution).rgb
        stages, laps = [], Laps()
        lap = laps.lap
        ws = encode(generator, target)
        lap("encoder")
        if ws is not None:
            stages.append(("encoder", generator, ws, None))
        pivot = project(generator, aligned, config=replace(PIVOT, steps=args.pivot_steps))
        lap("pivot")
        stages.append(("pivot", generator, pivot.ws, None))
        protect = protected_channels(directions)  # as the app and `project --pti` do
        tuned = tune(generator, aligned, pivot.ws, steps=args.tune_steps, protect=protect)
        lap("tuning")
        stages.append(("tuning", tuned.generator, pivot.ws, tuned.delta.nbytes))
        for stage, model, latent, size in stages:
            image = render(model, latent)
            effect = smile_effect(model, latent, directions)
            editability = effect / reference_effect if effect is not None else float("nan")
            kept = edit_kept(model, generator, latent, directions)
            row = [
                psnr_u8(image, target), ms_ssim_u8(image, target),
                identity(target, image) or float("nan"), editability, kept,
            ]  # fmt: skip
            totals.setdefault(stage, []).append(row)
            cpu_text, wall_text = f"{laps.cpu[stage]:6.1f}", f"{laps.wall[stage]:6.1f}"
            size_text = f"{size / 1024:.1f} KB {100 * size / model_bytes:.1f}%" if size else ""
            print(
                f"{path.name:34} {stage:8} {row[0]:6.2f} {row[1]:7.3f} {row[2]:6.3f} {cpu_text} "
                f"{wall_text} {size_text:>13} {row[3]:6.2f} {row[4]:5.2f}",
                flush=True,
            )
        total_cpu, total_wall = sum(laps.cpu.values()), sum(laps.wall.values())
        print(f"{path.name:34} {'total':8} {'':32} {total_cpu:6.1f} {total_wall:6.1f}")
        totals.setdefault("seconds", []).append([total_cpu, total_wall])
    print(
        "mean over photos (PSNR, MS-SSIM, identity, smile editability, keep; seconds: cpu, wall):"
    )
    for stage, rows in totals.items():
        print(f"  {stage:8} " + "  ".join(f"{v:.3f}" for v in np.nanmean(rows, axis=0)))


if __name__ == "__main__":
    main()
