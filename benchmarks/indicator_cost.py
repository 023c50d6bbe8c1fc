"""Per-bar cost of ten common indicators: tickhawk against raw TA-Lib streams and talipp.

    python benchmarks/indicator_cost.py [--bars 20000] [--runs 7] [--json]

One symbol, real 1-minute klines (``../shared/data/klines``), all three
warmed up first, then timed bar by bar in the same run, alternating:

- **raw**: the ten ``talib.stream`` handles' ``update()`` called directly, fields
  read from the bar, results dropped: the floor tickhawk builds on;
- **tickhawk**: :class:`~tickhawk.indicators.streams.IndicatorSet` ``update(bar)``,
  values stored by key (what the engine does at every bar close);
- **talipp**: the same ten indicators in talipp 2 (``add`` per bar).

Prints the medians per bar and the same-run ratios (tickhawk ÷ raw: the
overhead; talipp ÷ tickhawk: the speed-up). Goals: overhead ≤ 1.25, speed-up ≥ 10.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tickhawk.bench.data import KLINES as KLINES_FILE
from tickhawk.bench.data import kline_bars
from tickhawk.bench.indicators import SPECS, WARM, raw_runner, talipp_runner, tickhawk_runner
from tickhawk.model import Bar

__all__ = ["SPECS", "WARM", "load_bars", "main"]

DATA = Path(__file__).resolve().parent.parent.parent / "shared/data"


def load_bars(count: int) -> list[Bar]:
    path = DATA / KLINES_FILE
    if not path.exists():
        sys.exit(f"missing {path}: the benchmark reads the shared kline data")
    return kline_bars(path, count + WARM)


def per_bar_ns(run: Callable[[list[Bar]], None], timed: list[Bar]) -> float:
    start = time.perf_counter_ns()
    run(timed)
    return (time.perf_counter_ns() - start) / len(timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bars = load_bars(args.bars)
    warm, timed = bars[:WARM], bars[WARM:]
    runners: dict[str, Any] = {"raw": raw_runner(warm), "tickhawk": tickhawk_runner(warm)}
    talipp = talipp_runner(warm)
    if talipp is not None:
        runners["talipp"] = talipp
    talipp_timed = timed[: min(len(timed), 5_000)]  # talipp is slow; a slice is enough
    results: dict[str, list[float]] = {name: [] for name in runners}
    overhead: list[float] = []
    speedup: list[float] = []
    for _ in range(args.runs):
        for name, run in runners.items():
            results[name].append(per_bar_ns(run, talipp_timed if name == "talipp" else timed))
        overhead.append(results["tickhawk"][-1] / results["raw"][-1])
        if "talipp" in results:
            speedup.append(results["talipp"][-1] / results["tickhawk"][-1])
    report = {
        "indicators": SPECS,
        "bars": len(timed),
        "runs": args.runs,
        **{f"{name}_ns_per_bar": round(statistics.median(v), 1) for name, v in results.items()},
        "overhead_ratio_median": round(statistics.median(overhead), 3),
        "talipp_speedup_median": round(statistics.median(speedup), 1) if speedup else None,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"10 indicators, {len(timed):,} bars, median of {args.runs} runs (same-run ratios)")
    for name in runners:
        print(f"  {name:<9} {statistics.median(results[name]):>9.0f} ns/bar")
    print(f"  tickhawk ÷ raw TA-Lib  {report['overhead_ratio_median']:.3f}   (goal ≤ 1.25)")
    if speedup:
        print(f"  talipp ÷ tickhawk      {report['talipp_speedup_median']:.1f}×  (goal ≥ 10)")
    else:
        print("  talipp not installed: pip install talipp")


if __name__ == "__main__":
    main()
