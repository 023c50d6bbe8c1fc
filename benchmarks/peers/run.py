"""Every peer comparison, one after another: the figures of docs/performance.md, "Peers".

    pip install cryptofeed talipp websockets     # the peers; none is a tickhawk dependency
    python benchmarks/peers/run.py

1. cryptofeed's Binance handling and tickhawk's over the real USD-M and spot
   captures (``cryptofeed_binance.py``);
2. ten indicators bar by bar: tickhawk, raw TA-Lib streams, talipp
   (``../indicator_cost.py``);
3. the websockets client and picows over loopback from the simulator
   (``ws_clients.py``).

Each script measures tickhawk in the same run as its peer; a peer that is not
installed is reported and skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = [
    [str(HERE / "cryptofeed_binance.py"), "--capture", "usdm"],
    [str(HERE / "cryptofeed_binance.py"), "--capture", "spot"],
    [str(HERE.parent / "indicator_cost.py")],
    [str(HERE / "ws_clients.py")],
]


def main() -> int:
    failed = 0
    for step in STEPS:
        script = Path(step[0]).relative_to(HERE.parent.parent)
        print(f"$ python {script} {' '.join(step[1:])}".rstrip(), flush=True)
        failed += subprocess.run([sys.executable, *step]).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
