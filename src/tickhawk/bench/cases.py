"""The benchmark cases, each a part of the hot path on real data against its floor.

=====================  =========================================  ===============================
case                   subject (per op)                           reference (same input)
=====================  =========================================  ===============================
decode.<kind>          ``BinanceFeed.on_message`` into null sinks  typed msgspec decode only
book.apply             ``L2Book.apply``, 1,000-level book          a bare ``dict`` per side
book.sync              ``BookSync.on_diff``, real depth diffs     a bare ``dict`` per side
bar.update             ``TimeBars.add`` (1 s bars), real trades   a no-op method call
indicators.update      ``IndicatorSet.update``, ten indicators    the ten raw ``talib.stream``
indicators.peek        ``IndicatorSet.peek``, ten indicators      the ten raw stream ``peek``
strategy.on_trade      ``Momentum.on_trade`` on a warm state      a no-op strategy hook
pipeline.usdm / .spot  ``tickhawk replay``'s pipeline             decode only, same messages
=====================  =========================================  ===============================

Kinds: ``trade``, ``depth``, ``bookTicker`` from the USD-M capture,
``aggTrade`` made from its trades, ``kline`` from the kline CSV.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import msgspec

from tickhawk.bars.time_bars import TimeBars
from tickhawk.bench.data import BenchData, Levels, NullSink, synthetic_diffs
from tickhawk.bench.indicators import WARM, raw_runner, tickhawk_runner
from tickhawk.bench.measure import Case, parts_over
from tickhawk.bench.pipeline import pipeline_case
from tickhawk.book.l2 import L2Book
from tickhawk.book.sync import BookSync
from tickhawk.engine import Engine
from tickhawk.model import BookUpdate, Trade
from tickhawk.presets import fast_config
from tickhawk.rejects import Rejects
from tickhawk.strategy.api import Strategy
from tickhawk.venues.binance.feed import BinanceFeed, FeedSink
from tickhawk.venues.binance.schema import (
    AggTradeEnvelope,
    BookTickerEnvelope,
    DepthEnvelope,
    DepthSnapshot,
    KlineEnvelope,
    TradeEnvelope,
)

__all__ = ["CASES", "MACRO", "MICRO", "book_apply_case", "book_sync_case", "build", "dict_floor"]

_ENVELOPES: dict[str, type[msgspec.Struct]] = {
    "trade": TradeEnvelope,
    "aggTrade": AggTradeEnvelope,
    "depth": DepthEnvelope,
    "bookTicker": BookTickerEnvelope,
    "kline": KlineEnvelope,
}
_SECOND = 1_000_000_000
Points = Sequence[tuple[float, float, int]]


def decode_case(kind: str, payloads: list[bytes]) -> Case:
    """Return ``decode.<kind>``: the feed's route against the bare typed decode."""
    start = len(b'{"stream":"')
    stream = payloads[0][start : payloads[0].find(b'"', start)].decode()
    decode = msgspec.json.Decoder(_ENVELOPES[kind], strict=False).decode

    def feed() -> Callable[[Sequence[bytes]], None]:
        rejects = Rejects()
        sinks: dict[str, FeedSink] = {stream.split("@", 1)[0].upper(): NullSink()}
        on_message = BinanceFeed(sinks, [stream], rejects).on_message

        def run(chunk: Sequence[bytes]) -> None:
            for payload in chunk:
                on_message(payload, 0, 0)
            if rejects.total:
                raise RuntimeError(f"decode.{kind} rejected messages: {dict(rejects.counts)}")

        return run

    def bare() -> Callable[[Sequence[bytes]], None]:
        def run(chunk: Sequence[bytes]) -> None:
            for payload in chunk:
                decode(payload)

        return run

    return Case(
        f"decode.{kind}",
        "msg",
        len(payloads),
        parts_over(payloads, feed),
        parts_over(payloads, bare),
        "typed msgspec decode",
    )


def dict_floor(bids: Levels, asks: Levels) -> Callable[[Sequence[tuple[Levels, Levels]]], None]:
    """Return a loop applying diffs to a bare dict per side: the floor of any Python book."""
    bid_side = dict(bids)
    ask_side = dict(asks)

    def run(diffs: Sequence[tuple[Levels, Levels]]) -> None:
        for diff_bids, diff_asks in diffs:
            for side, changes in ((bid_side, diff_bids), (ask_side, diff_asks)):
                for price, qty in changes:
                    if qty:
                        side[price] = qty
                    elif price in side:
                        del side[price]

    return run


def book_apply_case(levels: int = 1000, diffs: int = 20_000, per_diff: int = 20) -> Case:
    """Return ``book.apply``: synthetic diffs on a deep book, per level change."""
    bids, asks, changes = synthetic_diffs(levels, diffs, per_diff)
    count = sum(len(b) + len(a) for b, a in changes)

    def book() -> Callable[[Sequence[tuple[Levels, Levels]]], None]:
        l2 = L2Book(max_levels=5000)
        l2.load(bids, asks)
        apply = l2.apply

        def run(chunk: Sequence[tuple[Levels, Levels]]) -> None:
            for diff_bids, diff_asks in chunk:
                apply(diff_bids, diff_asks)

        return run

    return Case(
        "book.apply",
        "level",
        count,
        parts_over(changes, book),
        parts_over(changes, lambda: dict_floor(bids, asks)),
        "bare dict",
    )


