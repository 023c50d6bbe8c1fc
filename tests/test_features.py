"""Order-flow and book features against naive, obviously correct references (hypothesis).

The references keep every trade and recompute each value from scratch with
the documented definition; the features under test are O(1) per event with
fixed memory. Quantities and prices are multiples of 1/4, so sums are exact
and the two agree to rounding.
"""

from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from tickhawk.indicators.features import FEATURE_KEYS, Features, FeaturesConfig
from tickhawk.indicators.flow import FLOW_KEYS, TradeFlow
from tickhawk.indicators.microstructure import Microstructure
from tickhawk.model import Quote

MS = 1_000_000
WINDOW = 1_000 * MS
BUCKETS = 4
WIDTH = WINDOW // BUCKETS
BASELINE = 5
MIN_BASELINE = 2
SAMPLE = 200 * MS
SAMPLES = 3
LARGE_MULT = 3.0
T0 = 1_700_000_000_000 * MS


@dataclass
class Reference:
    """Every trade kept; each value recomputed from its definition."""

    large_min: float
    trades: list[tuple[int, float, float, int, bool]] = field(default_factory=list)
    now: int = -1  # effective exchange time: the latest seen
    first: int = -1
    values: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FLOW_KEYS, math.nan))

    def bucket(self) -> int:
        return self.now // WIDTH

    def window(self, *, closed_only: bool = False) -> list[tuple[int, float, float, int, bool]]:
        now = self.bucket()
        last = now - 1 if closed_only else now
        return [t for t in self.trades if now - BUCKETS < t[0] // WIDTH <= last]

    def trade(self, price: float, qty: float, side: int, ts: int) -> None:
        self.now = max(self.now, ts)
        if self.first < 0:
            self.first = self.now
        closed = self.window(closed_only=True)
        if closed:
            mean = math.fsum(t[2] for t in closed) / len(closed)
            threshold = max(LARGE_MULT * mean, self.large_min)
        else:
            threshold = self.large_min or math.inf
        large = qty >= threshold
        self.trades.append((self.now, price, qty, side, large))
        self._publish(price, large_trade=(qty * side if large else 0.0))

    def advance(self, ts: int) -> None:
        if self.first < 0 or ts < (self.bucket() + 1) * WIDTH:
            return
        self.now = ts
        self._publish(self.trades[-1][1], large_trade=0.0)

    def _publish(self, price: float, large_trade: float) -> None:
        window = self.window()
        buy = math.fsum(t[2] for t in window if t[3] > 0)
        sell = math.fsum(t[2] for t in window if t[3] < 0)
        volume = buy + sell
        values = self.values
        values["large_trade"] = large_trade
        values["large_count"] = sum(1 for t in window if t[4])
        values["trade_intensity"] = len(window) / (WINDOW / 1e9)
        if volume > 0:
            vwap = math.fsum(t[1] * t[2] for t in window) / volume
            values["flow_imbalance"] = (buy - sell) / volume
            values["vwap"] = vwap
            values["vwap_dev_bps"] = (price - vwap) / vwap * 10_000
        else:
            values["flow_imbalance"] = values["vwap"] = values["vwap_dev_bps"] = math.nan
        values["volume_z"] = self._volume_z(volume)
        values["realized_vol"] = self._realized_vol()

    def _volume_z(self, volume: float) -> float:
        slot = self.bucket() // BUCKETS
        first = (self.first // WIDTH) // BUCKETS
        slots = list(range(max(first + 1, slot - BASELINE), slot))
        if len(slots) < MIN_BASELINE:
            return math.nan
        volumes = [
            math.fsum(t[2] for t in self.trades if (t[0] // WIDTH) // BUCKETS == s) for s in slots
        ]
        mean = math.fsum(volumes) / len(volumes)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in volumes) / len(volumes))
        return (volume - mean) / std if std > 0 else math.nan

    def _realized_vol(self) -> float:
        current = self.now // SAMPLE
        first = self.first // SAMPLE
        if current == first:
            return math.nan
        closes: dict[int, float] = {}
        for t in self.trades:
            closes[t[0] // SAMPLE] = t[1]  # the last price of each sample
        close = {}
        last = math.nan
        for s in range(first, current):
            last = closes.get(s, last)
            close[s] = last
        squares = [
            math.log(close[s] / close[s - 1]) ** 2 if s > first else 0.0
            for s in range(max(first, current - SAMPLES), current)
        ]
        return math.sqrt(math.fsum(squares))


def make_flow(values: dict[str, float], large_min: float) -> TradeFlow:
    return TradeFlow(
        values,
        window_ns=WINDOW,
        buckets=BUCKETS,
        baseline=BASELINE,
        min_baseline=MIN_BASELINE,
        sample_ns=SAMPLE,
        samples=SAMPLES,
        large_mult=LARGE_MULT,
        large_min_qty=large_min,
    )


def agree(got: float, want: float) -> bool:
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    return abs(got - want) <= 1e-9 * max(1.0, abs(want))


quarter = st.integers(min_value=1, max_value=40).map(lambda n: n / 4)
event = st.one_of(
    st.tuples(
        st.just("trade"),
        st.integers(min_value=-300, max_value=700),  # ms step; negative: a late trade
        st.integers(min_value=396, max_value=404).map(lambda n: n / 4),
        quarter,
        st.sampled_from([1, -1]),
    ),
    st.tuples(
        st.just("advance"),
        st.integers(min_value=0, max_value=3_000),
        st.just(0.0),
        st.just(0.0),
        st.just(0),
    ),
    st.tuples(
        st.just("gap"),
        st.integers(min_value=1_000, max_value=9_000),
        st.just(0.0),
        st.just(0.0),
        st.just(0),
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(event, min_size=1, max_size=160), st.sampled_from([0.0, 5.0]))
def test_trade_flow_equals_reference(
    events: list[tuple[str, int, float, float, int]], large_min: float
) -> None:
    values: dict[str, float] = {}
    flow = make_flow(values, large_min)
    reference = Reference(large_min)
    clock = T0
    for kind, step, price, qty, side in events:
        clock += step * MS
        if kind == "gap":
            continue  # time passes without an event
        if kind == "advance":
            flow.advance(clock)
            reference.advance(clock)
        else:
            flow.on_trade(price, qty, side, clock)
            reference.trade(price, qty, side, clock)
        for key in FLOW_KEYS:
            assert agree(values[key], reference.values[key]), (
                key,
                values[key],
                reference.values[key],
            )


@given(st.lists(st.tuples(quarter, quarter, st.sampled_from([1, -1])), min_size=1, max_size=400))
def test_memory_is_fixed_whatever_the_flow(trades: list[tuple[float, float, int]]) -> None:
    flow = make_flow({}, 0.0)
    sizes = (len(flow._b_buy), len(flow._base), len(flow._rv))
    for i, (price, qty, side) in enumerate(trades):
        flow.on_trade(100 + price, qty, side, T0 + i * 37 * MS)
    assert (len(flow._b_buy), len(flow._base), len(flow._rv)) == sizes


def test_flow_windows_take_no_more_memory_as_they_fill() -> None:
    """The default windows (10 minutes of volume baseline) filling up allocate nothing.

    With lists of floats, each written slot held a float object of its own: the
    memory crept for the baseline's ten minutes (the soak's RSS slope).
    """
    config = FeaturesConfig()
    flows = [Features(config).flow for _ in range(50)]

    def feed(start_s: int, end_s: int) -> None:
        for second in range(start_s, end_s):
            for k in range(4):
                ts = T0 + second * 1_000_000_000 + k * 250_000_000
                for n, flow in enumerate(flows):
                    flow.on_trade(100.0 + (second % 7) * 0.01 + n, 0.5 + k, 1 - 2 * (k % 2), ts)

    feed(0, 30)  # every window has rolled once
    before = sys.getallocatedblocks()
    feed(30, 900)  # 15 minutes: the baseline (60 × 10 s) and the volatility samples fill
    assert sys.getallocatedblocks() - before < 500  # lists: + about 50 × 180 float objects


positive = st.integers(min_value=1, max_value=4_000).map(lambda n: n / 4)


@given(positive, positive, st.integers(min_value=1, max_value=400).map(lambda n: n / 4), positive)
def test_quote_features_equal_their_definitions(
    bid: float, bid_qty: float, spread: float, ask_qty: float
) -> None:
    values: dict[str, float] = {}
    micro = Microstructure(values)
    ask = bid + spread
    micro.on_quote(Quote("X", 1, bid, bid_qty, ask, ask_qty, 0, 0))
    mid = (bid + ask) / 2
    assert agree(values["mid"], mid)
    assert agree(values["spread"], ask - bid)
    assert agree(values["spread_bps"], (ask - bid) / mid * 10_000)
    assert agree(values["microprice"], (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty))
    assert agree(values["quote_imbalance"], (bid_qty - ask_qty) / (bid_qty + ask_qty))
    assert bid <= values["microprice"] <= ask


class FakeBook:
    """An L2 book as two dicts, read naively (the BookView protocol)."""

    def __init__(self, bids: dict[float, float], asks: dict[float, float]) -> None:
        self.bids = bids
        self.asks = asks

    def levels(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        return bids, asks


side_levels = st.dictionaries(
    st.integers(min_value=1, max_value=200).map(lambda n: n / 4), positive, max_size=25
)


@given(side_levels, side_levels, st.integers(min_value=1, max_value=12))
def test_depth_features_equal_their_definitions(
    bid_levels: dict[float, float], ask_offsets: dict[float, float], levels: int
) -> None:
    asks = {60.0 + price: qty for price, qty in ask_offsets.items()}
    values: dict[str, float] = {}
    Microstructure(values, levels=levels).on_book(FakeBook(bid_levels, asks))
    top_bids = sorted(bid_levels.items(), reverse=True)[:levels]
    top_asks = sorted(asks.items())[:levels]
    if not (top_bids and top_asks):
        assert math.isnan(values["depth_imbalance"]) and math.isnan(values["liquidity_gap_bps"])
        return
    bid_size = sum(q for _, q in top_bids)
    ask_size = sum(q for _, q in top_asks)
    assert agree(values["depth_imbalance"], (bid_size - ask_size) / (bid_size + ask_size))
    steps = [a[0] - b[0] for a, b in itertools.pairwise(top_bids)]
    steps += [b[0] - a[0] for a, b in itertools.pairwise(top_asks)]
    mid = (top_bids[0][0] + top_asks[0][0]) / 2
    assert agree(values["liquidity_gap_bps"], max(steps, default=0.0) / mid * 10_000)


def test_features_config_per_symbol_overrides() -> None:
    config = FeaturesConfig(
        large_trade_min_qty=1.0, symbols={"btcusdt": {"large_trade_min_qty": 5}}
    )
    assert config.for_symbol("BTCUSDT").large_trade_min_qty == 5.0
    assert config.for_symbol("ETHUSDT").large_trade_min_qty == 1.0
    features = Features(config.for_symbol("BTCUSDT"))
    assert list(features.values) == list(FEATURE_KEYS)
    assert all(math.isnan(v) for v in features.values.values())
    assert FeaturesConfig(flow_buckets=0).problems() == [
        "flow_buckets: must be a positive whole number"
    ]


def test_a_large_trade_is_flagged_against_the_window_mean() -> None:
    values: dict[str, float] = {}
    flow = make_flow(values, 0.0)
    for i in range(20):
        flow.on_trade(100.0, 1.0, 1, T0 + i * 100 * MS)
    flow.on_trade(100.0, 3.5, -1, T0 + 2_000 * MS)
    assert values["large_trade"] == -3.5 and values["large_count"] == 1
    flow.on_trade(100.0, 2.0, 1, T0 + 2_001 * MS)
    assert values["large_trade"] == 0.0 and values["large_count"] == 1
