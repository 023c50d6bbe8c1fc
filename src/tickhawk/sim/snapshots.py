"""A short history of book snapshots, to answer a depth request with an old one on command.

Only books with a subscribed depth stream are kept, every ``every_ms`` of
simulated time, ``keep`` of them per book. A kept snapshot is two dict copies
(a few microseconds); sorting waits until one is served.
"""

from __future__ import annotations

from collections import deque

from tickhawk.sim.book import SimBook

__all__ = ["BookHistory", "KeptSnapshot"]

KeptSnapshot = tuple[int, int, dict[int, int], dict[int, int]]
"""``(time_ms, update_id, bids, asks)``: one book as it was."""


class BookHistory:
    """Kept snapshots of some books, oldest first."""

    def __init__(self, every_ms: int = 250, keep: int = 16) -> None:
        self.every_ms = every_ms
        self.keep = keep
        self.next_ms = 0
        self._kept: dict[int, deque[KeptSnapshot]] = {}

    def record(self, now_ms: int, books: dict[int, SimBook]) -> None:
        """Keep the current state of ``books`` (symbol number → book) as of ``now_ms``."""
        self.next_ms = now_ms + self.every_ms
        for index, book in books.items():
            kept = self._kept.get(index)
            if kept is None:
                kept = self._kept[index] = deque(maxlen=self.keep)
            kept.append((now_ms, book.update_id, dict(book.bids), dict(book.asks)))
        for index in [index for index in self._kept if index not in books]:
            del self._kept[index]  # nobody listens to this book's depth any more

    def oldest_ms(self, index: int) -> int | None:
        """Return the time of the oldest kept snapshot of book ``index``."""
        kept = self._kept.get(index)
        return kept[0][0] if kept else None

    def find(self, index: int, before_ms: int) -> KeptSnapshot | None:
        """Return the newest snapshot of book ``index`` taken at or before ``before_ms``.

        When none is that old, return the oldest kept (None when none is kept).
        """
        kept = self._kept.get(index)
        if not kept:
            return None
        for entry in reversed(kept):
            if entry[0] <= before_ms:
                return entry
        return kept[0]
