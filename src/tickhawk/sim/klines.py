"""Klines: the REST history (generated before the start, live after) and the kline streams."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tickhawk.sim.bars import (
    BUY_QUOTE,
    BUY_VOLUME,
    CLOSE,
    COUNT,
    FIRST,
    HIGH,
    LAST,
    LOW,
    OPEN,
    QUOTE,
    VOLUME,
    BarStore,
)
from tickhawk.sim.encode import kline_json
from tickhawk.sim.history import MAX_BARS, synthetic_bars
from tickhawk.sim.intervals import INTERVALS, bar_close, bar_open
from tickhawk.sim.symbols import SymbolSpec, fixed8

__all__ = ["KlineDesk", "KlineText"]

Rows = npt.NDArray[np.int64]


class KlineText:
    """Format bar rows of one symbol as Binance text."""

    def __init__(self, spec: SymbolSpec) -> None:
        self.symbol = spec.name
        self.price_e8 = spec.price_e8
        self.qty_e8 = spec.qty_e8
        self._quote_exp = spec.tick_exp + spec.step_exp + 8

    def quote(self, units: int) -> str:
        """Return a quote amount in tick*lot units as text (8 decimals, truncated)."""
        exponent = self._quote_exp
        value = units * 10**exponent if exponent >= 0 else units // 10 ** (-exponent)
        return fixed8(value)

    def fields(self, row: Rows) -> list[str]:
        """Return open, high, low, close, volume, quote, buy volume, buy quote as text."""
        price_e8 = self.price_e8
        qty_e8 = self.qty_e8
        return [
            fixed8(int(row[OPEN]) * price_e8),
            fixed8(int(row[HIGH]) * price_e8),
            fixed8(int(row[LOW]) * price_e8),
            fixed8(int(row[CLOSE]) * price_e8),
            fixed8(int(row[VOLUME]) * qty_e8),
            self.quote(int(row[QUOTE])),
            fixed8(int(row[BUY_VOLUME]) * qty_e8),
            self.quote(int(row[BUY_QUOTE])),
        ]

    def rest(self, opens: npt.NDArray[np.int64], rows: Rows, interval: str) -> str:
        """Return the ``/api/v3/klines`` JSON array for bars ``rows`` opening at ``opens``."""
        parts = []
        for open_ms, row in zip(opens.tolist(), rows, strict=True):
            o, h, lo, c, v, q, bv, bq = self.fields(row)
            close_ms = bar_close(open_ms, interval)
            parts.append(
                f'[{open_ms},"{o}","{h}","{lo}","{c}","{v}",{close_ms},"{q}",'
                f'{int(row[COUNT])},"{bv}","{bq}","0"]'
            )
        return "[" + ",".join(parts) + "]"

    def stream(self, now: int, interval: str, open_ms: int, row: Rows, closed: bool) -> str:
        """Return a kline stream payload for one bar."""
        o, h, lo, c, v, q, bv, bq = self.fields(row)
        return kline_json(
            now,
            self.symbol,
            interval,
            open_ms,
            bar_close(open_ms, interval),
            [o, c, h, lo, v, q, bv, bq],
            int(row[FIRST]),
            int(row[LAST]),
            int(row[COUNT]),
            closed,
        )


class KlineDesk:
    """Answer kline requests and emit the subscribed kline streams of a :class:`BarStore`."""

    def __init__(
        self,
        specs: list[SymbolSpec],
        bars: BarStore,
        *,
        seed: int,
        daily_vol: float,
        trades_per_s: list[float],
        lots_per_trade: list[float],
    ) -> None:
        self.specs = specs
        self.bars = bars
        self.seed = seed
        self.daily_vol = daily_vol
        self.trades_per_s = trades_per_s
        self.lots_per_trade = lots_per_trade
        self.text = [KlineText(spec) for spec in specs]
        self._streams: dict[int, tuple[int, str]] = {}

    @property
    def subscribed(self) -> bool:
        """Return whether any kline stream is subscribed."""
        return bool(self._streams)

    def subscribe(self, stream: int, index: int, interval: str) -> None:
        """Emit ``interval`` bars of symbol ``index`` as stream id ``stream``."""
        self._streams[stream] = (index, interval)

    def unsubscribe(self, stream: int) -> None:
        """Stop emitting stream id ``stream``."""
        self._streams.pop(stream, None)

    def emit(self, now: int, outbox: list[tuple[int, str]]) -> None:
        """Append the kline messages due at ``now``.

        Like Binance: the open bar every 2 s (x=false), and the bar that just
        closed at its close (x=true); 1 s bars only when closed.
        """
        if now % 1_000:
            return
        for stream, (index, interval) in self._streams.items():
            if interval == "1s" or bar_open(now, interval) == now:
                opens, rows = self.bars.live_bars(index, interval)
                closed_open = bar_open(now - 1, interval)
                where = np.flatnonzero(opens == closed_open)
                if len(where):
                    row = rows[int(where[0])]
                    text = self.text[index].stream(now, interval, closed_open, row, True)
                    outbox.append((stream, text))
            elif now % 2_000 == 0:
                opens, rows = self.bars.live_bars(index, interval)
                text = self.text[index].stream(now, interval, int(opens[-1]), rows[-1], False)
                outbox.append((stream, text))

    def klines(
        self,
        index: int,
        interval: str,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> tuple[npt.NDArray[np.int64], Rows]:
        """Return the bars Binance's ``/api/v3/klines`` would list, oldest first."""
        opens, rows = self.bars.live_bars(index, interval)
        live_open = bar_open(self.bars.start_ms, interval)
        length = INTERVALS[interval]
        if start_ms is not None:
            wanted = -(-(live_open - start_ms) // length) + 1
        elif end_ms is not None:
            wanted = -(-(live_open - end_ms) // length) + limit + 1
        else:
            wanted = limit - len(opens)
        wanted = min(MAX_BARS, wanted)
        if wanted > 0:
            spec = self.specs[index]
            old_opens, old_rows = synthetic_bars(
                seed=self.seed,
                symbol=spec.name,
                interval=interval,
                live_open_ms=live_open,
                count=wanted,
                price_ticks=spec.price_ticks,
                daily_vol=self.daily_vol,
                trades_per_s=self.trades_per_s[index],
                lots_per_trade=self.lots_per_trade[index],
            )
            opens = np.concatenate([old_opens, opens])
            rows = np.vstack([old_rows, rows])
        return select_bars(opens, rows, start_ms, end_ms, limit)


def select_bars(
    opens: npt.NDArray[np.int64],
    rows: Rows,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
) -> tuple[npt.NDArray[np.int64], Rows]:
    """Apply Binance's klines selection: open time in [start, end]; first ``limit`` from
    ``start``, else the last ``limit`` up to ``end`` (or the most recent)."""
    low = 0 if start_ms is None else int(np.searchsorted(opens, start_ms, side="left"))
    high = len(opens) if end_ms is None else int(np.searchsorted(opens, end_ms, side="right"))
    if high <= low:
        return opens[:0], rows[:0]
    if start_ms is not None:
        high = min(high, low + limit)
    else:
        low = max(low, high - limit)
    return opens[low:high], rows[low:high]
