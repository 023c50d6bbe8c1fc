"""Time bars from trades, checked against bars computed independently."""

from __future__ import annotations

import json
import tracemalloc
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickhawk.bars.history import FIELDS, BarHistory
from tickhawk.bars.time_bars import TimeBars
from tickhawk.capture import load_capture
from tickhawk.model import Bar

SECOND = 1_000_000_000
MINUTE = 60 * SECOND


def naive_bars(
    trades: list[tuple[float, float, int]], interval: int, symbol: str = "X"
) -> list[Bar]:
    """Group trades by interval; fill empty intervals flat at the previous close."""
    groups: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for trade in trades:
        groups[trade[2] // interval * interval].append(trade)
    label = {SECOND: "1s", MINUTE: "1m", 5 * MINUTE: "5m"}[interval]
    out: list[Bar] = []
    if not groups:
        return out
    first, last = min(groups), max(groups)
    close = 0.0
    for start in range(first, last + interval, interval):
        group = groups.get(start)
        if group:
            prices = [p for p, _, _ in group]
            close = prices[-1]
            out.append(
                Bar(
                    symbol,
                    label,
                    start,
                    prices[0],
                    max(prices),
                    min(prices),
                    close,
                    sum(q for _, q, _ in group),
                    len(group),
                )
            )
        else:
            out.append(Bar(symbol, label, start, close, close, close, close, 0.0, 0))
    return out


def run_bars(trades: list[tuple[float, float, int]], interval: int) -> tuple[list[Bar], TimeBars]:
    closed: list[Bar] = []
    bars = TimeBars("X", interval, closed.append)
    for price, qty, ts in trades:
        bars.add(price, qty, ts)
    return closed, bars


def test_bars_of_the_real_capture_match_independent_bars(usdm_capture: Path) -> None:
    trades = []
    for _, payload in load_capture(usdm_capture):
        if payload.startswith(b'{"stream":"btcusdt@trade"'):
            d = json.loads(payload)["data"]
            trades.append((float(d["p"]), float(d["q"]), d["T"] * 1_000_000))
    assert len(trades) == 21313
    for interval in (SECOND, MINUTE):
        closed, bars = run_bars(trades, interval)
        expected = naive_bars(trades, interval)
        # the last bar is still forming: it closes only when time passes its end
        assert len(closed) == len(expected) - 1
        for got, want in zip(closed, expected, strict=False):
            assert got.open_time == want.open_time
            assert (got.open, got.high, got.low, got.close, got.trades) == (
                want.open,
                want.high,
                want.low,
                want.close,
                want.trades,
            )
            assert abs(got.volume - want.volume) <= 1e-9 * max(1.0, want.volume)
        assert bars.forming() is not None
        assert bars.forming().trades == expected[-1].trades  # type: ignore[union-attr]


trade_lists = st.lists(
    st.tuples(
        st.floats(min_value=0.01, max_value=1e6, allow_nan=False),
        st.floats(min_value=0.001, max_value=100, allow_nan=False),
        st.integers(min_value=0, max_value=30 * SECOND),
    ),
    max_size=200,
).map(lambda ts: sorted(ts, key=lambda t: t[2]))


@settings(max_examples=200, deadline=None)
@given(trade_lists)
def test_bars_match_naive_reference(trades: list[tuple[float, float, int]]) -> None:
    closed, bars = run_bars(trades, SECOND)
    if trades:
        bars.advance(trades[-1][2] // SECOND * SECOND + SECOND)  # time passes the last bar's end
    expected = naive_bars(trades, SECOND)
    assert [(b.open_time, b.open, b.high, b.low, b.close, b.trades) for b in closed] == [
        (b.open_time, b.open, b.high, b.low, b.close, b.trades) for b in expected
    ]
    for got, want in zip(closed, expected, strict=True):
        assert abs(got.volume - want.volume) <= 1e-9 * max(1.0, want.volume)


def test_advance_closes_quiet_intervals_flat() -> None:
    closed, bars = run_bars([(10.0, 1.0, 0), (11.0, 1.0, SECOND // 2)], SECOND)
    bars.advance(3 * SECOND + 1)
    assert [(b.open_time, b.close, b.trades) for b in closed] == [
        (0, 11.0, 2),
        (SECOND, 11.0, 0),
        (2 * SECOND, 11.0, 0),
    ]
    bars.add(12.0, 1.0, 3 * SECOND + 5)
    bars.advance(4 * SECOND)
    assert closed[-1].open_time == 3 * SECOND and closed[-1].close == 12.0


def test_long_gaps_fill_at_most_max_fill_bars() -> None:
    closed: list[Bar] = []
    bars = TimeBars("X", SECOND, closed.append, max_fill=10)
    bars.add(1.0, 1.0, 0)
    bars.add(2.0, 1.0, 10_000 * SECOND)
    assert len(closed) == 11  # the real bar and the 10 flat bars just before the new one
    assert closed[-1].open_time == 9_999 * SECOND


def test_late_trade_is_kept_in_the_forming_bar() -> None:
    closed, bars = run_bars([(1.0, 1.0, 5 * SECOND), (2.0, 1.0, 4 * SECOND)], SECOND)
    assert closed == [] and bars.trades == 2 and bars.late == 1


def test_history_is_bounded() -> None:
    bars = TimeBars("X", SECOND, history_size=5)
    for i in range(100):
        bars.add(1.0, 1.0, i * SECOND)
    assert len(bars.history) == 5


# -- the columnar history --------------------------------------------------------------


def real_trades(path: Path) -> list[tuple[float, float, int]]:
    out = []
    for _, payload in load_capture(path):
        if payload.startswith(b'{"stream":"btcusdt@trade"'):
            d = json.loads(payload)["data"]
            out.append((float(d["p"]), float(d["q"]), d["T"] * 1_000_000))
    return out


def test_history_keeps_the_newest_closed_bars_of_the_real_capture(usdm_capture: Path) -> None:
    """Every reader sees the bars ``on_close`` saw, as before: a deque of the newest ones."""
    trades = real_trades(usdm_capture)
    closed: list[Bar] = []
    bars = TimeBars("X", SECOND, closed.append, history_size=100)
    for price, qty, ts in trades:
        bars.add(price, qty, ts)
    history = bars.history
    assert len(closed) > 300 and history.appended == len(closed)  # wrapped several times
    kept = closed[-100:]
    assert len(history) == 100
    assert list(history) == kept
    assert list(reversed(history)) == kept[::-1]
    assert history[-1] == kept[-1] and history[0] == kept[0] and history[-37] == kept[-37]
    assert history[10:20] == kept[10:20]
    for field in FIELDS:
        want = [getattr(b, field) for b in kept]
        assert history.column(field).tolist() == want
        assert history.column(field, 20).tolist() == want[-20:]


def test_history_is_preallocated_and_appends_allocate_nothing() -> None:
    history = BarHistory("X", "1s", 5000)
    assert BarHistory.bytes_per_bar() == 56
    columns = [getattr(history, field) for field in FIELDS]
    assert sum(c.buffer_info()[1] * c.itemsize for c in columns) == 56 * 5000
    bars = [Bar("X", "1s", i * SECOND, 1.5 + i, 2.5 + i, 0.5, 1.0, 3.25, 7) for i in range(20_000)]
    tracemalloc.start()
    try:
        history.extend(bars)
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grown < 1000  # a deque of the 5,000 kept Bars would hold about 1.6 MB
    assert history[0] == bars[15_000] and history[-1] == bars[-1]


def test_history_columns_are_read_only_views_or_copies() -> None:
    history = BarHistory("X", "1m", 5)
    for i in range(7):  # slots 2, 3, 4 then 0, 1: the newest run wraps
        history.append(Bar("X", "1m", i, float(i), float(i), float(i), float(i), 1.0, i))
    view = history.column("close", 2)  # slots 0 and 1: one run, no copy
    assert view.tolist() == [5.0, 6.0] and view.base is not None
    wrapped = history.column("close", 4)  # slots 3, 4, 0, 1
    assert wrapped.tolist() == [3.0, 4.0, 5.0, 6.0]
    assert history.column("open_time").dtype == np.int64
    assert history.column("volume").dtype == np.float64
    assert history.column("trades", 0).tolist() == [] and history.column("trades", 99).size == 5
    for array in (view, wrapped):
        with pytest.raises(ValueError):
            array[0] = 1.0
    with pytest.raises(ValueError, match="no bar field 'vwap'; use one of open_time, open"):
        history.column("vwap")  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        history[5]
    with pytest.raises(IndexError):
        history[-6]
    with pytest.raises(ValueError, match="must be positive"):
        BarHistory("X", "1m", 0)


bar_values = st.tuples(
    st.integers(min_value=0, max_value=2**62),
    st.floats(allow_nan=False),
    st.floats(allow_nan=False),
    st.floats(allow_nan=False),
    st.floats(allow_nan=False),
    st.floats(min_value=0, allow_nan=False),
    st.integers(min_value=0, max_value=2**62),
)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=12),
    st.lists(st.lists(bar_values, max_size=15), max_size=6),
    st.integers(min_value=-20, max_value=20),
)
def test_history_matches_a_bounded_list(
    maxlen: int, batches: list[list[tuple[int, float, float, float, float, float, int]]], n: int
) -> None:
    """Appends and extends of any size against a naive list cut to the newest ``maxlen``."""
    history = BarHistory("X", "1s", maxlen)
    reference: list[Bar] = []
    for index, batch in enumerate(batches):
        bars = [Bar("X", "1s", *values) for values in batch]
        if index % 2:
            history.extend(bars)
        else:
            for bar in bars:
                history.append(bar)
        reference = (reference + bars)[-maxlen:]
        assert len(history) == len(reference) and bool(history) == bool(reference)
        assert list(history) == reference
        assert list(reversed(history)) == reference[::-1]
        assert history[n // 3 : n] == reference[n // 3 : n]
        if -len(reference) <= n < len(reference):
            assert history[n] == reference[n]
        for field in FIELDS:
            want = [getattr(b, field) for b in reference]
            assert history.column(field).tolist() == want
            assert history.column(field, n).tolist() == (want[-n:] if n > 0 else [])
    assert history.appended == sum(len(batch) for batch in batches)
