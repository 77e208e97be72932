"""``main.py info PATH``: what a checkpoint, latent or session file is."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from models import inspect_checkpoint
from models.errors import CheckpointError
from models.formats.limits import LimitError, require_regular_file

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
            "parameters. Latent (.npz, rosinality .pt) and session (.lsession) files are "
            "described too."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="checkpoint, latent or session file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the checkpoint description (or what another Latent Studio file is)."""
    kind = _archive_kind(Path(args.path))
    if kind == "session":
        lines = _session_lines(Path(args.path))
    elif kind == "latent":
        lines = _latent_lines(Path(args.path))
    else:
        lines = _checkpoint_lines(args)
    for line in lines:
        print(line)
    return 0


def _checkpoint_lines(args: argparse.Namespace) -> list[str]:
    try:
        return inspect_checkpoint(args.path).lines()
    except CheckpointError as exc:
        if exc.reason.startswith("not a supported checkpoint") and zipfile.is_zipfile(args.path):
            return _projector_output_lines(Path(args.path), exc)
        header = _network_header(args.path)
        if header is None or header.get("kind") not in OTHER_NETWORKS:
            raise
        architecture = header.get("architecture")
        return [
            f"file:        {args.path}",
            "format:      Latent Studio safetensors",
            f"kind:        {OTHER_NETWORKS[header['kind']]}",
            *(
                f"{key}: {value}"
                for key, value in (architecture if isinstance(architecture, dict) else {}).items()
            ),
        ]


def _archive_kind(path: Path) -> str | None:
    """'session' or 'latent' for npz archives holding one, else None (checkpoints and the rest)."""
    try:
        require_regular_file(path)
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, LimitError, zipfile.BadZipFile, ValueError):
        return None  # the checkpoint loader names the problem
    if "session.npy" in names:
        return "session"
    return "latent" if "w.npy" in names else None


def _projector_output_lines(path: Path, original: CheckpointError) -> list[str]:
    # A torch zip that is no model may be rosinality's projector output (a latent).
    from editors.errors import LatentFileError

    try:
        return _latent_lines(path)
    except LatentFileError as exc:
        if "projector output" in exc.reason:
            raise original from None  # neither a model nor a latent: the model error stands
        raise


def _latent_lines(path: Path) -> list[str]:
    from editors.latent_io import load_latent

    latent = load_latent(path)
    rows, w_dim = latent.ws.shape
    return [
        f"file:        {path}",
        f"format:      {latent.format_name}",
        f"latent:      {rows} x {w_dim}",
        f"noise maps:  {len(latent.noise or ())}",
        *(f"{key}: {value}" for key, value in latent.metadata.items() if key != "config"),
    ]


def _session_lines(path: Path) -> list[str]:
    from editors.session_io import load_session

    session = load_session(path)
    state = session.state
    latent = "seed " + str(state.seed) if state.base_ws is None else f"{list(state.base_ws.shape)}"
    return [
        f"file:        {path}",
        "format:      Latent Studio session",
        f"model:       {session.model.name or '?'} ({session.model.path or 'no path'})",
        f"latent:      {latent}",
        f"directions:  {len(state.directions) if state.directions is not None else 0}",
        f"noise mode:  {state.noise_mode}",
    ]


def _network_header(path: str) -> dict | None:
    """The JSON header of a Latent Studio safetensors file, or None for anything else."""
    import json

    from safetensors import safe_open

    from models.formats.native import METADATA_KEY

    try:
        require_regular_file(Path(path))  # a FIFO would block safe_open forever
        with safe_open(path, framework="pt", device="cpu") as handle:
            header = json.loads((handle.metadata() or {})[METADATA_KEY])
    except Exception:  # any unreadable or foreign file: the original error stands
        return None
    return header if isinstance(header, dict) else None
