"""Memory stays flat: 1,000,000 bar updates of ten indicators over 100 symbols.

    python benchmarks/indicator_memory.py [--symbols 100] [--updates 1000000] [--json]

Builds one :class:`~tickhawk.indicators.streams.IndicatorSet` of the ten
indicators of ``indicator_cost.py`` per symbol, commits a first tenth of the
updates (every stream open, allocator warm), then measures the process RSS
and Python's traced-free heap before and after the rest, feeding the symbols
round-robin from a preloaded set of real 1-minute bars. Goal: growth < 1 MB.
"""

from __future__ import annotations

import argparse
import gc
import json
import time

import psutil

from indicator_cost import SPECS, load_bars
from tickhawk.indicators.streams import IndicatorSet, parse_spec

MB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bars = load_bars(10_000)
    sets = [IndicatorSet([parse_spec(spec) for spec in SPECS]) for _ in range(args.symbols)]
    process = psutil.Process()
    per_symbol = args.updates // args.symbols
    warm = per_symbol // 10

    def feed(start: int, stop: int) -> None:
        for i in range(start, stop):
            bar = bars[i % len(bars)]
            for indicators in sets:
                indicators.update(bar)

    feed(0, warm)
    gc.collect()
    rss_before = process.memory_info().rss
    objects_before = len(gc.get_objects())
    started = time.perf_counter()
    feed(warm, per_symbol)
    seconds = time.perf_counter() - started
    gc.collect()
    rss_after = process.memory_info().rss
    objects_after = len(gc.get_objects())
    measured = (per_symbol - warm) * args.symbols
    report = {
        "symbols": args.symbols,
        "indicators_per_symbol": len(SPECS),
        "updates_total": per_symbol * args.symbols,
        "updates_measured": measured,
        "rss_before_mb": round(rss_before / MB, 2),
        "rss_after_mb": round(rss_after / MB, 2),
        "rss_growth_mb": round((rss_after - rss_before) / MB, 3),
        "gc_objects_growth": objects_after - objects_before,
        "ns_per_set_update": round(seconds / measured * 1e9, 1),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"{report['updates_total']:,} updates of {len(SPECS)} indicators on {args.symbols} "
        f"symbols ({measured:,} measured after warm-up)"
    )
    print(
        f"  RSS {report['rss_before_mb']} MB -> {report['rss_after_mb']} MB: "
        f"growth {report['rss_growth_mb']} MB (goal < 1 MB)"
    )
    print(f"  tracked objects growth {report['gc_objects_growth']}")
    print(f"  {report['ns_per_set_update']} ns per set update")


if __name__ == "__main__":
    main()
