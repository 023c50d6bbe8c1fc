"""An L2 order book: price levels per side, best bid/ask in O(1), bounded depth.

Each side is a dict ``price → qty`` plus a sorted list of its prices (ascending
for both sides; the best bid is the last bid price, the best ask the first ask
price). Changing an existing level is one dict store; adding or removing a
level is a bisect and a ``list`` insert/delete (a short ``memmove`` in C), so a
1,000-level book stays well under a microsecond per level change. Levels
beyond ``max_levels`` per side are pruned from the far end, so memory is
bounded whatever the venue sends.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

__all__ = ["L2Book"]


class L2Book:
    """One symbol's aggregated price levels."""

    __slots__ = ("_ask_prices", "_bid_prices", "asks", "bids", "max_levels", "pruned")

    def __init__(self, max_levels: int = 5000) -> None:
        if max_levels <= 0:
            raise ValueError("max_levels must be positive")
        self.max_levels = max_levels
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self._bid_prices: list[float] = []
        self._ask_prices: list[float] = []
        self.pruned = 0

    # -- changes ----------------------------------------------------------------

    def clear(self) -> None:
        """Remove every level."""
        self.bids.clear()
        self.asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()

    def load(
        self, bids: Iterable[tuple[float, float]], asks: Iterable[tuple[float, float]]
    ) -> None:
        """Replace the whole book with a snapshot."""
        self.clear()
        self.bids.update((p, q) for p, q in bids if q > 0.0)
        self.asks.update((p, q) for p, q in asks if q > 0.0)
        self._bid_prices[:] = sorted(self.bids)
        self._ask_prices[:] = sorted(self.asks)
        self._prune()

    def apply(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        """Apply level changes: ``qty`` is the new total at ``price``; 0 removes the level."""
        if bids:
            _apply_side(self.bids, self._bid_prices, bids)
        if asks:
            _apply_side(self.asks, self._ask_prices, asks)
        if len(self._bid_prices) > self.max_levels or len(self._ask_prices) > self.max_levels:
            self._prune()

    def _prune(self) -> None:
        extra = len(self._bid_prices) - self.max_levels
        if extra > 0:  # the lowest bids are the farthest
            for price in self._bid_prices[:extra]:
                del self.bids[price]
            del self._bid_prices[:extra]
            self.pruned += extra
        extra = len(self._ask_prices) - self.max_levels
        if extra > 0:  # the highest asks are the farthest
            for price in self._ask_prices[-extra:]:
                del self.asks[price]
            del self._ask_prices[-extra:]
            self.pruned += extra

    # -- reads --------------------------------------------------------------------

    @property
    def best_bid(self) -> float:
        """Return the highest bid price, NaN if there is none."""
        prices = self._bid_prices
        return prices[-1] if prices else float("nan")

    @property
    def best_ask(self) -> float:
        """Return the lowest ask price, NaN if there is none."""
        prices = self._ask_prices
        return prices[0] if prices else float("nan")

    def top(self) -> tuple[float, float, float, float]:
        """Return ``(bid, bid_qty, ask, ask_qty)``; NaN for an empty side."""
        nan = float("nan")
        bid_prices = self._bid_prices
        ask_prices = self._ask_prices
        bid = bid_prices[-1] if bid_prices else nan
        ask = ask_prices[0] if ask_prices else nan
        return (
            bid,
            self.bids[bid] if bid_prices else nan,
            ask,
            self.asks[ask] if ask_prices else nan,
        )

    @property
    def crossed(self) -> bool:
        """Return whether the best bid is at or above the best ask (a broken book)."""
        return bool(self._bid_prices and self._ask_prices) and (
            self._bid_prices[-1] >= self._ask_prices[0]
        )

    def __len__(self) -> int:
        return len(self._bid_prices) + len(self._ask_prices)

    def levels(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Return the top ``n`` bid and ask levels, best first."""
        bids = self.bids
        asks = self.asks
        bid_prices = self._bid_prices[: -n - 1 : -1] if n > 0 else []
        return (
            [(p, bids[p]) for p in bid_prices],
            [(p, asks[p]) for p in self._ask_prices[:n]],
        )

    def depth_within(self, bps: float) -> tuple[float, float]:
        """Return total bid and ask quantity within ``bps`` basis points of the mid."""
        if not (self._bid_prices and self._ask_prices):
            return 0.0, 0.0
        mid = 0.5 * (self._bid_prices[-1] + self._ask_prices[0])
        low = mid * (1.0 - bps / 10_000.0)
        high = mid * (1.0 + bps / 10_000.0)
        bids = self.bids
        asks = self.asks
        start = bisect_left(self._bid_prices, low)
        stop = bisect_left(self._ask_prices, high)
        if stop < len(self._ask_prices) and self._ask_prices[stop] == high:
            stop += 1
        return (
            sum(bids[p] for p in self._bid_prices[start:]),
            sum(asks[p] for p in self._ask_prices[:stop]),
        )

    def cumulative(self, n: int) -> tuple[list[float], list[float]]:
        """Return cumulative quantity over the top ``n`` levels of each side, best first."""
        bids, asks = self.levels(n)
        out_bids: list[float] = []
        out_asks: list[float] = []
        total = 0.0
        for _, qty in bids:
            total += qty
            out_bids.append(total)
        total = 0.0
        for _, qty in asks:
            total += qty
            out_asks.append(total)
        return out_bids, out_asks


def _apply_side(
    side: dict[float, float], prices: list[float], levels: list[tuple[float, float]]
) -> None:
    for price, qty in levels:
        if qty:
            if price not in side:
                insort(prices, price)
            side[price] = qty
        elif price in side:
            del side[price]
            del prices[bisect_left(prices, price)]
