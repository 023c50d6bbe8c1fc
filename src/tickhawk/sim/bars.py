"""Kline bars built from the trades the simulator sends, in bounded rings.

Every symbol has a 1-second bar ring and a 1-minute bar ring; longer
intervals are merged from 1-minute bars on request. A bar row holds integer
fields (prices in ticks, quantities in lots, quote amounts in tick*lot units)
so that bars equal, to the unit, the trades that were served.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tickhawk.sim.intervals import bar_opens

__all__ = ["FIELDS", "BarStore", "merge_bars", "reduce_groups"]

# Column order of a bar row.
OPEN, HIGH, LOW, CLOSE, VOLUME, QUOTE, COUNT, BUY_VOLUME, BUY_QUOTE, FIRST, LAST = range(11)
FIELDS = 11
_MAX = np.iinfo(np.int64).max
_MIN = np.iinfo(np.int64).min

Rows = npt.NDArray[np.int64]


def reduce_groups(rows: Rows, starts: npt.NDArray[np.intp]) -> Rows:
    """Merge consecutive row groups (``starts`` = first row of each group) into one bar each.

    Empty sub-bars (no trades) do not set open, high or low; a group with no
    trades is flat at its last close, with first/last trade id -1.
    """
    count = len(starts)
    out = np.empty((count, FIELDS), dtype=np.int64)
    if count == 0:
        return out
    ends = np.empty(count, dtype=np.intp)
    ends[:-1] = starts[1:]
    ends[-1] = len(rows)
    traded = rows[:, COUNT] > 0
    index = np.arange(len(rows))
    first = np.minimum.reduceat(np.where(traded, index, len(rows)), starts)
    has = first < len(rows)
    safe_first = np.where(has, first, ends - 1)
    out[:, CLOSE] = rows[ends - 1, CLOSE]
    out[:, OPEN] = np.where(has, rows[safe_first, OPEN], out[:, CLOSE])
    out[:, HIGH] = np.where(
        has, np.maximum.reduceat(np.where(traded, rows[:, HIGH], _MIN), starts), out[:, CLOSE]
    )
    out[:, LOW] = np.where(
        has, np.minimum.reduceat(np.where(traded, rows[:, LOW], _MAX), starts), out[:, CLOSE]
    )
    for column in (VOLUME, QUOTE, COUNT, BUY_VOLUME, BUY_QUOTE):
        out[:, column] = np.add.reduceat(rows[:, column], starts)
    out[:, FIRST] = np.where(has, rows[safe_first, FIRST], -1)
    out[:, LAST] = np.where(
        has, np.maximum.reduceat(np.where(traded, rows[:, LAST], -1), starts), -1
    )
    return out


def merge_bars(
    opens: npt.NDArray[np.int64], rows: Rows, interval: str
) -> tuple[npt.NDArray[np.int64], Rows]:
    """Merge time-ordered bars (``opens`` = their open times) into bars of ``interval``."""
    if len(opens) == 0:
        return opens, rows
    keys = bar_opens(opens, interval)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[starts], reduce_groups(rows, starts)


class BarStore:
    """Aggregate trades of ``n`` symbols into 1 s bars and 1 min bars.

    Call :meth:`add` for each run of trades at one price (an aggTrade) and
    :meth:`roll_to` as time advances; closed seconds go to the 1 s ring and
    closed minutes to the 1 min ring. Ring sizes bound the memory.
    """

    def __init__(
        self, closes: list[int], start_ms: int, seconds: int = 3_600, minutes: int = 1_440
    ) -> None:
        count = len(closes)
        self.count = count
        self.start_ms = start_ms
        self.first_second = start_ms // 1_000
        self.second = self.first_second
        self.seconds_capacity = max(120, seconds)
        self.minutes_capacity = max(2, minutes)
        # Slot-major, so closing a second writes one contiguous block.
        self._second_ring = np.zeros((self.seconds_capacity, count, FIELDS), dtype=np.int64)
        self._minute_ring = np.zeros((self.minutes_capacity, count, FIELDS), dtype=np.int64)
        self._last_minute = -1
        # The open bar, one list per field (list item access is the fast path).
        self.close = list(closes)
        self._reset()

    def _reset(self) -> None:
        count = self.count
        self.open = list(self.close)
        self.high = list(self.close)
        self.low = list(self.close)
        self.volume = [0] * count
        self.quote = [0] * count
        self.trades = [0] * count
        self.buy_volume = [0] * count
        self.buy_quote = [0] * count
        self.first_id = [-1] * count
        self.last_id = [-1] * count

    def add(
        self, symbol: int, price: int, qty: int, trades: int, buyer_maker: bool, first: int
    ) -> None:
        """Add ``trades`` trades (ids ``first``..) at one price totalling ``qty`` lots."""
        if self.trades[symbol] == 0:
            self.open[symbol] = self.high[symbol] = self.low[symbol] = price
            self.first_id[symbol] = first
        elif price > self.high[symbol]:
            self.high[symbol] = price
        elif price < self.low[symbol]:
            self.low[symbol] = price
        self.close[symbol] = price
        quote = price * qty
        self.volume[symbol] += qty
        self.quote[symbol] += quote
        self.trades[symbol] += trades
        self.last_id[symbol] = first + trades - 1
        if not buyer_maker:
            self.buy_volume[symbol] += qty
            self.buy_quote[symbol] += quote

    def _current_rows(self) -> Rows:
        return np.column_stack(
            [
                self.open,
                self.high,
                self.low,
                self.close,
                self.volume,
                self.quote,
                self.trades,
                self.buy_volume,
                self.buy_quote,
                self.first_id,
                self.last_id,
            ]
        ).astype(np.int64, copy=False)

    def _current_row(self, symbol: int) -> Rows:
        return np.array(
            [
                self.open[symbol],
                self.high[symbol],
                self.low[symbol],
                self.close[symbol],
                self.volume[symbol],
                self.quote[symbol],
                self.trades[symbol],
                self.buy_volume[symbol],
                self.buy_quote[symbol],
                self.first_id[symbol],
                self.last_id[symbol],
            ],
            dtype=np.int64,
        )

    def roll_to(self, time_ms: int) -> None:
        """Close every second (and minute) that ended before ``time_ms``."""
        target = time_ms // 1_000
        while self.second < target:
            self._second_ring[self.second % self.seconds_capacity] = self._current_rows()
            self._reset()
            self.second += 1
            if self.second % 60 == 0:
                self._close_minute(self.second // 60 - 1)

    def _close_minute(self, minute: int) -> None:
        opens, rows = self._second_rows_of_minute(minute, None)
        del opens
        self._minute_ring[minute % self.minutes_capacity] = rows
        self._last_minute = minute

    def _second_rows_of_minute(
        self, minute: int, symbol: int | None
    ) -> tuple[npt.NDArray[np.int64], Rows]:
        """Return the closed 1 s bars of ``minute`` (from the first live second) merged."""
        first = max(minute * 60, self.first_second)
        last = min(minute * 60 + 60, self.second)  # exclusive
        seconds = np.arange(first, last, dtype=np.int64)
        slots = seconds % self.seconds_capacity
        if symbol is None:
            if len(seconds) == 0:
                raise AssertionError("a closed minute has at least one live second")
            # (symbols, seconds, fields), then one group of rows per symbol.
            flat = self._second_ring[slots].transpose(1, 0, 2).reshape(-1, FIELDS)
            starts = np.arange(self.count, dtype=np.intp) * len(seconds)
            return seconds * 1_000, reduce_groups(flat, starts)
        return seconds * 1_000, self._second_ring[slots, symbol]

    def seconds_rows(self, symbol: int) -> tuple[npt.NDArray[np.int64], Rows]:
        """Return the retained 1 s bars of ``symbol``, the open one last: ``(opens, rows)``."""
        first = max(self.first_second, self.second - self.seconds_capacity + 1)
        seconds = np.arange(first, self.second, dtype=np.int64)
        rows = self._second_ring[seconds % self.seconds_capacity, symbol]
        opens = np.append(seconds, self.second) * 1_000
        return opens, np.vstack([rows, self._current_row(symbol)])

    def minute_rows(self, symbol: int) -> tuple[npt.NDArray[np.int64], Rows]:
        """Return the retained 1 min bars of ``symbol``, the open one last: ``(opens, rows)``."""
        current = self.second // 60
        first = max(self.first_second // 60, current - self.minutes_capacity + 1)
        minutes = np.arange(first, current, dtype=np.int64)
        rows = self._minute_ring[minutes % self.minutes_capacity, symbol]
        second_opens, second_rows = self._second_rows_of_minute(current, symbol)
        partial = np.vstack([second_rows, self._current_row(symbol)])
        del second_opens
        merged = reduce_groups(partial, np.zeros(1, dtype=np.intp))
        opens = np.append(minutes, current) * 60_000
        return opens, np.vstack([rows, merged])

    def live_bars(self, symbol: int, interval: str) -> tuple[npt.NDArray[np.int64], Rows]:
        """Return the live bars of ``interval`` for ``symbol``, oldest first, the open one last."""
        if interval == "1s":
            return self.seconds_rows(symbol)
        opens, rows = self.minute_rows(symbol)
        if interval == "1m":
            return opens, rows
        return merge_bars(opens, rows, interval)
