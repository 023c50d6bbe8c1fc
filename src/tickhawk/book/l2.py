"""An L2 order book: price levels per side, best bid/ask in O(1), bounded depth.

Each side keeps every level in a dict ``price → qty``. Only the *near* levels
— the best ``near`` of them, at most twice that — are also kept in order, in a
short sorted list of keys with the best last (bid prices ascending, ask
prices negated ascending). Every *far* level is worse than the worst near
one, so a change far from the top is one comparison and one dict store,
and a change near the top is a bisect in a short list whose ``memmove``
shifts only a few hundred entries at most. When deletions empty the near
list it is refilled from the far levels (a sort; rare: the price has to run
through the whole near range first).

Each side has a *horizon*: levels strictly better than it are exact, and the
book keeps no others. Two things set it:

- a snapshot cut at its ``limit`` (:meth:`L2Book.load` is told the limit it
  was requested with; a side holding that many levels was cut) says nothing
  of levels worse than its worst one, and a level there that never changes
  never shows in a diff. The horizon is then the float just worse than the
  snapshot's worst level (``math.nextafter``): that level itself is exact,
  anything strictly worse is not;
- depth is bounded: past ``max_levels`` levels on a side (plus 10 % slack, so
  the trim is rare) the worst levels are dropped, and the horizon moves to
  the best of them.

A diff's level at or beyond the horizon is not stored (it would sit among
levels the book does not know), so ``bids``, ``asks``, :meth:`L2Book.levels`
and :meth:`L2Book.cumulative` only ever hold exact levels; a side may simply
have fewer than asked. If deletions ever empty a side down to its horizon the
top of book is unknown, and :attr:`L2Book.exhausted` says so; the sync treats
it like a gap and fetches a new snapshot.

Two implementations, one behaviour: :class:`PythonL2Book` here, and the same
algorithm compiled (``tickhawk/book/_l2core.pyx``, built by ``pip install``
when a C compiler is there; its levels live in a C hash table and ``bids`` /
``asks`` are read-only mappings instead of dicts). :data:`L2Book` is the
compiled one when it imports, else the pure-Python one; set
``TICKHAWK_PURE_PYTHON=1`` to force the pure one. :data:`IMPLEMENTATION`
says which is in use.
"""

from __future__ import annotations

import math
import os
import sys
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tickhawk.book import _l2core

__all__ = ["IMPLEMENTATION", "CompiledL2Book", "L2Book", "PythonL2Book"]


