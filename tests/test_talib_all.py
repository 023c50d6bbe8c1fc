"""Every function ``talib.stream`` offers, with default parameters, equals TA-Lib's batch API.

On real 1-minute BTC perpetual klines: committed values (``update``), values
seeded from history at once (``seed``, the warm-up path), the forming bar's
values with the bar's final prices (``peek`` at every bar) and with partial
prices on a sample of bars, all against ``talib.abstract`` on the same input
(exactly, or within 1e-9 relative).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from talib import abstract

from tickhawk.indicators.spec import available_functions
from tickhawk.indicators.streams import IndicatorSet, IndicatorSpec
from tickhawk.model import Bar

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
KLINES = DATA / "klines" / "btc-perp-20211231-20220201_1m.csv"
BARS = 2500
SEEDED = 1200  # bars committed at once through seed() before updating one by one
PARTIAL_EVERY = 131  # bars between intra-bar checks with partial prices
#: Inputs that are not bar fields by default, and the field the test feeds them from.
INPUTS = {"MAVP": {"periods": ("trades",)}}


def _load() -> list[Bar]:
    if not KLINES.exists():
        pytest.fail(f"test data {KLINES} is missing: clone the shared data beside the repo")
    bars = []
    for i, line in enumerate(KLINES.read_text().splitlines()[1 : BARS + 1]):
        _, o, h, low, c, v = line.split(",")[:6]
        trades = 2 + (i * 7) % 40  # varied, some beyond MAVP's maxperiod
        bars.append(Bar("BTC", "1m", i, float(o), float(h), float(low), float(c), float(v), trades))
    return bars


ALL_BARS = _load() if KLINES.exists() else []


def _columns(bars: list[Bar]) -> dict[str, np.ndarray]:
    return {
        f: np.array([float(getattr(b, f)) for b in bars])
        for f in ("open", "high", "low", "close", "volume", "trades")
    }


def batch(fn: str, bars: list[Bar]) -> list[np.ndarray]:
    """Return TA-Lib's Function API outputs over ``bars`` (one array per output)."""
    function = abstract.Function(fn)
    names = dict(function.input_names)
    for key, fields in INPUTS.get(fn, {}).items():
        names[key] = fields[0] if isinstance(names[key], str) else list(fields)
    function.input_names = names
    out = function(_columns(bars))
    return [np.asarray(o, dtype=np.float64) for o in (out if isinstance(out, list) else [out])]


def close_enough(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == want or abs(got - want) <= 1e-9 * max(1.0, abs(want))


def make_set(fn: str) -> IndicatorSet:
    return IndicatorSet([IndicatorSpec(fn.lower(), fn, {}, INPUTS.get(fn, {}))])


def _check(fn: str, where: str, i: int, got: list[float], want: list[float]) -> None:
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert close_enough(float(g), float(w)), f"{fn} {where} bar {i} output {k}: {g} != {w}"


def test_every_stream_function_is_listed() -> None:
    assert len(available_functions()) >= 200
    assert {"RSI", "MACD", "CDLDOJI", "MAVP", "HT_SINE"} <= set(available_functions())


@pytest.mark.parametrize("fn", available_functions())
def test_function_equals_batch(fn: str) -> None:
    bars = ALL_BARS
    expected = batch(fn, bars)
    updated = make_set(fn)
    seeded = make_set(fn)
    lookback = updated.indicators[0].lookback
    keys = updated.keys()
    seeded.seed(bars[:SEEDED])
    for i, bar in enumerate(bars):
        want = [series[i] for series in expected]
        updated.peek(bar)  # the forming bar with its final prices
        if i >= lookback:
            _check(fn, "peek", i, [updated.values[k] for k in keys], want)
        updated.update(bar)
        committed = [updated.values[k] for k in keys]
        if i >= lookback:
            _check(fn, "update", i, committed, want)
        else:
            assert all(math.isnan(float(v)) for v in committed), f"{fn}: value before warm-up"
        if i >= SEEDED:
            seeded.update(bar)
        if i >= SEEDED - 1 and i >= lookback:
            _check(fn, "seed", i, [seeded.values[k] for k in keys], want)


@pytest.mark.parametrize("fn", available_functions())
def test_intra_bar_peek_equals_batch_with_the_partial_bar(fn: str) -> None:
    bars = ALL_BARS[:1400]
    indicators = make_set(fn)
    lookback = indicators.indicators[0].lookback
    keys = indicators.keys()
    for i, bar in enumerate(bars):
        if i > lookback and i % PARTIAL_EVERY == 0:
            partial = Bar(
                "BTC",
                "1m",
                i,
                bar.open,
                max(bar.open, bar.close),
                min(bar.open, bar.close),
                0.5 * (bar.open + bar.close),
                bar.volume / 3.0,
                max(2, bar.trades // 2),
            )
            indicators.peek(partial)
            want = [series[-1] for series in batch(fn, [*bars[:i], partial])]
            _check(fn, "partial peek", i, [indicators.values[k] for k in keys], want)
        indicators.update(bar)
