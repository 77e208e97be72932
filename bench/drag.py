"""Drag editing (editors/drag.py): speed per step and per drag, and the face-landmark test.

Speed: seconds per step and per drag on the built-in 64 px model and on FFHQ-layout models with
random weights at 256 and 1024 px (fewer steps there; a step is the same work whatever the
weights).

Face landmarks (DragGAN's face-landmark experiment, simplified): on faces the demo model
generates, dlib finds the 68 landmarks (on the image upsampled 4x, since dlib's detector misses
64 px faces); the chin (landmark 8) or a mouth corner (48/54) is dragged 5 px (5/64 of the
picture on another model, ``--model``) in a random direction; dlib then finds the landmark
again. Reports the final distance to the target as a share of the start distance (goal <= 35 %),
the identity drift (dlib descriptor distance between the face before and after, goal <= 0.35),
seconds per drag (<= 20) and per step (<= 0.2), and without dlib the PSNR of the picture beyond
16 px of the drag against the start ("far PSNR").

    python bench/drag.py
    python bench/drag.py --faces 20 --skip-speed
    python bench/drag.py --resolutions 64 256 --device cuda
    python bench/drag.py --skip-speed --warp 6   # the yardstick: an ideal smooth warp instead
    python bench/drag.py --skip-speed --model face-model.pt   # another face model

``--warp SIGMA`` calibrates the test: instead of dragging, the picture is warped so that the
landmark moves exactly to its target, with the displacement fading as a Gaussian of SIGMA px
around the drag. dlib follows such warps well only when they are broad (its shape model holds
the landmarks to a face shape), and every warp costs identity, so this shows how close to the
goals an ideal edit gets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from editors.drag import DragSettings  # noqa: E402

DLIB_PX = 256  # dlib finds faces of ~80 px and up: smaller pictures are enlarged to this size
# landmark -> index and the axis a user drags it along (chin: up/down, mouth corners: sideways)
LANDMARKS = {"chin": (8, np.pi / 2), "mouth left": (48, 0.0), "mouth right": (54, 0.0)}
SPREAD = np.pi / 6  # drag directions lie within 30 degrees of that axis, either way
DRAG_PX = 5.0  # at 64 px; other models scale it with their resolution
FAR_PX = 16.0  # "far from the drag": beyond a quarter of the picture (at 64 px)


def enlargement(rgb: np.ndarray) -> int:
    """How many times ``rgb`` is enlarged for dlib (4 for the 64 px demo model)."""
    return max(1, DLIB_PX // rgb.shape[0])


def upsampled(rgb: np.ndarray) -> np.ndarray:
    """The image enlarged ``enlargement`` times (bicubic), for dlib."""
    from PIL import Image

    factor = enlargement(rgb)
    size = rgb.shape[1] * factor, rgb.shape[0] * factor
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def landmarks_of(rgb: np.ndarray) -> np.ndarray | None:
    """dlib's 68 landmarks of ``rgb`` in its own pixel coordinates (None: no face found)."""
    from editors.identity import detect_landmarks

    image = upsampled(rgb)
    # Detection without upsampling first (the measured rows); a face it misses is looked for
    # upsampled once more, as the identity descriptor's detection does, rather than dropped.
    found = detect_landmarks(image, upsample=0)
    if found is None:
        found = detect_landmarks(image, upsample=1)
    if found is None:
        return None
    return (found + 0.5) / enlargement(rgb) - 0.5  # pixel centres of the enlarged image map back


def descriptor_of(rgb: np.ndarray) -> np.ndarray | None:
    """dlib's face descriptor of ``rgb`` (enlarged like ``landmarks_of``)."""
    from editors.identity import face_descriptor

    return face_descriptor(upsampled(rgb))


