"""``main.py generate``: one PNG per seed."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from editors.cli.common import add_model_arguments, progress_bar
from editors.rendering import render_seeds
from models import load_generator, parse_seeds, seed_to_z
from models.generator import Generator

MAX_SEEDS = 1_000_000  # images per command (a million PNGs is already far more than a folder wants)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``generate`` command."""
    parser = subparsers.add_parser(
        "generate",
        help="render images from seeds",
        description=(
            "Render one PNG per seed (seed{N:04d}.png), z drawn as NVIDIA's generate.py does."
        ),
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
    seeds = parse_seeds(args.seeds, max_count=MAX_SEEDS)
    if not math.isfinite(args.truncation):
        raise ValueError(f"--truncation must be a finite number, got {args.truncation}")
    if args.batch < 1:
        raise ValueError("--batch must be at least 1")
    generator = load_generator(args.model, args.device)
    check_renders_finite(generator, seeds[0], args.truncation, args.model)
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


def check_renders_finite(generator: Generator, seed: int, truncation: float, model: str) -> None:
    """Render ``seed`` once and refuse a model whose picture holds NaN or infinities.

    Such a model would write black images without a word (its weights overflow).

    Raises:
        ValueError: naming the model file.
    """
    with torch.inference_mode():
        z = seed_to_z([seed], generator.z_dim).to(generator.device)
        ws = generator.broadcast(generator.mapping(z, truncation_psi=truncation))
        image = generator.synthesis(ws, noise_mode="const")
    if not bool(torch.isfinite(image).all()):
        raise ValueError(
            f"{model}: the model renders NaN or infinite values (damaged or overflowing weights)"
        )
