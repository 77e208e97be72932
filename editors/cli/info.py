"""``main.py info PATH``: what a checkpoint is."""

from __future__ import annotations

import argparse

from models import inspect_checkpoint


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` command."""
    parser = subparsers.add_parser(
        "info",
        help="show a checkpoint's format, kind, resolution and sizes",
        description="Print what a checkpoint is: format, kind, resolution, z/w sizes, style layers, parameters.",
    )
    parser.add_argument("path", metavar="PATH", help="checkpoint file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the checkpoint description."""
    for line in inspect_checkpoint(args.path).lines():
        print(line)
    return 0
