"""cryptofeed's Binance handling against tickhawk's, over the same real capture, in one run.

    pip install cryptofeed        # the peer only; not a tickhawk dependency
    python benchmarks/peers/cryptofeed_binance.py [--capture usdm|spot] [--reps 5]

Both consume the same messages: the capture with each ``trade`` message
rewritten as the ``aggTrade`` of that one trade (cryptofeed's Binance feeds
subscribe ``aggTrade`` and skip ``trade``; prices keep their text).

- cryptofeed 2.4: the coroutine its connection handler awaits per frame,
  ``BinanceFutures.message_handler`` (``Binance`` for spot), with ``str``
  frames as its websockets connection delivers them and no-op async callbacks
  for trades, tickers and book updates. It parses the JSON (yapic, ``Decimal``
  prices), builds its ``Trade``/``Ticker`` objects and keeps the L2 book; its
  REST snapshot request is answered with the capture's own snapshot line.
- tickhawk, interleaved part by part with it (``tickhawk.bench.measure``): the
  bare pipeline (decode, validate, per-symbol state, bars, the synced L2
  book; no indicators, features or strategy), the nearest match of
  cryptofeed's work; the full 1-second preset; and decode only.

Prints messages per CPU second of each, medians, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replay_breakdown import changed
from tickhawk.app.replay import streams_in
from tickhawk.bench.data import SNAPSHOT_PREFIX, SPOT, USDM, BenchData, as_agg_trades
from tickhawk.bench.measure import Case, measure, parts_over
from tickhawk.bench.pipeline import decode_only, pipeline, preset_for

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
Frames = Sequence[tuple[float, str]]


def cryptofeed_feed(futures: bool, snapshot: str, counts: dict[str, int]) -> Any:
    """Return a cryptofeed Binance feed for BTCUSDT that needs no network."""
    from cryptofeed.defines import L2_BOOK, TICKER, TRADES
    from cryptofeed.exchanges import Binance, BinanceFutures
    from cryptofeed.symbols import Symbols
    from cryptofeed.types import OrderBook
    from yapic import json

    base: Any = BinanceFutures if futures else Binance
    market = {"contractType": "PERPETUAL"} if futures else {}
    symbol = {"symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT", **market}
    info = {"symbols": [{**symbol, "filters": [{"tickSize": "0.01"}]}]}
    if not Symbols.populated(base.id):  # instead of its blocking exchangeInfo request
        Symbols.set(base.id, *base._parse_symbol_data(info))

    class Captured(base):  # type: ignore[misc,valid-type]
        """Answer the book's snapshot request with the capture's snapshot line, not HTTP."""

        async def _snapshot(self, pair: str) -> None:
            resp = json.loads(snapshot, parse_float=Decimal)
            std = self.exchange_symbol_to_std_symbol(pair)
            self.last_update_id[std] = resp["lastUpdateId"]
            bids = {Decimal(p): Decimal(q) for p, q in resp["bids"]}
            asks = {Decimal(p): Decimal(q) for p, q in resp["asks"]}
            book = OrderBook(self.id, std, max_depth=self.max_depth, bids=bids, asks=asks)
            self._l2_book[std] = book
            sequence = resp["lastUpdateId"]
            await self.book_callback(L2_BOOK, book, time.time(), sequence_number=sequence)

    def counter(kind: str) -> Callable[[Any, float], Any]:
        async def count(obj: Any, receipt: float) -> None:
            counts[kind] += 1

        return count

    std = "BTC-USDT-PERP" if futures else "BTC-USDT"
    callbacks = {TRADES: counter("trades"), TICKER: counter("tickers"), L2_BOOK: counter("book")}
    return Captured(symbols=[std], channels=[TRADES, TICKER, L2_BOOK], callbacks=callbacks)


def cryptofeed_part(
    frames: Frames, futures: bool, snapshot: str
) -> tuple[Callable[[int, int], int], dict[str, int]]:
    """Return the cryptofeed side as a measured part (a fresh feed at part 0) and its counts."""
    loop = asyncio.new_event_loop()
    counts = {"trades": 0, "tickers": 0, "book": 0}

    def start() -> Callable[[Frames], None]:
        handler = cryptofeed_feed(futures, snapshot, counts).message_handler

        async def drive(chunk: Frames) -> None:
            for receipt, text in chunk:
                await handler(text, None, receipt)

        return lambda chunk: loop.run_until_complete(drive(chunk))

    return parts_over(frames, start), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--capture", choices=["usdm", "spot"], default="usdm")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    try:
        version = metadata.version("cryptofeed")
    except metadata.PackageNotFoundError:
        sys.exit("cryptofeed is not installed: pip install cryptofeed (the peer, not a dependency)")
    logging.getLogger("feedhandler").setLevel(logging.ERROR)
    data = BenchData(args.data)
    raw = data.usdm if args.capture == "usdm" else data.spot
    messages = as_agg_trades(raw)
    snapshot = next(p for _, p in messages if p.startswith(SNAPSHOT_PREFIX)).decode()
    frames = [(ts / 1e9, p.decode()) for ts, p in messages if not p.startswith(SNAPSHOT_PREFIX)]
    streams = streams_in(messages)
    preset = preset_for(streams)
    bare = changed(preset, indicators={}, strategies={}, features={"enabled": False})
    peer, counts = cryptofeed_part(frames, args.capture == "usdm", snapshot)
    bare_part = parts_over(messages, lambda: pipeline(bare, streams))
    full_part = parts_over(messages, lambda: pipeline(preset, streams))
    decode_part = parts_over(messages, lambda: decode_only(streams))
    n = len(messages)
    cases = [
        Case("cryptofeed", "msg", n, peer, bare_part, "tickhawk bare pipeline"),
        Case("tickhawk full", "msg", n, full_part, decode_part, "tickhawk decode only"),
    ]
    crypto, full = measure(cases, args.reps)
    assert crypto.reference_ns_per_op and full.reference_ns_per_op
    name = USDM if args.capture == "usdm" else SPOT
    print(f"{Path(name).name}, trades as aggTrade: {n:,} messages; medians of {args.reps} reps")
    print(f"  cryptofeed {version}, Python {sys.version.split()[0]}")
    for label, ns in (
        ("cryptofeed message_handler", crypto.ns_per_op),
        ("tickhawk bare pipeline", crypto.reference_ns_per_op),
        ("tickhawk full 1 s preset", full.ns_per_op),
        ("tickhawk decode only", full.reference_ns_per_op),
    ):
        print(f"  {label:<28} {1e9 / ns:>10,.0f} msg/s  {ns / 1000:6.2f} µs/msg")
    print(f"  cryptofeed ÷ tickhawk bare   {crypto.ratio:6.1f}× the CPU per message")
    print(f"  cryptofeed ÷ tickhawk full   {crypto.ns_per_op / full.ns_per_op:6.1f}×")
    reps = args.reps + 1  # the warm-up pass counts too
    print(
        f"  cryptofeed handled per pass: {counts['trades'] // reps:,} trades, "
        f"{counts['tickers'] // reps:,} tickers, {counts['book'] // reps:,} book updates"
    )


if __name__ == "__main__":
    main()
