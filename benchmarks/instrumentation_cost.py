"""What all the instrumentation costs: replay of a real capture with metrics on and off.

    python benchmarks/instrumentation_cost.py [CAPTURE] [--runs 12] [--passes 6] [--sample-every N]

Each run starts four fresh processes, in an order that rotates run by run:

- ``off``: no instrumentation;
- ``off2``: the same again — the A/A control, how far two identical setups
  differ on this machine (the noise floor of the comparison);
- ``hot``: only the hot path's share: the sampled stage probe and the signal
  sink (and the once-a-second rate reading that sets the sampling gap);
- ``on``: everything a live run has: the probe, the signal sink, the GC
  callbacks, the loop-lag timer, the once-a-second tick (resources, USS, leak
  detectors, the snapshot, the alert rules) and the Prometheus exporter, which
  this script scrapes once a second from the parent process, as Prometheus
  would.

Each process replays the capture ``--passes`` times through a new engine (the
first pass warms up and is not counted), inside an asyncio loop in chunks of
256 messages, as a live engine shares its loop with its timers. The script
prints medians of messages per CPU-second and per wall-second and, for each
mode, the ratio to ``off``: the ratio of the medians and the median of the
ratios within each run. On a shared machine CPU time is the steadier basis:
wall time also counts the time the process waited for a core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from time import perf_counter_ns
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"
CHUNK = 256
#: off: nothing; off2: nothing again (the A/A control: how far two identical setups differ
#: on this machine); hot: only the hot path's share (probe + signal sink); on: everything.
MODES = ("off", "off2", "hot", "on")


def child(capture: str, mode: str, passes: int, sample_every: int | None) -> dict[str, Any]:
    """Replay ``passes`` times with the instrumentation ``mode`` (on/off); return the rates."""
    import msgspec

    from tickhawk.app.live import install_event_loop
    from tickhawk.app.replay import market_of, streams_in
    from tickhawk.capture import load_capture
    from tickhawk.engine import Engine
    from tickhawk.metrics.monitor import Monitor
    from tickhawk.metrics.registry import Metrics
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
    listen = "127.0.0.1:0" if mode == "on" else None
    monitor = (
        Monitor(
            MetricsConfig(listen=listen, sample_every=sample_every),
            config.alerts,
            venue="replay",
            symbols=len(symbols),
        )
        if mode in ("hot", "on")
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

    async def replay_once() -> tuple[int, float, float]:
        source.done_messages = source.snapshot().messages
        source.done_trades = source.engine.trades + source.done_trades
        engine = source.engine = Engine(config)
        feed = engine.feed(streams, probe=monitor.metrics.probe if monitor else None)
        if monitor is not None:
            engine.sinks.append(monitor.metrics.on_signal)
        state = next(iter(engine.states.values()))
        on_message = feed.on_message
        count = 0
        cpu = time.process_time()
        start = perf_counter_ns()
        for begin in range(0, len(messages), CHUNK):
            for ts_recv, payload in messages[begin : begin + CHUNK]:
                if payload.startswith(b'{"lastUpdateId"'):
                    state.on_snapshot(decode_snapshot(payload), ts_recv)
                else:
                    on_message(payload, perf_counter_ns(), ts_recv)
                count += 1
            await asyncio.sleep(0)  # let timers run, as between live frames
        return count, (perf_counter_ns() - start) / 1e9, time.process_time() - cpu

    async def rates_only(metrics: Metrics) -> None:
        """Mode hot: only what the probe's sampling gap needs, once a second."""
        while True:
            await asyncio.sleep(1.0)
            engine = source.engine
            messages = source.done_messages + sum(
                s.trades.count + s.quotes + s.book_updates for s in engine.states.values()
            )
            metrics.tick(time.monotonic(), messages, source.done_trades + engine.trades)

    async def main() -> dict[str, Any]:
        tasks = []
        if monitor is not None and mode == "hot":
            tasks.append(asyncio.create_task(rates_only(monitor.metrics)))
        elif monitor is not None:
            await monitor.start(source)
            assert monitor.address is not None
            print(json.dumps({"port": monitor.address[1]}), flush=True)  # the parent scrapes it
            tasks.append(asyncio.create_task(monitor.run(source)))
            await asyncio.sleep(1.5)  # a first scrape before the passes start
        rates = []
        total_messages, total_s, total_cpu_s = 0, 0.0, 0.0
        for number in range(passes):
            count, seconds, cpu_s = await replay_once()
            if number > 0:  # the first pass warms up
                rates.append(count / seconds)
                total_messages += count
                total_s += seconds
                total_cpu_s += cpu_s
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        result: dict[str, Any] = {
            "mode": mode,
            "msgs_per_s": total_messages / total_s,
            "msgs_per_cpu_s": total_messages / total_cpu_s,
            "pass_rates": [round(r) for r in rates],
            "signals": source.engine.signals,
        }
        if monitor is not None:
            result["sampled"] = monitor.metrics.probe.sampled
            result["mean_gap"] = monitor.metrics.probe.mean_gap
        if monitor is not None and mode == "on":
            began = perf_counter_ns()
            monitor.tick(source)
            result["tick_ms"] = (perf_counter_ns() - began) / 1e6
            result["ticks"] = monitor.ticks
            server = monitor.server
            assert server is not None
            result["scrapes"] = server.scrapes
            result["scrape_ms"] = server.render_s * 1e3 / max(1, server.scrapes)
            await monitor.stop()
        return result

    install_event_loop()
    return asyncio.run(main())


