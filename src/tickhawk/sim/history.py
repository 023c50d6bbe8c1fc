"""Deterministic kline history from before the simulator started.

A client warming indicators asks for bars before the first live trade. They
are generated backwards from the start price: a random walk with slowly
varying volatility, in blocks of ``BLOCK`` bars, each block drawn from its own
seeded generator, so any request gives the same bars for the same seed,
symbol and interval. The last generated bar closes at the start price, so the
history joins the live bars without a gap.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import numpy.typing as npt

from tickhawk.sim.bars import (
    BUY_QUOTE,
    BUY_VOLUME,
    CLOSE,
    COUNT,
    FIELDS,
    FIRST,
    HIGH,
    LAST,
    LOW,
    OPEN,
    QUOTE,
    VOLUME,
)
from tickhawk.sim.intervals import INTERVALS, step_back

__all__ = ["BLOCK", "MAX_BARS", "synthetic_bars"]

BLOCK = 1_024
MAX_BARS = 100 * BLOCK


def synthetic_bars(
    *,
    seed: int,
    symbol: str,
    interval: str,
    live_open_ms: int,
    count: int,
    price_ticks: int,
    daily_vol: float,
    trades_per_s: float,
    lots_per_trade: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return the ``count`` bars before the bar opening at ``live_open_ms``: ``(opens, rows)``.

    Oldest first; ``count`` is capped at :data:`MAX_BARS`. Rows use the
    columns of :mod:`tickhawk.sim.bars`; trade ids are -1 (no trades to list).
    """
    count = min(count, MAX_BARS)
    if count <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, FIELDS), dtype=np.int64)
    seconds = INTERVALS[interval] / 1_000.0
    sigma = daily_vol * math.sqrt(seconds / 86_400.0)
    blocks = -(-count // BLOCK)
    tag = zlib.crc32(f"{symbol}/{interval}".encode())
    closes_back: list[npt.NDArray[np.float64]] = []
    extremes: list[npt.NDArray[np.float64]] = []
    activity: list[npt.NDArray[np.float64]] = []
    log_close = math.log(price_ticks)
    regime = 0.0
    for block in range(blocks):
        rng = np.random.default_rng([seed, tag, block])
        noise = rng.standard_normal(BLOCK)
        level = np.empty(BLOCK)
        for index in range(BLOCK):  # slowly varying log-volatility, AR(1)
            regime = 0.97 * regime + 0.25 * noise[index]
            level[index] = regime
        vol = np.exp(level)
        returns = sigma * vol * rng.standard_normal(BLOCK)
        # closes_back[k] is the close k bars before the live bar (k = 1 first).
        path = log_close - np.concatenate(([0.0], np.cumsum(returns[:-1])))
        log_close = path[-1] - returns[-1]
        closes_back.append(path)
        extremes.append(np.abs(rng.standard_normal((2, BLOCK))) * sigma * vol * 0.6)
        activity.append(vol * rng.lognormal(0.0, 0.35, BLOCK))
    close = np.exp(np.concatenate(closes_back)[:count])[::-1]
    spread = np.concatenate(extremes, axis=1)[:, :count][:, ::-1]
    busy = np.concatenate(activity)[:count][::-1]
    rows = np.zeros((count, FIELDS), dtype=np.int64)
    close_ticks = np.maximum(1, np.rint(close)).astype(np.int64)
    open_ticks = np.empty(count, dtype=np.int64)
    open_ticks[1:] = close_ticks[:-1]
    open_ticks[0] = close_ticks[0]
    top = np.maximum(open_ticks, close_ticks)
    bottom = np.minimum(open_ticks, close_ticks)
    rows[:, OPEN] = open_ticks
    rows[:, CLOSE] = close_ticks
    rows[:, HIGH] = np.maximum(top, np.rint(top * np.exp(spread[0]))).astype(np.int64)
    rows[:, LOW] = np.maximum(1, np.minimum(bottom, np.rint(bottom * np.exp(-spread[1]))))
    trades = np.maximum(1, np.rint(trades_per_s * seconds * busy)).astype(np.int64)
    volume = np.maximum(1, np.rint(trades * lots_per_trade)).astype(np.int64)
    typical = (rows[:, OPEN] + rows[:, HIGH] + rows[:, LOW] + rows[:, CLOSE]) // 4
    rows[:, COUNT] = trades
    rows[:, VOLUME] = volume
    rows[:, QUOTE] = volume * typical
    buy_share = 0.5 + 0.1 * np.sign(close_ticks - open_ticks)
    rows[:, BUY_VOLUME] = np.rint(volume * buy_share).astype(np.int64)
    rows[:, BUY_QUOTE] = rows[:, BUY_VOLUME] * typical
    rows[:, FIRST] = -1
    rows[:, LAST] = -1
    return step_back(live_open_ms, interval, count), rows
