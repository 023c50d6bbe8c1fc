"""Multi-timeframe confirmation: a signal goes out only when a higher timeframe agrees.

Configured on a strategy as ``confirm = { interval = "5m", indicator = "ema" }``:

- ``mode = "price"`` (default): the trend is up while price is above the
  indicator (an EMA, a Bollinger middle band ...), down while below;
- ``mode = "sign"``: the trend is the indicator's sign (``macd.macdhist``,
  ``roc``, ``aroonosc`` ...).

The value read is the interval's latest: intra-bar when ``engine.peek`` is on.
A value still warming up (NaN) confirms nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    from tickhawk.state import SymbolState

__all__ = ["ConfirmConfig", "TrendFilter"]


class ConfirmConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The higher-timeframe trend a signal must agree with."""

    interval: str
    indicator: str = "ema"
    mode: Literal["price", "sign"] = "price"


class TrendFilter:
    """Check a direction against a configured higher-timeframe trend."""

    __slots__ = ("_values", "config", "feature")

    def __init__(self, config: ConfirmConfig) -> None:
        self.config = config
        #: The key under which the confirming value is added to a signal's features.
        self.feature = f"confirm.{config.interval}.{config.indicator}"
        self._values: dict[str, float] | None = None

    def trend(self, state: SymbolState, price: float) -> tuple[int, float]:
        """Return the trend (+1, -1, 0) and the indicator value it was read from."""
        values = self._values
        if values is None:
            indicator_set = state.indicators.get(self.config.interval)
            if indicator_set is None:
                return 0, float("nan")
            values = self._values = indicator_set.values
        value = values.get(self.config.indicator, float("nan"))
        reference = value if self.config.mode == "price" else 0.0
        subject = price if self.config.mode == "price" else value
        if subject > reference:
            return 1, value
        if subject < reference:
            return -1, value
        return 0, value

    def filter(self, state: SymbolState, direction: int, price: float) -> tuple[int, float]:
        """Return ``direction`` if the trend agrees, else 0; and the value read."""
        trend, value = self.trend(state, price)
        return (direction if trend == direction else 0), value
