"""Built-in configurations: the demo's short bars, and replay's default."""

from __future__ import annotations

from typing import Any

from tickhawk.config import Config, parse_config

__all__ = ["fast_config", "fast_config_data"]


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
    return {
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
