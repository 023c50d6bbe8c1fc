"""The engine over loopback WebSocket from the simulator at a steady rate.

    python benchmarks/loopback.py [--rate 11800] [--seconds 60] [--symbols 50] [--runs 1]

Starts ``tickhawk sim`` and ``tickhawk run`` as separate processes (the engine
on the configured streams of every simulated symbol, 1-second preset with the
momentum strategy), samples the engine process's CPU time and RSS every second
with psutil, and prints: delivered msg/s, engine CPU % of one core, peak and
final RSS, receive→signal latency p50/p99 (from the engine's own stage
stamps), and the number of signals the percentiles come from. The first
``--warmup`` seconds are left out of the CPU figure (imports, connection).
"""

from __future__ import annotations

import argparse
import json
import statistics

# The runner lives in the package so ``tickhawk bench --macro`` has it too; the
# names stay importable from here for the other scripts.
from tickhawk.bench.loopback import (
    SYMBOLS,
    config_text,
    free_port,
    run_once,
    start_sim,
    symbol_names,
)

__all__ = ["SYMBOLS", "config_text", "free_port", "main", "run_once", "start_sim", "symbol_names"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rate",
        type=float,
        default=11_800.0,
        help="the simulator's model rate (trade + aggTrade + bookTicker of every symbol); "
        "11,800 delivers about 10,000 msg/s of trade + bookTicker + depth@100ms",
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override an engine setting (VALUE is YAML), e.g. resources.gc_thresholds=[0]",
    )
    parser.add_argument(
        "--sim-batch-ms",
        type=float,
        default=2.0,
        help="how often the simulator writes (tickhawk sim --batch-ms; default 2)",
    )
    args = parser.parse_args()
    results = [
        run_once(args.rate, args.seconds, args.symbols, args.warmup, args.engine, args.sim_batch_ms)
        for _ in range(args.runs)
    ]
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    if args.json:
        print(json.dumps({"runs": results, "median": median}))
        return
    print(
        f"loopback: sim --rate {args.rate:,.0f}, {args.symbols} symbols, {args.seconds:.0f} s, "
        f"{args.runs} run(s), medians:"
    )
    print(f"  delivered           {median['delivered_msgs_per_s']:>10,.0f} msg/s")
    print(f"  engine CPU          {median['engine_cpu_pct']:>10.2f} % of one core")
    print(f"  RSS peak / final    {median['rss_peak_mb']:>10.1f} / {median['rss_final_mb']:.1f} MB")
    print(f"  receive→signal p50  {median['latency_p50_us']:>10.1f} µs")
    print(
        f"  receive→signal p99  {median['latency_p99_us']:>10.1f} µs "
        f"(over {median['signals']:,.0f} signals)"
    )
    print(f"  rejected            {median['rejected']:>10,.0f}")


if __name__ == "__main__":
    main()
