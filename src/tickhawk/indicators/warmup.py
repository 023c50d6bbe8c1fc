"""Warm-up: back-fill each symbol's bars from the venue's REST klines and seed the indicators.

Run it once at start, before the WebSocket sessions deliver trades::

    async with BinanceRest(rest_url, market) as rest:
        report = await warm_up(engine, rest)

For every symbol and bar interval, the closed bars to fetch are the most any
consumer of that interval reads (each indicator's TA-Lib lookback + 1, each
strategy's :meth:`~tickhawk.strategy.api.Strategy.bars_needed`) plus
``margin_bars``, so smoothed indicators (EMA, RSI, ATR ...) settle. Closed
klines are committed to the indicators and kept as bar history; the forming
kline (the newest, whose end is after the venue's clock) is never committed:
it becomes the aggregator's forming bar, which live trades then continue, so
the first live bar follows the last closed kline without a gap or a repeat.

An interval Binance has no klines for (``2m``, ``10s``) is built from the
longest Binance interval dividing it. A symbol or interval the venue refuses
is reported, not fatal. Trades that arrive between the klines request and the
WebSocket subscription are not in the forming bar (the reconnect backfill
closes that gap).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import msgspec

from tickhawk.model import Bar, parse_interval

if TYPE_CHECKING:
    from tickhawk.engine import Engine
    from tickhawk.state import SymbolState

__all__ = [
    "KlineSource",
    "WarmupConfig",
    "WarmupReport",
    "WarmupResult",
    "bars_to_fetch",
    "venue_interval",
    "warm_up",
]

_log = logging.getLogger("tickhawk.warmup")
_MS = 1_000_000
#: Binance kline intervals aligned to the epoch, as TimeBars aligns its bars.
VENUE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
#: Most klines one request returns (spot's limit; futures allow 1500).
PAGE = 1000


class WarmupConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings of the start-up back-fill (``[warmup]``)."""

    enabled: bool = True
    margin_bars: int = 100
    concurrency: int = 8


class KlineSource(Protocol):
    """What warm-up needs from a venue: klines and its clock (:class:`BinanceRest` has both)."""

    async def klines(
        self,
        symbol: str,
        interval: str,
        *,
        limit: int = 500,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Bar]:
        """Return klines as bars, oldest first, the newest possibly still forming."""
        ...

    async def server_time_ms(self) -> int:
        """Return the venue's clock in epoch ms."""
        ...


class WarmupResult(msgspec.Struct, frozen=True):
    """What warm-up did for one symbol and interval."""

    symbol: str
    interval: str
    needed: int
    committed: int
    forming: bool
    ready: bool
    source: str = ""
    skipped: str = ""


class WarmupReport(msgspec.Struct):
    """Every result, the requests made and the time taken."""

    results: list[WarmupResult]
    requests: int
    seconds: float

    @property
    def skipped(self) -> list[WarmupResult]:
        """Return the results that were not warmed up."""
        return [r for r in self.results if r.skipped]


def venue_interval(label: str) -> tuple[str, int] | None:
    """Return the venue interval to fetch for bar ``label`` and how many make one bar."""
    if label in VENUE_INTERVALS:
        return label, 1
    size = parse_interval(label)
    for name in reversed(VENUE_INTERVALS):
        step = parse_interval(name)
        if size % step == 0:
            return name, size // step
    return None


def bars_to_fetch(state: SymbolState, label: str, margin: int) -> int:
    """Return the closed ``label`` bars to fetch for ``state``: what it reads + margin (0: none)."""
    indicator_set = state.indicators.get(label)
    need = indicator_set.bars_needed if indicator_set is not None else 0
    for strategy in state.strategies:
        need = max(need, strategy.bars_needed(label))
    return need + margin if need else 0


async def warm_up(
    engine: Engine,
    source: KlineSource,
    config: WarmupConfig | None = None,
    *,
    now_ms: int | None = None,
) -> WarmupReport:
    """Back-fill every symbol's bars from ``source`` and seed the indicators; report what happened.

    ``now_ms`` (default: the venue's clock, asked once) decides which klines are closed.
    """
    config = config or WarmupConfig()
    started = time.perf_counter()
    if now_ms is None:
        now_ms = await source.server_time_ms()
    limit = asyncio.Semaphore(max(1, config.concurrency))
    results: list[WarmupResult] = []
    counter = [0]

    async def one(state: SymbolState, label: str, needed: int) -> None:
        async with limit:
            result = await _warm_interval(source, state, label, needed, now_ms, counter)
        results.append(result)
        if result.skipped:
            _log.warning("warm-up %s %s skipped: %s", result.symbol, label, result.skipped)

    async with asyncio.TaskGroup() as group:
        for state in engine.states.values():
            for label in state.bars:
                needed = bars_to_fetch(state, label, config.margin_bars)
                if needed:
                    group.create_task(one(state, label, needed))
    results.sort(key=lambda r: (r.symbol, parse_interval(r.interval)))
    return WarmupReport(results, counter[0], round(time.perf_counter() - started, 3))


