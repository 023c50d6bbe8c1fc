"""Per-bar cost of ten common indicators: tickhawk against raw TA-Lib streams and talipp.

    python benchmarks/indicator_cost.py [--bars 20000] [--runs 7] [--json]

One symbol, real 1-minute klines (``../shared/data/klines``), all three
warmed up first, then timed bar by bar in the same run, alternating:

- **raw**: the ten ``talib.stream`` handles' ``update()`` called directly, fields
  read from the bar, results dropped: the floor tickhawk builds on;
- **tickhawk**: :class:`~tickhawk.indicators.streams.IndicatorSet` ``update(bar)``,
  values stored by key (what the engine does at every bar close);
- **talipp**: the same ten indicators in talipp 2 (``add`` per bar).

Prints the medians per bar and the same-run ratios (tickhawk ÷ raw: the
overhead; talipp ÷ tickhawk: the speed-up). Goals: overhead ≤ 1.25, speed-up ≥ 10.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import talib.stream as ts

from tickhawk.indicators.streams import IndicatorSet, parse_spec
from tickhawk.model import Bar

KLINES = Path(__file__).resolve().parent.parent.parent / "shared/data/klines"
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
WARM = 200


def load_bars(count: int) -> list[Bar]:
    path = KLINES / "btc-perp-20211231-20220201_1m.csv"
    if not path.exists():
        sys.exit(f"missing {path}: the benchmark reads the shared kline data")
    bars = []
    for i, line in enumerate(path.read_text().splitlines()[1 : count + WARM + 1]):
        _, o, h, low, c, v = line.split(",")[:6]
        bars.append(Bar("BTC", "1m", i, float(o), float(h), float(low), float(c), float(v), 1))
    return bars


def raw_runner(bars: list[Bar]) -> Callable[[list[Bar]], None]:
    """Open the ten streams on the warm-up bars; return a loop calling update() directly."""
    cols = {f: np.array([getattr(b, f) for b in bars]) for f in ("high", "low", "close", "volume")}
    h, lo, c, v = cols["high"], cols["low"], cols["close"], cols["volume"]
    ema = ts.EMA(c, timeperiod=21).update
    sma = ts.SMA(c, timeperiod=50).update
    rsi = ts.RSI(c, timeperiod=14).update
    macd = ts.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9).update
    bb = ts.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0).update
    atr = ts.ATR(h, lo, c, timeperiod=14).update
    adx = ts.ADX(h, lo, c, timeperiod=14).update
    stoch = ts.STOCH(h, lo, c, fastk_period=5, slowk_period=3, slowd_period=3).update
    cci = ts.CCI(h, lo, c, timeperiod=20).update
    obv = ts.OBV(c, v).update

    def run(timed: list[Bar]) -> None:
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


def tickhawk_runner(bars: list[Bar]) -> Callable[[list[Bar]], None]:
    indicators = IndicatorSet([parse_spec(spec) for spec in SPECS])
    indicators.seed(bars)
    assert indicators.ready

    update = indicators.update  # stable once every stream is open, like the raw handles

    def run(timed: list[Bar]) -> None:
        for bar in timed:
            update(bar)

    return run


def talipp_runner(bars: list[Bar]) -> Callable[[list[Bar]], None] | None:
    try:
        from talipp.indicators import ADX, ATR, BB, CCI, EMA, MACD, OBV, RSI, SMA, Stoch
        from talipp.ohlcv import OHLCV
    except ImportError:
        return None
    closes = [EMA(21), SMA(50), RSI(14), MACD(12, 26, 9), BB(20, 2.0)]
    candles = [ATR(14), ADX(14, 14), Stoch(5, 3), CCI(20), OBV()]
    adds = [i.add for i in closes]
    candle_adds = [i.add for i in candles]
    ohlcv = {id(b): OHLCV(b.open, b.high, b.low, b.close, b.volume) for b in bars}

    def run(timed: list[Bar]) -> None:
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


def per_bar_ns(run: Callable[[list[Bar]], None], timed: list[Bar]) -> float:
    start = time.perf_counter_ns()
    run(timed)
    return (time.perf_counter_ns() - start) / len(timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bars = load_bars(args.bars)
    warm, timed = bars[:WARM], bars[WARM:]
    runners: dict[str, Any] = {"raw": raw_runner(warm), "tickhawk": tickhawk_runner(warm)}
    talipp = talipp_runner(warm)
    if talipp is not None:
        runners["talipp"] = talipp
    talipp_timed = timed[: min(len(timed), 5_000)]  # talipp is slow; a slice is enough
    results: dict[str, list[float]] = {name: [] for name in runners}
    overhead: list[float] = []
    speedup: list[float] = []
    for _ in range(args.runs):
        for name, run in runners.items():
            results[name].append(per_bar_ns(run, talipp_timed if name == "talipp" else timed))
        overhead.append(results["tickhawk"][-1] / results["raw"][-1])
        if "talipp" in results:
            speedup.append(results["talipp"][-1] / results["tickhawk"][-1])
    report = {
        "indicators": SPECS,
        "bars": len(timed),
        "runs": args.runs,
        **{f"{name}_ns_per_bar": round(statistics.median(v), 1) for name, v in results.items()},
        "overhead_ratio_median": round(statistics.median(overhead), 3),
        "talipp_speedup_median": round(statistics.median(speedup), 1) if speedup else None,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"10 indicators, {len(timed):,} bars, median of {args.runs} runs (same-run ratios)")
    for name in runners:
        print(f"  {name:<9} {statistics.median(results[name]):>9.0f} ns/bar")
    print(f"  tickhawk ÷ raw TA-Lib  {report['overhead_ratio_median']:.3f}   (goal ≤ 1.25)")
    if speedup:
        print(f"  talipp ÷ tickhawk      {report['talipp_speedup_median']:.1f}×  (goal ≥ 10)")
    else:
        print("  talipp not installed: pip install talipp")


if __name__ == "__main__":
    main()
