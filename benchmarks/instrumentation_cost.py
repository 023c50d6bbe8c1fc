"""What all the instrumentation costs: replay of a real capture with metrics on and off.

    python benchmarks/instrumentation_cost.py [CAPTURE] [--runs 6] [--rounds 6] [--sample-every N]

Each run is a fresh process that replays the capture through a new engine per
pass, in rounds of four passes whose order rotates round by round:

- ``off``: no instrumentation;
- ``off2``: the same again — the A/A control: how far two identical passes
  differ on this machine, the noise floor of the comparison;
- ``hot``: only the hot path's share: the sampled stage probe and the signal
  sink (and the once-a-second rate reading that sets the sampling gap);
- ``on``: everything a live run has: the probe, the signal sink, the GC
  callbacks, the loop-lag timer, the once-a-second tick (resources, USS, leak
  detectors, the snapshot, the alert rules) and the Prometheus exporter,
  scraped over HTTP once a second. Each ``on`` pass starts with a tick and a
  scrape, so short passes get more than their share of the once-a-second work.

Passes run inside an asyncio loop in chunks of 256 messages, as a live engine
shares its loop with its timers. Comparing passes inside one process removes
what differs between processes (hash seeds, memory layout), which on a shared
machine is larger than the effect measured. The script prints, per mode, the
median messages per CPU-second and per wall-second over every pass, and the
median over runs of each run's ratio to ``off``. CPU time is the steadier basis
on a shared machine: wall time also counts the time the process waited for a
core.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from time import perf_counter_ns
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"
CHUNK = 256
MODES = ("off", "off2", "hot", "on")


def child(capture: str, rounds: int, sample_every: int | None) -> dict[str, Any]:
    """Replay ``rounds`` × every mode in one process; return each pass's rates by mode."""
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
    monitor = Monitor(
        MetricsConfig(listen="127.0.0.1:0", sample_every=sample_every),
        config.alerts,
        venue="replay",
        symbols=len(symbols),
    )

    class Source:
        """The replaying engine, described as the live app describes itself."""

        def __init__(self) -> None:
            self.engine = Engine(config)
            self.started = time.monotonic()
            self.done_messages = 0  # of the engines of earlier passes
            self.done_trades = 0

        def totals(self) -> tuple[int, int]:
            states = self.engine.states.values()
            applied = sum(s.trades.count + s.quotes + s.book_updates for s in states)
            return self.done_messages + applied, self.done_trades + self.engine.trades

        def snapshot(self, *, symbols: bool = False) -> Snapshot:
            engine = self.engine
            messages, trades = self.totals()
            snap = Snapshot(
                ts=time.time(),
                uptime_s=time.monotonic() - self.started,
                messages=messages,
                trades=trades,
                bars=engine.bars,
                signals=engine.signals,
            )
            monitor.fill(snap, engine)
            return snap

    source = Source()
    rendering = {"scrapes": 0.0, "seconds": 0.0}

    async def rates_only() -> None:
        """Mode hot: only what the probe's sampling gap needs, once a second."""
        while True:
            await asyncio.sleep(1.0)
            messages, trades = source.totals()
            monitor.metrics.tick(time.monotonic(), messages, trades)

    async def scrape(port: int) -> None:
        """Mode on: GET /metrics once a second, as Prometheus would."""
        while True:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            await reader.read()
            writer.close()
            await asyncio.sleep(1.0)

    async def replay(mode: str) -> tuple[float, float]:
        source.done_messages, source.done_trades = source.totals()
        engine = source.engine = Engine(config)
        instrumented = mode in ("hot", "on")
        feed = engine.feed(streams, probe=monitor.metrics.probe if instrumented else None)
        if instrumented:
            engine.sinks.append(monitor.metrics.on_signal)
        tasks = []
        if mode == "on":
            await monitor.start(source)
            assert monitor.address is not None
            tasks = [monitor.run(source), scrape(monitor.address[1])]
        elif mode == "hot":
            tasks = [rates_only()]
        running = [asyncio.create_task(task) for task in tasks]
        state = next(iter(engine.states.values()))
        on_message = feed.on_message
        gc.collect()  # the previous pass's engine goes now, not inside this pass
        cpu = time.process_time()
        start = perf_counter_ns()
        for begin in range(0, len(messages), CHUNK):
            for ts_recv, payload in messages[begin : begin + CHUNK]:
                if payload.startswith(b'{"lastUpdateId"'):
                    state.on_snapshot(decode_snapshot(payload), ts_recv)
                else:
                    on_message(payload, perf_counter_ns(), ts_recv)
            await asyncio.sleep(0)  # let timers run, as between live frames
        wall_s = (perf_counter_ns() - start) / 1e9
        cpu_s = time.process_time() - cpu
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if mode == "on":
            assert monitor.server is not None
            rendering["scrapes"] += monitor.server.scrapes
            rendering["seconds"] += monitor.server.render_s
            await monitor.stop()
        return len(messages) / cpu_s, len(messages) / wall_s

    async def main() -> dict[str, Any]:
        await replay("off")  # warm-up, not counted
        cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
        wall: dict[str, list[float]] = {mode: [] for mode in MODES}
        for number in range(rounds):
            shift = number % len(MODES)
            for mode in MODES[shift:] + MODES[:shift]:
                per_cpu_s, per_wall_s = await replay(mode)
                cpu[mode].append(per_cpu_s)
                wall[mode].append(per_wall_s)
        began = perf_counter_ns()
        monitor.tick(source)
        tick_ms = (perf_counter_ns() - began) / 1e6
        return {
            "cpu": cpu,
            "wall": wall,
            "tick_ms": tick_ms,
            "render_ms": rendering["seconds"] * 1e3 / max(1.0, rendering["scrapes"]),
            "ticks": monitor.ticks,
            "sampled": monitor.metrics.probe.sampled,
            "mean_gap": monitor.metrics.probe.mean_gap,
        }

    install_event_loop()
    return asyncio.run(main())


