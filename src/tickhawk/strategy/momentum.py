"""The built-in momentum strategy: trend (EMA), strength (RSI) and MACD agree.

On every trade it reads the forming bar's indicator values (peeked, so the
decision does not wait for the bar to close). It goes long when price is above
its EMA, RSI is above ``rsi_upper`` and the MACD histogram is positive; short
on the mirror image. It emits only when its direction changes, and not more
often than ``cooldown_s`` of exchange time; with ``confirm`` set, only when a
higher timeframe's trend agrees (:mod:`tickhawk.strategy.confirm`).
"""

from __future__ import annotations

import math

import msgspec

from tickhawk.model import BUY, SELL, Trade
from tickhawk.state import SymbolState
from tickhawk.strategy.api import Decision, Strategy
from tickhawk.strategy.checks import CheckContext, confirm_problems, interval_problems
from tickhawk.strategy.confirm import ConfirmConfig, TrendFilter

__all__ = ["Momentum", "MomentumConfig"]


class MomentumConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings of the momentum strategy; indicator keys name outputs of the set."""

    interval: str = "1m"
    ema: str = "ema"
    rsi: str = "rsi"
    macd_hist: str = "macd.macdhist"
    atr: str = "atr"
    rsi_upper: float = 55.0
    rsi_lower: float = 45.0
    cooldown_s: float = 1.0
    confirm: ConfirmConfig | None = None
    enabled: bool = True

    def problems(self, context: CheckContext) -> list[str]:
        """Return ``key: what to change`` for each bad setting."""
        out = interval_problems("interval", self.interval, context, indicators=True)
        return out + confirm_problems(self.confirm, context)

    def build(self) -> Strategy:
        """Return a new strategy instance (one per symbol)."""
        return Momentum(self)


class Momentum(Strategy):
    """Emit a signal when EMA trend, RSI and MACD histogram agree on a new direction."""

    name = "momentum"

    def __init__(self, config: MomentumConfig) -> None:
        self.config = config
        self.interval = config.interval
        self.position = 0
        self._last_ns = -(1 << 62)
        self._cooldown_ns = int(config.cooldown_s * 1e9)
        self._values: dict[str, float] | None = None
        self.confirm = TrendFilter(config.confirm) if config.confirm is not None else None

    def on_trade(self, state: SymbolState, trade: Trade) -> Decision | None:
        """Decide on the forming bar's values after this trade."""
        values = self._values
        if values is None:
            indicator_set = state.indicators.get(self.config.interval)
            if indicator_set is None:
                return None
            values = self._values = indicator_set.values
        config = self.config
        ema = values.get(config.ema, math.nan)
        rsi = values.get(config.rsi, math.nan)
        if ema != ema or rsi != rsi:  # NaN: still warming up
            return None
        hist = values.get(config.macd_hist, math.nan)
        price = trade.price
        if price > ema and rsi > config.rsi_upper and not hist < 0.0:
            direction = BUY
        elif price < ema and rsi < config.rsi_lower and not hist > 0.0:
            direction = SELL
        else:
            return None
        if direction == self.position or trade.ts_event - self._last_ns < self._cooldown_ns:
            return None
        atr = values.get(config.atr, math.nan)
        features = {"price": price, "ema": ema, "rsi": rsi, "macd_hist": hist, "atr": atr}
        if self.confirm is not None:
            confirmed, value = self.confirm.filter(state, direction, price)
            if not confirmed:
                return None
            features[self.confirm.feature] = value
        self.position = direction
        self._last_ns = trade.ts_event
        strength = abs(rsi - 50.0) / 50.0
        if atr > 0.0:
            strength = 0.5 * strength + 0.5 * min(1.0, abs(price - ema) / atr)
        return Decision(
            direction,
            round(min(1.0, strength), 4),
            "ema_rsi_macd_up" if direction == BUY else "ema_rsi_macd_down",
            features,
        )