class _Side:
    """One side. ``sign`` is +1 for bids, -1 for asks: key = sign × price, best = max key."""

    __slots__ = ("horizon_key", "keys", "levels", "near", "sign")

    def __init__(self, sign: float, near: int) -> None:
        self.sign = sign
        self.near = near
        self.levels: dict[float, float] = {}
        self.keys: list[float] = []  # the near levels' keys, ascending: best last
        self.horizon_key = -math.inf  # levels are exact, and kept, only above it

    def clear(self) -> None:
        self.levels.clear()
        self.keys.clear()
        self.horizon_key = -math.inf

    def load(self, levels: Iterable[tuple[float, float]], cap: int, limit: int | None) -> None:
        self.clear()
        sign = self.sign
        given = list(levels)
        last = dict(given)  # a price given twice: the last one counts, as in apply
        ordered = sorted(((sign * p, p, q) for p, q in last.items() if q > 0.0), reverse=True)
        if len(ordered) > cap:
            self.horizon_key = ordered[cap][0]
            del ordered[cap:]
        elif ordered and limit is not None and len(given) >= limit:
            # Cut by the venue: its worst level is exact, anything strictly worse is not.
            self.horizon_key = math.nextafter(ordered[-1][0], -math.inf)
        self.levels.update((p, q) for _, p, q in ordered)
        self.keys[:] = [k for k, _, _ in reversed(ordered[: self.near])]

    def apply(self, changes: list[tuple[float, float]], cap: int) -> None:
        # Bids and asks have their own loop so that neither pays a multiply per level.
        if not self.keys and self.levels:
            self._refill()  # far levels only: the near list must hold the best first
        if self.sign > 0.0:
            self._apply_bids(changes)
        else:
            self._apply_asks(changes)
        if len(self.levels) > cap + cap // 10:
            self._trim(cap)

    def _apply_bids(self, changes: list[tuple[float, float]]) -> None:
        levels = self.levels
        keys = self.keys
        horizon = self.horizon_key  # nothing at or below it is kept
        worst = keys[0] if keys else horizon  # the worst near key; far levels are below it
        for price, qty in changes:
            if qty:
                if price > worst:
                    if price not in levels:
                        insort(keys, price)
                        if len(keys) > 2 * self.near:
                            del keys[: self.near]  # the worst half becomes far
                            worst = keys[0]
                    levels[price] = qty
                elif price > horizon:
                    levels[price] = qty
            elif price in levels:
                del levels[price]
                if price >= worst:
                    index = bisect_left(keys, price)
                    if index < len(keys) and keys[index] == price:
                        del keys[index]
                    if not keys and levels:
                        self._refill()
                    worst = keys[0] if keys else horizon

    def _apply_asks(self, changes: list[tuple[float, float]]) -> None:
        levels = self.levels
        keys = self.keys
        horizon = -self.horizon_key  # nothing at or above it is kept
        worst = -keys[0] if keys else horizon  # the worst near ask; far levels are above it
        for price, qty in changes:
            if qty:
                if price < worst:
                    if price not in levels:
                        insort(keys, -price)
                        if len(keys) > 2 * self.near:
                            del keys[: self.near]
                            worst = -keys[0]
                    levels[price] = qty
                elif price < horizon:
                    levels[price] = qty
            elif price in levels:
                del levels[price]
                if price <= worst:
                    index = bisect_left(keys, -price)
                    if index < len(keys) and keys[index] == -price:
                        del keys[index]
                    if not keys and levels:
                        self._refill()
                    worst = -keys[0] if keys else horizon

    def _refill(self) -> None:
        sign = self.sign
        best = sorted((sign * p for p in self.levels), reverse=True)[: self.near]
        self.keys[:] = best[::-1]

    def _trim(self, cap: int) -> None:
        sign = self.sign
        ordered = sorted((sign * p for p in self.levels), reverse=True)
        dropped = ordered[cap:]
        if dropped and dropped[0] > self.horizon_key:
            self.horizon_key = dropped[0]
        for key in dropped:
            del self.levels[sign * key]
        keys = self.keys
        if keys and keys[0] <= self.horizon_key:
            del keys[: bisect_right(keys, self.horizon_key)]

    def best_key(self) -> float:
        keys = self.keys
        return keys[-1] if keys else -math.inf

    def ordered(self, n: int) -> list[float]:
        """Return the best ``n`` keys, best first."""
        keys = self.keys
        if n <= len(keys) or len(keys) == len(self.levels):
            return keys[: -n - 1 : -1] if n > 0 else []
        sign = self.sign
        return sorted((sign * p for p in self.levels), reverse=True)[:n]