async def _warm_interval(
    source: KlineSource,
    state: SymbolState,
    label: str,
    needed: int,
    now_ms: int,
    counter: list[int],
) -> WarmupResult:
    def skipped(reason: str, source_name: str = "") -> WarmupResult:
        return WarmupResult(state.symbol, label, needed, 0, False, False, source_name, reason)

    found = venue_interval(label)
    if found is None:
        return skipped(f"no venue kline interval divides {label}")
    name, per_bar = found
    try:
        rows = await _fetch(source, state.symbol, name, needed * per_bar + per_bar, counter)
    except Exception as exc:  # the venue's refusal is reported, not fatal
        return skipped(f"{type(exc).__name__}: {exc}", name)
    interval_ns = parse_interval(label)
    closed, forming = split_closed(rows, label, interval_ns, per_bar, now_ms * _MS)
    return apply_history(state, label, closed[-needed:], forming, source=name, needed=needed)


async def _fetch(
    source: KlineSource, symbol: str, interval: str, count: int, counter: list[int]
) -> list[Bar]:
    """Return the newest ``count`` klines (paging back ``PAGE`` at a time), oldest first."""
    pages: list[list[Bar]] = []
    got = 0
    end_ms: int | None = None
    while got < count:
        size = min(PAGE, count - got)
        counter[0] += 1
        page = await source.klines(symbol, interval, limit=size, end_ms=end_ms)
        if not page:
            break
        pages.append(page)
        got += len(page)
        if len(page) < size:
            break
        end_ms = page[0].open_time // _MS - 1
    return [bar for page in reversed(pages) for bar in page]


def split_closed(
    rows: Sequence[Bar], label: str, interval_ns: int, per_bar: int, now_ns: int
) -> tuple[list[Bar], Bar | None]:
    """Group venue klines into ``label`` bars; return the closed ones and the forming one.

    A bar is closed when it ends by ``now_ns`` or a later bar exists; only the
    newest can be forming. With ``per_bar > 1`` a first bar missing some of
    its klines (cut by the request's limit) is left out.
    """
    groups: list[list[Bar]] = []
    for row in rows:
        start = row.open_time - row.open_time % interval_ns
        if groups and groups[-1][0].open_time - groups[-1][0].open_time % interval_ns == start:
            groups[-1].append(row)
        else:
            groups.append([row])
    if per_bar > 1 and groups and len(groups[0]) < per_bar:
        del groups[0]
    bars = [_merge(group, label, interval_ns) for group in groups]
    if bars and bars[-1].open_time + interval_ns > now_ns:
        return bars[:-1], bars[-1]
    return bars, None


def _merge(rows: list[Bar], label: str, interval_ns: int) -> Bar:
    first = rows[0]
    return Bar(
        first.symbol,
        label,
        first.open_time - first.open_time % interval_ns,
        first.open,
        max(row.high for row in rows),
        min(row.low for row in rows),
        rows[-1].close,
        sum(row.volume for row in rows),
        sum(row.trades for row in rows),
    )


def apply_history(
    state: SymbolState,
    label: str,
    closed: list[Bar],
    forming: Bar | None,
    *,
    source: str = "",
    needed: int = 0,
) -> WarmupResult:
    """Commit ``closed`` bars to ``label``'s indicators and history; continue from ``forming``.

    If live trades already started the interval's bars, only closed bars
    before the first live bar are committed, and only while no live bar has
    closed (warm up before starting the sessions to avoid both).
    """
    bars = state.bars[label]
    indicator_set = state.indicators.get(label)
    if bars.open_time >= 0:
        if bars.history:
            return WarmupResult(
                state.symbol, label, needed, 0, False, False, source, "live bars already closed"
            )
        closed = [bar for bar in closed if bar.open_time < bars.open_time]
        forming = None
        bars.history.extend(closed)
    else:
        bars.resume(closed, forming)
    if indicator_set is not None:
        indicator_set.seed(closed)
    if state.last_price == 0.0 and (forming or closed):
        state.last_price = (forming or closed[-1]).close
    ready = indicator_set.ready if indicator_set is not None else True
    return WarmupResult(
        state.symbol, label, needed, len(closed), forming is not None, ready, source
    )
