"""Command-line front end: ``python main.py <command> ...``.

Each command lives in its own module with ``register(subparsers)``, which adds a sub-parser whose
``run(args) -> int`` default does the work by calling the same functions the GUI calls.
Errors end as one line on stderr with exit code 2; Ctrl-C and cancellation exit with 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from editors.cli import download, drag, edit, generate, info, project, train
from models.errors import CheckpointError
from models.jobs import Cancelled

COMMANDS = (generate, info, edit, drag, download, project, train)

EXIT_ERROR = 2
EXIT_CANCELLED = 130


def build_parser() -> argparse.ArgumentParser:
    """The full parser: GUI options at the top level, one sub-command per CLI job."""
    parser = argparse.ArgumentParser(
        prog="main.py",
        description=(
            "Latent Studio: load StyleGAN2/ProGAN checkpoints, project photos and edit them. "
            "Without a command, opens the window."
        ),
    )
    parser.add_argument("--model", metavar="PATH", help="open the window on this checkpoint")
    parser.add_argument(
        "--device", metavar="DEV", help="cpu, cuda or cuda:N (default: CUDA if present)"
    )
    parser.add_argument("--verbose", action="store_true", help="log debugging information")
    subparsers = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed sub-command, turning errors into one stderr line and an exit code."""
    try:
        return int(args.run(args) or 0)
    except (Cancelled, KeyboardInterrupt):
        print("cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except (CheckpointError, ValueError, OSError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # the command-line edge: one line, never a traceback
        logging.getLogger(__name__).debug("command failed", exc_info=True)
        print(f"error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def configure_logging(verbose: bool) -> None:
    """Send log records to stderr: warnings by default, everything with ``--verbose``."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the CLI alone (``python -m editors.cli``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if args.command is None:
        parser.print_help()
        return 0
    return run_command(args)
