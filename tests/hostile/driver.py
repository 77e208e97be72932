"""Run the CLI in-process on each hostile case and print one JSON line per case.

Used by ``test_hostile_cli.py`` in a subprocess with an address-space limit: importing torch
once and then running every case keeps the suite fast. Prints ``ready`` after the imports.
Usage: ``python tests/hostile/driver.py CASES.json``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


class _CurrentStderr:
    """Log records go to whatever ``sys.stderr`` is while a case runs."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def peak_rss_mb() -> float:
    """This process's peak resident memory since its exec.

    Linux's ``ru_maxrss`` keeps the high-water mark of the forked parent across exec (a pytest
    process of a gigabyte makes every driver look that big), so read the new memory map's own
    ``VmHWM`` where /proc has it.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=_CurrentStderr())  # type: ignore[arg-type]
    from editors.cli import main as cli_main

    cases = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    print("ready", flush=True)
    for case in cases:
        out, err = io.StringIO(), io.StringIO()
        start = time.monotonic()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli_main(case["argv"])
            except SystemExit as exc:  # argparse
                rc = exc.code if isinstance(exc.code, int) else 2
            except BaseException as exc:  # an escaped exception is the finding
                import traceback

                traceback.print_exc()
                rc = f"escaped {type(exc).__name__}"
        seconds = time.monotonic() - start
        rss_mb = peak_rss_mb()
        record = {"name": case["name"], "rc": rc, "stderr": err.getvalue(),
                  "seconds": seconds, "max_rss_mb": rss_mb}  # fmt: skip
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
