"""``main.py download NAME``: fetch a public checkpoint from the catalog into the models cache."""

from __future__ import annotations

import argparse
from dataclasses import replace

from editors.cli.common import progress_bar
from models.catalog import find_entry, load_catalog
from models.downloads import DEFAULT_TIMEOUT_S, download_entry
from models.jobs import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``download`` command."""
    parser = subparsers.add_parser(
        "download",
        help="download a public checkpoint (see --list)",
        description=(
            "Download a checkpoint from the built-in catalog into the models cache, resuming a "
            "partial download and checking the published checksum. Ctrl-C stops (and keeps the "
            "partial file for next time)."
        ),
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="catalog name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the catalog and exit")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for the server (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """List the catalog, or download one entry with a progress bar."""
    entries = load_catalog()
    if args.list or not args.name:
        width = max(len(entry.name) for entry in entries)
        for entry in entries:
            state = "downloaded" if entry.is_downloaded() else entry.size_text()
            resolution = f"{entry.resolution}px" if entry.resolution else "-"
            print(
                f"{entry.name:<{width}}  {entry.kind:<9} {resolution:>6}  {state:<28} "
                f"{entry.licence}"
            )
        if not args.list:
            print("\nusage: main.py download NAME")
        return 0
    entry = find_entry(args.name, entries)
    if entry.is_downloaded():
        print(f"{entry.name}: already downloaded: {entry.destination()}")
        return 0
    print(
        f"{entry.title}\n  from {entry.url}\n  licence: {entry.licence}\n"
        f"  size: {entry.size_text()}, "
        f"checksum: {entry.checksum_text()}"
    )
    # The bar counts kilobytes: the job reports bytes, the bar's steps are whole units.
    with progress_bar(f"{entry.name} (kB)") as (on_step, should_stop):

        def on_bytes(progress: Progress) -> None:
            total = progress.total // 1000 if progress.total else None
            on_step(replace(progress, step=progress.step // 1000, total=total))

        path = download_entry(
            entry, timeout=args.timeout, on_step=on_bytes, should_stop=should_stop
        )
    print(f"saved {path}")
    return 0
