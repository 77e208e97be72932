"""``main.py project``: align a photo (or each photo of a folder), find it in latent space."""

from __future__ import annotations

import argparse
import csv
import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from editors.alignment import AlignedFace
from editors.cli.common import add_model_arguments, model_or_demo, progress_bar
from editors.direction_files import DirectionFileError, default_directions_path, load_directions
from editors.directions import DirectionSet
from editors.errors import AlignmentError, ImageLoadError, LatentFileError, NoFaceFound
from editors.images import save_rgb
from editors.latent_io import latent_metadata, load_latent, save_latent
from editors.losses import ssim_u8
from editors.photo import (
    PIVOT,
    TUNING,
    TUNING_PRESETS,
    align_photo,
    crop_photo,
    invert_photo,
)
from editors.pivotal import DELTA_SUFFIX, save_delta
from editors.projection import ProjectionConfig, ProjectionResult
from models import load_generator
from models.formats.native import atomic_write
from models.generator import Generator
from models.jobs import Progress

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
SUMMARY_COLUMNS = ("photo", "status", "psnr", "ssim", "loss", "steps", "seconds", "folder", "error")
VIDEO_FRAMES = 100  # about this many frames in progress.mp4


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``project`` command."""
    parser = subparsers.add_parser(
        "project",
        help="find a photo in the model's latent space",
        description=(
            "Align the face in PHOTO to the FFHQ template, optimise a latent until the model "
            "draws it, and write aligned.png, projected.png and latent.npz to --out. With --pti "
            "the latent is an editable W pivot and the model is tuned around it (pivotal "
            "tuning); the tuning's compact delta is written beside the latent, which refers to "
            "it, and `main.py edit` renders with it. PHOTO may "
            "be a folder: one result folder per image plus summary.csv; images already done "
            "are skipped."
        ),
    )
    parser.add_argument("photo", metavar="PHOTO", help="image file or folder of images")
    add_model_arguments(parser, demo_default=True)
    defaults = ProjectionConfig()
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--pti", action="store_true",
        help=f"pivotal tuning: a short W pivot search ({PIVOT.steps} steps) then "
        f"{TUNING.steps} steps tuning the model around it (about a minute on a CPU)",
    )  # fmt: skip
    parser.add_argument(
        "--steps", type=int, default=None,
        help=f"optimisation steps (default {defaults.steps}; {PIVOT.steps} with --pti)",
    )  # fmt: skip
    parser.add_argument(
        "--tuning", choices=tuple(TUNING_PRESETS), default="faithful",
        help="with --pti: faithful = the sharpest likeness; editable = edits act more strongly "
        "on the result, the likeness is a little softer",
    )  # fmt: skip
    parser.add_argument(
        "--tune-steps", type=int, default=None,
        help=f"with --pti: tuning steps (default {TUNING.steps}; "
        f"{TUNING_PRESETS['editable'].steps} with --tuning editable)",
    )  # fmt: skip
    parser.add_argument(
        "--space", choices=("w", "w+"), default=None,
        help=f"latent space (default {defaults.space}; w with --pti)",
    )  # fmt: skip
    parser.add_argument(
        "--loss", choices=("auto", "vgg16", "offline", "pixel"), default=defaults.loss,
        help="image distance: auto = VGG16 when downloaded, else offline (pixel, SSIM, identity)",
    )  # fmt: skip
    parser.add_argument(
        "--init", choices=("auto", "w_avg", "encoder"), default=defaults.init,
        help="starting latent: auto = the model's trained encoder when there is one",
    )  # fmt: skip
    parser.add_argument(
        "--mse", type=float, default=defaults.mse_weight, help="pixel MSE weight added to VGG16"
    )
    parser.add_argument("--optimize-noise", action="store_true", help="also fit the noise maps")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default 303)")
    parser.add_argument(
        "--face", type=int, default=None, help="which face when several (0 = largest)"
    )
    parser.add_argument(
        "--no-align", action="store_true", help="use the photo's centre square as is"
    )
    parser.add_argument(
        "--center-crop-fallback", action="store_true", help="centre square when no face is found"
    )  # fmt: skip
    parser.add_argument(
        "--video", action="store_true", help="also write progress.mp4 (GIF without codec)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Project one photo or a folder."""
    source = Path(args.photo)
    if not source.exists():
        raise ImageLoadError(source, "no such file or folder")
    if not source.is_dir() and not source.is_file():
        raise ImageLoadError(source, "not a regular file or folder (a FIFO or a device?)")
    base = PIVOT if args.pti else ProjectionConfig()
    steps = args.steps if args.steps is not None else base.steps
    config = base.replace(
        steps=steps, space=args.space, loss=args.loss, init=args.init, mse_weight=args.mse,
        optimize_noise=args.optimize_noise, seed=args.seed,
        preview_every=max(1, steps // VIDEO_FRAMES),
    )  # fmt: skip
    args.model = model_or_demo(args.model)
    generator = load_generator(args.model, args.device)
    discriminator = _discriminator(args.model, args.device)
    args.slider_directions = _slider_directions(args.model) if args.pti else None
    out = Path(args.out)
    if source.is_dir():
        return _run_folder(source, out, generator, discriminator, config, args)
    row = _project_one(source, out, generator, discriminator, config, args)
    print(f"PSNR {row['psnr']} dB, SSIM {row['ssim']}, loss {row['loss']} ({row['steps']} steps)")
    print(f"wrote {out / 'aligned.png'}, {out / 'projected.png'}, {out / 'latent.npz'}")
    return 0


def _discriminator(model: str, device: str | None) -> object | None:
    from models import load_discriminator

    try:
        return load_discriminator(model, device)
    except Exception as exc:  # optional: any problem just means no discriminator term
        log.info("no discriminator used: %s", exc)
        return None


def _slider_directions(model: str) -> DirectionSet | None:
    """The directions beside the model, which `main.py edit` uses (tuning keeps them working)."""
    path = default_directions_path(model)
    if not path.is_file():
        return None
    try:
        return load_directions(path)
    except (DirectionFileError, OSError, ValueError) as exc:
        log.warning("%s: not used for tuning (%s)", path, exc)
        return None


def _align(path: Path, size: int, args: argparse.Namespace) -> AlignedFace:
    if args.no_align:
        return crop_photo(path, size).aligned  # type: ignore[return-value]
    photo = align_photo(path, size, face_index=args.face or 0)
    if photo.aligned is None and args.center_crop_fallback:
        log.warning("%s: no face found; using the centre square", path)
        return crop_photo(path, size).aligned  # type: ignore[return-value]
    if photo.aligned is None:
        raise NoFaceFound(
            path,
            "no face found; add --center-crop-fallback to project the centre square instead, "
            "or --no-align when the photo is already a cropped, aligned face",
        )
    return photo.aligned


def _project_one(
    photo: Path,
    out: Path,
    generator: Generator,
    discriminator: object | None,
    config: ProjectionConfig,
    args: argparse.Namespace,
) -> dict[str, str]:
    aligned = _align(photo, generator.resolution, args)
    out.mkdir(parents=True, exist_ok=True)
    save_rgb(np.asarray(aligned.image), out / "aligned.png")
    frames: list[np.ndarray] = []

    preset = TUNING_PRESETS[args.tuning]
    tuning = preset.replace(steps=args.tune_steps, seed=args.seed) if args.pti else None
    total = config.steps + (tuning.steps if tuning is not None else 0)
    with progress_bar(f"projecting {photo.name}", total=total) as (bar_step, should_stop):

        def on_step(progress: Progress) -> None:
            bar_step(progress)
            if args.video and progress.preview is not None:
                frames.append(progress.preview)

        inversion = invert_photo(
            generator, aligned, projection=config, tuning=tuning, discriminator=discriminator,
            directions=args.slider_directions,
            on_step=on_step, should_stop=should_stop,
        )  # fmt: skip
    result = inversion.projection
    save_rgb(inversion.image, out / "projected.png")
    extra: dict[str, object] = {}
    if inversion.tuning is not None:
        delta_path = save_delta(out / f"latent{DELTA_SUFFIX}", inversion.tuning.delta)
        extra["tuning"] = {
            "file": delta_path.name, "pivot_psnr": result.psnr, "steps": inversion.tuning.steps,
            "bytes": inversion.tuning.delta.nbytes,
        }  # fmt: skip
    meta = latent_metadata(
        model_name=generator.name, model_fingerprint=generator.fingerprint(), space=result.space,
        source_photo=photo.resolve(), loss=result.loss_name, steps=result.steps,
        psnr=inversion.psnr, ssim=ssim_u8(inversion.image, result.target), init=result.init,
        alignment=aligned.method, config=json_config(result), **extra,
    )  # fmt: skip
    save_latent(out / "latent.npz", result.ws, metadata=meta, noise=result.noise)
    if args.video:
        write_video(out / "progress.mp4", result.target, frames)
    return _row(
        photo, "projected", inversion.psnr, float(meta["ssim"]), result.loss_name,
        result.steps + (inversion.tuning.steps if inversion.tuning else 0), inversion.seconds, out,
    )  # fmt: skip


def json_config(result: ProjectionResult) -> dict[str, object]:
    """The projection settings as a JSON-compatible dict."""
    import json

    return json.loads(result.config.to_json())


def _row(
    photo: Path,
    status: str,
    psnr: float,
    ssim: float,
    loss: str,
    steps: int,
    seconds: float,
    folder: Path,
    error: str = "",
) -> dict[str, str]:
    return {
        "photo": str(photo), "status": status, "psnr": f"{psnr:.2f}", "ssim": f"{ssim:.4f}",
        "loss": loss,
        "steps": str(steps), "seconds": f"{seconds:.1f}", "folder": str(folder), "error": error,
    }  # fmt: skip


def _run_folder(
    folder: Path,
    out: Path,
    generator: Generator,
    discriminator: object | None,
    config: ProjectionConfig,
    args: argparse.Namespace,
) -> int:
    photos = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not photos:
        raise ImageLoadError(folder, "no images in this folder")
    rows: list[dict[str, str]] = []
    failures = 0
    names = output_names(photos)
    for photo in photos:
        target = out / names[photo]
        before = _done_before(photo, target)
        if before is not None:
            rows.append(before)
        else:
            try:
                rows.append(_project_one(photo, target, generator, discriminator, config, args))
            except (ImageLoadError, AlignmentError) as exc:
                failures += 1
                print(f"skipped {photo.name}: {exc.reason}")
                rows.append(
                    _row(
                        photo, "failed", float("nan"), float("nan"), "", 0, 0.0, target, exc.reason
                    )
                )
        write_summary(out / "summary.csv", rows)
    done = sum(r["status"] != "failed" for r in rows)
    print(f"{done} of {len(photos)} photos projected ({failures} failed)")
    print(f"summary in {out / 'summary.csv'}")
    return 0


def output_names(photos: list[Path]) -> dict[Path, str]:
    """A result folder name per photo: its stem when that is unique and safe, else more.

    Names keep only letters, digits, '-', '_' and inner dots, never start with a dot (so
    '...png' cannot name the parent folder), differ between 'a.jpg' and 'a.png' (the full name
    is used when stems collide), and never equal the summary file.
    """

    def safe(text: str) -> str:
        cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).lstrip(".")
        return cleaned or "photo"

    stems = [safe(p.stem).lower() for p in photos]
    names: dict[Path, str] = {}
    taken = {"summary.csv"}
    for photo, stem in zip(photos, stems, strict=True):
        name = safe(photo.stem) if stems.count(stem) == 1 else safe(photo.name)
        candidate, number = name, 2
        while candidate.lower() in taken:
            candidate, number = f"{name}-{number}", number + 1
        taken.add(candidate.lower())
        names[photo] = candidate
    return names


