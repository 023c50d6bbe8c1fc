"""``tickhawk sim``: run the exchange simulator from the command line.

Wire it into a command line with :func:`add_arguments` and :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
import time
from collections.abc import Callable
from typing import Literal, TextIO

from tickhawk.sim.config import SimConfig
from tickhawk.sim.faultspec import parse_fault, parse_schedule
from tickhawk.sim.simulator import Simulator

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tickhawk sim`` options to ``parser``."""
    market = parser.add_mutually_exclusive_group()
    market.add_argument("--symbols", help="comma-separated symbols, e.g. BTCUSDT,ETHUSDT")
    market.add_argument("--n-symbols", type=int, help="number of synthetic symbols (1-2000)")
    market.add_argument("--replay", metavar="PATH", help="replay a capture (.gz) instead")
    parser.add_argument(
        "--rate", type=float, default=10_000.0, help="target msgs/s, all symbols (default 10000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--ws-port", type=int, default=9443, help="WebSocket port (0: any free)")
    parser.add_argument("--rest-port", type=int, default=8080, help="REST port (0: any free)")
    parser.add_argument("--speed", help="replay speed: a factor such as 10, or max (default 1)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--ping-interval", type=float, default=20.0, help="seconds between server pings"
    )
    parser.add_argument(
        "--no-pong",
        action="store_true",
        help="leave clients' pings unanswered (a client's heartbeat must notice)",
    )
    parser.add_argument(
        "--max-connection-age",
        type=float,
        metavar="S",
        help="close each connection after S seconds (code 1001), as Binance does at 24 h",
    )
    parser.add_argument(
        "--batch-ms",
        type=float,
        default=2.0,
        help="synthetic mode: write what the model made every this many ms, one write per "
        "connection (default 2; a client wakes about once per batch)",
    )
    parser.add_argument(
        "--status-interval", type=float, default=5.0, help="seconds between status lines"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault, e.g. 'at=5s gap symbol=BTCUSDT' or 'every=10s drop mode=reset' "
        "(repeatable; see docs/simulator.md)",
    )
    parser.add_argument(
        "--faults", metavar="FILE", help="a fault schedule: one --fault SPEC per line, # comments"
    )


def _speed(text: str | None) -> float | Literal["max"] | None:
    if text is None:
        return None
    if text == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--speed must be a number such as 10 or 'max', not {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"--speed must be a positive number or 'max', not {text!r}")
    return value


def _config(args: argparse.Namespace) -> SimConfig:
    symbols = None
    if args.symbols is not None:
        symbols = [name.strip().upper() for name in args.symbols.split(",") if name.strip()]
        if not symbols:
            raise ValueError("--symbols needs at least one symbol, e.g. BTCUSDT,ETHUSDT")
    if args.speed is not None and args.replay is None:
        raise ValueError("--speed applies to --replay only")
    if args.duration is not None and not args.duration > 0:
        raise ValueError("--duration must be a positive number of seconds")
    if not (math.isfinite(args.batch_ms) and 0.1 <= args.batch_ms <= 1_000):
        raise ValueError(f"--batch-ms must be from 0.1 to 1000 ms, not {args.batch_ms:g}")
    if not args.status_interval > 0:
        raise ValueError("--status-interval must be a positive number of seconds")
    age = args.max_connection_age
    if age is not None and not (math.isfinite(age) and age > 0):
        raise ValueError(f"--max-connection-age must be a positive number of seconds, not {age:g}")
    faults = _fault_lines(args)
    try:
        return SimConfig(
            symbols=symbols,
            n_symbols=args.n_symbols,
            rate=args.rate,
            seed=args.seed,
            host=args.host,
            ws_port=args.ws_port,
            rest_port=args.rest_port,
            replay=args.replay,
            speed=_speed(args.speed),
            ping_interval_s=args.ping_interval,
            faults=faults,
            answer_pings=not args.no_pong,
            max_connection_age_s=age,
            batch_ms=args.batch_ms,
        )
    except (TypeError, ValueError) as error:
        raise ValueError(str(error)) from None


