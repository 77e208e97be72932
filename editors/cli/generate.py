"""``main.py generate``: one PNG per seed."""

from __future__ import annotations

import argparse
from pathlib import Path

from editors.cli.common import add_model_arguments, progress_bar
from editors.rendering import render_seeds
from models import load_generator, parse_seeds


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``generate`` command."""
    parser = subparsers.add_parser(
        "generate",
        help="render images from seeds",
        description="Render one PNG per seed (seed{N:04d}.png), z drawn as NVIDIA's generate.py does.",
    )
    add_model_arguments(parser)
    parser.add_argument("--seeds", default="0-7", help="seeds, e.g. 0-7 or 1,5,9 (default 0-7)")
    parser.add_argument(
        "--truncation", type=float, default=1.0, help="truncation psi (default 1.0)"
    )
    parser.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    parser.add_argument("--batch", type=int, default=4, help="images per forward pass (default 4)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Render and save the images."""
    seeds = parse_seeds(args.seeds)
    if args.batch < 1:
        raise ValueError("--batch must be at least 1")
    generator = load_generator(args.model, args.device)
    out = Path(args.out)
    with progress_bar("generating", total=len(seeds)) as (on_step, should_stop):
        paths = render_seeds(
            generator,
            seeds,
            out,
            truncation_psi=args.truncation,
            noise_mode=args.noise_mode,
            batch_size=args.batch,
            on_step=on_step,
            should_stop=should_stop,
        )
    print(f"wrote {len(paths)} images to {out}")
    return 0