def _done_before(photo: Path, target: Path) -> dict[str, str] | None:
    """The summary row of a photo projected by an earlier run, or None (also when unreadable)."""
    latent_path = target / "latent.npz"
    if not latent_path.is_file():
        return None
    try:
        meta = load_latent(latent_path).metadata
        return _row(
            photo, "done before", float(meta.get("psnr", float("nan"))),
            float(meta.get("ssim", float("nan"))), str(meta.get("loss", "")),
            int(meta.get("steps", 0)), 0.0, target,
        )  # fmt: skip
    except (LatentFileError, TypeError, ValueError) as exc:
        log.warning("%s: projecting again (%s)", photo, exc)
        return None


def write_summary(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the folder summary CSV atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8"))


def write_video(path: Path, target: np.ndarray, frames: list[np.ndarray]) -> Path:
    """Write target | projection frames as H.264 MP4; a GIF beside it when that fails.

    Returns:
        The file written (``path``, or ``path`` with ``.gif`` when MP4 was unavailable).
    """
    from editors.export import H264Writer

    if not frames:
        raise ValueError("no preview frames to write")
    scale = max(1, 256 // target.shape[0])  # small models: enlarge so the video is watchable
    pairs = [np.concatenate([target, frame], axis=1) for frame in frames]
    pairs = [np.kron(p, np.ones((scale, scale, 1), np.uint8)) for p in pairs]
    height, width = pairs[0].shape[:2]

    def write_mp4(tmp: Path) -> None:
        writer = H264Writer(tmp, 25, width, height)
        try:
            for pair in pairs:
                writer.add(pair)
        finally:
            writer.close()

    try:
        atomic_write(path, write_mp4)
        return path
    except Exception as exc:  # PyAV or codec failure (not always OSError): a GIF still works
        log.warning("could not write %s (%s); writing a GIF instead", path.name, exc)
    gif = path.with_suffix(".gif")
    images = [Image.fromarray(p) for p in pairs]
    atomic_write(
        gif,
        lambda t: images[0].save(
            t, format="GIF", save_all=True, append_images=images[1:], duration=40
        ),
    )
    return gif
