"""``main.py drag LATENT.npz --handle X,Y --target X,Y --out X.png``: drag points of an image."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from editors.cli.common import add_model_arguments, progress_bar
from editors.drag import DragResult, drag
from editors.errors import DragError
from editors.images import save_rgb
from editors.latent_io import latent_metadata, load_latent, save_latent
from editors.pivotal import base_fingerprint, tuned_for_latent
from models import load_default, load_generator
from models.jobs import Cancelled


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``drag`` command."""
    parser = subparsers.add_parser(
        "drag",
        help="move points of a latent's image to targets (DragGAN-style point dragging)",
        description=(
            "Drag handle points of the image of a saved latent to target points, as DragGAN "
            "does: each --handle X,Y goes with the --target X,Y given in the same order, in "
            "pixels of the model's output (0,0 = top-left pixel). Writes the image and the "
            "dragged latent. Ctrl-C stops and keeps the last step."
        ),
    )
    parser.add_argument(
        "latent", metavar="LATENT.npz", help="latent file (.npz with key 'w', or .pt)"
    )
    add_model_arguments(parser, required=False)
    parser.add_argument(
        "--handle", metavar="X,Y", action="append", default=[], help="point to move (repeatable)"
    )
    parser.add_argument(
        "--target", metavar="X,Y", action="append", default=[], help="where it goes (repeatable)"
    )
    parser.add_argument(
        "--mask",
        metavar="MASK.png",
        help="grey image of the output's size: white marks the region that may change "
        "(default: none; the drag's warp guide holds what lies far from the points)",
    )
    parser.add_argument("--steps", type=int, default=None, metavar="N", help="most steps")
    parser.add_argument("--out", required=True, metavar="X.png", help="output image (.png or .jpg)")
    parser.add_argument(
        "--out-latent",
        metavar="Y.npz",
        help="where to write the dragged latent (default: the --out name with .npz)",
    )
    parser.epilog = "The built-in demo model is used unless --model is given."
    parser.set_defaults(run=run)


def parse_point(text: str, option: str) -> tuple[float, float]:
    """Parse ``"12,30.5"`` into (x, y).

    Raises:
        DragError: not two comma-separated numbers.
    """
    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise DragError(f"bad {option} {text!r}: use X,Y in pixels, e.g. 32,40") from None


def read_mask(path: str | Path, resolution: int) -> np.ndarray:
    """A bool [R, R] mask from a grey image (white = may change).

    Raises:
        DragError: unreadable, or not the model's output size.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"))
    except (OSError, UnidentifiedImageError) as exc:
        raise DragError(f"{path}: cannot read the mask image ({exc})") from None
    if grey.shape != (resolution, resolution):
        raise DragError(
            f"{path}: the mask is {grey.shape[1]}x{grey.shape[0]}; "
            f"the model draws {resolution}x{resolution}"
        )
    return grey > 127


def run(args: argparse.Namespace) -> int:
    """Drag the points and save the image and the latent."""
    handles = [parse_point(text, "--handle") for text in args.handle]
    targets = [parse_point(text, "--target") for text in args.target]
    if not handles or len(handles) != len(targets):
        raise DragError(
            f"give each --handle a --target (got {len(handles)} handles, {len(targets)} targets)"
        )
    latent = load_latent(args.latent)
    generator = load_generator(args.model, args.device) if args.model else load_default(args.device)
    # A latent from `project --pti` is dragged with the model tuned for its photo.
    generator = tuned_for_latent(generator, latent)
    ws = latent.fitted(generator.num_ws, generator.w_dim)
    mask = read_mask(args.mask, generator.resolution) if args.mask else None
    out = Path(args.out)
    out_latent = Path(args.out_latent) if args.out_latent else out.with_suffix(".npz")
    stopped = False
    with progress_bar("dragging", total=args.steps) as (on_step, should_stop):
        try:
            result = drag(
                generator, ws, handles, targets, mask=mask, steps=args.steps,
                on_step=on_step, should_stop=should_stop,
            )  # fmt: skip
        except Cancelled as exc:
            if not isinstance(exc.partial, DragResult):
                raise
            result, stopped = exc.partial, True
    save_rgb(result.image, out)
    extra: dict[str, object] = {}
    if latent.tuning_path is not None:
        # The dragged latent only shows the picture with the same tuning: keep it beside it.
        delta = out_latent.parent / latent.tuning_path.name
        if delta.resolve() != latent.tuning_path.resolve():
            shutil.copyfile(latent.tuning_path, delta)
        extra["tuning"] = {**latent.metadata.get("tuning", {}), "file": delta.name}
    meta = latent_metadata(
        model_name=generator.name, model_fingerprint=base_fingerprint(generator), space="w+",
        source_latent=str(Path(args.latent).resolve()), steps=result.steps,
        drag={"handles": handles, "targets": targets, "tracked": list(result.points)}, **extra,
    )  # fmt: skip
    save_latent(out_latent, result.ws, metadata=meta)
    where = ", ".join(f"({x:.0f}, {y:.0f})" for x, y in result.points)
    state = "stopped" if stopped else ("arrived" if result.arrived else "ran out of steps")
    print(f"{state} after {result.steps} steps; handles now at {where}")
    print(f"wrote {out} and {out_latent}")
    return 0