class PythonL2Book:
    """One symbol's aggregated price levels (pure Python).

    ``bids`` and ``asks`` map price to quantity: every level strictly better
    than the side's horizon, exact, and no other. ``max_levels`` bounds each
    side; ``near`` is how many top levels are kept in order for O(1) reads.
    """

    __slots__ = ("_asks", "_bids", "asks", "bids", "max_levels")

    def __init__(self, max_levels: int = 5000, *, near: int = 256) -> None:
        if max_levels <= 0 or near <= 0:
            raise ValueError("max_levels and near must be positive")
        self.max_levels = max_levels
        self._bids = _Side(1.0, near)
        self._asks = _Side(-1.0, near)
        self.bids: Mapping[float, float] = self._bids.levels
        self.asks: Mapping[float, float] = self._asks.levels

    # -- changes ----------------------------------------------------------------

    def clear(self) -> None:
        """Remove every level."""
        self._bids.clear()
        self._asks.clear()

    def load(
        self,
        bids: Iterable[tuple[float, float]],
        asks: Iterable[tuple[float, float]],
        *,
        limit: int | None = None,
    ) -> None:
        """Replace the whole book with a snapshot (cut to the best ``max_levels`` per side).

        ``limit`` is the ``limit`` the snapshot was requested with: a side that
        holds that many levels (or more) was cut by the venue, so its horizon
        is set just beyond its worst level (exact itself). None: not cut.
        """
        self._bids.load(bids, self.max_levels, limit)
        self._asks.load(asks, self.max_levels, limit)

    def apply(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> str | None:
        """Apply level changes: ``qty`` is the new total at ``price``; 0 removes the level.

        Return why the book can no longer be trusted, ``"crossed"`` or
        ``"depth_exhausted"`` (see :attr:`crossed`, :attr:`exhausted`), else None.
        """
        bid_side = self._bids
        ask_side = self._asks
        if bids:
            bid_side.apply(bids, self.max_levels)
        if asks:
            ask_side.apply(asks, self.max_levels)
        bid_keys = bid_side.keys
        ask_keys = ask_side.keys
        if bid_keys and ask_keys and bid_keys[-1] >= -ask_keys[-1]:
            return "crossed"
        horizon = bid_side.horizon_key  # -inf until levels were left out
        if horizon > -math.inf and (not bid_keys or bid_keys[-1] <= horizon):
            return "depth_exhausted"
        horizon = ask_side.horizon_key
        if horizon > -math.inf and (not ask_keys or ask_keys[-1] <= horizon):
            return "depth_exhausted"
        return None

    # -- reads --------------------------------------------------------------------

    @property
    def best_bid(self) -> float:
        """Return the highest bid price, NaN if there is none."""
        keys = self._bids.keys
        return keys[-1] if keys else math.nan

    @property
    def best_ask(self) -> float:
        """Return the lowest ask price, NaN if there is none."""
        keys = self._asks.keys
        return -keys[-1] if keys else math.nan

    def top(self) -> tuple[float, float, float, float]:
        """Return ``(bid, bid_qty, ask, ask_qty)``; NaN for an empty side."""
        bid_keys = self._bids.keys
        ask_keys = self._asks.keys
        bid = bid_keys[-1] if bid_keys else math.nan
        ask = -ask_keys[-1] if ask_keys else math.nan
        return (
            bid,
            self.bids[bid] if bid_keys else math.nan,
            ask,
            self.asks[ask] if ask_keys else math.nan,
        )

    @property
    def nbytes(self) -> int:
        """Return the bytes the book's level tables take now (the dicts and key lists)."""
        sides = (self._bids, self._asks)
        return sum(sys.getsizeof(side.levels) + sys.getsizeof(side.keys) for side in sides)

    @property
    def bid_horizon(self) -> float:
        """Return the bid horizon: bids strictly above it are exact, no others are kept.

        ``-inf``: none. After a cut snapshot it is the float just below the
        snapshot's worst bid; after a trim, the best bid dropped.
        """
        return self._bids.horizon_key

    @property
    def ask_horizon(self) -> float:
        """Return the ask horizon: asks strictly below it are exact, no others are kept.

        ``inf``: none. After a cut snapshot it is the float just above the
        snapshot's worst ask; after a trim, the best ask dropped.
        """
        return -self._asks.horizon_key

    @property
    def crossed(self) -> bool:
        """Return whether the best bid is at or above the best ask (a broken book)."""
        bid_keys = self._bids.keys
        ask_keys = self._asks.keys
        return bool(bid_keys and ask_keys) and bid_keys[-1] >= -ask_keys[-1]

    @property
    def exhausted(self) -> bool:
        """Return whether a side's best level is unknown (it was emptied to its horizon)."""
        for side in (self._bids, self._asks):
            if side.horizon_key > -math.inf and side.best_key() <= side.horizon_key:
                return True
        return False

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)

    def levels(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Return the top ``n`` bid and ask levels, best first.

        Only exact levels (strictly better than the horizon): fewer than ``n``
        when that is all the book knows.
        """
        bids = self.bids
        asks = self.asks
        return (
            [(k, bids[k]) for k in self._bids.ordered(n)],
            [(-k, asks[-k]) for k in self._asks.ordered(n)],
        )

    def depth_within(self, bps: float) -> tuple[float, float]:
        """Return total bid and ask quantity within ``bps`` basis points of the mid.

        A side whose band reaches its horizon is NaN: the book does not know
        every level in it (a sum of the known ones would read as the depth).
        """
        if not (self._bids.keys and self._asks.keys):
            return 0.0, 0.0
        mid = 0.5 * (self.best_bid + self.best_ask)
        low = mid * (1.0 - bps / 10_000.0)
        high = mid * (1.0 + bps / 10_000.0)
        return (
            sum(q for p, q in self.bids.items() if p >= low)
            if low > self._bids.horizon_key
            else math.nan,
            sum(q for p, q in self.asks.items() if p <= high)
            if -high > self._asks.horizon_key
            else math.nan,
        )

    def cumulative(self, n: int) -> tuple[list[float], list[float]]:
        """Return cumulative quantity over the top ``n`` levels of each side, best first.

        Over exact levels only, as :meth:`levels`: fewer than ``n`` if need be.
        """
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


def _compiled() -> type[_l2core.L2Book] | None:
    try:
        from tickhawk.book import _l2core
    except ImportError:  # not built (no C compiler at install time): pure Python
        return None
    return _l2core.L2Book


#: The compiled book when its extension was built and imports, else None.
CompiledL2Book = _compiled()

if TYPE_CHECKING:
    L2Book = PythonL2Book  # the compiled book has the same API (tests/test_book.py)
elif CompiledL2Book is None or os.environ.get("TICKHAWK_PURE_PYTHON", "") not in ("", "0"):
    L2Book = PythonL2Book
else:
    L2Book = CompiledL2Book

#: Which book :data:`L2Book` is: ``"compiled"`` (the C extension) or ``"python"``.
IMPLEMENTATION = "python" if L2Book is PythonL2Book else "compiled"
