"""The performance regression gate: exit 1 with one line per regression beyond its threshold.

    python benchmarks/gate.py [--reps 5] [--no-instructions]

The same as ``tickhawk bench --gate`` run from the repository root: the
same-run ratios of every case and the callgrind instruction counts of a
fixed replay, compared with ``benchmarks/baseline.json``. What is gated, the
thresholds and how they were chosen: docs/performance.md.
"""

from __future__ import annotations

import sys

from run import main

if __name__ == "__main__":
    sys.exit(main(["--gate", *sys.argv[1:]]))