class _Counter:
    """The feed's message counting without and with the sampling check."""

    def __init__(self) -> None:
        self.messages = 0
        self._sample_at = 0

    def plain(self, payload: bytes) -> None:
        self.messages += 1
        if payload:
            return

    def checked(self, payload: bytes) -> None:
        number = self.messages + 1
        self.messages = number
        if number == self._sample_at:
            return
        if payload:
            return


def check_cost_ns() -> float:
    """Return what the sampling check adds to every message, probe or not (best of 7)."""
    counter = _Counter()
    plain = min(timeit.repeat(lambda: counter.plain(b"x"), number=200_000, repeat=7))
    checked = min(timeit.repeat(lambda: counter.checked(b"x"), number=200_000, repeat=7))
    return (checked - plain) / 200_000 * 1e9


def run_child(capture: str, rounds: int, sample_every: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, capture, "--child", "--rounds", str(rounds)]
    if sample_every is not None:
        cmd += ["--sample-every", str(sample_every)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _summary(runs: list[dict[str, Any]], basis: str) -> dict[str, Any]:
    median: Callable[[list[float]], float] = statistics.median
    every = {mode: [v for run in runs for v in run[basis][mode]] for mode in MODES}
    off = median(every["off"])
    out: dict[str, Any] = {"off_median": round(off)}
    for mode in MODES[1:]:
        rate = median(every[mode])
        within = [median(run[basis][mode]) / median(run[basis]["off"]) for run in runs]
        out[mode] = {
            "median": round(rate),
            "ratio_to_off": round(rate / off, 4),
            "ratio_within_runs_median": round(median(within), 4),
            "ratio_within_runs_all": [round(r, 3) for r in within],
            "overhead_ns_per_msg": round(1e9 / rate - 1e9 / off, 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("capture", nargs="?", default=str(DEFAULT))
    parser.add_argument("--runs", type=int, default=6, help="processes")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of the four modes each")
    parser.add_argument(
        "--sample-every",
        type=int,
        help="time 1 in N messages (fixed) instead of following the message rate",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.capture, args.rounds, args.sample_every)))
        return
    runs = [run_child(args.capture, args.rounds, args.sample_every) for _ in range(args.runs)]
    result: dict[str, Any] = {
        "capture": Path(args.capture).name,
        "runs": args.runs,
        "passes_per_mode": args.runs * args.rounds,
        "sample_every": args.sample_every or "adaptive (about 1000 samples/s)",
        "cpu": _summary(runs, "cpu"),
        "wall": _summary(runs, "wall"),
        "tick_ms_median": round(statistics.median(r["tick_ms"] for r in runs), 3),
        "render_ms_median": round(statistics.median(r["render_ms"] for r in runs), 3),
        "sampling_gap_at_end": [r["mean_gap"] for r in runs],
        "check_ns_per_msg": round(check_cost_ns(), 1),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"capture {result['capture']}: {args.runs} processes × {args.rounds} rounds "
        f"= {result['passes_per_mode']} passes per mode"
    )
    names = {"off2": "off again (A/A)", "hot": "hot path only", "on": "everything on"}
    for basis, label in (("cpu", "messages per CPU-second"), ("wall", "messages per wall-second")):
        figures = result[basis]
        print(f"{label}:")
        print(f"  {'off':<16} {figures['off_median']:>10,}")
        for mode, name in names.items():
            f = figures[mode]
            print(
                f"  {name:<16} {f['median']:>10,}   ÷ off {f['ratio_to_off']:.4f}   "
                f"within runs: median {f['ratio_within_runs_median']:.4f} "
                f"{f['ratio_within_runs_all']}   {f['overhead_ns_per_msg']:+.0f} ns/msg"
            )
    print(
        f"once-a-second tick {result['tick_ms_median']} ms; /metrics render "
        f"{result['render_ms_median']} ms; "
        f"sampling gap at the end {result['sampling_gap_at_end']}"
    )
    print(
        f"the sampling check every message pays, also with the instrumentation off (so "
        f"not in the ratios above): {result['check_ns_per_msg']} ns"
    )


if __name__ == "__main__":
    main()