def book_sync_case(items: list[DepthSnapshot | BookUpdate]) -> Case:
    """Return ``book.sync``: the capture's snapshot and depth diffs through the sync, per diff."""
    diffs = [item for item in items if isinstance(item, BookUpdate)]
    snapshot = next(item for item in items if isinstance(item, DepthSnapshot))
    levels = [(d.bids, d.asks) for d in diffs]

    def sync() -> Callable[[Sequence[DepthSnapshot | BookUpdate]], None]:
        book_sync = BookSync("BTCUSDT", futures=True)
        on_diff = book_sync.on_diff

        def run(chunk: Sequence[DepthSnapshot | BookUpdate]) -> None:
            for item in chunk:
                if isinstance(item, BookUpdate):
                    on_diff(item)
                else:
                    # Taken as uncut (asked with 5,000 levels): every diff is applied. Cut at
                    # its 1,000 the book would resync after 217 s, with no second snapshot.
                    book_sync.on_snapshot(item, limit=5000)
            if any(key.startswith("out_of_sync") for key in book_sync.transitions):
                raise RuntimeError(f"book.sync lost the chain: {book_sync.transitions}")

        return run

    return Case(
        "book.sync",
        "diff",
        len(diffs),
        parts_over(items, sync),
        parts_over(levels, lambda: dict_floor(snapshot.bids, snapshot.asks)),
        "bare dict",
    )


class _NoBars:
    """The floor of a bar update: a method call with the same arguments."""

    __slots__ = ()

    def add(self, price: float, qty: float, ts: int) -> None:
        pass


def bar_case(data: BenchData, passes: int = 5) -> Case:
    """Return ``bar.update``: the capture's trades into 1-second bars, per trade.

    The trades run ``passes`` times, each pass shifted past the previous one in
    time, so every pass forms bars as the first did.
    """
    trades = data.trades
    span = trades[-1].ts_event - trades[0].ts_event + _SECOND
    points = [(t.price, t.qty, t.ts_event + k * span) for k in range(passes) for t in trades]

    def loop(make: Callable[[], TimeBars | _NoBars]) -> Callable[[], Callable[[Points], None]]:
        def start() -> Callable[[Points], None]:
            add = make().add

            def run(chunk: Points) -> None:
                for price, qty, ts in chunk:
                    add(price, qty, ts)

            return run

        return start

    return Case(
        "bar.update",
        "trade",
        len(points),
        parts_over(points, loop(lambda: TimeBars("BTCUSDT", _SECOND))),
        parts_over(points, loop(_NoBars)),
        "no-op call",
    )


def indicator_case(data: BenchData, method: str) -> Case:
    """Return ``indicators.<method>``: ten indicators per bar against raw TA-Lib streams."""
    warm, timed = data.bars[:WARM], data.bars[WARM:]
    return Case(
        f"indicators.{method}",
        "bar",
        len(timed),
        parts_over(timed, lambda: tickhawk_runner(warm, method)),
        parts_over(timed, lambda: raw_runner(warm, method)),
        f"raw TA-Lib {method}",
    )


def strategy_case(data: BenchData, passes: int = 5) -> Case:
    """Return ``strategy.on_trade``: momentum's hook on a warm state, per trade.

    The capture's trades run ``passes`` times: one pass is only a few ms.
    """
    engine = Engine(fast_config(["BTCUSDT"], ["trade"], market="usdm"))
    state = engine.states["BTCUSDT"]
    for trade in data.trades:  # bars, indicator values and momentum's state as in a live run
        state.on_trade(trade, 0, 0)
    trades = data.trades * passes
    momentum = next(s for s in state.strategies if s.name == "momentum")

    def hook(strategy: Strategy) -> Callable[[], Callable[[Sequence[Trade]], None]]:
        def start() -> Callable[[Sequence[Trade]], None]:
            on_trade = strategy.on_trade

            def run(chunk: Sequence[Trade]) -> None:
                for trade in chunk:
                    on_trade(state, trade)

            return run

        return start

    return Case(
        "strategy.on_trade",
        "trade",
        len(trades),
        parts_over(trades, hook(momentum)),
        parts_over(trades, hook(Strategy())),
        "no-op strategy",
    )


def _decode_builder(kind: str) -> Callable[[BenchData], Case]:
    return lambda data: decode_case(kind, data.payloads[kind])


#: Name → builder, in report order.
CASES: dict[str, Callable[[BenchData], Case]] = {
    **{f"decode.{kind}": _decode_builder(kind) for kind in _ENVELOPES},
    "book.apply": lambda data: book_apply_case(),
    "book.sync": lambda data: book_sync_case(data.depth),
    "bar.update": bar_case,
    "indicators.update": lambda data: indicator_case(data, "update"),
    "indicators.peek": lambda data: indicator_case(data, "peek"),
    "strategy.on_trade": strategy_case,
    "pipeline.usdm": lambda data: pipeline_case("pipeline.usdm", data.usdm),
    "pipeline.spot": lambda data: pipeline_case("pipeline.spot", data.spot),
}
MACRO = ("pipeline.usdm", "pipeline.spot")
MICRO = tuple(name for name in CASES if name not in MACRO)


def build(
    data: BenchData, names: Iterable[str], *, slowdown: Mapping[str, int] | None = None
) -> list[Case]:
    """Return the named cases; a case in ``slowdown`` does its work that many times per op."""
    cases = []
    for name in names:
        case = CASES[name](data)
        factor = (slowdown or {}).get(name, 1)
        cases.append(case.slowed(factor) if factor > 1 else case)
    return cases