def run_child(capture: str, mode: str, passes: int, sample_every: int | None) -> dict[str, Any]:
    """Run one child; scrape its exporter once a second while it runs (mode on)."""
    cmd = [sys.executable, __file__, capture, "--child", mode, "--passes", str(passes)]
    if sample_every is not None:
        cmd += ["--sample-every", str(sample_every)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        stop = threading.Event()
        scraper = None
        if mode == "on":
            port = json.loads(process.stdout.readline())["port"]
            scraper = threading.Thread(target=_scrape, args=(port, stop), daemon=True)
            scraper.start()
        out = process.stdout.read()
        stop.set()
        if scraper is not None:
            scraper.join()
    if process.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {process.returncode}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _scrape(port: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                reply.read()
        except OSError:
            return  # the child has finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("capture", nargs="?", default=str(DEFAULT))
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--passes", type=int, default=6, help="replays per process (1 warm-up)")
    parser.add_argument(
        "--sample-every",
        type=int,
        help="time 1 in N messages (fixed) instead of following the message rate",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.capture, args.child, args.passes, args.sample_every)))
        return
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for run in range(args.runs):
        shift = run % len(MODES)
        order = MODES[shift:] + MODES[:shift]  # each mode in each position in turn
        for mode in order if run % 2 == 0 else order[::-1]:
            runs[mode].append(run_child(args.capture, mode, args.passes, args.sample_every))
    result: dict[str, Any] = {
        "capture": Path(args.capture).name,
        "runs": args.runs,
        "passes_counted": args.passes - 1,
        "sample_every": args.sample_every or "adaptive (about 1000 samples/s)",
    }
    for basis, key in (("cpu", "msgs_per_cpu_s"), ("wall", "msgs_per_s")):
        off = runs["off"]
        off_rate = statistics.median(r[key] for r in off)
        figures: dict[str, Any] = {"off_median": round(off_rate), "off_all": _all(off, key)}
        for mode in ("off2", "hot", "on"):
            rate = statistics.median(r[key] for r in runs[mode])
            paired = statistics.median(
                b[key] / a[key] for a, b in zip(off, runs[mode], strict=True)
            )
            figures[mode] = {
                "median": round(rate),
                "ratio_to_off": round(rate / off_rate, 4),
                "ratio_paired_median": round(paired, 4),
                "overhead_ns_per_msg": round(1e9 / rate - 1e9 / off_rate, 1),
                "all": _all(runs[mode], key),
            }
        result[basis] = figures
    on = runs["on"]
    result["tick_ms_median"] = round(statistics.median(r["tick_ms"] for r in on), 3)
    result["render_ms_median"] = round(statistics.median(r["scrape_ms"] for r in on), 3)
    result["sampling_gap_at_end"] = [r["mean_gap"] for r in on]
    if args.json:
        print(json.dumps(result))
        return
    print(f"capture {result['capture']}, {args.runs} runs × {args.passes - 1} passes counted")
    for basis, label in (("cpu", "msg per CPU-second"), ("wall", "msg per wall-second")):
        figures = result[basis]
        print(f"{label}:")
        print(f"  off              {figures['off_median']:>10,}   all: {figures['off_all']}")
        for mode, name in (
            ("off2", "off again (A/A)"),
            ("hot", "hot path only"),
            ("on", "everything on"),
        ):
            f = figures[mode]
            print(
                f"  {name:<16} {f['median']:>10,}   ÷ off {f['ratio_to_off']} "
                f"(paired median {f['ratio_paired_median']}; {f['overhead_ns_per_msg']} ns/msg)"
                f"   all: {f['all']}"
            )
    print(
        f"once-a-second tick {result['tick_ms_median']} ms; /metrics render "
        f"{result['render_ms_median']} ms; sampling gap at the end {result['sampling_gap_at_end']}"
    )


def _all(results: list[dict[str, Any]], key: str) -> list[int]:
    return [round(r[key]) for r in results]


if __name__ == "__main__":
    main()
