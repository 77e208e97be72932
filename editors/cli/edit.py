"""``main.py edit LATENT.npz --model M --direction smile=+2 --out X.png``: edit a saved latent."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from editors.cli.common import add_model_arguments, model_or_demo
from editors.direction_files import default_directions_path, load_directions
from editors.directions import check_compatible
from editors.images import save_rgb
from editors.latent_io import load_latent
from editors.pivotal import tuned_for_latent
from editors.rendering import Renderer
from editors.state import EditState
from models import load_generator

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``edit`` command."""
    parser = subparsers.add_parser(
        "edit",
        help="apply attribute directions to a saved latent and render it",
        description=(
            "Move a saved latent (latent.npz with key 'w' [1, num_ws, w_dim], NVIDIA's "
            "projected_w.npz or a rosinality .pt) along named "
            "directions and save the picture. Amounts are in standard deviations of sampled "
            "latents along each direction (the sliders' σ)."
        ),
    )
    parser.add_argument(
        "latent", metavar="LATENT.npz", help="latent file (.npz with key 'w', or .pt)"
    )
    add_model_arguments(parser, demo_default=True)
    parser.add_argument(
        "--direction",
        metavar="NAME=AMOUNT",
        action="append",
        default=[],
        required=True,
        help="direction and signed amount in σ, e.g. smile=+2 (repeatable)",
    )
    parser.add_argument(
        "--directions",
        metavar="FILE",
        help="direction set (.directions.json with its .npz); "
        "default: <model stem>.directions.json "
        "beside the model",
    )
    parser.add_argument(
        "--lock",
        metavar="NAME",
        action="append",
        default=[],
        help="hold this attribute constant while the others move (repeatable)",
    )
    parser.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    parser.add_argument(
        "--space",
        choices=("auto", "w"),
        default="auto",
        help="auto: sliders with a localized (StyleSpace) version beside the directions use it, "
        "so e.g. smile changes only the lower face; w: the plain W-space directions",
    )
    parser.add_argument("--out", required=True, metavar="X.png", help="output image (.png or .jpg)")
    parser.set_defaults(run=run)


def parse_amounts(items: list[str]) -> dict[str, float]:
    """Parse ``["smile=+2", "age=-1.5"]``.

    Raises:
        ValueError: an item is not NAME=NUMBER.
    """
    amounts: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            amounts[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"bad --direction {item!r}: use NAME=AMOUNT, e.g. smile=+2") from None
    return amounts


def read_latent(path: str | Path) -> np.ndarray:
    """The latent rows of a latent file (ours, NVIDIA ``projected_w.npz`` or rosinality ``.pt``).

    Returns:
        [rows, w_dim] float32, rows being num_ws or 1 (a single w).

    Raises:
        LatentFileError: (a ``ValueError``) the file is missing, damaged or not a latent.
    """
    return np.asarray(load_latent(path).ws, np.float32)


def run(args: argparse.Namespace) -> int:
    """Apply the directions and save the image."""
    amounts = parse_amounts(args.direction)
    latent = load_latent(args.latent)
    w = np.asarray(latent.ws, np.float32)
    args.model = model_or_demo(args.model)
    generator = load_generator(args.model, args.device)
    shape = (generator.num_ws, generator.w_dim)
    rows = w.reshape(-1, w.shape[-1]) if w.ndim >= 2 else w.reshape(1, -1)
    if rows.shape[-1] != generator.w_dim:
        raise ValueError(
            f"{args.latent}: latent has {rows.shape[-1]} dimensions; "
            f"the model needs {generator.w_dim}"
        )
    if rows.shape[0] == 1:
        rows = np.repeat(rows, generator.num_ws, axis=0)  # a W latent used on every row
    if rows.shape != shape:
        raise ValueError(
            f"{args.latent}: latent is {list(w.shape)}; the model needs [1, {shape[0]}, {shape[1]}]"
        )
    directions_path = (
        Path(args.directions) if args.directions else default_directions_path(args.model)
    )
    directions = load_directions(directions_path)
    check_compatible(directions, generator.w_dim, "z" if generator.kind == "progan" else "w")
    warning = directions.fingerprint_mismatch(generator.fingerprint())
    if warning:
        log.warning("%s", warning)
    missing = [name for name in (*amounts, *args.lock) if name not in directions]
    if missing:
        raise ValueError(
            f"{directions_path}: no direction called {', '.join(missing)}; "
            f"it has {', '.join(directions.names)}"
        )
    state = EditState(
        seed=None,
        base_ws=rows,
        noise_mode=args.noise_mode,
        directions=directions,
        attribute_amounts={name: value * directions[name].scale for name, value in amounts.items()},
        locked=frozenset(args.lock),
        attribute_space=args.space,
    )
    # A latent from `project --pti` renders with the model tuned for its photo.
    result = Renderer(tuned_for_latent(generator, latent)).render(state.render_args())
    save_rgb(result.rgb, args.out)
    print(f"wrote {args.out}")
    return 0