def _fault_lines(args: argparse.Namespace) -> list[str]:
    """Return the fault lines of ``--fault`` and ``--faults FILE``, each checked."""
    lines: list[str] = []
    for spec in args.fault:
        try:
            parse_fault(spec)
        except ValueError as error:
            raise ValueError(f"--fault: {error}") from None
        lines.append(spec)
    if args.faults is not None:
        try:
            with open(args.faults, encoding="utf-8") as file:
                text = file.read().splitlines()
        except OSError as error:
            reason = error.strerror or str(error)
            raise ValueError(f"cannot read --faults {args.faults}: {reason}") from None
        try:
            parse_schedule(text)
        except ValueError as error:
            raise ValueError(f"--faults {args.faults}: {error}") from None
        lines += [line.split("#", 1)[0].strip() for line in text]
    return [line for line in lines if line.strip()]


def run(args: argparse.Namespace) -> int:
    """Run ``tickhawk sim`` with parsed ``args``; return the exit status.

    Serve until ``--duration`` passes, Ctrl-C or SIGTERM (exit 0). Bad
    arguments, an unreadable capture or a busy port end in one line on
    stderr and exit status 2.
    """
    try:
        config = _config(args)
    except ValueError as error:
        print(f"tickhawk sim: {error}", file=sys.stderr)
        return 2
    if config.replay is not None:
        try:
            with open(config.replay, "rb"):
                pass
        except OSError as error:
            reason = error.strerror or str(error)
            print(f"tickhawk sim: cannot read --replay {config.replay}: {reason}", file=sys.stderr)
            return 2
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(_serve(config, args.duration, args.status_interval, sys.stdout))
    except KeyboardInterrupt:
        return 0
    except OSError as error:
        print(
            f"tickhawk sim: cannot listen on {config.host} ({error.strerror}): "
            "choose other --ws-port/--rest-port or --host",
            file=sys.stderr,
        )
        return 2
    except ValueError as error:
        print(f"tickhawk sim: {error}", file=sys.stderr)
        return 2


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(config: SimConfig, duration: float | None, every: float, out: TextIO) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # not on Windows
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with Simulator(config) as sim:
        streams = sim.replay_streams or [f"{sim.symbols[0].lower()}@trade"]
        example = "/".join(streams[:3])
        print(f"sim: WebSocket {sim.ws_url}  e.g. {sim.ws_url}/stream?streams={example}", file=out)
        print(f"sim: REST      {sim.rest_url}  e.g. {sim.rest_url}/api/v3/exchangeInfo", file=out)
        if config.replay is not None:
            print(f"sim: replay of {config.replay} starts when a client subscribes", file=out)
        if config.faults:
            print(
                f"sim: {len(config.faults)} faults scheduled: {'; '.join(config.faults)}", file=out
            )
        if not config.answer_pings:
            print("sim: clients' pings go unanswered (--no-pong)", file=out)
        if config.max_connection_age_s is not None:
            age = config.max_connection_age_s
            print(f"sim: each connection is closed after {age:g} s (code 1001)", file=out)
        out.flush()
        live = out.isatty()
        start = time.monotonic()
        last_sent, last_time = 0, start
        announced = False
        while not stop.is_set() and (duration is None or time.monotonic() - start < duration):
            wait = every if not live else min(every, 0.5)
            if duration is not None:
                wait = min(wait, max(0.0, duration - (time.monotonic() - start)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            stats = sim.stats
            now = time.monotonic()
            rate = (stats.messages_sent - last_sent) / max(1e-9, now - last_time)
            last_sent, last_time = stats.messages_sent, now
            line = (
                f"sim: {rate:,.0f} msg/s, {stats.messages_sent:,} sent, "
                f"{stats.connections} connections, {stats.subscriptions} subscriptions, "
                f"lag {stats.lag_ms} ms"
            )
            if stats.faults:
                line += ", faults " + " ".join(f"{k}={v}" for k, v in sorted(stats.faults.items()))
            if live:
                out.write("\r" + line + "   ")
            else:
                out.write(line + "\n")
            out.flush()
            if sim.replay_done and not announced:
                announced = True
                out.write(("\n" if live else "") + "sim: replay finished; serving idle\n")
        if live:
            out.write("\n")
    return 0
