"""Where the engine's CPU goes on a live loopback feed, layer by layer.

    python benchmarks/receive_cost.py [--rate 10000] [--symbols 50] [--seconds 12] [--batch-ms 2]

Starts ``tickhawk sim`` once, then for each mode connects a picows client to
the same streams, lets it settle, and measures this process's CPU % over
``--seconds``:

- ``frames``: picows frames only (the floor: event loop, sockets, framing);
- ``decode``: + routing, typed decoding, validation, domain events;
- ``state``: + per-symbol state and bars, no intra-bar peeks, no strategy;
- ``full``: the whole pipeline of the 1-second preset.

Then the frames the ``full`` client received are handled again by a fresh
pipeline in a tight loop (``warm``: the same messages, caches hot, no event
loop), to split the live cost into what the pipeline costs and what running
it a few frames at a time costs. ``--batch-ms`` sets how often the simulator
writes (several values: one line per value and mode): the live cost per
message falls as more messages arrive per wake-up, which prices a wake-up.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_only import NullSink
from loopback import start_sim, symbol_names
from tickhawk.config import StrategiesConfig
from tickhawk.engine import Engine
from tickhawk.presets import fast_config
from tickhawk.rejects import Rejects
from tickhawk.venues.binance.feed import BinanceFeed

Handler = Callable[[bytes, int, int], None]


class _Listener(WSListener):
    def __init__(self, handler: Handler, keep: list[bytes] | None = None) -> None:
        self.handler = handler
        self.keep = keep

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            if self.keep is not None:
                self.keep.append(payload)
            self.handler(payload, time.perf_counter_ns(), time.time_ns())


def handler_for(mode: str, symbols: list[str]) -> Handler:
    config = fast_config(symbols, ["trade", "bookTicker", "depth@100ms"])
    if mode == "frames":
        return lambda payload, t_recv, ts_recv: None
    if mode == "decode":
        sinks = {s: NullSink() for s in symbols}
        return BinanceFeed(sinks, config.venue.stream_names(), Rejects()).on_message  # type: ignore[arg-type]
    if mode == "state":
        engine = msgspec.structs.replace(config.engine, peek=False)
        config = msgspec.structs.replace(config, engine=engine, strategies=StrategiesConfig())
    return Engine(config).feed().on_message


async def measure(
    mode: str,
    url: str,
    symbols: list[str],
    settle: float,
    seconds: float,
    keep: list[bytes] | None = None,
) -> tuple[float, float]:
    """Return (CPU % of one core, CPU µs per message) of ``mode`` on the live feed."""
    handler = handler_for(mode, symbols)
    counted: list[bytes] = []
    transport, _ = await ws_connect(lambda: _Listener(handler, counted), url)
    await asyncio.sleep(settle)
    counted.clear()
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu_s = time.process_time() - cpu0
    cpu = cpu_s / (time.monotonic() - wall0)
    transport.disconnect()
    if keep is not None:
        keep.extend(counted)
    return 100.0 * cpu, 1e6 * cpu_s / max(len(counted), 1)


def warm_cost(frames: list[bytes], symbols: list[str]) -> float:
    """Return CPU µs per message of a fresh full pipeline over ``frames`` in a tight loop.

    The first half warms the states (warm-up bars, rings, books buffering); the second is timed.
    """
    handler = handler_for("full", symbols)
    half = len(frames) // 2
    for payload in frames[:half]:
        handler(payload, time.perf_counter_ns(), time.time_ns())
    cpu0 = time.process_time()
    for payload in frames[half:]:
        handler(payload, time.perf_counter_ns(), time.time_ns())
    return 1e6 * (time.process_time() - cpu0) / max(len(frames) - half, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--settle", type=float, default=12.0, help="warm-up before measuring")
    parser.add_argument(
        "--batch-ms",
        type=float,
        nargs="+",
        default=[2.0],
        help="how often the simulator writes (tickhawk sim --batch-ms); one run per value",
    )
    args = parser.parse_args()
    symbols = symbol_names(args.symbols)
    streams = "/".join(
        f"{s.lower()}@{k}" for s in symbols for k in ("trade", "bookTicker", "depth@100ms")
    )
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    frames: list[bytes] = []
    for batch_ms in args.batch_ms:
        sim, port, _ = start_sim(symbols, args.rate, batch_ms)
        url = f"ws://127.0.0.1:{port}/stream?streams={streams}"
        try:
            for mode in ("frames", "decode", "state", "full"):
                keep = frames if mode == "full" and not frames else None
                pct, us = run(measure(mode, url, symbols, args.settle, args.seconds, keep))
                print(
                    f"{mode:<8} {pct:6.2f} % of one core  {us:5.2f} µs CPU per message"
                    f"  (simulator writes every {batch_ms:g} ms)"
                )
        finally:
            sim.terminate()
            sim.wait(timeout=30)
    warm = statistics.median(warm_cost(frames, symbols) for _ in range(3))
    print(f"{'warm':<8} {'':>6}                 {warm:5.2f} µs CPU per message "
          f"(the full client's {len(frames):,} frames again, tight loop, median of 3)")  # fmt: skip


if __name__ == "__main__":
    main()
