"""``tickhawk demo``: the simulator and the engine over loopback WebSocket, shown live.

No network, no service, no configuration: the simulator starts in-process on
ephemeral loopback ports, the engine connects to it like it would to Binance,
and the view shows prices, forming bars, indicators, signals, throughput and
receive→signal latency.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from tickhawk.app.live import (
    LiveApp,
    Summary,
    _summary_line,
    add_metrics_argument,
    install_event_loop,
    with_metrics_listen,
)
from tickhawk.app.view import add_view_argument, make_view
from tickhawk.budget import estimate as estimate_memory
from tickhawk.metrics.prometheus import ListenError
from tickhawk.metrics.settings import parse_listen
from tickhawk.presets import fast_config

__all__ = ["add_arguments", "demo", "run"]

DEMO_STREAMS = ["trade", "bookTicker", "depth@100ms"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``demo``'s arguments."""
    parser.add_argument("--symbols", type=int, default=5, help="simulated symbols (default 5)")
    parser.add_argument("--rate", type=float, default=2000.0, help="total msg/s (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--plain", action="store_true", help="status lines, not the live view")
    add_view_argument(parser)
    add_metrics_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON")


async def demo(
    *,
    symbols: int = 5,
    rate: float = 2000.0,
    seed: int = 1,
    duration: float | None = None,
    plain: bool = True,
    quiet: bool = False,
    view: str | None = None,
    metrics: str | None = None,
) -> Summary:
    """Run the simulator and the engine together; return the engine's summary.

    ``metrics`` (``HOST:PORT``) serves the Prometheus and JSON exporter there.
    """
    from tickhawk.sim import SimConfig, Simulator

    async with Simulator(SimConfig(n_symbols=symbols, rate=rate, seed=seed)) as sim:
        if not quiet:
            print(f"simulator: WebSocket {sim.ws_url}, REST {sim.rest_url}", flush=True)
        config = fast_config(
            list(sim.symbols), DEMO_STREAMS, ws_url=sim.ws_url, rest_url=sim.rest_url
        )
        app = LiveApp(with_metrics_listen(config, metrics))
        return await app.run(duration=duration, view=make_view(plain=plain, quiet=quiet, kind=view))


def run(args: argparse.Namespace) -> int:
    """Run ``tickhawk demo``; return the exit status."""
    problems = []
    if not 1 <= args.symbols <= 2000:
        problems.append("--symbols must be between 1 and 2000")
    if not args.rate > 0:
        problems.append("--rate must be a positive number of messages per second")
    if args.duration is not None and not args.duration > 0:
        problems.append("--duration must be a positive number of seconds")
    if args.metrics is not None:
        try:
            parse_listen(args.metrics)
        except ValueError as exc:
            problems.append(f"--metrics {exc}")
    if problems:
        print(f"tickhawk demo: {'; '.join(problems)}", file=sys.stderr)
        return 2
    ceiling = estimate_memory(fast_config([f"S{i}USDT" for i in range(args.symbols)], DEMO_STREAMS))
    if ceiling.over > 0:  # the engine would refuse it: say it in the demo's own terms
        print(
            f"tickhawk demo: {args.symbols:,} symbols of the demo's preset can grow to about "
            f"{ceiling.total_mb:,.0f} MB, over the default memory budget of "
            f"{ceiling.budget_mb:,} MB; use --symbols {ceiling.symbols_that_fit():,} or fewer",
            file=sys.stderr,
        )
        return 2
    install_event_loop()
    try:
        summary = asyncio.run(
            demo(
                symbols=args.symbols,
                rate=args.rate,
                seed=args.seed,
                duration=args.duration,
                plain=args.plain,
                quiet=args.json,
                view=args.view,
                metrics=args.metrics,
            )
        )
    except ListenError as exc:
        print(f"tickhawk demo: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(msgspec.json.encode(summary).decode())
    else:
        print(_summary_line(summary))
    return 0
