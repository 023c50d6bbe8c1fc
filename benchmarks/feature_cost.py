"""Per-event cost of the order-flow and book features, on a real Binance capture.

    python benchmarks/feature_cost.py [CAPTURE] [--runs 7] [--json]

Decodes the capture's trades and best bid/ask quotes once, then times, in the
same run and alternating:

- ``flow``: :meth:`TradeFlow.on_trade` alone, per trade;
- ``state``: :meth:`SymbolState.on_trade` with the default features against
  the same state without them (bars, six indicator peeks, no strategy): the
  difference is what the features add to the hot path per trade;
- ``quote``: the best bid/ask features per quote.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tickhawk.capture import load_capture
from tickhawk.config import parse_config
from tickhawk.engine import Engine
from tickhawk.indicators.features import Features, FeaturesConfig
from tickhawk.model import Quote, Trade
from tickhawk.presets import fast_config_data

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"


def events(capture: str) -> tuple[list[Trade], list[Quote]]:
    """Return the capture's trades and quotes, decoded by the engine's own feed."""
    logging.disable(logging.WARNING)  # depth and snapshot lines are not subscribed here
    engine = Engine(parse_config({"venue": {"symbols": ["BTCUSDT"]}, "strategies": {}}))
    trades: list[Trade] = []
    quotes: list[Quote] = []
    state = engine.states["BTCUSDT"]
    state.trade_listeners.append(trades.append)
    original = state.on_quote

    def on_quote(quote: Quote, t_recv: int, t_decoded: int) -> None:
        quotes.append(quote)
        original(quote, t_recv, t_decoded)

    state.on_quote = on_quote  # type: ignore[method-assign]
    feed = engine.feed(["btcusdt@trade", "btcusdt@bookTicker"])
    for ts_recv, payload in load_capture(capture):
        feed.on_message(payload, 0, ts_recv)
    return trades, quotes


def state_runner(features: bool) -> Callable[[list[Trade]], None]:
    data = fast_config_data(["BTCUSDT"], ["trade"])
    data["strategies"] = {}
    data["features"] = {"enabled": features}
    config = parse_config(data)

    def run(trades: list[Trade]) -> None:
        on_trade = Engine(config).states["BTCUSDT"].on_trade
        for trade in trades:
            on_trade(trade, 0, 0)

    return run


def flow_runner(trades: list[Trade]) -> None:
    on_trade = Features(FeaturesConfig()).flow.on_trade
    for trade in trades:
        on_trade(trade.price, trade.qty, trade.side, trade.ts_event)


def quote_runner(quotes: list[Quote]) -> None:
    on_quote = Features(FeaturesConfig()).micro.on_quote
    for quote in quotes:
        on_quote(quote)


def per_event_ns(run: Callable[[Any], None], items: list[Any]) -> float:
    start = time.perf_counter_ns()
    run(items)
    return (time.perf_counter_ns() - start) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("capture", nargs="?", default=str(DEFAULT))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    trades, quotes = events(args.capture)
    with_features, without = state_runner(True), state_runner(False)
    samples: dict[str, list[float]] = {"flow": [], "with": [], "without": [], "quote": []}
    for _ in range(args.runs):
        samples["flow"].append(per_event_ns(flow_runner, trades))
        samples["with"].append(per_event_ns(with_features, trades))
        samples["without"].append(per_event_ns(without, trades))
        samples["quote"].append(per_event_ns(quote_runner, quotes))
    added = [w - wo for w, wo in zip(samples["with"], samples["without"], strict=True)]
    report = {
        "trades": len(trades),
        "quotes": len(quotes),
        "runs": args.runs,
        "flow_ns_per_trade": round(statistics.median(samples["flow"]), 1),
        "state_with_features_ns_per_trade": round(statistics.median(samples["with"]), 1),
        "state_without_features_ns_per_trade": round(statistics.median(samples["without"]), 1),
        "features_added_ns_per_trade": round(statistics.median(added), 1),
        "quote_features_ns_per_quote": round(statistics.median(samples["quote"]), 1),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{len(trades):,} trades, {len(quotes):,} quotes; medians of {args.runs} runs")
    print(f"  TradeFlow.on_trade alone          {report['flow_ns_per_trade']:>8} ns/trade")
    print(f"  SymbolState.on_trade, features    {report['state_with_features_ns_per_trade']:>8}")
    print(f"  SymbolState.on_trade, no features {report['state_without_features_ns_per_trade']:>8}")
    print(f"  added by the features (same run)  {report['features_added_ns_per_trade']:>8}")
    print(
        f"  quote features                    {report['quote_features_ns_per_quote']:>8} ns/quote"
    )


if __name__ == "__main__":
    main()
