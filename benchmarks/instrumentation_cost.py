"""What all the instrumentation costs: replay of a real capture with metrics on and off.

    python benchmarks/instrumentation_cost.py [CAPTURE] [--runs 7] [--passes 6] [--sample-every N]

Each run starts two fresh processes, one with the instrumentation off and one
with it on (their order alternates run by run), and each replays the capture
``--passes`` times through a new engine (the first pass warms up and is not
counted). Both replay inside an asyncio loop in chunks of 256 messages, as a
live engine shares its loop with its timers. "On" is everything a live run
has: the sampled stage probe on the hot path, the signal sink, the GC
callbacks, the loop-lag timer, the once-a-second tick (resources, USS, leak
detectors, the snapshot, the alert rules) and the Prometheus exporter scraped
once a second by a client in the same process. It prints medians of msg/s and
the ratio on ÷ off (the share of throughput the instrumentation keeps).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from time import perf_counter_ns
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"
CHUNK = 256


def child(capture: str, mode: str, passes: int, sample_every: int | None) -> dict[str, Any]:
    """Replay ``passes`` times with the instrumentation ``mode`` (on/off); return the rates."""
    import msgspec

    from tickhawk.app.live import install_event_loop
    from tickhawk.app.replay import market_of, streams_in
    from tickhawk.capture import load_capture
    from tickhawk.engine import Engine
    from tickhawk.metrics.monitor import Monitor
    from tickhawk.metrics.settings import MetricsConfig
    from tickhawk.metrics.snapshot import Snapshot
    from tickhawk.presets import fast_config
    from tickhawk.rejects import Rejects
    from tickhawk.venues.binance.schema import DepthSnapshot

    messages = load_capture(capture, Rejects())
    streams = streams_in(messages)
    symbols = sorted({s.split("@", 1)[0].upper() for s in streams})
    kinds = sorted({s.split("@", 1)[1] for s in streams})
    config = fast_config(symbols, kinds, market=market_of(streams))
    decode_snapshot = msgspec.json.Decoder(DepthSnapshot, strict=False).decode
    on = mode == "on"
    monitor = (
        Monitor(
            MetricsConfig(listen="127.0.0.1:0", sample_every=sample_every),
            config.alerts,
            venue="replay",
            symbols=len(symbols),
        )
        if on
        else None
    )

    class Source:
        """The replaying engine, described as the live app describes itself."""

        def __init__(self) -> None:
            self.engine = Engine(config)
            self.started = time.monotonic()
            self.done_messages = 0  # of the engines of earlier passes
            self.done_trades = 0

        def snapshot(self, *, symbols: bool = False) -> Snapshot:
            engine = self.engine
            snap = Snapshot(
                ts=time.time(),
                uptime_s=time.monotonic() - self.started,
                messages=self.done_messages
                + sum(s.trades.count + s.quotes + s.book_updates for s in engine.states.values()),
                trades=self.done_trades + engine.trades,
                bars=engine.bars,
                signals=engine.signals,
            )
            if monitor is not None:
                monitor.fill(snap, engine)
            return snap

    source = Source()

    async def replay_once() -> tuple[int, float]:
        source.done_messages = source.snapshot().messages
        source.done_trades = source.engine.trades + source.done_trades
        engine = source.engine = Engine(config)
        feed = engine.feed(streams, probe=monitor.metrics.probe if monitor else None)
        if monitor is not None:
            engine.sinks.append(monitor.metrics.on_signal)
        state = next(iter(engine.states.values()))
        on_message = feed.on_message
        count = 0
        start = perf_counter_ns()
        for begin in range(0, len(messages), CHUNK):
            for ts_recv, payload in messages[begin : begin + CHUNK]:
                if payload.startswith(b'{"lastUpdateId"'):
                    state.on_snapshot(decode_snapshot(payload), ts_recv)
                else:
                    on_message(payload, perf_counter_ns(), ts_recv)
                count += 1
            await asyncio.sleep(0)  # let timers run, as between live frames
        return count, (perf_counter_ns() - start) / 1e9

    async def scrape(port: int, stats: dict[str, float]) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            while True:
                await asyncio.sleep(1.0)
                begin = perf_counter_ns()
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    await response.read()
                stats["scrapes"] += 1
                stats["scrape_ms"] += (perf_counter_ns() - begin) / 1e6

    async def main() -> dict[str, Any]:
        stats = {"scrapes": 0.0, "scrape_ms": 0.0}
        tasks = []
        if monitor is not None:
            await monitor.start(source)
            assert monitor.address is not None
            tasks.append(asyncio.create_task(monitor.run(source)))
            tasks.append(asyncio.create_task(scrape(monitor.address[1], stats)))
        rates = []
        total_messages, total_s = 0, 0.0
        for number in range(passes):
            count, seconds = await replay_once()
            if number > 0:  # the first pass warms up
                rates.append(count / seconds)
                total_messages += count
                total_s += seconds
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        result: dict[str, Any] = {
            "mode": mode,
            "msgs_per_s": total_messages / total_s,
            "pass_rates": [round(r) for r in rates],
            "signals": source.engine.signals,
        }
        if monitor is not None:
            began = perf_counter_ns()
            monitor.tick(source)
            result["tick_ms"] = (perf_counter_ns() - began) / 1e6
            result["ticks"] = monitor.ticks
            result["scrapes"] = stats["scrapes"]
            result["scrape_ms"] = stats["scrape_ms"] / max(1.0, stats["scrapes"])
            result["sampled"] = monitor.metrics.probe.sampled
            result["mean_gap"] = monitor.metrics.probe.mean_gap
            await monitor.stop()
        return result

    install_event_loop()
    return asyncio.run(main())


def run_child(capture: str, mode: str, passes: int, sample_every: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, capture, "--child", mode, "--passes", str(passes)]
    if sample_every is not None:
        cmd += ["--sample-every", str(sample_every)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("capture", nargs="?", default=str(DEFAULT))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--passes", type=int, default=6, help="replays per process (1 warm-up)")
    parser.add_argument(
        "--sample-every",
        type=int,
        help="time 1 in N messages (fixed) instead of following the message rate",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.capture, args.child, args.passes, args.sample_every)))
        return
    off: list[dict[str, Any]] = []
    on: list[dict[str, Any]] = []
    for run in range(args.runs):
        order = ("off", "on") if run % 2 == 0 else ("on", "off")
        for mode in order:
            result = run_child(args.capture, mode, args.passes, args.sample_every)
            (on if mode == "on" else off).append(result)
    off_rate = statistics.median(r["msgs_per_s"] for r in off)
    on_rate = statistics.median(r["msgs_per_s"] for r in on)
    paired = statistics.median(
        b["msgs_per_s"] / a["msgs_per_s"] for a, b in zip(off, on, strict=True)
    )
    result = {
        "capture": Path(args.capture).name,
        "runs": args.runs,
        "passes_counted": args.passes - 1,
        "sample_every": args.sample_every or "adaptive (≈1000 samples/s)",
        "off_msgs_per_s_median": round(off_rate),
        "on_msgs_per_s_median": round(on_rate),
        "ratio_on_off": round(on_rate / off_rate, 4),
        "ratio_paired_median": round(paired, 4),
        "overhead_pct": round(100 * (1 - on_rate / off_rate), 2),
        "overhead_ns_per_msg": round(1e9 / on_rate - 1e9 / off_rate, 1),
        "off_all": [round(r["msgs_per_s"]) for r in off],
        "on_all": [round(r["msgs_per_s"]) for r in on],
        "tick_ms_median": round(statistics.median(r["tick_ms"] for r in on), 3),
        "scrape_ms_median": round(statistics.median(r["scrape_ms"] for r in on), 3),
        "mean_gap_at_end": [r["mean_gap"] for r in on],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"capture               {result['capture']}, {args.runs} runs × {args.passes - 1} passes")
    print(f"instrumentation off   {off_rate:>10,.0f} msg/s median   all: {result['off_all']}")
    print(f"instrumentation on    {on_rate:>10,.0f} msg/s median   all: {result['on_all']}")
    print(
        f"on ÷ off              {result['ratio_on_off']:>10}  (paired median "
        f"{result['ratio_paired_median']}; overhead {result['overhead_pct']} %, "
        f"{result['overhead_ns_per_msg']} ns/msg)"
    )
    print(
        f"once-a-second tick    {result['tick_ms_median']} ms; /metrics scrape "
        f"{result['scrape_ms_median']} ms; sampling gap at the end {result['mean_gap_at_end']}"
    )


if __name__ == "__main__":
    main()
