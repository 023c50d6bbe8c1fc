"""Trades missed in a disconnect or skipped by a stream, fetched from REST and merged in order.

When a connection carrying trade streams comes back (or a symbol's trade ids
jump on the stream), the symbol's live trades are *held*
(:attr:`~tickhawk.state.SymbolState.held`) while the missing ids are fetched
from REST, page by page from ``last_trade_id + 1``, and applied through the
normal ``on_trade`` path (a repeated id is dropped); then the held trades are
released in id order. Strategies never see a newer trade before an older one.

- Sources: ``@trade`` ids come from ``/historicalTrades?fromId=`` (where the
  venue does not serve it, e.g. without an API key or on the simulator, from
  ``/trades``: its last 1,000 trades); ``@aggTrade`` ids from
  ``/aggTrades?fromId=``.
- Overflow policy: at most ``buffer`` live trades are held per symbol; the
  next one releases them all at once (trades are never dropped) and the
  backfill is given up.
- Nothing is hidden: ids that could not be fetched (REST failed after its
  retries, the backfill took longer than ``timeout_s``, the buffer filled,
  the venue no longer has them, or backfill is off) are a :class:`TradeGap`
  event with their extent, a warning (at most one a second) and a count.

The hot path pays one attribute check per trade when nothing is held.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple, Protocol

import msgspec

from tickhawk.engine import Engine
from tickhawk.model import BUY, SELL, Trade
from tickhawk.rejects import Rejects
from tickhawk.state import HeldTrade, SymbolState
from tickhawk.venues.binance.rest import AggTradeRow, BinanceRest, RestError, TradeRow

__all__ = ["AggTradeSource", "Backfiller", "Page", "TradeGap", "TradeIdSource", "TradeSource"]

_log = logging.getLogger("tickhawk.backfill")
_MS = 1_000_000
_INF = float("inf")
_MAX_ID = 2**63
_MAX_MS = (2**63 - 1) // _MS
#: Binance's page size for trades and aggTrades.
PAGE_LIMIT = 1000
#: How long to wait before asking again when the venue's history lags its stream.
_LAG_RETRY_S = 0.05
#: Answers that mean "this venue does not serve historicalTrades to us".
_NOT_SERVED_STATUS = (401, 403, 404)
_NOT_SERVED_CODES = (-2014, -2015)  # API key missing or refused


class TradeGap(msgspec.Struct, frozen=True):
    """Trade ids that were not back-filled: ``first_id`` to ``last_id``, and why.

    ``last_id`` is -1 (and ``count`` 0) when no later trade has shown the
    gap's end yet; ``ts`` is when it was reported (epoch ns).
    """

    symbol: str
    first_id: int
    last_id: int
    count: int
    reason: str
    ts: int


class Page(NamedTuple):
    """Trades from a REST answer, oldest first; ``complete``: the venue had nothing newer."""

    trades: list[Trade]
    complete: bool


class TradeSource(Protocol):
    """Where missed trades come from."""

    async def page(self, symbol: str, from_id: int, limit: int) -> Page:
        """Return trades with ids from ``from_id`` on (at most ``limit``), oldest first."""
        ...


def _checked(
    rejects: Rejects, symbol: str, rows: list[tuple[int, float, float, int, bool]]
) -> list[Trade]:
    """Convert REST rows to trades; a bad row is rejected by reason (its id becomes a gap)."""
    now = time.time_ns()
    trades = []
    for trade_id, price, qty, when, maker in rows:
        if not 0.0 < price < _INF:
            rejects.reject("bad_price", f"REST trade {symbol} {trade_id} price {price}")
        elif not 0.0 < qty < _INF:
            rejects.reject("bad_qty", f"REST trade {symbol} {trade_id} qty {qty}")
        elif not (0 <= trade_id < _MAX_ID and 0 <= when <= _MAX_MS):
            rejects.reject("bad_time", f"REST trade {symbol} id {trade_id} time {when}")
        else:
            trades.append(
                Trade(symbol, trade_id, price, qty, SELL if maker else BUY, when * _MS, now)
            )
    return trades


class AggTradeSource:
    """Aggregate trade ids (``@aggTrade`` streams): ``/aggTrades?fromId=``."""

    def __init__(self, rest: BinanceRest, rejects: Rejects) -> None:
        self.rest = rest
        self.rejects = rejects

    async def page(self, symbol: str, from_id: int, limit: int) -> Page:
        """Return aggregate trades from ``from_id`` on."""
        rows: list[AggTradeRow] = await self.rest.agg_trades(symbol, from_id=from_id, limit=limit)
        trades = _checked(self.rejects, symbol, [(r.a, r.p, r.q, r.T, r.m) for r in rows])
        return Page(trades, len(rows) < limit)


class TradeIdSource:
    """Trade ids (``@trade`` streams): ``/historicalTrades?fromId=``, else ``/trades``.

    Where the venue refuses ``historicalTrades`` (401/403/404, or an API-key
    error), the source falls back for good to ``/trades``, the most recent
    1,000 trades: a gap older than those is reported, not filled.
    """

    def __init__(self, rest: BinanceRest, rejects: Rejects) -> None:
        self.rest = rest
        self.rejects = rejects
        self.historical = True

    async def page(self, symbol: str, from_id: int, limit: int) -> Page:
        """Return trades from ``from_id`` on."""
        if self.historical:
            try:
                rows = await self.rest.historical_trades(symbol, from_id=from_id, limit=limit)
            except RestError as exc:
                if exc.status not in _NOT_SERVED_STATUS and exc.code not in _NOT_SERVED_CODES:
                    raise
                if self.historical:  # once, though several symbols may learn it at once
                    self.historical = False
                    _log.warning(
                        "the venue does not serve historicalTrades (%s); back-filling from "
                        "/trades, its last 1000 trades",
                        exc,
                    )
            else:
                return Page(self._trades(symbol, rows), len(rows) < limit)
        rows = await self.rest.recent_trades(symbol, limit=PAGE_LIMIT)
        return Page([t for t in self._trades(symbol, rows) if t.id >= from_id], True)

    def _trades(self, symbol: str, rows: list[TradeRow]) -> list[Trade]:
        return _checked(
            self.rejects, symbol, [(r.id, r.price, r.qty, r.time, r.isBuyerMaker) for r in rows]
        )


class _Job:
    """One symbol's backfill: the list its live trades wait in, and why it may fail."""

    __slots__ = ("cause", "held", "reason", "state")

    def __init__(self, state: SymbolState, held: list[HeldTrade], cause: str) -> None:
        self.state = state
        self.held = held
        self.cause = cause  # "reconnect" or "gap"
        # What a gap found while this job holds the symbol is put down to: the buffer
        # filled (the state released on its own), unless the job failed for another reason.
        self.reason = "buffer_full"


