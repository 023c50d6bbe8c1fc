"""Where the engine's CPU goes on a live loopback feed, layer by layer.

    python benchmarks/receive_cost.py [--rate 10000] [--symbols 50] [--seconds 12]

Starts ``tickhawk sim`` once, then for each mode connects a picows client to
the same streams, lets it settle, and measures this process's CPU % over
``--seconds``:

- ``frames``: picows frames only (the floor: event loop, sockets, framing);
- ``decode``: + routing, typed decoding, validation, domain events;
- ``state``: + per-symbol state and bars, no intra-bar peeks, no strategy;
- ``full``: the whole pipeline of the 1-second preset.
"""

from __future__ import annotations

import argparse
import asyncio
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
    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.handler(frame.get_payload_as_bytes(), time.perf_counter_ns(), time.time_ns())


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


async def measure(mode: str, url: str, symbols: list[str], settle: float, seconds: float) -> float:
    handler = handler_for(mode, symbols)
    transport, _ = await ws_connect(lambda: _Listener(handler), url)
    await asyncio.sleep(settle)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    transport.disconnect()
    return 100.0 * cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--settle", type=float, default=12.0, help="warm-up before measuring")
    args = parser.parse_args()
    symbols = symbol_names(args.symbols)
    sim, port, _ = start_sim(symbols, args.rate)
    streams = "/".join(
        f"{s.lower()}@{k}" for s in symbols for k in ("trade", "bookTicker", "depth@100ms")
    )
    url = f"ws://127.0.0.1:{port}/stream?streams={streams}"
    try:
        try:
            import uvloop

            run = uvloop.run
        except ImportError:
            run = asyncio.run
        for mode in ("frames", "decode", "state", "full"):
            pct = run(measure(mode, url, symbols, args.settle, args.seconds))
            print(f"{mode:<8} {pct:6.2f} % of one core")
    finally:
        sim.terminate()
        sim.wait(timeout=30)


if __name__ == "__main__":
    main()
