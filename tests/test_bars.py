"""Time bars from trades, checked against bars computed independently."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

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
