"""Recovery timing: how long each outage lasts, from the drop until live and synced again.

An outage of a connection starts when its session leaves LIVE and ends when
the session is LIVE again *and* every book on it is LIVE *and* every trade
backfill for its symbols is done. Each recovery is logged at INFO with its
phases (reconnect, book snapshots, trade backfill) and the one that
dominated; the durations are kept (bounded) for the snapshot. A drop during
a recovery extends the same outage.

``available_s`` is the time every connection was LIVE.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import msgspec

__all__ = ["Recovery", "RecoveryTracker", "Synced"]

_log = logging.getLogger("tickhawk.recovery")

Synced = Callable[[], tuple[bool, bool]]
"""``() -> (books live, backfills done)`` of one connection."""


class Recovery(msgspec.Struct, frozen=True):
    """One outage of one connection, measured (seconds, monotonic clock)."""

    connection: int
    seconds: float  # drop → live, books live, backfill done
    reconnect_s: float  # drop → session LIVE again
    books_s: float  # LIVE → every book LIVE
    backfill_s: float  # LIVE → every backfill done
    drops: int  # drops in this outage (a drop while recovering extends it)
    dominated_by: str  # "reconnect", "books" or "backfill"


class _Outage:
    __slots__ = ("books_at", "drop_at", "drops", "filled_at", "live_at")

    def __init__(self, drop_at: float) -> None:
        self.drop_at = drop_at
        self.drops = 1
        self.live_at: float | None = None
        self.books_at: float | None = None
        self.filled_at: float | None = None


class _Connection:
    __slots__ = ("ever_live", "live", "outage", "synced")

    def __init__(self, synced: Synced) -> None:
        self.synced = synced
        self.live = False
        self.ever_live = False
        self.outage: _Outage | None = None


class RecoveryTracker:
    """Time the outages of the app's connections; feed it session states and sync events."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, keep: int = 1000) -> None:
        self.clock = clock
        self.recoveries: deque[Recovery] = deque(maxlen=keep)
        self.outages = 0  # started
        self._connections: list[_Connection] = []
        self._open = 0  # outages not recovered yet
        self._available = 0.0
        self._all_live_since: float | None = None

    def add_connection(self, synced: Synced) -> int:
        """Register a connection (``synced`` tells its books and backfills); return its number."""
        self._connections.append(_Connection(synced))
        return len(self._connections) - 1

    @property
    def recoveries_s(self) -> list[float]:
        """Return the recovery times kept, oldest first (seconds)."""
        return [r.seconds for r in self.recoveries]

    @property
    def available_s(self) -> float:
        """Return how long every connection has been LIVE, in total (seconds)."""
        since = self._all_live_since
        return self._available + (self.clock() - since if since is not None else 0.0)

    @property
    def recovering(self) -> bool:
        """Return whether an outage is still open."""
        return self._open > 0

    def on_state(self, number: int, live: bool) -> None:
        """Connection ``number`` became LIVE (``live``) or left LIVE."""
        connection = self._connections[number]
        if live == connection.live:
            return
        now = self.clock()
        was_all = self._all_live()
        connection.live = live
        if live:
            connection.ever_live = True
            if connection.outage is not None:
                connection.outage.live_at = now
        elif connection.ever_live:
            outage = connection.outage
            if outage is None:
                connection.outage = _Outage(now)
                self.outages += 1
                self._open += 1
            else:  # dropped again while recovering: the same outage goes on
                outage.drops += 1
                outage.live_at = outage.books_at = outage.filled_at = None
        is_all = self._all_live()
        if was_all and not is_all and self._all_live_since is not None:
            self._available += now - self._all_live_since
            self._all_live_since = None
        elif is_all and not was_all:
            self._all_live_since = now
        if live:
            self.check()

    def _all_live(self) -> bool:
        return bool(self._connections) and all(c.live for c in self._connections)

    def check(self) -> None:
        """Look whether open outages have recovered (call on book and backfill events)."""
        if not self._open:
            return
        now = self.clock()
        for number, connection in enumerate(self._connections):
            outage = connection.outage
            if outage is None or outage.live_at is None:
                continue
            books, filled = connection.synced()
            if books and outage.books_at is None:
                outage.books_at = now
            if filled and outage.filled_at is None:
                outage.filled_at = now
            if outage.books_at is not None and outage.filled_at is not None:
                self._recovered(number, connection, outage)

    def _recovered(self, number: int, connection: _Connection, outage: _Outage) -> None:
        assert outage.live_at is not None and outage.books_at is not None
        assert outage.filled_at is not None
        phases = {
            "reconnect": outage.live_at - outage.drop_at,
            "books": outage.books_at - outage.live_at,
            "backfill": outage.filled_at - outage.live_at,
        }
        dominated_by = max(phases, key=phases.__getitem__)
        recovery = Recovery(
            connection=number,
            seconds=round(max(outage.books_at, outage.filled_at) - outage.drop_at, 6),
            reconnect_s=round(phases["reconnect"], 6),
            books_s=round(phases["books"], 6),
            backfill_s=round(phases["backfill"], 6),
            drops=outage.drops,
            dominated_by=dominated_by,
        )
        self.recoveries.append(recovery)
        connection.outage = None
        self._open -= 1
        _log.info(
            "connection %d recovered in %.3f s (reconnect %.3f s, books %.3f s, "
            "backfill %.3f s; %s dominated; %d drop%s)",
            number,
            recovery.seconds,
            recovery.reconnect_s,
            recovery.books_s,
            recovery.backfill_s,
            dominated_by,
            outage.drops,
            "" if outage.drops == 1 else "s",
        )
