"""The trade ring: bounded, preallocated, newest last."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tickhawk.model import BUY, SELL, Trade
from tickhawk.ring import TradeRing


def trade(i: int) -> Trade:
    return Trade("X", i, 100.0 + i, 0.5 * i, BUY if i % 2 else SELL, i * 1000, i * 1000 + 7)


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=200))
def test_ring_keeps_the_newest(capacity: int, n: int) -> None:
    ring = TradeRing("X", capacity)
    for i in range(n):
        ring.append(trade(i))
    kept = list(range(max(0, n - capacity), n))
    assert len(ring) == len(kept) and ring.count == n
    assert ring.latest(capacity + 5) == [trade(i) for i in kept]
    assert ring.latest(2) == [trade(i) for i in kept[-2:]]
    assert ring.last() == (trade(n - 1) if n else None)


def test_columns_are_numpy_views_and_memory_is_fixed() -> None:
    ring = TradeRing("X", 8)
    before = ring.price.buffer_info()
    for i in range(100):
        ring.append(trade(i))
    assert ring.price.buffer_info() == before  # never reallocated
    prices = np.frombuffer(ring.price)
    assert sorted(prices) == [100.0 + i for i in range(92, 100)]
