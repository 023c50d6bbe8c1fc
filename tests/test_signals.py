"""Tier-1 signals configured, not coded: breakout, volume surge, book imbalance, confirmation."""

from __future__ import annotations

from typing import Any

import pytest

from tickhawk.config import ConfigError, parse_config
from tickhawk.engine import Engine
from tickhawk.model import BUY, SELL, Quote, Signal, Trade
from tickhawk.state import SymbolState
from tickhawk.strategy.trigger import Trigger

SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND


def engine_with(strategies: dict[str, Any], **extra: Any) -> tuple[SymbolState, list[Signal]]:
    data: dict[str, Any] = {
        "venue": {"symbols": ["BTCUSDT"]},
        "engine": {"intervals": ["1s"]},
        "indicators": {"3s": {"ema": {"fn": "EMA", "timeperiod": 2}}},
        "strategies": strategies,
    }
    data.update(extra)
    engine = Engine(parse_config(data))
    signals: list[Signal] = []
    engine.sinks.append(signals.append)
    return engine.states["BTCUSDT"], signals


class Tape:
    """Feed trades to a state with increasing ids."""

    def __init__(self, state: SymbolState) -> None:
        self.state = state
        self.next_id = 0

    def __call__(self, price: float, qty: float, ts: int, side: int = BUY) -> None:
        self.next_id += 1
        self.state.on_trade(Trade("BTCUSDT", self.next_id, price, qty, side, ts, ts), 1, 2)


