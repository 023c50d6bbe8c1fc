"""Built-in configurations: the demo's short bars, and replay's default."""

from __future__ import annotations

from typing import Any

import msgspec

from tickhawk.budget import estimate
from tickhawk.config import Config, parse_config

__all__ = ["MEMORY_GOALS", "SIZES", "fast_config", "fast_config_data", "memory_goal_mb"]

#: The RSS goals of DESIGN.md: (symbols, MB).
MEMORY_GOALS = ((50, 100.0), (1000, 256.0))

#: What the preset keeps, largest first: (engine.trade_capacity, engine.bar_history,
#: book.max_levels, book.snapshot_limit). A few symbols (a replay) keep deep books;
#: 2,000 levels (the defaults) hold Binance's BTCUSDT books through the captures' $250
#: moves, 1,000 not always. Snapshots ask for more levels than the smallest books keep:
#: a side returned whole (shorter than the limit) is exact to its end, a cut one only
#: to its last level (the book resyncs when its top reaches there), and 500-level
#: snapshots (Binance weight 25, not 50) return the simulator's ~200-level books whole.
SIZES = (
    (4096, 1000, 5000, 1000),
    (2048, 1000, 2000, 1000),
    (2048, 1000, 1000, 1000),
    (1024, 500, 500, 500),
    (1024, 300, 200, 500),
)


def memory_goal_mb(symbols: int) -> float:
    """Return the RSS goal for ``symbols``: 100 MB up to 50, then linear to 256 MB at 1,000."""
    (few, few_mb), (many, many_mb) = MEMORY_GOALS
    if symbols <= few:
        return few_mb
    return few_mb + (symbols - few) * (many_mb - few_mb) / (many - few)


def _sized(data: dict[str, Any]) -> dict[str, Any]:
    """Set the largest :data:`SIZES` whose memory ceiling meets the goal (else the smallest)."""
    config = parse_config(data)
    goal = memory_goal_mb(len(config.venue.symbols))
    for trade_capacity, bar_history, max_levels, snapshot_limit in SIZES:
        engine = msgspec.structs.replace(
            config.engine, trade_capacity=trade_capacity, bar_history=bar_history
        )
        book = msgspec.structs.replace(
            config.book, max_levels=max_levels, snapshot_limit=snapshot_limit
        )
        if estimate(msgspec.structs.replace(config, engine=engine, book=book)).total_mb <= goal:
            break
    data["engine"].update(trade_capacity=trade_capacity, bar_history=bar_history)
    data["book"] = {"max_levels": max_levels, "snapshot_limit": snapshot_limit}
    return data


def fast_config(
    symbols: list[str],
    streams: list[str],
    *,
    market: str = "spot",
    ws_url: str | None = None,
    rest_url: str | None = None,
) -> Config:
    """Return a configuration with 1-second bars so signals show within seconds.

    Six indicators (EMA, RSI, MACD, Bollinger, ATR, VWAP) on 1 s bars, peeked
    on every trade; the order-flow and quote features (the defaults of
    ``[features]``); the momentum strategy on 1 s bars; 1 m bars beside them.
    Trade rings, bar histories and books are the largest of :data:`SIZES`
    whose memory ceiling meets :func:`memory_goal_mb` for this many symbols.
    """
    return parse_config(
        fast_config_data(symbols, streams, market=market, ws_url=ws_url, rest_url=rest_url)
    )


def fast_config_data(
    symbols: list[str],
    streams: list[str],
    *,
    market: str = "spot",
    ws_url: str | None = None,
    rest_url: str | None = None,
) -> dict[str, Any]:
    """Return :func:`fast_config` as plain data, to adjust before parsing or to write out."""
    data: dict[str, Any] = {
        "venue": {
            "market": market,
            "symbols": symbols,
            "streams": streams,
            "ws_url": ws_url,
            "rest_url": rest_url,
        },
        "engine": {"intervals": ["1s", "1m"]},
        "indicators": {
            "1s": {
                "ema": {"fn": "EMA", "timeperiod": 5},
                "rsi": {"fn": "RSI", "timeperiod": 5},
                "macd": {"fn": "MACD", "fastperiod": 3, "slowperiod": 8, "signalperiod": 3},
                "bb": {"fn": "BBANDS", "timeperiod": 10},
                "atr": {"fn": "ATR", "timeperiod": 5},
                "vwap": {"fn": "VWAP"},
            }
        },
        "strategies": {"momentum": {"interval": "1s", "cooldown_s": 2.0}},
    }
    return _sized(data)
