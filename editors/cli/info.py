"""``main.py info PATH``: what a checkpoint is."""

from __future__ import annotations

import argparse

from models import inspect_checkpoint
from models.errors import CheckpointError

# Latent Studio network files that are not generators, and what they are for.
OTHER_NETWORKS = {
    "latent-encoder": "latent encoder: turns a photo into the starting latent for projection "
    "(used beside its generator; open the generator instead)",
    "attribute-classifier": "attribute classifier: labels rendered samples for fitting "
    "attribute directions (not a generator)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` command."""
    parser = subparsers.add_parser(
        "info",
        help="show a checkpoint's format, kind, resolution and sizes",
        description=(
            "Print what a checkpoint is: format, kind, resolution, z/w sizes, style layers, "
            "parameters."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="checkpoint file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the checkpoint description (or what another Latent Studio network file is)."""
    try:
        lines = inspect_checkpoint(args.path).lines()
    except CheckpointError:
        header = _network_header(args.path)
        if header is None or header.get("kind") not in OTHER_NETWORKS:
            raise
        lines = [
            f"file:        {args.path}",
            "format:      Latent Studio safetensors",
            f"kind:        {OTHER_NETWORKS[header['kind']]}",
            *(f"{key}: {value}" for key, value in header.get("architecture", {}).items()),
        ]
    for line in lines:
        print(line)
    return 0


def _network_header(path: str) -> dict | None:
    """The JSON header of a Latent Studio safetensors file, or None for anything else."""
    import json

    from safetensors import safe_open

    from models.formats.native import METADATA_KEY

    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            header = json.loads((handle.metadata() or {})[METADATA_KEY])
    except Exception:  # any unreadable or foreign file: the original error stands
        return None
    return header if isinstance(header, dict) else None
