"""Every benchmark case in one command: medians, same-run ratios, ratios to the baseline.

    python benchmarks/run.py [--reps 7] [--cases decode,pipeline] [--macro]
                             [--instructions] [--update-baseline] [--json]

The same as ``tickhawk bench`` run from the repository root, with the
baseline (``benchmarks/baseline.json``) and the data (``../shared/data``)
found from this file. ``--help`` lists every option.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tickhawk.cli import main as tickhawk

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = ["--baseline", str(ROOT / "benchmarks" / "baseline.json")]
DEFAULTS += ["--data", str(ROOT.parent / "shared" / "data")]


def main(argv: list[str]) -> int:
    """Run ``tickhawk bench`` with this checkout's baseline and data (the user's options last)."""
    return tickhawk(["bench", *DEFAULTS, *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
