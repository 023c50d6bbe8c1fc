"""Fixed-capacity rings, preallocated: memory is set at start and never grows."""

from __future__ import annotations

from array import array

from tickhawk.model import Trade

__all__ = ["TradeRing"]


class TradeRing:
    """The last ``capacity`` trades of one symbol, stored as typed columns.

    Columns (``price``, ``qty``, ``ts_event``, ``ts_recv``, ``id``, ``side``)
    are preallocated :class:`array.array` buffers: 41 bytes per trade, against
    about 110 for a kept :class:`~tickhawk.model.Trade` object, and no
    allocation per append. ``numpy.frombuffer(ring.price)`` views a column
    without copying; the newest item is at ``(ring.next - 1) % capacity``.
    """

    __slots__ = (
        "capacity",
        "count",
        "id",
        "next",
        "price",
        "qty",
        "side",
        "symbol",
        "ts_event",
        "ts_recv",
    )

    def __init__(self, symbol: str, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("trade ring capacity must be positive")
        self.symbol = symbol
        self.capacity = capacity
        self.price = array("d", bytes(8 * capacity))
        self.qty = array("d", bytes(8 * capacity))
        self.ts_event = array("q", bytes(8 * capacity))
        self.ts_recv = array("q", bytes(8 * capacity))
        self.id = array("q", bytes(8 * capacity))
        self.side = array("b", bytes(capacity))
        self.next = 0
        self.count = 0  # trades ever appended

    @staticmethod
    def bytes_per_trade() -> int:
        """Return the memory one slot takes."""
        return 8 * 5 + 1

    def append(self, trade: Trade) -> None:
        """Store ``trade``, overwriting the oldest when full."""
        index = self.next
        self.price[index] = trade.price
        self.qty[index] = trade.qty
        self.ts_event[index] = trade.ts_event
        self.ts_recv[index] = trade.ts_recv
        self.id[index] = trade.id
        self.side[index] = trade.side
        index += 1
        self.next = 0 if index == self.capacity else index
        self.count += 1

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def _trade(self, index: int) -> Trade:
        return Trade(
            self.symbol,
            self.id[index],
            self.price[index],
            self.qty[index],
            self.side[index],
            self.ts_event[index],
            self.ts_recv[index],
        )

    def last(self) -> Trade | None:
        """Return the newest trade, or ``None`` when empty."""
        if not self.count:
            return None
        return self._trade((self.next - 1) % self.capacity)

    def latest(self, n: int) -> list[Trade]:
        """Return up to ``n`` newest trades, oldest first."""
        size = min(n, len(self))
        start = self.next - size
        return [self._trade((start + i) % self.capacity) for i in range(size)]
