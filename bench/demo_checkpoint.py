"""The demo model's compact resume checkpoint (``resources/training/``), written and unpacked.

    python bench/demo_checkpoint.py compact runs/demo-v2 resources/training/demo-faces-64.resume.pt
    python bench/demo_checkpoint.py unpack resources/training/demo-faces-64.resume.pt runs/demo-v3
    python main.py train stylegan2 --resume runs/demo-v3     # data: python bench/demo_data.py

The file replaces the previous one (never one per run), so git keeps a single compact state.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["compact", "unpack"])
    parser.add_argument("source", type=Path, help="run folder (compact) or compact file (unpack)")
    parser.add_argument("target", type=Path, help="compact file (compact) or new run folder")
    args = parser.parse_args()

    from models.training.compact import unpack_compact, write_compact

    if args.what == "compact":
        out = write_compact(args.source, args.target)
        print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB")
    else:
        path = unpack_compact(args.source, args.target)
        print(
            f"{path} written; continue with: python main.py train stylegan2 --resume {args.target}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
