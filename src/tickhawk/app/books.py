"""The async side of order books in a live run: snapshots, reconnects, staleness.

The book itself (:mod:`tickhawk.book.sync`) is synchronous and knows nothing
of I/O. This keeper fetches the REST snapshots it asks for (retrying with
capped backoff until one arrives), restarts every book of a connection that
dropped (its diffs were missed), and checks for stale books once a second.

A snapshot older than the diffs the book buffered is asked for again, as
Binance documents; the venue may keep answering from a stale cache (and a
replayed capture always has the same one), so successive refusals back off
(0.1 s doubling to 5 s, jittered) instead of spending request weight in a
tight loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from tickhawk.engine import Engine
from tickhawk.venues.binance.rest import BinanceRest, RestError

__all__ = ["BookKeeper"]

_log = logging.getLogger("tickhawk.book")

#: Backoff before asking again after a snapshot was refused as too old: first, cap (s).
_TOO_OLD_FIRST_S = 0.1
_TOO_OLD_CAP_S = 5.0


class BookKeeper:
    """Serve the engine's books: call :meth:`run` inside the live app's task group."""

    def __init__(self, engine: Engine, rest: BinanceRest, *, snapshot_limit: int = 1000) -> None:
        self.engine = engine
        self.rest = rest
        self.snapshot_limit = snapshot_limit
        self.fetches = 0
        self.fetch_failures = 0
        self._wanted: asyncio.Queue[str] = asyncio.Queue()
        self._in_flight: set[str] = set()
        self._connected_once: set[str] = set()
        #: Snapshots in a row refused as older than the buffered diffs, per symbol.
        self.too_old: dict[str, int] = {}
        engine.request_snapshot = self.request

    def request(self, symbol: str) -> None:
        """Ask for a snapshot of ``symbol`` (called synchronously by a book)."""
        if symbol not in self._in_flight:
            self._in_flight.add(symbol)
            self._wanted.put_nowait(symbol)

    def on_connected(self, symbols: list[str]) -> None:
        """A connection carrying these symbols' depth came up: (re)sync their books."""
        for symbol in symbols:
            state = self.engine.states.get(symbol)
            sync = state.book_sync if state is not None else None
            if sync is None:
                continue
            if symbol in self._connected_once:
                sync.restart("reconnect")
            else:
                self._connected_once.add(symbol)
                sync.start()

    async def _fetch(self, symbol: str) -> None:
        refused = self.too_old.get(symbol, 0)
        try:
            if refused:
                ceiling = min(_TOO_OLD_CAP_S, _TOO_OLD_FIRST_S * 2 ** (refused - 1))
                await asyncio.sleep(ceiling * random.uniform(0.5, 1.0))
            attempt = 0
            while True:
                try:
                    snapshot = await self.rest.depth(symbol, self.snapshot_limit)
                    break
                except RestError as exc:
                    self.fetch_failures += 1
                    attempt += 1
                    delay = random.uniform(0, min(5.0, 0.25 * 2**attempt))
                    _log.warning(
                        "depth snapshot of %s failed (%s); retry in %.2f s", symbol, exc, delay
                    )
                    await asyncio.sleep(delay)
        except BaseException:
            self._in_flight.discard(symbol)
            raise
        self.fetches += 1
        self._in_flight.discard(symbol)
        # The limit asked for: a side that long was cut, the book is exact up to it.
        self.engine.states[symbol].on_snapshot(snapshot, time.time_ns(), self.snapshot_limit)
        if symbol in self._in_flight:  # asked again at once: older than the buffered diffs
            self.too_old[symbol] = refused + 1
            if refused + 1 == 3:
                _log.warning(
                    "depth snapshots of %s keep coming older than its diffs; backing off",
                    symbol,
                )
        else:
            self.too_old.pop(symbol, None)

    async def run(self) -> None:
        """Fetch snapshots as books ask; check staleness every second. Runs until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._stale_checks())
            while True:
                symbol = await self._wanted.get()
                group.create_task(self._fetch(symbol))

    async def _stale_checks(self) -> None:
        syncs = [s.book_sync for s in self.engine.states.values() if s.book_sync is not None]
        while True:
            await asyncio.sleep(1.0)
            now = time.time_ns()
            for sync in syncs:
                sync.check_stale(now)
