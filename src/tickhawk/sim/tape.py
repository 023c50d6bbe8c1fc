"""Bounded trade history of one symbol, for the REST trades and aggTrades endpoints.

Trade ids are contiguous, so a trade's id is its position: the tape stores
only aggregate id, price (ticks), quantity (lots), time (ms) and side, in a
ring of fixed capacity. Appends go to small Python lists first and reach the
ring in bulk (:meth:`flush`), which keeps the per-trade cost to a few appends.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["AggTrades", "TradeTape", "Trades"]

_FLUSH_AT = 4_096

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


class Trades:
    """A window of trades in id order (columns as arrays)."""

    __slots__ = ("agg", "ids", "maker", "price", "qty", "time")

    def __init__(self, ids: Ints, agg: Ints, price: Ints, qty: Ints, time: Ints, maker: Bools):
        self.ids = ids
        self.agg = agg
        self.price = price
        self.qty = qty
        self.time = time
        self.maker = maker

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index: slice | npt.NDArray[np.intp]) -> Trades:
        """Return the trades at ``index``."""
        return Trades(
            self.ids[index],
            self.agg[index],
            self.price[index],
            self.qty[index],
            self.time[index],
            self.maker[index],
        )


class AggTrades:
    """Aggregate trades: runs of trades with one aggregate id (columns as arrays)."""

    __slots__ = ("agg", "first", "last", "maker", "price", "qty", "time")

    def __init__(self, trades: Trades) -> None:
        agg = trades.agg
        if len(agg) == 0:
            starts = np.zeros(0, dtype=np.intp)
        else:
            starts = np.flatnonzero(np.concatenate(([True], agg[1:] != agg[:-1])))
        ends = np.append(starts[1:], len(agg)).astype(np.intp)
        self.agg = agg[starts]
        self.price = trades.price[starts]
        self.qty = np.add.reduceat(trades.qty, starts) if len(starts) else trades.qty[:0]
        self.first = trades.ids[starts]
        self.last = trades.ids[ends - 1] if len(starts) else trades.ids[:0]
        self.time = trades.time[starts]
        self.maker = trades.maker[starts]

    def __len__(self) -> int:
        return len(self.agg)

    def select(
        self,
        from_id: int | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> npt.NDArray[np.intp]:
        """Return the positions Binance's ``/api/v3/aggTrades`` would list.

        ``fromId`` and the time bounds are inclusive; with none of them, the
        most recent ``limit``; with only ``endTime``, the last ``limit`` up to it;
        otherwise the first ``limit`` from the lower bound.
        """
        low = 0
        high = len(self.agg)
        if from_id is not None:
            low = max(low, int(np.searchsorted(self.agg, from_id, side="left")))
        if start_ms is not None:
            low = max(low, int(np.searchsorted(self.time, start_ms, side="left")))
        if end_ms is not None:
            high = min(high, int(np.searchsorted(self.time, end_ms, side="right")))
        if high <= low:
            return np.zeros(0, dtype=np.intp)
        if from_id is None and start_ms is None:
            return np.arange(max(low, high - limit), high, dtype=np.intp)
        return np.arange(low, min(high, low + limit), dtype=np.intp)


class TradeTape:
    """The last ``capacity`` trades of one symbol; ``first_id`` is the id of its first trade."""

    def __init__(self, capacity: int, first_id: int) -> None:
        self.capacity = max(1, capacity)
        self.next_id = first_id  # id of the next trade to add
        self._flushed_id = first_id  # trades below this id are in the ring
        self._first_id = first_id
        self._agg = np.zeros(self.capacity, dtype=np.int64)
        self._price = np.zeros(self.capacity, dtype=np.int64)
        self._qty = np.zeros(self.capacity, dtype=np.int64)
        self._time = np.zeros(self.capacity, dtype=np.int64)
        self._maker = np.zeros(self.capacity, dtype=np.bool_)
        self._pending: tuple[list[int], list[int], list[int], list[int], list[bool]] = (
            [],
            [],
            [],
            [],
            [],
        )

    def add(self, agg: int, price: int, qty: int, time_ms: int, buyer_maker: bool) -> int:
        """Append one trade; return its id."""
        pending = self._pending
        pending[0].append(agg)
        pending[1].append(price)
        pending[2].append(qty)
        pending[3].append(time_ms)
        pending[4].append(buyer_maker)
        trade_id = self.next_id
        self.next_id = trade_id + 1
        if len(pending[0]) >= _FLUSH_AT:
            self.flush()
        return trade_id

    def flush(self) -> None:
        """Move appended trades into the ring."""
        pending = self._pending
        count = len(pending[0])
        if count == 0:
            return
        ids = np.arange(self._flushed_id, self._flushed_id + count, dtype=np.int64)
        if count > self.capacity:
            ids = ids[-self.capacity :]
        slots = ids % self.capacity
        columns: tuple[npt.NDArray[np.generic], ...] = (
            self._agg,
            self._price,
            self._qty,
            self._time,
            self._maker,
        )
        lists: tuple[list[int] | list[bool], ...] = pending
        for column, values in zip(columns, lists, strict=True):
            column[slots] = values[-len(ids) :]
            values.clear()
        self._flushed_id += count

    def window(self) -> Trades:
        """Return the retained trades in id order (a copy)."""
        self.flush()
        first = max(self._first_id, self.next_id - self.capacity)
        ids = np.arange(first, self.next_id, dtype=np.int64)
        slots = ids % self.capacity
        return Trades(
            ids,
            self._agg[slots],
            self._price[slots],
            self._qty[slots],
            self._time[slots],
            self._maker[slots],
        )

    def aggregates(self) -> AggTrades:
        """Return the retained aggregate trades, dropping one cut short by the ring."""
        trades = self.window()
        if self.next_id - self._first_id > self.capacity and len(trades):
            first_agg = trades.agg[0]
            keep = int(np.searchsorted(trades.agg, first_agg, side="right"))
            trades = trades.take(slice(keep, None))
        return AggTrades(trades)
