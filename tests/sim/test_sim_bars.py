"""Bar merging against a naive reference; interval boundaries."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickhawk.sim.bars import (
    CLOSE,
    COUNT,
    FIELDS,
    FIRST,
    HIGH,
    LAST,
    LOW,
    OPEN,
    VOLUME,
    reduce_groups,
)
from tickhawk.sim.intervals import bar_close, bar_open, step_back


def _naive(rows: list[list[int]]) -> list[int]:
    traded = [row for row in rows if row[COUNT] > 0]
    out = [0] * FIELDS
    last_close = rows[-1][CLOSE]
    if not traded:
        out[OPEN] = out[HIGH] = out[LOW] = out[CLOSE] = last_close
        out[FIRST] = out[LAST] = -1
    else:
        out[OPEN] = traded[0][OPEN]
        out[HIGH] = max(row[HIGH] for row in traded)
        out[LOW] = min(row[LOW] for row in traded)
        out[CLOSE] = last_close
        out[FIRST] = traded[0][FIRST]
        out[LAST] = max(row[LAST] for row in traded)  # ids grow with time
    for column in range(VOLUME, FIRST):
        out[column] = sum(row[column] for row in rows)
    return out


_row = st.tuples(
    st.integers(1, 50), st.integers(0, 3), st.integers(0, 100), st.integers(0, 20)
).map(
    lambda values: [
        values[0],
        values[0] + values[1],
        values[0] - min(values[1], values[0] - 1) if values[3] else values[0],
        values[0],
        values[2] if values[3] else 0,
        values[2] * values[0] if values[3] else 0,
        values[3],
        values[2] // 2 if values[3] else 0,
        values[0] * (values[2] // 2) if values[3] else 0,
        values[3] * 10 if values[3] else -1,
        values[3] * 10 + values[3] - 1 if values[3] else -1,
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_row, min_size=1, max_size=6), min_size=1, max_size=6))
def test_reduce_groups_matches_naive(groups: list[list[list[int]]]) -> None:
    rows = np.array([row for group in groups for row in group], dtype=np.int64)
    starts = np.cumsum([0] + [len(group) for group in groups[:-1]]).astype(np.intp)
    merged = reduce_groups(rows, starts)
    assert merged.tolist() == [_naive(group) for group in groups]


def _ms(*parts: int) -> int:
    return int(dt.datetime(*parts, tzinfo=dt.UTC).timestamp() * 1_000)


def test_interval_boundaries() -> None:
    moment = _ms(2024, 8, 8, 23, 54, 14) + 123
    assert bar_open(moment, "1s") == _ms(2024, 8, 8, 23, 54, 14)
    assert bar_open(moment, "15m") == _ms(2024, 8, 8, 23, 45)
    assert bar_open(moment, "4h") == _ms(2024, 8, 8, 20)
    assert bar_open(moment, "1d") == _ms(2024, 8, 8)
    assert bar_open(moment, "1w") == _ms(2024, 8, 5)  # a Monday
    assert bar_open(moment, "1M") == _ms(2024, 8, 1)
    assert bar_close(_ms(2024, 2, 1), "1M") == _ms(2024, 3, 1) - 1
    assert step_back(_ms(2024, 3, 1), "1M", 2).tolist() == [_ms(2024, 1, 1), _ms(2024, 2, 1)]
    assert step_back(_ms(2024, 3, 1), "1h", 1).tolist() == [_ms(2024, 2, 29, 23)]
