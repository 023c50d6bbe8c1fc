"""Time bars aggregated from trades by the trade's exchange time.

A bar covers ``[open_time, open_time + interval)``, aligned to the epoch like
Binance klines. It closes when a trade (or :meth:`TimeBars.advance`) reaches
its end. Intervals with no trade are emitted as flat bars at the previous close
with zero volume, as Binance's klines are, up to ``max_fill`` of them in a row,
so indicators see a regular series.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tickhawk.bars.history import BarHistory
from tickhawk.model import Bar, interval_label

__all__ = ["TimeBars"]


class TimeBars:
    """Aggregate one symbol's trades into bars of one interval.

    ``on_close`` is called with every closed bar, in time order. Closed bars
    are also kept in ``history`` (a :class:`~tickhawk.bars.history.BarHistory`
    of ``history_size`` preallocated slots: a sequence of bars, oldest
    first, with NumPy columns for vectorised readers). The
    forming bar is readable from ``open``/``high``/``low``/``close``/
    ``volume``/``trades`` (``trades == 0`` means none has formed yet).
    """

    __slots__ = (
        "close",
        "end",
        "high",
        "history",
        "interval",
        "interval_ns",
        "late",
        "low",
        "max_fill",
        "on_close",
        "open",
        "open_time",
        "symbol",
        "trades",
        "volume",
    )

    def __init__(
        self,
        symbol: str,
        interval_ns: int,
        on_close: Callable[[Bar], None] | None = None,
        *,
        history_size: int = 1000,
        max_fill: int = 1000,
    ) -> None:
        if interval_ns <= 0:
            raise ValueError("bar interval must be positive")
        self.symbol = symbol
        self.interval_ns = interval_ns
        self.interval = interval_label(interval_ns)
        self.on_close = on_close
        self.history = BarHistory(symbol, self.interval, history_size)
        self.max_fill = max_fill
        self.late = 0
        self.open_time = -1
        self.end = -1
        self.open = self.high = self.low = self.close = 0.0
        self.volume = 0.0
        self.trades = 0

    def add(self, price: float, qty: float, ts: int) -> None:
        """Add one trade at exchange time ``ts`` (ns) to the forming bar."""
        if ts >= self.end:
            self._roll(ts)
        elif ts < self.open_time:
            self.late += 1  # a trade older than the forming bar: keep it in this bar
        if self.trades:
            if price > self.high:
                self.high = price
            elif price < self.low:
                self.low = price
            self.close = price
            self.volume += qty
            self.trades += 1
        else:
            self.open = self.high = self.low = self.close = price
            self.volume = qty
            self.trades = 1

    def advance(self, ts: int) -> None:
        """Close the forming bar (and flat empty ones) if exchange time ``ts`` passed its end."""
        if ts >= self.end and self.open_time >= 0:
            self._roll(ts)

    def _roll(self, ts: int) -> None:
        interval = self.interval_ns
        new_open = ts - ts % interval
        if self.trades:
            self._emit(
                Bar(
                    self.symbol,
                    self.interval,
                    self.open_time,
                    self.open,
                    self.high,
                    self.low,
                    self.close,
                    self.volume,
                    self.trades,
                )
            )
            fill_from = self.end
        else:
            fill_from = self.open_time  # an interval that ended with no trade
        if self.open_time >= 0 and new_open > fill_from:
            gap = (new_open - fill_from) // interval
            if gap > self.max_fill:
                fill_from = new_open - self.max_fill * interval
            close = self.close
            symbol = self.symbol
            label = self.interval
            for open_time in range(fill_from, new_open, interval):
                self._emit(Bar(symbol, label, open_time, close, close, close, close, 0.0, 0))
        self.open_time = new_open
        self.end = new_open + interval
        self.trades = 0
        self.volume = 0.0

    def _emit(self, bar: Bar) -> None:
        self.history.append(bar)
        if self.on_close is not None:
            self.on_close(bar)

    def resume(self, closed: Sequence[Bar], forming: Bar | None = None) -> None:
        """Continue after bars built elsewhere (a warm-up from klines), before any trade.

        ``closed`` bars go to ``history`` (``on_close`` is not called);
        ``forming``, the venue's unfinished bar, becomes the forming bar that
        trades then extend. Without it, the next bar opens where the last
        closed one ends.
        """
        if self.open_time >= 0:
            raise ValueError("resume() must come before the first trade")
        self.history.extend(closed)
        if forming is not None:
            self.open_time = forming.open_time
            self.open, self.high, self.low = forming.open, forming.high, forming.low
            self.close = forming.close
            self.volume = forming.volume if forming.trades else 0.0
            self.trades = forming.trades
        elif closed:
            last = closed[-1]
            self.open_time = last.open_time + self.interval_ns
            self.close = last.close
            self.volume = 0.0
            self.trades = 0
        else:
            return
        self.end = self.open_time + self.interval_ns

    def forming(self) -> Bar | None:
        """Return the forming bar as a :class:`Bar`, or ``None`` before the first trade."""
        if not self.trades:
            return None
        return Bar(
            self.symbol,
            self.interval,
            self.open_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.trades,
        )
