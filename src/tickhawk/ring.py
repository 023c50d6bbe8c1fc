"""A fixed-capacity ring of references, preallocated: memory is bounded by construction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["Ring"]

T = TypeVar("T")


class Ring(Generic[T]):
    """Keep the last ``capacity`` items appended; O(1) append, oldest overwritten."""

    __slots__ = ("_items", "_next", "capacity", "count")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("ring capacity must be positive")
        self.capacity = capacity
        self._items: list[T | None] = [None] * capacity
        self._next = 0
        self.count = 0  # items ever appended

    def append(self, item: T) -> None:
        """Append ``item``, overwriting the oldest when full."""
        index = self._next
        self._items[index] = item
        index += 1
        self._next = 0 if index == self.capacity else index
        self.count += 1

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def last(self) -> T | None:
        """Return the newest item, or ``None`` when empty."""
        if not self.count:
            return None
        return self._items[self._next - 1]

    def __iter__(self) -> Iterator[T]:
        """Iterate from the oldest kept item to the newest."""
        size = len(self)
        start = (self._next - size) % self.capacity
        items = self._items
        for offset in range(size):
            item = items[(start + offset) % self.capacity]
            assert item is not None
            yield item

    def latest(self, n: int) -> list[T]:
        """Return up to ``n`` newest items, oldest first."""
        size = min(n, len(self))
        items = self._items
        start = self._next - size
        out = [items[(start + i) % self.capacity] for i in range(size)]
        return [item for item in out if item is not None]
