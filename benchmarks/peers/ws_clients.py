"""The websockets client against picows: the same simulator stream over loopback, one run.

    pip install websockets        # the peer only; not a tickhawk dependency
    python benchmarks/peers/ws_clients.py [--symbols 50] [--seconds 10] [--runs 3]

Starts ``tickhawk sim`` (50 symbols; trade, bookTicker and depth@100ms of
each on one combined-stream connection, as the engine subscribes), then runs
each client in turn, in a fresh process, alternating which goes first. A
client connects, lets ``--warmup`` seconds pass, then counts the text frames
it receives for ``--seconds`` and reads its own CPU time. Each client does
only what it must to hand a message on: picows, tickhawk's choice, calls
``on_ws_frame`` and takes the payload as ``bytes``; websockets 15+ (asyncio
client, compression off, as Binance sends none) yields each message as
``str`` from ``recv()``. Both run on uvloop.

Two loads: a steady one (``--rate 11800``: about 10,000 msg/s delivered, the
seed's load; the figure is CPU per message) and flat out (``--flood-rate
1e6``: the simulator sends as fast as its core allows; the figure is messages
received per second, which the simulator's own ceiling may bound).
Prints medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from importlib import metadata

from tickhawk.bench.loopback import start_sim, symbol_names

Result = dict[str, float]


async def picows_client(url: str, warmup: float, seconds: float) -> Result:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    class Counter(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.frames = 0

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                frame.get_payload_as_bytes()
                self.frames += 1

    transport, listener = await ws_connect(Counter, url, max_frame_size=1 << 24)
    await asyncio.sleep(warmup)
    frames, wall, cpu = listener.frames, time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    result = _result(listener.frames - frames, time.monotonic() - wall, time.process_time() - cpu)
    transport.disconnect()
    return result


async def websockets_client(url: str, warmup: float, seconds: float) -> Result:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None, compression=None, ping_interval=None) as ws:
        start = time.monotonic() + warmup
        count, base = 0, (0, 0.0, 0.0)
        recv = ws.recv
        while True:
            await recv()
            count += 1
            if count & 63 == 0:  # the clock is read every 64 messages, not per message
                now = time.monotonic()
                if not base[1] and now >= start:
                    base = (count, now, time.process_time())
                elif base[1] and now >= base[1] + seconds:
                    return _result(count - base[0], now - base[1], time.process_time() - base[2])


def _result(frames: int, wall: float, cpu: float) -> Result:
    per_msg = 1e6 * cpu / max(frames, 1)
    return {"msgs_per_s": frames / wall, "cpu_us_per_msg": per_msg, "cpu_pct": 100 * cpu / wall}


def child(name: str, url: str, warmup: float, seconds: float) -> None:
    """Run one client in this process and print its result as JSON."""
    import uvloop

    client = picows_client if name == "picows" else websockets_client
    print(json.dumps(uvloop.run(client(url, warmup, seconds))))


def measure(args: argparse.Namespace, rate: float) -> dict[str, list[Result]]:
    """Start the simulator at ``rate``; run both clients ``--runs`` times; return their results."""
    symbols = symbol_names(args.symbols)
    sim, port, _ = start_sim(symbols, rate)
    kinds = ("trade", "bookTicker", "depth@100ms")
    streams = "/".join(f"{s.lower()}@{k}" for s in symbols for k in kinds)
    url = f"ws://127.0.0.1:{port}/stream?streams={streams}"
    results: dict[str, list[Result]] = {"picows": [], "websockets": []}
    try:
        for run in range(args.runs):
            for name in sorted(results, reverse=bool(run % 2)):
                timing = [str(args.warmup), str(args.seconds)]
                cmd = [sys.executable, __file__, "--child", name, url, *timing]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                results[name].append(json.loads(out.strip().splitlines()[-1]))
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    return results


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        name, url, warmup, seconds = sys.argv[2:6]
        child(name, url, float(warmup), float(seconds))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--rate", type=float, default=11_800.0)
    parser.add_argument("--flood-rate", type=float, default=1e6)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    try:
        versions = {name: metadata.version(name) for name in ("picows", "websockets")}
    except metadata.PackageNotFoundError as exc:
        sys.exit(
            f"{exc.name} is not installed: pip install websockets (the peer, not a dependency)"
        )
    print(
        f"picows {versions['picows']}, websockets {versions['websockets']}, uvloop, "
        f"{args.symbols} symbols, {args.seconds:.0f} s per client, medians of {args.runs}"
    )
    for label, rate in (("steady", args.rate), ("flat out", args.flood_rate)):
        results = measure(args, rate)
        print(f"{label} (sim --rate {rate:,.0f}):")
        for name, runs in results.items():
            med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            print(
                f"  {name:<11} {med['msgs_per_s']:>10,.0f} msg/s received  "
                f"{med['cpu_us_per_msg']:6.2f} µs CPU/msg  {med['cpu_pct']:5.1f} % of a core"
            )


if __name__ == "__main__":
    main()
