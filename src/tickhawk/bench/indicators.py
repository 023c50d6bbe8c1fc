"""Ten common indicators bar by bar: tickhawk's :class:`IndicatorSet`, raw TA-Lib streams, talipp.

Each runner is warmed up on the first bars, then returns a loop over the bars
to time. ``raw`` calls the ten ``talib.stream`` handles directly with the
bar's fields and drops the results: the floor tickhawk builds on. ``talipp``
(a peer, not a dependency) is used only when installed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import talib.stream as ts

from tickhawk.indicators.streams import IndicatorSet, parse_spec
from tickhawk.model import Bar

__all__ = ["SPECS", "WARM", "BarLoop", "raw_runner", "talipp_runner", "tickhawk_runner"]

SPECS = [
    "ema=EMA(timeperiod=21)",
    "sma=SMA(timeperiod=50)",
    "rsi=RSI(timeperiod=14)",
    "macd=MACD(fastperiod=12,slowperiod=26,signalperiod=9)",
    "bb=BBANDS(timeperiod=20,nbdevup=2,nbdevdn=2)",
    "atr=ATR(timeperiod=14)",
    "adx=ADX(timeperiod=14)",
    "stoch=STOCH(fastk_period=5,slowk_period=3,slowd_period=3)",
    "cci=CCI(timeperiod=20)",
    "obv=OBV",
]
#: Bars every runner is warmed up on before timing.
WARM = 200

BarLoop = Callable[[Sequence[Bar]], None]


def raw_runner(bars: list[Bar], method: str = "update") -> BarLoop:
    """Open the ten streams on ``bars``; return a loop calling their ``method`` directly."""
    cols = {f: np.array([getattr(b, f) for b in bars]) for f in ("high", "low", "close", "volume")}
    h, lo, c, v = cols["high"], cols["low"], cols["close"], cols["volume"]
    ema = getattr(ts.EMA(c, timeperiod=21), method)
    sma = getattr(ts.SMA(c, timeperiod=50), method)
    rsi = getattr(ts.RSI(c, timeperiod=14), method)
    macd = getattr(ts.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9), method)
    bb = getattr(ts.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0), method)
    atr = getattr(ts.ATR(h, lo, c, timeperiod=14), method)
    adx = getattr(ts.ADX(h, lo, c, timeperiod=14), method)
    stoch = getattr(ts.STOCH(h, lo, c, fastk_period=5, slowk_period=3, slowd_period=3), method)
    cci = getattr(ts.CCI(h, lo, c, timeperiod=20), method)
    obv = getattr(ts.OBV(c, v), method)

    def run(timed: Sequence[Bar]) -> None:
        for bar in timed:
            high = bar.high
            low = bar.low
            close = bar.close
            volume = bar.volume
            ema(close)
            sma(close)
            rsi(close)
            macd(close)
            bb(close)
            atr(high, low, close)
            adx(high, low, close)
            stoch(high, low, close)
            cci(high, low, close)
            obv(close, volume)

    return run


def tickhawk_runner(bars: list[Bar], method: str = "update") -> BarLoop:
    """Seed an :class:`IndicatorSet` of :data:`SPECS` on ``bars``; return a loop of ``method``."""
    indicators = IndicatorSet([parse_spec(spec) for spec in SPECS])
    indicators.seed(bars)
    assert indicators.ready
    call = getattr(indicators, method)  # stable once every stream is open, like the raw handles

    def run(timed: Sequence[Bar]) -> None:
        for bar in timed:
            call(bar)

    return run


def talipp_runner(bars: list[Bar]) -> BarLoop | None:
    """Return the same ten indicators in talipp (``add`` per bar), or None if not installed."""
    try:
        from talipp.indicators import ADX, ATR, BB, CCI, EMA, MACD, OBV, RSI, SMA, Stoch
        from talipp.ohlcv import OHLCV
    except ImportError:
        return None
    closes: list[Any] = [EMA(21), SMA(50), RSI(14), MACD(12, 26, 9), BB(20, 2.0)]
    candles: list[Any] = [ATR(14), ADX(14, 14), Stoch(5, 3), CCI(20), OBV()]
    adds = [i.add for i in closes]
    candle_adds = [i.add for i in candles]
    ohlcv = {id(b): OHLCV(b.open, b.high, b.low, b.close, b.volume) for b in bars}

    def run(timed: Sequence[Bar]) -> None:
        for bar in timed:
            candle = ohlcv.get(id(bar)) or OHLCV(bar.open, bar.high, bar.low, bar.close, bar.volume)
            close = bar.close
            for add in adds:
                add(close)
            for add in candle_adds:
                add(candle)
        for indicator in (*closes, *candles):
            indicator.purge_oldest(max(0, len(indicator) - 100))  # keep memory bounded

    run(bars)  # warm up
    return run