def _first_held(held: list[HeldTrade]) -> int | None:
    return min(item[0].id for item in held) if held else None


class Backfiller:
    """Back-fill missed trades for the engine's symbols; :meth:`run` in the app's task group.

    ``listeners`` receive every :class:`TradeGap`; ``done_listeners`` the
    symbol of every backfill that ended (the recovery tracker).
    """

    def __init__(
        self,
        engine: Engine,
        source: TradeSource,
        *,
        enabled: bool = True,
        buffer: int = 20_000,
        timeout_s: float = 10.0,
        page_limit: int = PAGE_LIMIT,
        keep_gaps: int = 100,
    ) -> None:
        self.engine = engine
        self.source = source
        self.enabled = enabled
        self.timeout_s = timeout_s
        self.page_limit = page_limit
        self.listeners: list[Callable[[TradeGap], None]] = []
        self.done_listeners: list[Callable[[str], None]] = []
        self.recent_gaps: deque[TradeGap] = deque(maxlen=keep_gaps)
        self.backfills = 0  # started
        self.trades_backfilled = 0
        self.failures = 0  # backfills that ended with a gap
        self.gaps = 0  # TradeGap events
        self.pages = 0
        self._jobs: dict[str, _Job] = {}
        self._group: asyncio.TaskGroup | None = None
        self._logged_at = 0.0
        self._unlogged = 0
        for state in engine.states.values():
            state.hold_limit = buffer
            state.on_trade_gap = self._on_gap

    def busy(self, symbol: str) -> bool:
        """Return whether ``symbol``'s trades are being back-filled (or held)."""
        if symbol in self._jobs:
            return True
        state = self.engine.states.get(symbol)
        return state is not None and state.held is not None

    async def run(self) -> None:
        """Run backfills as they are asked for, until cancelled."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                await asyncio.Event().wait()
            finally:
                self._group = None

    # -- triggers (synchronous: session callbacks and the hot path) ---------------------

    def on_connected(self, symbols: list[str]) -> None:
        """A connection carrying these symbols' trades came (back) up: fill what it missed."""
        if not self.enabled or self._group is None:
            return  # the first trade after the gap reports it (see _on_gap)
        for symbol in symbols:
            state = self.engine.states.get(symbol)
            if state is None or state.last_trade_id < 0 or symbol in self._jobs:
                # Nothing seen yet, nothing missed; or a running backfill, whose
                # release shows this gap as a jump in ids: that starts the next one.
                continue
            self._start(state, state.hold(), "reconnect")

    def _on_gap(self, state: SymbolState, first_id: int, last_id: int) -> list[HeldTrade] | None:
        """The state saw ids ``first_id..last_id`` skipped: hold its trades and fill them."""
        job = self._jobs.get(state.symbol)
        if job is not None:  # released without a fill: the buffer filled, or the job failed
            self._report(state.symbol, first_id, last_id, job.reason)
            return None
        if not self.enabled or self._group is None:
            why = "backfill off" if not self.enabled else "backfill not running"
            self._report(state.symbol, first_id, last_id, why)
            return None
        held = state.hold()
        self._start(state, held, "gap")
        return held

    def _start(self, state: SymbolState, held: list[HeldTrade], cause: str) -> None:
        assert self._group is not None
        job = _Job(state, held, cause)
        self._jobs[state.symbol] = job
        _log.info("back-filling %s from id %d (%s)", state.symbol, state.last_trade_id + 1, cause)
        self.backfills += 1
        self._group.create_task(self._run(job))

    # -- the job ----------------------------------------------------------------------

    async def _run(self, job: _Job) -> None:
        state = job.state
        failed = False
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._fill(job)
        except TimeoutError:
            failed, job.reason = True, f"not done in {self.timeout_s:g} s"
        except RestError as exc:
            failed, job.reason = True, f"REST: {exc}"
        except Exception as exc:  # a bug here must not stop the app: report the gap
            _log.exception("backfill of %s failed", state.symbol)
            failed, job.reason = True, f"{type(exc).__name__}: {exc}"
        finally:
            mine = state.held is job.held
            if failed or not mine:
                self.failures += 1
            if failed and mine:
                if job.held:
                    state.release()  # still registered: the jump it shows is reported
                else:
                    state.held = None
                    _log.warning(
                        "backfill of %s from id %d failed (%s); the next trade shows the gap",
                        state.symbol,
                        state.last_trade_id + 1,
                        job.reason,
                    )
            del self._jobs[state.symbol]
            if mine and not failed:
                state.release()  # a jump among the held trades starts the next backfill
            for listener in self.done_listeners:
                listener(state.symbol)

    async def _fill(self, job: _Job) -> None:
        """Apply pages until the gap up to the first held trade is closed."""
        state = job.state
        symbol = state.symbol
        while state.held is job.held:
            next_id = state.last_trade_id + 1
            target = _first_held(job.held)
            if target is not None and next_id >= target:
                return  # closed
            page = await self.source.page(symbol, next_id, self.page_limit)
            self.pages += 1
            if state.held is not job.held:
                return  # given up meanwhile: the buffer filled
            next_id = state.last_trade_id + 1
            trades = [t for t in page.trades if t.id >= next_id]
            self._report_holes(symbol, next_id, trades)
            self.trades_backfilled += state.apply_backfill(trades)
            target = _first_held(job.held)
            if target is None:
                if page.complete or not trades:
                    return  # caught up with the venue, and no live trade yet
            elif state.last_trade_id + 1 < target and (page.complete or not trades):
                await asyncio.sleep(_LAG_RETRY_S)  # the venue's history lags its stream

    def _report_holes(self, symbol: str, next_id: int, trades: list[Trade]) -> None:
        """Report ids a page skips (the venue no longer has them, or a bad row)."""
        expected = next_id
        for trade in trades:
            if trade.id > expected:
                self._report(symbol, expected, trade.id - 1, "not served by the venue")
            expected = trade.id + 1

    # -- reporting --------------------------------------------------------------------

    def _report(self, symbol: str, first_id: int, last_id: int, reason: str) -> None:
        count = last_id - first_id + 1 if last_id >= first_id else 0
        gap = TradeGap(symbol, first_id, last_id, count, reason, time.time_ns())
        self.gaps += 1
        self.recent_gaps.append(gap)
        now = time.monotonic()
        if now - self._logged_at >= 1.0:
            more = f" (+{self._unlogged} more gaps)" if self._unlogged else ""
            _log.warning(
                "trade gap: %s ids %d-%d (%d trades) not back-filled: %s%s",
                symbol,
                first_id,
                last_id,
                count,
                reason,
                more,
            )
            self._logged_at = now
            self._unlogged = 0
        else:
            self._unlogged += 1
        for listener in self.listeners:
            listener(gap)
