"""The book keeper: a snapshot refused as too old is asked for again, backing off."""

from __future__ import annotations

import asyncio
import time

from polling import poll
from tickhawk.app.books import BookKeeper
from tickhawk.engine import Engine
from tickhawk.model import BookUpdate
from tickhawk.presets import fast_config
from tickhawk.venues.binance.schema import DepthSnapshot


class _Venue:
    """A REST depth endpoint that answers with a stale snapshot until told otherwise."""

    def __init__(self) -> None:
        self.last_update_id = 50  # older than the buffered diff (U = 100): refused
        self.calls: list[float] = []

    async def depth(self, symbol: str, limit: int = 1000) -> DepthSnapshot:
        self.calls.append(time.monotonic())
        return DepthSnapshot(self.last_update_id, [(99.0, 1.0)], [(101.0, 1.0)])


def test_snapshots_older_than_the_diffs_are_asked_again_with_backoff_until_one_bridges() -> None:
    async def scenario() -> None:
        engine = Engine(fast_config(["BTCUSDT"], ["depth@100ms"]))
        venue = _Venue()
        keeper = BookKeeper(engine, venue, snapshot_limit=1000)  # type: ignore[arg-type]
        state = engine.states["BTCUSDT"]
        sync = state.book_sync
        assert sync is not None
        task = asyncio.create_task(keeper.run())
        try:
            sync.start()
            diff = BookUpdate("BTCUSDT", 100, 105, -1, [(99.5, 2.0)], [], 0, 0)
            state.on_book(diff, 0, 0)  # buffered while SYNCING
            await poll(lambda: len(venue.calls) >= 5, 10, "five stale snapshots")
            gaps = [b - a for a, b in zip(venue.calls, venue.calls[1:], strict=False)]
            # Backoff 0.1, 0.2, 0.4, 0.8 s (each jittered down to half at most), not a tight loop.
            assert gaps[0] >= 0.05 and gaps[3] >= 0.4, gaps
            assert sum(gaps[:4]) >= 0.75
            assert keeper.too_old["BTCUSDT"] >= 4
            assert sync.transitions["syncing:snapshot_too_old"] >= 4
            venue.last_update_id = 102  # now the snapshot bridges the buffered diff
            await poll(lambda: sync.live, 10, "the book to go live")
            assert "BTCUSDT" not in keeper.too_old  # the streak ends with a good snapshot
            assert state.book is not None and state.book.best_bid == 99.5
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