def range_bars(tape: Tape, count: int) -> None:
    """``count`` one-second bars between 99 and 101, volume 2 each."""
    for i in range(count):
        tape(99.0, 1.0, T0 + i * SECOND)
        tape(101.0, 1.0, T0 + i * SECOND + SECOND // 2)


def test_breakout_fires_once_when_price_leaves_the_range_on_volume() -> None:
    state, signals = engine_with(
        {"breakout": {"interval": "1s", "lookback": 5, "volume_mult": 1.5, "cooldown_s": 0}}
    )
    tape = Tape(state)
    range_bars(tape, 6)
    assert signals == []
    now = T0 + 6 * SECOND
    tape(100.0, 0.1, now)  # inside the range
    tape(102.0, 2.0, now + SECOND // 2)  # above it, at 2x the usual pace
    tape(103.0, 1.0, now + SECOND // 2 + 1)  # still above: no repeat
    assert [(s.direction, s.reason) for s in signals] == [(BUY, "break_up")]
    features = signals[0].features
    assert features["range_high"] == 101.0 and features["range_low"] == 99.0
    assert features["mean_volume"] == 2.0 and features["volume_pace"] == pytest.approx(2.1)
    assert 0.0 < signals[0].score <= 1.0


def test_breakout_without_volume_is_ignored() -> None:
    state, signals = engine_with(
        {"breakout": {"interval": "1s", "lookback": 5, "volume_mult": 1.5, "cooldown_s": 0}}
    )
    tape = Tape(state)
    range_bars(tape, 6)
    tape(98.0, 0.2, T0 + 6 * SECOND + SECOND // 2, SELL)  # below, but a thin tape
    assert signals == []
    tape(97.5, 3.0, T0 + 6 * SECOND + SECOND // 2 + 1, SELL)  # now the volume is there
    assert [(s.direction, s.reason) for s in signals] == [(SELL, "break_down")]


def test_confirmation_by_a_higher_timeframe_blocks_a_disagreeing_signal() -> None:
    confirm = {"interval": "3s", "indicator": "ema"}
    breakout = {"interval": "1s", "lookback": 5, "volume_mult": 1.0, "cooldown_s": 0}
    state, signals = engine_with(
        {"breakout": {**breakout, "confirm": confirm}},
        indicators={"3s": {"ema": {"fn": "EMA", "timeperiod": 5}}},
    )
    tape = Tape(state)
    for i in range(60):  # 30 s at 200: the 3 s EMA settles there
        tape(200.0, 1.0, T0 + i * SECOND // 2)
    for i in range(30, 36):  # then a 1 s range at 99-101, well below the 3 s EMA
        tape(99.0, 1.0, T0 + i * SECOND)
        tape(101.0, 1.0, T0 + i * SECOND + SECOND // 2)
    signals.clear()  # the fall from 200 was a (confirmed) break down
    tape(102.0, 5.0, T0 + 36 * SECOND + SECOND // 2)
    assert signals == []  # above the 1 s range, but below the 3 s EMA: not confirmed
    tape(97.0, 10.0, T0 + 36 * SECOND + SECOND // 2 + 1, SELL)
    assert [s.direction for s in signals] == [SELL]
    assert signals[0].features["confirm.3s.ema"] > 102.0


def test_volume_surge_signals_with_the_aggressors() -> None:
    features = {
        "flow_window_s": 1.0,
        "flow_buckets": 2,
        "volume_baseline": 5,
        "volume_min_baseline": 3,
    }
    state, signals = engine_with(
        {"volume_surge": {"z_threshold": 3.0, "min_imbalance": 0.5, "cooldown_s": 0}},
        features=features,
    )
    tape = Tape(state)
    for i in range(80):  # 8 s of a quiet, balanced tape: 10 or 20 a second
        tape(100.0, 1.0 + (i // 10) % 2, T0 + i * SECOND // 10, BUY if i % 2 else SELL)
    assert signals == []
    for i in range(10):  # a burst of buying
        tape(100.5, 5.0, T0 + 8 * SECOND + i * SECOND // 50)
    assert [(s.direction, s.reason) for s in signals] == [(BUY, "surge_buying")]
    kept = signals[0].features
    assert kept["volume_z"] >= 3.0 and kept["flow_imbalance"] >= 0.5
    assert set(kept) >= {"volume_z", "flow_imbalance", "trade_intensity", "price"}


def quote(bid_qty: float, ask_qty: float, ts: int) -> Quote:
    return Quote("BTCUSDT", ts, 100.0, bid_qty, 100.1, ask_qty, ts, ts)


def test_book_imbalance_from_the_best_bid_and_ask() -> None:
    state, signals = engine_with({"book_imbalance": {"threshold": 0.6, "cooldown_s": 0}})
    state.on_quote(quote(1.0, 1.2, T0), 1, 2)
    state.on_quote(quote(10.0, 1.0, T0 + 1), 1, 2)  # bid-heavy
    state.on_quote(quote(12.0, 1.0, T0 + 2), 1, 2)  # still: no repeat
    state.on_quote(quote(1.0, 9.0, T0 + 3), 1, 2)  # ask-heavy
    assert [(s.direction, s.reason) for s in signals] == [(BUY, "bid_heavy"), (SELL, "ask_heavy")]
    assert signals[0].score == pytest.approx(9 / 11, abs=1e-4)
    assert signals[0].features["imbalance"] == pytest.approx(9 / 11)
    assert signals[0].features["microprice"] > 100.05  # leans to the ask: buyers waiting


def test_trigger_fires_on_entering_a_direction_within_the_cooldown() -> None:
    trigger = Trigger(cooldown_ns=10)
    fired = [trigger.fire(d, t) for d, t in [(1, 0), (1, 1), (0, 2), (1, 5), (0, 11), (1, 12)]]
    assert fired == [True, False, False, False, False, True]


@pytest.mark.parametrize(
    ("strategies", "extra", "message"),
    [
        (
            {"breakout": {"interval": "5m"}},
            {},
            r'^strategies.breakout.interval: no 5m bars; add "5m" to engine.intervals$',
        ),
        (
            {"breakout": {"interval": "1s", "lookback": 5000}},
            {},
            r"^strategies.breakout.lookback: 5000 bars exceed engine.bar_history \(1000\)",
        ),
        (
            {"volume_surge": {"confirm": {"interval": "3s", "indicator": "emma"}}},
            {},
            r"^strategies.volume_surge.confirm.indicator: 3s indicators have no output 'emma' "
            r"\(did you mean ema\?\)",
        ),
        (
            {"book_imbalance": {"confirm": {"interval": "1h"}}},
            {},
            r"^strategies.book_imbalance.confirm.interval: no indicators are configured for '1h'",
        ),
        (
            {"volume_surge": {}},
            {"features": {"enabled": False}},
            r"^strategies.volume_surge.enabled: needs \[features\] enabled = true$",
        ),
        (
            {"book_imbalance": {"threshold": 1.5}},
            {},
            r"^strategies.book_imbalance.threshold: must be in \(0, 1\]$",
        ),
        ({"book_imbalance": {"side": "bid"}}, {}, r"unknown field `side`"),
        (
            {},
            {"features": {"flow_window_s": -1}},
            r"^features.flow_window_s: must be a positive number of seconds$",
        ),
        (
            {},
            {"features": {"symbols": {"BTCUSDT": {"flow_bucket": 3}}}},
            r"^features.symbols.BTCUSDT: Object contains unknown field `flow_bucket`$",
        ),
    ],
)
def test_bad_signal_settings_end_in_one_line(
    strategies: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    data: dict[str, Any] = {
        "engine": {"intervals": ["1s"]},
        "indicators": {"3s": {"ema": {"fn": "EMA", "timeperiod": 2}}},
        "strategies": strategies,
    }
    data.update(extra)
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(data)
    assert "\n" not in str(caught.value)


def test_depth_features_are_opt_in_and_hooked_to_the_live_book() -> None:
    state, _ = engine_with({}, venue={"symbols": ["BTCUSDT"], "streams": ["trade", "depth"]})
    assert state.features is not None and state.features.depth_hook is None
    assert state.book_listeners == []
    state, _ = engine_with(
        {"book_imbalance": {"source": "depth"}},
        venue={"symbols": ["BTCUSDT"], "streams": ["trade", "depth"]},
        features={"depth_levels": 5},
    )
    assert state.features is not None and state.features.micro.levels == 5
    assert state.book_listeners == [state.features.depth_hook]
    with pytest.raises(ConfigError, match=r'^strategies.book_imbalance.source: "depth" needs'):
        parse_config({"strategies": {"book_imbalance": {"source": "depth"}}})


def test_the_signals_example_builds_every_strategy_per_symbol() -> None:
    from pathlib import Path

    from tickhawk.config import load_config
    from tickhawk.indicators.warmup import bars_to_fetch

    config = load_config(Path(__file__).resolve().parent.parent / "examples" / "signals.toml")
    engine = Engine(config)
    state = engine.states["BTCUSDT"]
    assert [s.name for s in state.strategies] == [
        "momentum",
        "breakout",
        "volume_surge",
        "book_imbalance",
    ]
    assert state.strategies[1] is not engine.states["ETHUSDT"].strategies[1]
    assert bars_to_fetch(state, "1m", 200) == 34 + 200  # MACD's 34 > the breakout's 20
    assert bars_to_fetch(state, "5m", 200) == 50 + 200  # EMA(50)
    assert state.features is not None and state.features.config.large_trade_min_qty == 1.0


def test_momentum_can_require_a_higher_timeframe() -> None:
    indicators = {
        "1s": {"ema": {"fn": "EMA", "timeperiod": 3}, "rsi": {"fn": "RSI", "timeperiod": 3}},
        "3s": {"trend": {"fn": "ROC", "timeperiod": 1}},
    }
    confirm = {"interval": "3s", "indicator": "trend", "mode": "sign"}
    state, signals = engine_with(
        {"momentum": {"interval": "1s", "cooldown_s": 0, "confirm": confirm}},
        indicators=indicators,
    )
    tape = Tape(state)
    prices = [100 + i for i in range(10)] + [109 - 2 * i for i in range(10)]
    for i, price in enumerate(prices):
        tape(float(price), 1.0, T0 + i * SECOND)
    assert [s.direction for s in signals] == [BUY, SELL]
    assert all("confirm.3s.trend" in s.features for s in signals)
