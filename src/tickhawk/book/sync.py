"""Binance's snapshot + diff procedure, exactly as Binance documents it, as a state machine.

States: ``SYNCING`` (diffs buffered while the REST snapshot is fetched),
``LIVE`` (diffs applied), ``STALE`` (no diff for ``stale_after_s`` on a stream
that is normally busy), ``OUT_OF_SYNC`` (a break in the chain, a crossed book
or a bad snapshot: passed through on the way back to ``SYNCING``). Every
transition is a :class:`BookEvent` with a reason, and counted.

Spot (``U``/``u``): drop buffered diffs with ``u <= lastUpdateId``; the first
applied diff must have ``U <= lastUpdateId + 1 <= u``; then each diff's ``U``
must be the previous ``u + 1``.

USD-M futures (``U``/``u``/``pu``): drop diffs with ``u < lastUpdateId``; the
first must have ``U <= lastUpdateId <= u``; then each diff's ``pu`` must equal
the previous ``u``.

A snapshot older than the first buffered diff (``lastUpdateId < U - 1`` on
spot) cannot be bridged: another snapshot is requested.

A snapshot cut at its ``limit`` knows nothing beyond its worst level: the
book's horizon is set there (:mod:`tickhawk.book.l2`), and when deletions
empty a side down to it the book resyncs (``depth_exhausted``).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable

import msgspec

from tickhawk.book.l2 import L2Book
from tickhawk.model import BookUpdate
from tickhawk.venues.binance.schema import DEPTH_LIMITS, DepthSnapshot

__all__ = ["BookEvent", "BookState", "BookSync", "guess_limit"]


def guess_limit(snapshot: DepthSnapshot) -> int | None:
    """Return the ``limit`` a snapshot of unknown origin (a capture's) was cut at, if any.

    Both sides answer one request: the deeper side's length is the limit when
    it is one of Binance's ``DEPTH_LIMITS`` (a side that short was cut there;
    the other side, if shorter, was not), else None (nothing cut). A snapshot
    asked with another limit (spot accepts any up to 5,000) is not recognised.
    """
    deepest = max(len(snapshot.bids), len(snapshot.asks))
    return deepest if deepest in DEPTH_LIMITS else None


class BookState(enum.Enum):
    """Where a book is; only ``LIVE`` books are shown to strategies and features."""

    SYNCING = "syncing"
    LIVE = "live"
    STALE = "stale"
    OUT_OF_SYNC = "out_of_sync"


class BookEvent(msgspec.Struct, frozen=True):
    """A book state transition and why it happened."""

    symbol: str
    previous: str
    state: str
    reason: str
    update_id: int
    ts: int


class BookSync:
    """Keep one symbol's L2 book in sync with a Binance diff stream.

    ``request_snapshot`` is called (with the symbol) whenever a snapshot is
    needed; the caller fetches it and hands it to :meth:`on_snapshot`.
    ``on_event`` receives every transition. ``futures`` selects the USD-M
    rules (``pu`` chaining).
    """

    def __init__(
        self,
        symbol: str,
        *,
        futures: bool = False,
        max_levels: int = 5000,
        buffer_limit: int = 10_000,
        stale_after_s: float = 10.0,
        request_snapshot: Callable[[str], None] | None = None,
        on_event: Callable[[BookEvent], None] | None = None,
    ) -> None:
        self.symbol = symbol
        self.futures = futures
        self.book = L2Book(max_levels)
        self.state = BookState.SYNCING
        self.last_id = -1
        self.last_ts = 0
        self.stale_after_ns = int(stale_after_s * 1e9)
        self.buffer: deque[BookUpdate] = deque()
        self.buffer_limit = buffer_limit
        self.request_snapshot = request_snapshot
        self.on_event = on_event
        self.transitions: dict[str, int] = {}
        self.applied = 0
        self.duplicates = 0
        self.snapshots = 0
        self._snapshot_loaded = False
        self._snapshot_pending = False

    @property
    def gaps(self) -> int:
        """Return the breaks in the diff chain detected so far."""
        return self.transitions.get("out_of_sync:gap", 0)

    # -- state changes ------------------------------------------------------------

    def _move(self, state: BookState, reason: str, update_id: int, ts: int) -> None:
        previous = self.state
        self.state = state
        key = f"{state.value}:{reason}"
        self.transitions[key] = self.transitions.get(key, 0) + 1
        if self.on_event is not None:
            self.on_event(
                BookEvent(self.symbol, previous.value, state.value, reason, update_id, ts)
            )

    def start(self) -> None:
        """Begin syncing: ask for a snapshot (diffs are buffered meanwhile)."""
        self._ask_snapshot()

    def _ask_snapshot(self) -> None:
        if not self._snapshot_pending and self.request_snapshot is not None:
            self._snapshot_pending = True
            self.request_snapshot(self.symbol)

    def _resync(self, reason: str, update: BookUpdate | None) -> None:
        update_id = update.last_id if update is not None else self.last_id
        ts = update.ts_recv if update is not None else self.last_ts
        self._move(BookState.OUT_OF_SYNC, reason, update_id, ts)
        self.book.clear()
        self.buffer.clear()
        self._snapshot_loaded = False
        self.last_id = -1
        if update is not None:
            self.buffer.append(update)
        self._move(BookState.SYNCING, reason, update_id, ts)
        self._ask_snapshot()

    # -- input ----------------------------------------------------------------------

    def on_diff(self, update: BookUpdate) -> bool:
        """Take one diff; return whether it was applied to a ``LIVE`` book."""
        state = self.state
        if state is BookState.LIVE or state is BookState.STALE:
            if update.last_id <= self.last_id:
                self.duplicates += 1  # an old or repeated diff: already in the book
                return False
            if self.futures:
                chained = update.prev_last_id == self.last_id
            else:
                chained = update.first_id == self.last_id + 1
            if not chained:
                self._resync("gap", update)
                return False
            problem = self.book.apply(update.bids, update.asks)  # crossed, depth_exhausted
            self.last_id = update.last_id
            self.last_ts = update.ts_recv
            self.applied += 1
            if problem is not None:
                self._resync(problem, None)
                return False
            if state is BookState.STALE:
                self._move(BookState.LIVE, "updates resumed", update.last_id, update.ts_recv)
            return True
        # SYNCING: buffer until the snapshot bridges.
        if self._snapshot_loaded:
            return self._bridge(update)
        if len(self.buffer) >= self.buffer_limit:
            self.buffer.popleft()  # the snapshot is late; keep the newest diffs
            self.transitions["buffer_overflow"] = self.transitions.get("buffer_overflow", 0) + 1
        self.buffer.append(update)
        self._ask_snapshot()
        return False

    def on_snapshot(self, snapshot: DepthSnapshot, ts: int = 0, limit: int | None = None) -> None:
        """Load a REST snapshot and replay the buffered diffs over it.

        ``limit`` is the ``limit`` the snapshot was requested with: a side
        holding that many levels was cut, and the book is exact only up to
        its worst level. None (unknown, a capture's snapshot): :func:`guess_limit`.
        """
        self._snapshot_pending = False
        self.snapshots += 1
        if self.state is not BookState.SYNCING:
            return  # a late answer to a request made before a recovery: not needed
        self.book.load(
            snapshot.bids, snapshot.asks, limit=guess_limit(snapshot) if limit is None else limit
        )
        self.last_id = snapshot.lastUpdateId
        self.last_ts = ts
        self._snapshot_loaded = True
        buffered = list(self.buffer)
        self.buffer.clear()
        for index, update in enumerate(buffered):
            self._bridge(update)
            if self.state is BookState.SYNCING and not self._snapshot_loaded:
                # The snapshot was older than this diff: keep the rest for the next one.
                self.buffer.extend(buffered[index + 1 :])
                return

    def _bridge(self, update: BookUpdate) -> bool:
        """In SYNCING with a snapshot loaded: drop stale diffs, find the bridge, go live."""
        if self.state is not BookState.SYNCING:
            return self.on_diff(update)
        last = self.last_id
        if self.futures:
            if update.last_id < last:
                return False  # older than the snapshot
            bridges = update.first_id <= last <= update.last_id
        else:
            if update.last_id <= last:
                return False
            bridges = update.first_id <= last + 1 <= update.last_id
        if not bridges:
            # The first diff after the snapshot starts beyond it: the snapshot is too old.
            self._snapshot_loaded = False
            self.book.clear()
            self.buffer.clear()
            self.buffer.append(update)
            # Still SYNCING, but an event like any other: listeners see why it waits.
            self._move(BookState.SYNCING, "snapshot_too_old", update.last_id, update.ts_recv)
            self._ask_snapshot()
            return False
        problem = self.book.apply(update.bids, update.asks)
        self.last_id = update.last_id
        self.last_ts = update.ts_recv
        self.applied += 1
        if problem is not None:  # crossed, or a side emptied down to the snapshot's edge
            self._resync(problem, None)
            return False
        self._move(BookState.LIVE, "bridged", update.last_id, update.ts_recv)
        return True

    def invalidate(self, reason: str, update_id: int = -1, ts: int = 0) -> None:
        """Treat a diff the venue sent but that cannot be applied (bad level) like a gap."""
        if self.state is BookState.SYNCING and not self._snapshot_loaded:
            return  # nothing applied yet: the bridge check will see the hole
        self._resync(reason, None)

    def restart(self, reason: str) -> None:
        """Throw the book away and sync again (after a reconnect, diffs were missed)."""
        self._resync(reason, None)

    def check_stale(self, now_ns: int) -> bool:
        """Mark a LIVE book STALE if no diff came for ``stale_after_s``; return if it is."""
        if self.state is BookState.LIVE and now_ns - self.last_ts > self.stale_after_ns:
            self._move(BookState.STALE, "no update", self.last_id, now_ns)
        return self.state is BookState.STALE

    @property
    def live(self) -> bool:
        """Return whether the book may be read."""
        return self.state is BookState.LIVE
