"""Measure how many messages per second the simulator sends to one client over loopback.

Run ``python -m tickhawk.sim.bench`` (``--help`` for options). The simulator
runs in this process (one core, uvloop if installed); a picows client in a
child process subscribes to trade, aggTrade, bookTicker and depth@100ms of
every symbol (the first 1,024 streams) and counts frames. ``--rate``
defaults to more than one core can produce, so the figure is the
simulator's ceiling; simulated time then lags.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sys
import time
from multiprocessing.connection import Connection

import msgspec
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from tickhawk.sim.config import SimConfig
from tickhawk.sim.hub import MAX_STREAMS
from tickhawk.sim.simulator import Simulator

__all__ = ["main"]


class _Counter(WSListener):
    def __init__(self) -> None:
        super().__init__()
        self.frames = 0
        self.bytes = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.frames += 1
            self.bytes += frame.payload_size


def _client(url: str, streams: list[str], seconds: float, warmup: float, pipe: Connection) -> None:
    async def run() -> tuple[int, int, float]:
        transport, listener = await ws_connect(_Counter, url, max_frame_size=1 << 24)
        assert isinstance(listener, _Counter)
        request = {"method": "SUBSCRIBE", "params": streams, "id": 1}
        transport.send(WSMsgType.TEXT, msgspec.json.encode(request))
        await asyncio.sleep(warmup)
        frames, size, start = listener.frames, listener.bytes, time.perf_counter()
        await asyncio.sleep(seconds)
        result = (listener.frames - frames, listener.bytes - size, time.perf_counter() - start)
        transport.disconnect()
        return result

    _use_uvloop()
    pipe.send(asyncio.run(run()))


def _use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(args: argparse.Namespace) -> None:
    config = SimConfig(n_symbols=args.symbols, rate=args.rate, seed=7, max_send_buffer=64 << 20)
    async with Simulator(config) as sim:
        streams = [
            f"{symbol.lower()}@{kind}"
            for symbol in sim.symbols
            for kind in ("trade", "aggTrade", "bookTicker", "depth@100ms")
        ][:MAX_STREAMS]
        parent, child = multiprocessing.Pipe()
        process = multiprocessing.Process(
            target=_client,
            args=(f"{sim.ws_url}/stream", streams, args.seconds, args.warmup, child),
            daemon=True,
        )
        process.start()
        waiting = asyncio.ensure_future(asyncio.to_thread(parent.recv))
        await asyncio.sleep(args.warmup + 0.5)
        sent, start = sim.stats.messages_sent, time.perf_counter()
        await asyncio.sleep(args.seconds - 1.0)
        sent, span = sim.stats.messages_sent - sent, time.perf_counter() - start
        frames, size, elapsed = await waiting
        process.join()
        stats = sim.stats
        print(
            f"symbols={args.symbols} rate={args.rate:,.0f}: sim sent {sent / span:,.0f} msg/s, "
            f"client received {frames / elapsed:,.0f} msg/s "
            f"({size / elapsed / 1e6:.1f} MB/s payload) over {elapsed:.1f} s; "
            f"sim lag {stats.lag_ms} ms; slow disconnects {stats.slow_disconnects}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tickhawk.sim.bench", description=__doc__)
    parser.add_argument("--symbols", type=int, default=5, help="synthetic symbols (default 5)")
    parser.add_argument("--rate", type=float, default=1e6, help="target msgs/s (default 1e6)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    args = parser.parse_args(argv)
    _use_uvloop()
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
