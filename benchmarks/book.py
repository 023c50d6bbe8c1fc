"""Order-book cost: per level change, per depthUpdate, and replay throughput with books.

    python benchmarks/book.py [--runs 5]

1. A synthetic 1,000-level book (per side): random changes drawn like a live
   diff stream (most near the top; updates, inserts and deletes), applied in
   diffs of 20 levels. Reported per level change, with the same changes on a
   bare ``dict`` (the floor of any Python book) in the same run.
2. The real USD-M capture's 6,551 depthUpdates, pre-decoded, through the
   Binance sync (``BookSync.on_diff``): per message and per level.

   (1 and 2 are ``tickhawk bench``'s cases ``book.apply`` and ``book.sync``:
   CPU time, interleaved with the dict floor.)
3. ``tickhawk replay`` of the capture's first 200 s with books on and off
   (``[book] enabled``), alternately in fresh processes: the throughput cost of
   keeping the book. The capture holds one REST snapshot, 1,000 levels a side;
   at 217 s the price has run through its edge, the book can no longer be
   known to be exact there and goes back to syncing, and a replay cannot fetch
   another snapshot. The first 200 s keep the book live throughout.

The L2 book is the compiled one when it was built (``tickhawk.book.l2.IMPLEMENTATION``);
``TICKHAWK_PURE_PYTHON=1 python benchmarks/book.py`` measures the pure-Python one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tickhawk.bench.cases import book_apply_case, book_sync_case
from tickhawk.bench.data import depth_items
from tickhawk.bench.measure import measure
from tickhawk.book.l2 import IMPLEMENTATION
from tickhawk.capture import load_capture
from tickhawk.model import BookUpdate
from tickhawk.presets import fast_config_data

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT.parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"


#: How much of the capture the replay case runs: the book stays live all along.
WINDOW_S = 200


def capture_window(target: Path, seconds: float = WINDOW_S) -> int:
    """Write the capture's first ``seconds`` (by receive time) to ``target``; return its lines."""
    kept = 0
    first = None
    with gzip.open(CAPTURE, "rt") as source, gzip.open(target, "wt") as sink:
        for line in source:
            stamp = int(line.split(" ", 1)[0])
            first = stamp if first is None else first
            if stamp - first > seconds * 1e9:
                break
            sink.write(line)
            kept += 1
    return kept


def replay_rate(config: Path | None, capture: Path = CAPTURE) -> tuple[float, float]:
    """Return a replay's messages per wall-clock second and per CPU second."""
    cmd = [sys.executable, "-m", "tickhawk.cli", "replay", str(capture), "--json"]
    if config is not None:
        cmd += ["--config", str(config)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.splitlines()[-1])
    return float(result["msgs_per_s"]), result["messages"] / result["cpu_s"]


def replay_config(books: bool) -> str:
    """Return the replay's configuration: the 1-second preset, books on or off."""
    data = fast_config_data(["BTCUSDT"], ["depth@0ms", "trade", "bookTicker"], market="usdm")
    data["book"] = {"enabled": books}
    return yaml.safe_dump(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    items = depth_items(load_capture(CAPTURE))
    diffs = [item for item in items if isinstance(item, BookUpdate)]
    levels = sum(len(u.bids) + len(u.asks) for u in diffs)
    # The same cases as ``tickhawk bench``: CPU time, interleaved with the dict floor.
    book, sync = measure([book_apply_case(), book_sync_case(items)], args.runs)
    print(f"L2 book: {IMPLEMENTATION} (TICKHAWK_PURE_PYTHON=1 selects the pure-Python one)")
    assert book.reference_ns_per_op is not None
    print(f"1,000-level book, {book.ops:,} level changes in diffs of 20, median of {args.runs}:")
    print(f"  L2Book.apply          {book.ns_per_op:7.1f} ns per level change")
    print(f"  bare dict (floor)     {book.reference_ns_per_op:7.1f} ns per level change")
    print(f"  book ÷ dict           {book.ratio:7.2f}")

    print(
        f"real capture, {len(diffs):,} depthUpdates, {levels:,} level changes "
        f"({levels / len(diffs):.0f}/msg):"
    )
    print(f"  BookSync.on_diff      {sync.ns_per_op / 1000:7.2f} µs per depthUpdate")
    per_level = sync.ns_per_op * len(diffs) / levels
    print(f"                        {per_level:7.1f} ns per level change")

    with tempfile.TemporaryDirectory() as tmp:
        on, off = Path(tmp) / "on.yaml", Path(tmp) / "off.yaml"
        on.write_text(replay_config(books=True))
        off.write_text(replay_config(books=False))
        window = Path(tmp) / "window.gz"
        lines = capture_window(window)
        rates_on, rates_off = [], []
        for _ in range(args.runs):
            rates_on.append(replay_rate(on, window))
            rates_off.append(replay_rate(off, window))
    print(
        f"replay of the capture's first {WINDOW_S} s ({lines:,} lines), full pipeline, "
        f"median of {args.runs}:"
    )
    for clock, index in (("wall", 0), ("CPU", 1)):
        r_on = statistics.median(rate[index] for rate in rates_on)
        r_off = statistics.median(rate[index] for rate in rates_off)
        print(f"  books on              {r_on:>10,.0f} msg/s ({clock} time)")
        print(f"  books off             {r_off:>10,.0f} msg/s ({clock} time)")
        print(f"  cost of books         {100 * (1 - r_on / r_off):7.1f} % of throughput ({clock})")


if __name__ == "__main__":
    main()
