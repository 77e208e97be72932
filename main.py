"""Latent Studio: ``python main.py`` opens the window; ``python main.py COMMAND ...`` runs the CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line; open the GUI when no command is given."""
    from editors.cli import build_parser, configure_logging, run_command

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if args.command is not None:
        return run_command(args)
    from models.runtime import resolve_device

    try:
        resolve_device(args.device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from app.platform_check import exit_if_no_window_possible

    exit_if_no_window_possible()  # a clear message instead of Qt's abort
    from app import run  # imported here so CLI commands never load Qt

    return run(model=args.model, device=args.device)


if __name__ == "__main__":
    sys.exit(main())
