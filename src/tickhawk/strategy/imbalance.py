"""Order-book imbalance, a tier-1 signal: resting size leans to one side of the book.

``[strategies.book_imbalance]``: on every book change it reads the imbalance
(bid − ask size) / (bid + ask size), from the top ``[features] depth_levels``
of the live L2 book (``source = "depth"``), from the best bid/ask quantities
(``"quote"``), or the book when depth features are on and the book is live,
the best bid/ask otherwise (``"auto"``, the default). ``|imbalance| >=
threshold`` goes long on a bid-heavy book, short on an ask-heavy one; the
score is ``|imbalance|``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import msgspec

from tickhawk.model import BookUpdate, Quote
from tickhawk.strategy.api import Decision, Strategy
from tickhawk.strategy.checks import CheckContext, confirm_problems
from tickhawk.strategy.confirm import ConfirmConfig, TrendFilter
from tickhawk.strategy.trigger import Trigger

if TYPE_CHECKING:
    from tickhawk.state import SymbolState

__all__ = ["BookImbalance", "BookImbalanceConfig"]

_KEPT = ("quote_imbalance", "depth_imbalance", "spread_bps", "microprice", "mid")


class BookImbalanceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings of the order-book imbalance signal."""

    threshold: float = 0.6
    source: Literal["auto", "depth", "quote"] = "auto"
    cooldown_s: float = 5.0
    confirm: ConfirmConfig | None = None
    enabled: bool = True

    def problems(self, context: CheckContext) -> list[str]:
        """Return ``key: what to change`` for each bad setting."""
        out = confirm_problems(self.confirm, context)
        if not 0.0 < self.threshold <= 1.0:
            out.append("threshold: must be in (0, 1]")
        if self.cooldown_s < 0:
            out.append("cooldown_s: must not be negative")
        if not context.features:
            out.append("enabled: needs [features] enabled = true")
        elif self.source == "depth" and not context.depth_features:
            out.append('source: "depth" needs [features] depth_levels = <N> (top N levels)')
        elif self.source != "depth" and not context.quote_features:
            out.append(f"source: {self.source!r} needs [features] quote = true")
        return out

    def build(self) -> Strategy:
        """Return a new strategy instance (one per symbol)."""
        return BookImbalance(self)


class BookImbalance(Strategy):
    """Signal when the book's resting size leans to one side past a threshold."""

    name = "book_imbalance"

    def __init__(self, config: BookImbalanceConfig) -> None:
        self.config = config
        self.trigger = Trigger(int(config.cooldown_s * 1e9))
        self.confirm = TrendFilter(config.confirm) if config.confirm is not None else None

    def on_book(self, state: SymbolState, update: BookUpdate | Quote) -> Decision | None:
        """Decide on the imbalance after this book change."""
        features = state.features
        if features is None:
            return None
        values = features.values
        source = self.config.source
        depth = source == "depth" or (source == "auto" and features.depth_hook is not None)
        if depth and state.book is not None:
            imbalance = values["depth_imbalance"]
        elif source == "depth":
            return None  # no live book: no depth imbalance
        else:
            imbalance = values["quote_imbalance"]
        threshold = self.config.threshold
        if imbalance >= threshold:
            direction = 1
        elif imbalance <= -threshold:
            direction = -1
        else:
            direction = 0
        price = values["mid"]
        confirm = self.confirm
        trend_value = math.nan
        if direction and confirm is not None:
            direction, trend_value = confirm.filter(state, direction, price)
        if not self.trigger.fire(direction, update.ts_event):
            return None
        kept = {key: values[key] for key in _KEPT}
        kept["imbalance"] = imbalance
        if confirm is not None:
            kept[confirm.feature] = trend_value
        reason = "bid_heavy" if direction > 0 else "ask_heavy"
        return Decision(direction, round(min(1.0, abs(imbalance)), 4), reason, kept)
