"""Latent Studio: ``python main.py`` opens the window; ``main.py COMMAND ...`` runs the CLI."""

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

    code = run(model=args.model, device=args.device)
    _exit_if_workers_linger(code)
    return code


def _exit_if_workers_linger(code: int) -> None:
    """End the process now when a background job ignored the window's stop request.

    The window asked every job to stop and waited a few seconds; Qt would otherwise wait for a
    stubborn one (a long ``torch.load``) before the process ends. Saved files are written
    atomically, so ending here cannot leave a half-written one.
    """
    import os

    from PySide6.QtCore import QThreadPool

    if QThreadPool.globalInstance().activeThreadCount() > 0:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
