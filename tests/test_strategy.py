"""The strategy API: hooks, decisions, signals stamped at every stage."""

from __future__ import annotations

from tickhawk.config import parse_config
from tickhawk.engine import Engine
from tickhawk.model import BUY, SELL, Bar, BookUpdate, Quote, Signal, Trade
from tickhawk.state import SymbolState
from tickhawk.strategy.api import Decision, Strategy
from tickhawk.strategy.momentum import Momentum, MomentumConfig

SECOND = 1_000_000_000


class EveryThird(Strategy):
    """Signal on every third trade, long if the trade was a buy."""

    name = "every_third"

    def __init__(self) -> None:
        self.seen = 0

    def on_trade(self, state: SymbolState, trade: Trade) -> Decision | None:
        self.seen += 1
        if self.seen % 3:
            return None
        return Decision(trade.side, 0.5, "third", {"price": trade.price})


class BarCounter(Strategy):
    name = "bars"
    interval = "1s"

    def __init__(self) -> None:
        self.bars: list[Bar] = []
        self.rsi_at_close: list[float] = []

    def on_bar(self, state: SymbolState, bar: Bar) -> Decision | None:
        self.bars.append(bar)
        self.rsi_at_close.append(state.indicators["1s"].values["rsi"])
        return None


class BookWatcher(Strategy):
    name = "book"

    def on_book(self, state: SymbolState, update: BookUpdate | Quote) -> Decision | None:
        if isinstance(update, Quote) and update.ask - update.bid > 1.0:
            return Decision(SELL, 1.0, "wide")
        return None


CONFIG = parse_config(
    {
        "venue": {"symbols": ["BTCUSDT"]},
        "engine": {"intervals": ["1s"]},
        "indicators": {"1s": {"rsi": {"fn": "RSI", "timeperiod": 3}}},
        "strategies": {},
    }
)


def make_engine(*strategies: Strategy) -> tuple[Engine, list[Signal]]:
    engine = Engine(CONFIG, strategy_factory=lambda symbol: list(strategies))
    signals: list[Signal] = []
    engine.sinks.append(signals.append)
    return engine, signals


def trade(i: int, price: float, ts: int, side: int = BUY) -> Trade:
    return Trade("BTCUSDT", i, price, 1.0, side, ts, ts)


def test_trade_hook_decisions_become_stamped_signals() -> None:
    strategy = EveryThird()
    engine, signals = make_engine(strategy)
    state = engine.states["BTCUSDT"]
    for i in range(9):
        state.on_trade(
            trade(i, 100.0 + i, i * SECOND // 10, BUY if i % 2 else SELL), 10 + i, 20 + i
        )
    assert strategy.seen == 9
    assert [s.direction for s in signals] == [SELL, BUY, SELL]  # trades 2, 5, 8
    for s in signals:
        assert s.strategy == "every_third" and s.symbol == "BTCUSDT" and s.reason == "third"
        assert s.t_recv < s.t_decoded <= s.t_state <= s.t_strategy <= s.t_emitted
        assert s.features == {"price": s.price}
    assert engine.signals == 3 and state.last_signal == signals[-1]


def test_bar_hook_sees_committed_indicators() -> None:
    strategy = BarCounter()
    engine, _ = make_engine(strategy)
    state = engine.states["BTCUSDT"]
    prices = [100, 101, 103, 102, 104, 106, 105, 107]
    for i, price in enumerate(prices):
        state.on_trade(trade(i, float(price), i * SECOND), 0, 0)
    assert [b.close for b in strategy.bars] == prices[:-1]
    assert strategy.rsi_at_close[2] != strategy.rsi_at_close[2]  # NaN while warming (RSI 3)
    assert strategy.rsi_at_close[3] == strategy.rsi_at_close[3]  # committed from bar 4 on


def test_book_hook_receives_quotes_and_unused_hooks_are_skipped() -> None:
    watcher = BookWatcher()
    engine, signals = make_engine(watcher)
    state = engine.states["BTCUSDT"]
    assert state._trade_hooks == [] and state._bar_hooks == []  # never called: not overridden
    state.on_quote(Quote("BTCUSDT", 1, 100.0, 1.0, 100.5, 1.0, 0, 0), 1, 2)
    state.on_quote(Quote("BTCUSDT", 2, 100.0, 1.0, 102.0, 1.0, 0, 0), 1, 2)
    assert [(s.direction, s.reason) for s in signals] == [(SELL, "wide")]


def test_momentum_emits_on_direction_changes_only() -> None:
    config = parse_config(
        {
            "venue": {"symbols": ["BTCUSDT"]},
            "engine": {"intervals": ["1s"]},
            "indicators": {
                "1s": {"ema": {"fn": "EMA", "timeperiod": 3}, "rsi": {"fn": "RSI", "timeperiod": 3}}
            },
            "strategies": {"momentum": {"interval": "1s", "cooldown_s": 0}},
        }
    )
    engine = Engine(config)
    signals: list[Signal] = []
    engine.sinks.append(signals.append)
    state = engine.states["BTCUSDT"]
    prices = [100 + i for i in range(10)] + [109 - 2 * i for i in range(10)]
    for i, price in enumerate(prices):
        for j in range(3):
            state.on_trade(trade(i * 3 + j, float(price), i * SECOND + j), 0, 0)
    assert [s.direction for s in signals] == [BUY, SELL]
    assert all(0.0 <= s.score <= 1.0 for s in signals)
    assert set(signals[0].features) == {"price", "ema", "rsi", "macd_hist", "atr"}
    assert isinstance(state.strategies[0], Momentum)
    assert MomentumConfig().interval == "1m"


def test_repeated_trade_ids_are_dropped_and_late_ones_taken_once() -> None:
    engine, _ = make_engine()
    state = engine.states["BTCUSDT"]
    for i in (1, 2, 2, 5, 3, 3, 4, 1):  # a repeat, a gap (3, 4), late fills, repeats of them
        state.on_trade(trade(i, 100.0, i * SECOND), 0, 0)
    assert [t.id for t in state.trades.latest(10)] == [1, 2, 5, 3, 4]
    assert state.duplicate_trades == 3 and state.trade_gaps == 1
    assert not state.missing_trade_ids
