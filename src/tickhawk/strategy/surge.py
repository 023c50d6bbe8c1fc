"""Volume surge, a tier-1 signal: far more volume than usual, mostly on one side.

``[strategies.volume_surge]``: after every trade it reads the features
``volume_z`` (the flow window's volume against its rolling baseline) and
``flow_imbalance``. When ``volume_z >= z_threshold`` and
``|flow_imbalance| >= min_imbalance`` it signals in the direction the
aggressors trade. The score is half how far the surge goes (full at twice the
threshold) and half the imbalance.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec

from tickhawk.model import Trade
from tickhawk.strategy.api import Decision, Strategy
from tickhawk.strategy.checks import CheckContext, confirm_problems
from tickhawk.strategy.confirm import ConfirmConfig, TrendFilter
from tickhawk.strategy.trigger import Trigger

if TYPE_CHECKING:
    from tickhawk.state import SymbolState

__all__ = ["VolumeSurge", "VolumeSurgeConfig"]

_KEPT = ("volume_z", "flow_imbalance", "trade_intensity", "large_count", "vwap_dev_bps")


class VolumeSurgeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings of the volume-surge signal."""

    z_threshold: float = 3.0
    min_imbalance: float = 0.3
    cooldown_s: float = 10.0
    confirm: ConfirmConfig | None = None
    enabled: bool = True

    def problems(self, context: CheckContext) -> list[str]:
        """Return ``key: what to change`` for each bad setting."""
        out = confirm_problems(self.confirm, context)
        if not self.z_threshold > 0:
            out.append("z_threshold: must be positive")
        if not 0.0 <= self.min_imbalance <= 1.0:
            out.append("min_imbalance: must be in [0, 1]")
        if self.cooldown_s < 0:
            out.append("cooldown_s: must not be negative")
        if not context.features:
            out.append("enabled: needs [features] enabled = true")
        return out

    def build(self) -> Strategy:
        """Return a new strategy instance (one per symbol)."""
        return VolumeSurge(self)


class VolumeSurge(Strategy):
    """Signal when window volume surges past its baseline with one-sided flow."""

    name = "volume_surge"

    def __init__(self, config: VolumeSurgeConfig) -> None:
        self.config = config
        self.trigger = Trigger(int(config.cooldown_s * 1e9))
        self.confirm = TrendFilter(config.confirm) if config.confirm is not None else None
        self._values: dict[str, float] | None = None

    def on_trade(self, state: SymbolState, trade: Trade) -> Decision | None:
        """Decide on the flow features after this trade."""
        values = self._values
        if values is None:
            if state.features is None:
                return None
            values = self._values = state.features.values
        z = values["volume_z"]
        imbalance = values["flow_imbalance"]
        config = self.config
        direction = 0
        if z >= config.z_threshold:
            if imbalance >= config.min_imbalance:
                direction = 1
            elif imbalance <= -config.min_imbalance:
                direction = -1
        confirm = self.confirm
        trend_value = math.nan
        if direction and confirm is not None:
            direction, trend_value = confirm.filter(state, direction, trade.price)
        if not self.trigger.fire(direction, trade.ts_event):
            return None
        kept = {key: values[key] for key in _KEPT}
        kept["price"] = trade.price
        if confirm is not None:
            kept[confirm.feature] = trend_value
        score = 0.5 * min(1.0, z / (2.0 * config.z_threshold)) + 0.5 * min(1.0, abs(imbalance))
        reason = "surge_buying" if direction > 0 else "surge_selling"
        return Decision(direction, round(score, 4), reason, kept)
