"""Outages and book resyncs as seen from inside the engine process, timed to a few ms.

An outage starts when a session leaves LIVE and ends when the engine is
"live and synced again": every session LIVE, every book LIVE (or STALE: in
sync, only quiet), a trade applied since the reconnect, and no more trade ids
missing than before the drop. Each phase is timed from the drop, so a report
can say what dominates a recovery. The tracker is plain code fed by a poll
(the engine child's 20 ms timer); time is passed in.
"""

from __future__ import annotations

from tickhawk.loadtest.wire import Outage

__all__ = ["OutageTracker", "ResyncTracker"]


class OutageTracker:
    """Turn polled engine state into :class:`Outage` records and time spent live.

    An outage whose books are back but whose missing trades are not back
    after ``trades_timeout_s`` is closed with ``trades_complete=False``.
    """

    def __init__(self, trades_timeout_s: float = 10.0) -> None:
        self.trades_timeout_s = trades_timeout_s
        self.live_s = 0.0
        self._last: float | None = None
        self._start: float | None = None
        self._missing_before = 0
        self._trades_before = 0
        self._reconnected: float | None = None
        self._books: float | None = None
        self._trades: float | None = None

    @property
    def in_outage(self) -> bool:
        """Return whether an outage is open."""
        return self._start is not None

    def observe(
        self,
        now: float,
        *,
        sessions_live: bool,
        books_unsynced: int,
        trades_missing: int,
        trades_applied: int,
    ) -> Outage | None:
        """Take one poll; return an outage when this poll closes one."""
        if self._last is not None and sessions_live:
            self.live_s += now - self._last
        self._last = now
        if self._start is None:
            if not sessions_live:
                self._start = now
                self._missing_before = trades_missing
                self._trades_before = trades_applied
                self._reconnected = self._books = self._trades = None
            return None
        if not sessions_live:  # dropped again while recovering: the same outage goes on
            self._reconnected = self._books = self._trades = None
            self._trades_before = trades_applied
            return None
        if self._reconnected is None:
            self._reconnected = now
            self._trades_before = trades_applied
        self._books = (self._books or now) if books_unsynced == 0 else None
        trades_back = trades_missing <= self._missing_before and trades_applied > self._trades_before
        self._trades = (self._trades or now) if trades_back else None
        if self._books is not None and self._trades is not None:
            return self._close(now, complete=True)
        if self._books is not None and now - self._books > self.trades_timeout_s:
            return self._close(now, complete=False)
        return None

    def _close(self, now: float, *, complete: bool) -> Outage:
        start = self._start
        assert start is not None and self._reconnected is not None and self._books is not None
        trades = self._trades if self._trades is not None else now
        outage = Outage(
            start=start,
            reconnect_s=self._reconnected - start,
            books_s=self._books - start,
            trades_s=trades - start,
            recovered_s=max(self._books, trades) - start,
            trades_complete=complete,
        )
        self._start = None
        return outage


class ResyncTracker:
    """Time each book from leaving LIVE (out of sync) to LIVE again, with the reason."""

    def __init__(self) -> None:
        self._since: dict[str, tuple[str, float]] = {}
        self.done: list[tuple[str, float]] = []

    def on_transition(self, symbol: str, state: str, reason: str, now: float) -> None:
        """Take one book transition (``BookEvent`` state and reason)."""
        if state == "out_of_sync":
            self._since.setdefault(symbol, (reason, now))
        elif state == "live":
            started = self._since.pop(symbol, None)
            if started is not None:
                self.done.append((started[0], now - started[1]))

    def take(self) -> list[tuple[str, float]]:
        """Return the resyncs finished since the last call."""
        done, self.done = self.done, []
        return done
