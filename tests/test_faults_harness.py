"""The engine against the simulator, for the fault tests: no mocks, real loopback sockets.

:func:`engine_on_sim` starts a simulator and a :class:`~tickhawk.app.live.LiveApp`
subscribed to trades, bookTicker and 100 ms depth of two symbols, waits
until every book is LIVE, and hands a :class:`Run` to the test. The other
``test_faults_*`` modules import it; its own tests check the harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import msgspec

from tickhawk.app.live import LiveApp
from tickhawk.book.sync import BookEvent, BookSync
from tickhawk.model import Trade
from tickhawk.presets import fast_config
from tickhawk.sim import SimConfig, Simulator
from tickhawk.sim.symbols import fixed8

START_MS = 1_723_161_600_000  # a fixed simulated start: the market is the same every run
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def run(scenario: Coroutine[Any, Any, None], timeout: float = 60.0) -> None:
    """Run one async scenario on a fresh event loop."""
    asyncio.run(asyncio.wait_for(scenario, timeout))


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


class Run:
    """A running simulator and engine, with what the engine saw."""

    def __init__(self, sim: Simulator, app: LiveApp) -> None:
        self.sim = sim
        self.app = app
        self.events: list[BookEvent] = []
        self.task: asyncio.Task[object] | None = None  # LiveApp.run
        self.trades: dict[str, list[int]] = defaultdict(list)
        app.engine.book_listeners.append(self.events.append)
        for state in app.engine.states.values():
            state.trade_listeners.append(self._on_trade)

    def _on_trade(self, trade: Trade) -> None:
        self.trades[trade.symbol].append(trade.id)

    def sync(self, symbol: str) -> BookSync:
        """Return the engine's book sync of ``symbol``."""
        sync = self.app.engine.states[symbol].book_sync
        assert sync is not None
        return sync

    def transitions(self, symbol: str, key: str) -> int:
        """Return how often ``symbol``'s book made the transition ``key`` (``state:reason``)."""
        return self.sync(symbol).transitions.get(key, 0)

    async def live_after(self, symbol: str, key: str, times: int = 1) -> None:
        """Wait until ``symbol``'s book made transition ``key`` ``times`` and is LIVE again."""
        sync = self.sync(symbol)
        await until(
            lambda: sync.transitions.get(key, 0) >= times and sync.live,
            10,
            f"{symbol}: {key} x{times}, then LIVE (saw {sync.transitions})",
        )

    async def assert_book_matches_model(self, symbol: str) -> None:
        """Pause the market; check the engine's whole book equals the simulator's."""
        sync = self.sync(symbol)
        await until(lambda: sync.live, 10, f"{symbol} LIVE")
        await self.sim.pause()
        try:
            model = self.sim.model
            assert model is not None
            index = self.sim.symbols.index(symbol)
            book, spec = model.books[index], model.specs[index]
            await until(lambda: sync.last_id == book.update_id, 5, f"{symbol} caught up")

            def levels(side: dict[int, int], best_first: bool) -> list[tuple[float, float]]:
                ordered = sorted(side.items(), reverse=best_first)
                return [
                    (float(fixed8(p * spec.price_e8)), float(fixed8(q * spec.qty_e8)))
                    for p, q in ordered
                ]

            bids, asks = levels(book.bids, True), levels(book.asks, False)
            got_bids, got_asks = sync.book.levels(max(len(bids), len(asks)) + 10)
            assert got_bids == bids, f"{symbol} bids differ from the simulator's book"
            assert got_asks == asks, f"{symbol} asks differ from the simulator's book"
        finally:
            self.sim.resume()

    def trades_sent(self, symbol: str) -> list[int]:
        """Return the trade ids the simulator published on ``symbol``'s trade stream."""
        ranges = self.sim.trade_ids_sent(symbol)
        return [i for first, last in ranges for i in range(first, last + 1)]


@contextlib.asynccontextmanager
async def engine_on_sim(
    *, stale_after_s: float = 10.0, rate: float = 2_000.0, seed: int = 5
) -> AsyncIterator[Run]:
    """Start the simulator and a live engine on it; yield once every book is LIVE."""
    config = SimConfig(symbols=SYMBOLS, rate=rate, seed=seed, start_time_ms=START_MS)
    async with Simulator(config) as sim:
        engine_config = fast_config(
            list(sim.symbols),
            ["trade", "bookTicker", "depth@100ms"],
            ws_url=sim.ws_url,
            rest_url=sim.rest_url,
        )
        book = msgspec.structs.replace(engine_config.book, stale_after_s=stale_after_s)
        app = LiveApp(msgspec.structs.replace(engine_config, book=book))
        harness = Run(sim, app)
        stop = asyncio.Event()
        task = harness.task = asyncio.create_task(app.run(stop=stop))
        try:
            await app.wait_live(10)
            syncs = [harness.sync(symbol) for symbol in SYMBOLS]
            await until(lambda: all(s.live for s in syncs), 10, "every book LIVE")
            yield harness
        finally:
            stop.set()
            await task


def test_the_engine_syncs_books_that_equal_the_simulators() -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            for symbol in SYMBOLS:
                await harness.assert_book_matches_model(symbol)
                assert harness.transitions(symbol, "live:bridged") == 1
            assert harness.sim.stats.faults == {}

    run(scenario())
