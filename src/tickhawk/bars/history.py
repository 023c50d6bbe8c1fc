"""Closed bars of one symbol and interval, kept in preallocated columns.

A kept :class:`~tickhawk.model.Bar` object costs about 330 bytes (the struct,
six float objects and a large int); the same bar as one slot of seven typed
columns costs 56. :class:`BarHistory` is a ring of ``maxlen`` such slots,
allocated in full when it is built, so its memory is fixed by the
configuration and never grows. Readers see a bounded sequence of bars,
oldest first, like the ``deque`` it replaces: ``len``, ``history[-1]``,
iteration, ``reversed`` — each item a :class:`Bar` built on demand — and,
for vectorised readers, :meth:`BarHistory.column` returns the newest values
of one field as a NumPy array, newest last.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from tickhawk.model import Bar

__all__ = ["FIELDS", "BarField", "BarHistory"]

#: A column of the history: every numeric field of :class:`~tickhawk.model.Bar`.
BarField = Literal["open_time", "open", "high", "low", "close", "volume", "trades"]
#: The columns, in :class:`~tickhawk.model.Bar`'s field order.
FIELDS: tuple[BarField, ...] = ("open_time", "open", "high", "low", "close", "volume", "trades")
_INTEGER_FIELDS = frozenset({"open_time", "trades"})


class BarHistory(Sequence[Bar]):
    """The last ``maxlen`` closed bars of one symbol and interval, oldest first.

    Columns (``open_time``, ``open``, ``high``, ``low``, ``close``,
    ``volume``, ``trades``) are :class:`array.array` buffers of ``maxlen``
    slots (``q`` for the two integers, ``d`` for the rest): 56 bytes per bar,
    no allocation per append. The newest bar is in slot
    ``(history.next - 1) % maxlen``; ``appended`` counts the bars ever
    appended, so a reader can tell that a bar closed since it last looked.
    """

    __slots__ = (
        "appended",
        "close",
        "high",
        "interval",
        "low",
        "maxlen",
        "next",
        "open",
        "open_time",
        "symbol",
        "trades",
        "volume",
    )

    def __init__(self, symbol: str, interval: str, maxlen: int) -> None:
        if maxlen <= 0:
            raise ValueError("bar history size must be positive")
        self.symbol = symbol
        self.interval = interval
        self.maxlen = maxlen
        self.open_time = array("q", [0]) * maxlen
        self.open = array("d", [0.0]) * maxlen
        self.high = array("d", [0.0]) * maxlen
        self.low = array("d", [0.0]) * maxlen
        self.close = array("d", [0.0]) * maxlen
        self.volume = array("d", [0.0]) * maxlen
        self.trades = array("q", [0]) * maxlen
        self.next = 0  # the slot the next bar goes to
        self.appended = 0  # bars ever appended

    @staticmethod
    def bytes_per_bar() -> int:
        """Return the memory one slot takes (exact: seven 8-byte columns)."""
        return 8 * len(FIELDS)

    # -- writes -----------------------------------------------------------------

    def append(self, bar: Bar) -> None:
        """Store ``bar``'s numbers, overwriting the oldest when full."""
        index = self.next
        self.open_time[index] = bar.open_time
        self.open[index] = bar.open
        self.high[index] = bar.high
        self.low[index] = bar.low
        self.close[index] = bar.close
        self.volume[index] = bar.volume
        self.trades[index] = bar.trades
        index += 1
        self.next = 0 if index == self.maxlen else index
        self.appended += 1

    def extend(self, bars: Iterable[Bar]) -> None:
        """Append each of ``bars`` in order (only the last ``maxlen`` stay)."""
        for bar in bars:
            self.append(bar)

    # -- reads ------------------------------------------------------------------

    def __len__(self) -> int:
        appended = self.appended
        return appended if appended < self.maxlen else self.maxlen

    def _slot(self, index: int) -> int:
        """Return the slot of item ``index`` (0 = oldest, -1 = newest); IndexError outside."""
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("bar history index out of range")
        slot = self.next - size + index
        return slot + self.maxlen if slot < 0 else slot

    def _bar(self, slot: int) -> Bar:
        return Bar(
            self.symbol,
            self.interval,
            self.open_time[slot],
            self.open[slot],
            self.high[slot],
            self.low[slot],
            self.close[slot],
            self.volume[slot],
            self.trades[slot],
        )

    @overload
    def __getitem__(self, index: int) -> Bar: ...
    @overload
    def __getitem__(self, index: slice) -> list[Bar]: ...
    def __getitem__(self, index: int | slice) -> Bar | list[Bar]:
        """Return the bar at ``index`` (0 = oldest, -1 = newest), or a list for a slice."""
        if isinstance(index, slice):
            return [self._bar(self._slot(i)) for i in range(*index.indices(len(self)))]
        return self._bar(self._slot(index))

    def __iter__(self) -> Iterator[Bar]:
        maxlen = self.maxlen
        for slot in range(self.next - len(self), self.next):
            yield self._bar(slot + maxlen if slot < 0 else slot)

    def __reversed__(self) -> Iterator[Bar]:
        maxlen = self.maxlen
        for slot in range(self.next - 1, self.next - len(self) - 1, -1):
            yield self._bar(slot + maxlen if slot < 0 else slot)

    def column(self, field: BarField, n: int | None = None) -> npt.NDArray[np.generic]:
        """Return the newest ``n`` values (default: all) of ``field``, oldest first, newest last.

        ``open_time`` and ``trades`` are ``int64``, the rest ``float64``. The
        array is read-only: a view of the column when the values lie in one
        run of slots (no copy), else a copy; read it before the next bar
        closes, which may overwrite a viewed slot.
        """
        if field not in FIELDS:
            raise ValueError(f"no bar field {field!r}; use one of {', '.join(FIELDS)}")
        size = len(self)
        n = size if n is None else max(0, min(n, size))
        dtype = np.int64 if field in _INTEGER_FIELDS else np.float64
        values = np.frombuffer(getattr(self, field), dtype=dtype)
        end = self.next
        start = end - n  # negative: the run wraps past the last slot
        out = values[start:end] if start >= 0 else np.concatenate((values[start:], values[:end]))
        out.flags.writeable = False
        return out
