"""Binance kline intervals: names, lengths and bar open times (UTC, epoch ms)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["INTERVALS", "bar_close", "bar_open", "bar_opens", "interval_ms", "step_back"]

_SECOND = 1_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR

# Nominal lengths; "1M" is a calendar month and "1w" starts on Monday.
INTERVALS: dict[str, int] = {
    "1s": _SECOND,
    "1m": _MINUTE,
    "3m": 3 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1h": _HOUR,
    "2h": 2 * _HOUR,
    "4h": 4 * _HOUR,
    "6h": 6 * _HOUR,
    "8h": 8 * _HOUR,
    "12h": 12 * _HOUR,
    "1d": _DAY,
    "3d": 3 * _DAY,
    "1w": 7 * _DAY,
    "1M": 30 * _DAY,
}
# 1970-01-01 was a Thursday; Binance weeks open on Monday 00:00 UTC.
_WEEK_OFFSET = 4 * _DAY


def interval_ms(name: str) -> int:
    """Return the nominal length of interval ``name`` in ms; raise ``KeyError`` if unknown."""
    return INTERVALS[name]


def bar_opens(times_ms: npt.NDArray[np.int64], name: str) -> npt.NDArray[np.int64]:
    """Return the open time of the bar of interval ``name`` containing each time."""
    if name == "1M":
        months = times_ms.astype("datetime64[ms]").astype("datetime64[M]")
        return months.astype("datetime64[ms]").astype(np.int64)
    length = INTERVALS[name]
    offset = _WEEK_OFFSET if name == "1w" else 0
    return times_ms - (times_ms - offset) % length


def bar_open(time_ms: int, name: str) -> int:
    """Return the open time of the bar of interval ``name`` containing ``time_ms``."""
    return int(bar_opens(np.array([time_ms], dtype=np.int64), name)[0])


def bar_close(open_ms: int, name: str) -> int:
    """Return the close time (last ms, inclusive) of the bar opening at ``open_ms``."""
    if name == "1M":
        month = np.array([open_ms], dtype="datetime64[ms]").astype("datetime64[M]") + 1
        return int(month.astype("datetime64[ms]").astype(np.int64)[0]) - 1
    return open_ms + INTERVALS[name] - 1


def step_back(open_ms: int, name: str, count: int) -> npt.NDArray[np.int64]:
    """Return the open times of the ``count`` bars before the bar opening at ``open_ms``.

    Oldest first.
    """
    if name == "1M":
        month = np.array([open_ms], dtype="datetime64[ms]").astype("datetime64[M]")
        months = month - np.arange(count, 0, -1)
        return months.astype("datetime64[ms]").astype(np.int64)
    return open_ms - INTERVALS[name] * np.arange(count, 0, -1, dtype=np.int64)
