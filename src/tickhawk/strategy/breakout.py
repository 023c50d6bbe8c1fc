"""Momentum breakout, a tier-1 signal: price leaves the range of the last N bars on volume.

``[strategies.breakout]``: the range is the highest high and lowest low of
the last ``lookback`` closed ``interval`` bars. After every trade, a price
above the range (below it) with volume confirmation goes long (short), once
per break. Volume confirms when the forming bar trades at ``volume_mult`` times the
usual pace or more: its volume so far against the range bars' mean volume ×
the share of the bar elapsed (at least a tenth); ``volume_mult = 0`` turns it
off. The score is half how far beyond the range (full at half the range's
width) and half the volume pace (full at twice ``volume_mult``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec

from tickhawk.model import Trade, parse_interval
from tickhawk.strategy.api import Decision, Strategy
from tickhawk.strategy.checks import CheckContext, confirm_problems, interval_problems
from tickhawk.strategy.confirm import ConfirmConfig, TrendFilter
from tickhawk.strategy.trigger import Trigger

if TYPE_CHECKING:
    from tickhawk.bars.time_bars import TimeBars
    from tickhawk.state import SymbolState

__all__ = ["Breakout", "BreakoutConfig"]

_MIN_ELAPSED = 0.1


class BreakoutConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings of the momentum-breakout signal."""

    interval: str = "1m"
    lookback: int = 20
    volume_mult: float = 1.5
    cooldown_s: float = 60.0
    confirm: ConfirmConfig | None = None
    enabled: bool = True

    def problems(self, context: CheckContext) -> list[str]:
        """Return ``key: what to change`` for each bad setting."""
        out = interval_problems("interval", self.interval, context, indicators=False)
        out += confirm_problems(self.confirm, context)
        if self.lookback < 1:
            out.append("lookback: must be at least 1 bar")
        elif self.lookback > context.bar_history:
            out.append(
                f"lookback: {self.lookback} bars exceed engine.bar_history "
                f"({context.bar_history}); raise bar_history or shorten lookback"
            )
        if self.volume_mult < 0:
            out.append("volume_mult: must not be negative (0 turns volume confirmation off)")
        if self.cooldown_s < 0:
            out.append("cooldown_s: must not be negative")
        return out

    def build(self) -> Strategy:
        """Return a new strategy instance (one per symbol)."""
        return Breakout(self)


class Breakout(Strategy):
    """Signal when price breaks the N-bar range with the volume to back it."""

    name = "breakout"

    def __init__(self, config: BreakoutConfig) -> None:
        self.config = config
        self.interval = config.interval
        self.trigger = Trigger(int(config.cooldown_s * 1e9))
        self.confirm = TrendFilter(config.confirm) if config.confirm is not None else None
        self._interval_ns = parse_interval(config.interval)
        self._bars: TimeBars | None = None
        self._seen = 0  # closed bars in the history when the range was built
        self.high = self.low = self.mean_volume = math.nan

    def bars_needed(self, interval: str) -> int:
        """Return the range's bars for this strategy's interval."""
        return self.config.lookback if interval == self.config.interval else 0

    def _range(self, bars: TimeBars) -> bool:
        """Refresh the range when a bar closed since; return whether it is complete."""
        history = bars.history
        if history.appended != self._seen:
            self._seen = history.appended
            lookback = self.config.lookback
            if len(history) < lookback:
                self.high = math.nan
                return False
            self.high = float(history.column("high", lookback).max())
            self.low = float(history.column("low", lookback).min())
            self.mean_volume = math.fsum(history.column("volume", lookback).tolist()) / lookback
        return self.high == self.high

    def on_trade(self, state: SymbolState, trade: Trade) -> Decision | None:
        """Decide on the forming bar after this trade."""
        bars = self._bars
        if bars is None:
            bars = self._bars = state.bars.get(self.config.interval)
            if bars is None:
                return None
        if not self._range(bars):
            return None
        price = trade.price
        high = self.high
        low = self.low
        direction = 1 if price > high else -1 if price < low else 0
        pace = math.inf
        if direction:
            elapsed = max(_MIN_ELAPSED, (trade.ts_event - bars.open_time) / self._interval_ns)
            usual = self.mean_volume * elapsed
            pace = bars.volume / usual if usual > 0.0 else math.inf
            if pace < self.config.volume_mult:
                direction = 0
        confirm = self.confirm
        trend_value = math.nan
        if direction and confirm is not None:
            direction, trend_value = confirm.filter(state, direction, price)
        if not self.trigger.fire(direction, trade.ts_event):
            return None
        width = high - low
        beyond = (price - high if direction > 0 else low - price) / width if width > 0 else 1.0
        mult = self.config.volume_mult
        volume_score = min(1.0, pace / (2.0 * mult)) if mult > 0 else 1.0
        score = 0.5 * min(1.0, 2.0 * beyond) + 0.5 * volume_score
        features = {
            "price": price,
            "range_high": high,
            "range_low": low,
            "bar_volume": bars.volume,
            "mean_volume": self.mean_volume,
            "volume_pace": pace,
        }
        if confirm is not None:
            features[confirm.feature] = trend_value
        reason = "break_up" if direction > 0 else "break_down"
        return Decision(direction, round(score, 4), reason, features)
