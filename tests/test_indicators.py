"""TA-Lib stream indicators: committed and intra-bar values equal TA-Lib's batch results."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import talib

from tickhawk.config import ConfigError, parse_config
from tickhawk.indicators.streams import (
    IndicatorError,
    IndicatorSet,
    IndicatorSpec,
    StreamIndicator,
    parse_spec,
)
from tickhawk.model import Bar

KLINES = (
    Path(__file__).resolve().parent.parent.parent
    / "shared/data/klines/btc-perp-20211231-20220201_1m.csv"
)


def kline_bars(n: int = 3000) -> list[Bar]:
    assert KLINES.exists(), f"test data {KLINES} is missing: clone with shared/ beside the repo"
    path = KLINES
    bars = []
    for line in path.read_text().splitlines()[1 : n + 1]:
        _ts, o, h, low, c, v = line.split(",")[:6]
        bars.append(
            Bar("BTC", "1m", len(bars), float(o), float(h), float(low), float(c), float(v), 1)
        )
    return bars


SIX = [
    IndicatorSpec("ema", "EMA", {"timeperiod": 21}),
    IndicatorSpec("rsi", "RSI", {"timeperiod": 14}),
    IndicatorSpec("macd", "MACD", {}),
    IndicatorSpec("bb", "BBANDS", {"timeperiod": 20}),
    IndicatorSpec("atr", "ATR", {"timeperiod": 14}),
    IndicatorSpec("vwap", "VWAP", {}),
]


def batch(spec: IndicatorSpec, bars: list[Bar]) -> dict[str, np.ndarray]:
    cols = {
        f: np.array([getattr(b, f) for b in bars])
        for f in ("open", "high", "low", "close", "volume")
    }
    ind = StreamIndicator(spec)
    out = getattr(talib, ind.fn)(*[cols[f] for f in ind.fields], **ind.params)
    outs = out if isinstance(out, tuple) else (out,)
    return dict(zip(ind.keys, outs, strict=True))


def close_enough(a: float, b: float) -> bool:
    if math.isnan(b):
        return math.isnan(a)
    return a == b or abs(a - b) <= 1e-9 * max(1.0, abs(b))


def test_committed_values_equal_batch() -> None:
    bars = kline_bars()
    indicators = IndicatorSet(SIX)
    expected = {k: v for spec in SIX for k, v in batch(spec, bars).items()}
    for i, bar in enumerate(bars):
        indicators.update(bar)
        for key, series in expected.items():
            got = indicators.values[key]
            assert close_enough(got, series[i]), (key, i, got, series[i])


def test_peeked_values_equal_batch_with_the_forming_bar() -> None:
    bars = kline_bars(600)
    indicators = IndicatorSet(SIX)
    for i, bar in enumerate(bars[:-1]):
        indicators.update(bar)
        forming = bars[i + 1]
        indicators.peek(forming)
        peeked = dict(indicators.values)
        for spec in SIX:
            for key, series in batch(spec, bars[: i + 2]).items():
                assert close_enough(peeked[key], series[-1]), (key, i)


def test_set_reports_warmup_from_talib_lookback() -> None:
    assert IndicatorSet(SIX).bars_needed == 34  # MACD(12, 26, 9): lookback 33


def test_unknown_function_lists_close_matches() -> None:
    with pytest.raises(IndicatorError, match=r"unknown TA-Lib function 'EMAA' \(did you mean EMA"):
        StreamIndicator(IndicatorSpec("x", "EMAA", {}))


def test_unknown_parameter_lists_allowed() -> None:
    with pytest.raises(IndicatorError, match=r"no parameter 'period'.*allowed: timeperiod=14"):
        StreamIndicator(IndicatorSpec("x", "RSI", {"period": 3}))


def test_parse_spec() -> None:
    assert parse_spec("fast=EMA(timeperiod=5)") == IndicatorSpec("fast", "EMA", {"timeperiod": 5.0})
    assert parse_spec("MACD") == IndicatorSpec("macd", "MACD", {})
    with pytest.raises(IndicatorError, match="key=number"):
        parse_spec("x=RSI(timeperiod=abc)")


def test_config_names_the_bad_key() -> None:
    with pytest.raises(ConfigError, match=r"^engine.trade_capacity: Expected `int`, got `str`"):
        parse_config({"engine": {"trade_capacity": "many"}})
    with pytest.raises(ConfigError, match=r"^indicators.1m: indicator 'x': unknown TA-Lib"):
        parse_config({"indicators": {"1m": {"x": {"fn": "NOPE"}}}})
    with pytest.raises(ConfigError, match=r"^engine.intervals\[0\]: bad interval '7x'"):
        parse_config({"engine": {"intervals": ["7x"]}})
    with pytest.raises(ConfigError, match=r"^venue.streams\[0\]: 'ticker' is not supported"):
        parse_config({"venue": {"streams": ["ticker"]}})
    with pytest.raises(ConfigError, match=r"Object contains unknown field `colour`"):
        parse_config({"engine": {"colour": "red"}})
    with pytest.raises(ConfigError, match=r"strategies.momentum.interval: no indicators"):
        parse_config({"strategies": {"momentum": {"interval": "5m"}}})
