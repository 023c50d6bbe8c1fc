"""The simulated order book of one symbol (L2, integer ticks and lots).

Every change goes through :meth:`SimBook.set_bid` / :meth:`SimBook.set_ask`,
which also record it in the depth accumulators of the subscribed diff
streams; :meth:`SimBook.commit` closes one book event and gives it the next
update id. The book is never crossed and never has an empty side: the market
model asks before removing a side's last level.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DepthAccumulator", "SimBook", "seed_levels"]

_SCAN = 512  # ticks to scan for the next level before sorting the keys


class DepthAccumulator:
    """Level changes of one book since the last diff message of one cadence."""

    __slots__ = ("asks", "bids", "cadence_ms", "first_id", "last_id")

    def __init__(self, cadence_ms: int) -> None:
        self.cadence_ms = cadence_ms
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.first_id = -1
        self.last_id = -1

    def take(self) -> tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]] | None:
        """Return ``(U, u, bids best first, asks best first)`` and reset, or None if no change."""
        if self.first_id < 0:
            return None
        out = (
            self.first_id,
            self.last_id,
            sorted(self.bids.items(), reverse=True),
            sorted(self.asks.items()),
        )
        self.bids = {}
        self.asks = {}
        self.first_id = -1
        self.last_id = -1
        return out


class SimBook:
    """Price levels of one symbol; ``update_id`` is the id of the last committed event."""

    __slots__ = ("accumulators", "asks", "best_ask", "best_bid", "bids", "update_id")

    def __init__(self, update_id: int) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.best_bid = 0
        self.best_ask = 0
        self.update_id = update_id
        self.accumulators: list[DepthAccumulator] = []

    def load(self, bids: dict[int, int], asks: dict[int, int]) -> None:
        """Replace the levels (initial book); both sides must be non-empty and uncrossed."""
        if not bids or not asks or max(bids) >= min(asks):
            raise ValueError("an initial book needs both sides and must not be crossed")
        self.bids = dict(bids)
        self.asks = dict(asks)
        self.best_bid = max(bids)
        self.best_ask = min(asks)

    def set_bid(self, price: int, qty: int) -> None:
        """Set the bid level ``price`` to ``qty`` lots (0 removes it)."""
        bids = self.bids
        if qty:
            bids[price] = qty
            if price > self.best_bid:
                self.best_bid = price
        else:
            del bids[price]
            if price == self.best_bid:
                self.best_bid = self._next_bid(price)
        for accumulator in self.accumulators:
            accumulator.bids[price] = qty

    def set_ask(self, price: int, qty: int) -> None:
        """Set the ask level ``price`` to ``qty`` lots (0 removes it)."""
        asks = self.asks
        if qty:
            asks[price] = qty
            if price < self.best_ask:
                self.best_ask = price
        else:
            del asks[price]
            if price == self.best_ask:
                self.best_ask = self._next_ask(price)
        for accumulator in self.accumulators:
            accumulator.asks[price] = qty

    def commit(self) -> int:
        """Close one book event: give it the next update id and return the id."""
        update_id = self.update_id + 1
        self.update_id = update_id
        for accumulator in self.accumulators:
            if accumulator.first_id < 0:
                accumulator.first_id = update_id
            accumulator.last_id = update_id
        return update_id

    def _next_bid(self, price: int) -> int:
        bids = self.bids
        for candidate in range(price - 1, price - _SCAN, -1):
            if candidate in bids:
                return candidate
        return max(bids) if bids else 0

    def _next_ask(self, price: int) -> int:
        asks = self.asks
        for candidate in range(price + 1, price + _SCAN):
            if candidate in asks:
                return candidate
        return min(asks) if asks else 0

    def snapshot(self, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Return the best ``limit`` levels per side, best first."""
        bids = sorted(self.bids.items(), reverse=True)[:limit]
        asks = sorted(self.asks.items())[:limit]
        return bids, asks


def seed_levels(
    rng: np.random.Generator, fair: float, lots: float, levels: int
) -> tuple[dict[int, int], dict[int, int]]:
    """Return initial ``(bids, asks)`` around ``fair`` (ticks): ``levels`` per side.

    The top 30 ticks are dense (3 in 4 present), the rest spread out to
    ``2 * levels`` ticks; sizes are Pareto-distributed around ``lots``.
    """
    near = min(30, levels)
    reach = 2 * levels
    top_bid = math.floor(fair)
    sides: list[dict[int, int]] = []
    for direction in (-1, 1):
        offsets = np.flatnonzero(rng.random(near) < 0.75).tolist()
        tail = rng.choice(np.arange(near, reach), levels - near, replace=False)
        offsets = [0, *offsets, *sorted(tail.tolist())]
        sizes = lots * (rng.pareto(1.6, len(offsets)) + 1.0)
        start = top_bid if direction < 0 else top_bid + 1
        sides.append(
            {
                start + direction * offset: max(1, int(size))
                for offset, size in zip(offsets, sizes.tolist(), strict=True)
                if start + direction * offset > 0
            }
        )
    return sides[0], sides[1]