def speed_rows(resolutions: list[int], device: str, steps: int) -> list[tuple]:
    """(resolution, steps, s/step, s/drag, CPU s/step) per resolution.

    CPU seconds (all threads together) tell the cost on a shared machine, where wall time
    depends on the other processes.
    """
    import torch

    from editors.drag import drag
    from models import DEFAULT_MODEL, load_generator
    from models.generator import seed_to_z
    from models.stylegan2 import StyleGAN2Generator, rosinality_channels

    rows = []
    for res in resolutions:
        torch.manual_seed(0)
        if res == 64 and DEFAULT_MODEL.is_file():
            generator = load_generator(DEFAULT_MODEL, device)
            name = "64 (demo)"
        else:
            generator = StyleGAN2Generator(res, rosinality_channels(res, 2)).to(device).eval()
            name = f"{res} (random)"
        n = steps if res <= 64 else max(3, steps // (4 if res <= 256 else 10))
        with torch.no_grad():
            w = generator.mapping(seed_to_z([1], generator.z_dim).to(device), truncation_psi=0.7)
        ws = generator.broadcast(w)[0].cpu().numpy()
        c = res / 2
        # a target never reached: every step runs
        handles, targets = [(c, c)], [(c + res / 4, c)]
        drag(generator, ws, handles, targets, steps=1)  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        result = drag(generator, ws, handles, targets, steps=n, settings=_unreachable())
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        steps = max(1, result.steps)
        rows.append((name, result.steps, seconds / steps, seconds, cpu / steps))
    return rows


def _unreachable():
    return DragSettings(done_distance=0.0)


def warped(image, handle: np.ndarray, target: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` [1, 3, R, R] in [-1, 1] with the content at ``handle`` moved to ``target``.

    The displacement is largest on the drag's midpoint and fades as a Gaussian of ``sigma`` px
    (the drag's own guide, ``editors.drag.warp_grid``).
    """
    import torch.nn.functional as F

    from editors.drag import warp_grid
    from models.generator import to_rgb_u8

    res = image.shape[-1]
    grid = warp_grid(res, res, [tuple(handle)], [tuple(target)], sigma).to(image.dtype)
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return to_rgb_u8(out)[0]


def far_psnr(before: np.ndarray, after: np.ndarray, centre: np.ndarray, radius: float) -> float:
    """PSNR (dB) of ``after`` against ``before`` beyond ``radius`` px of ``centre``.

    How much of the picture away from the drag stayed as it was, measured without dlib.
    """
    from editors.losses import psnr_u8

    yy, xx = np.mgrid[: before.shape[0], : before.shape[1]]
    far = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 > radius**2
    return psnr_u8(before[far], after[far])


def face_rows(
    faces: int,
    steps: int | None,
    seed0: int,
    settings=None,
    mask_radius: float = 0.0,
    warp_sigma: float = 0.0,
    model: str | None = None,
) -> tuple[list[tuple], dict[str, float]]:
    """Per-face rows (seed, landmark, start px, final px, share, drift, far PSNR, steps, s), means.

    ``warp_sigma`` > 0 replaces the drag by ``warped`` (the yardstick; 0 steps). ``model``: a
    checkpoint (default: the built-in model); drag length and "far" scale with its resolution.
    """
    import torch

    from editors.drag import drag
    from editors.identity import identity_distance
    from models import load_default, load_generator
    from models.generator import seed_to_z, to_rgb_u8

    generator = load_generator(model, "cpu") if model else load_default("cpu")
    scale = generator.resolution / 64
    rng = np.random.default_rng(seed0)
    rows = []
    seed = seed0
    while len(rows) < faces and seed < seed0 + faces * 5:
        seed += 1
        with torch.no_grad():
            w = generator.mapping(seed_to_z([seed], generator.z_dim), truncation_psi=0.7)
            ws = generator.broadcast(w)
            picture = generator.synthesis(ws)
            before = to_rgb_u8(picture)[0]
        marks = landmarks_of(before)
        if marks is None:
            continue
        name = list(LANDMARKS)[len(rows) % len(LANDMARKS)]
        index, axis = LANDMARKS[name]
        handle = marks[index]
        angle = axis + rng.uniform(-SPREAD, SPREAD) + rng.choice([0.0, np.pi])
        target = handle + DRAG_PX * scale * np.array([np.cos(angle), np.sin(angle)])
        target = np.clip(target, 0, generator.resolution - 1)
        start = time.perf_counter()
        mask = None
        if mask_radius:
            yy, xx = np.mgrid[: generator.resolution, : generator.resolution]
            mask = (xx - handle[0]) ** 2 + (yy - handle[1]) ** 2 <= mask_radius**2
        if warp_sigma:
            image, taken = warped(picture, handle, target, warp_sigma), 0
        else:
            result = drag(
                generator, ws[0].numpy(), [handle], [target], mask=mask, steps=steps,
                settings=settings,
            )  # fmt: skip
            image, taken = result.image, result.steps
        seconds = time.perf_counter() - start
        after = landmarks_of(image)
        start_px = float(np.linalg.norm(target - handle))
        final_px = float(np.linalg.norm(after[index] - target)) if after is not None else np.nan
        a, b = descriptor_of(before), descriptor_of(image)
        drift = identity_distance(a, b) if a is not None and b is not None else np.nan
        far = far_psnr(before, image, (handle + target) / 2, FAR_PX * scale)
        rows.append(
            (seed, name, start_px, final_px, final_px / start_px, drift, far, taken, seconds)
        )
    found = [r for r in rows if np.isfinite(r[4])]
    summary = {
        "faces": len(rows),
        "found after": len(found),
        "mean final/start": float(np.mean([r[4] for r in found])) if found else np.nan,
        "mean drift": float(np.nanmean([r[5] for r in rows])) if rows else np.nan,
        f"mean PSNR beyond {FAR_PX * scale:g} px": (
            float(np.mean([r[6] for r in rows])) if rows else np.nan
        ),
        "s per drag": float(np.mean([r[8] for r in rows])) if rows else np.nan,
        "s per step": sum(r[8] for r in rows) / max(1, sum(r[7] for r in rows)),
    }
    return rows, summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--speed-steps", type=int, default=20, help="steps timed at 64 px")
    parser.add_argument("--faces", type=int, default=12, help="faces in the landmark test")
    parser.add_argument("--model", default=None, help="checkpoint (default: the built-in model)")
    parser.add_argument("--steps", type=int, default=None, help="most steps per face drag")
    parser.add_argument("--seed", type=int, default=0, help="first seed minus one")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    parser.add_argument("--rows", type=int, default=None, help="W+ rows optimised")
    parser.add_argument("--feature-res", type=int, default=None, help="feature block size, px")
    parser.add_argument("--track-res", type=int, default=None, help="tracking block size, px")
    parser.add_argument("--r1", type=float, default=None, help="motion radius, px")
    parser.add_argument("--r2", type=int, default=None, help="tracking radius, px")
    parser.add_argument("--done", type=float, default=None, help="arrival distance, px")
    parser.add_argument(
        "--mask-radius", type=float, default=0.0, help="only a disc this big may move (0: all)"
    )
    parser.add_argument("--mask-weight", type=float, default=DragSettings().mask_weight)
    parser.add_argument(
        "--auto-mask",
        type=float,
        default=DragSettings().auto_mask,
        help="without --mask-radius: discs this many drag lengths around the points (0: none)",
    )
    parser.add_argument("--auto-mask-weight", type=float, default=DragSettings().auto_mask_weight)
    parser.add_argument("--whole-pixels", action="store_true", help="track to whole pixels")
    parser.add_argument("--guide", type=float, default=DragSettings().guide_weight)
    parser.add_argument("--guide-sigma", type=float, default=None, help="guide warp fade, px")
    parser.add_argument(
        "--warp", type=float, default=0.0, help="warp with this Gaussian sigma, px, instead"
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-faces", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_grad_enabled(True)
    if not args.skip_speed:
        threads = torch.get_num_threads()
        print(
            f"| model ({args.device}, {threads} threads) | steps | s/step | s/drag | CPU s/step |"
        )
        print("| --- | --- | --- | --- | --- |")
        for name, steps, per_step, total, cpu in speed_rows(
            args.resolutions, args.device, args.speed_steps
        ):
            print(f"| {name} | {steps} | {per_step:.3f} | {total:.2f} | {cpu:.3f} |")
        print()
    if not args.skip_faces:
        settings = DragSettings(
            lr=args.lr,
            rows=args.rows,
            feature_resolution=args.feature_res,
            track_resolution=args.track_res,
            motion_radius=args.r1,
            track_radius=args.r2,
            done_distance=args.done,
            refine=not args.whole_pixels,
            mask_weight=args.mask_weight,
            auto_mask=args.auto_mask,
            auto_mask_weight=args.auto_mask_weight,
            guide_weight=args.guide,
            guide_sigma=args.guide_sigma,
        )
        rows, summary = face_rows(
            args.faces, args.steps, args.seed, settings, args.mask_radius, args.warp, args.model
        )
        print(
            "| seed | landmark | start px | final px | final/start | id drift | far PSNR | steps "
            "| s |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for seed, name, start_px, final_px, share, drift, far, steps, seconds in rows:
            print(
                f"| {seed} | {name} | {start_px:.2f} | {final_px:.2f} | {share:.0%} | "
                f"{drift:.3f} | {far:.1f} | {steps} | {seconds:.1f} |"
            )
        print()
        for key, value in summary.items():
            print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
        print(f"median final/start: {statistics.median([r[4] for r in rows]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
