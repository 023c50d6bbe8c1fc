"""The order-flow and book features of a symbol, configured by ``[features]``.

``state.features.values`` maps a feature name to its latest value (NaN until
known); strategies read it like indicator values::

    [features]
    flow_window_s = 10          # imbalance, intensity, VWAP, volume window
    large_trade_mult = 10
    depth_levels = 10           # top-N depth features from the L2 book (0: off)

    [features.symbols.BTCUSDT]  # per-symbol overrides of any key above
    large_trade_min_qty = 2.0

Trade features are in :mod:`tickhawk.indicators.flow`, book features in
:mod:`tickhawk.indicators.microstructure`.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from tickhawk.indicators.flow import FLOW_KEYS, TradeFlow
from tickhawk.indicators.microstructure import BOOK_KEYS, QUOTE_KEYS, BookView, Microstructure
from tickhawk.model import Quote

__all__ = ["FEATURE_KEYS", "Features", "FeaturesConfig"]

#: Every feature name, in the order they are listed.
FEATURE_KEYS = (*FLOW_KEYS, *QUOTE_KEYS, *BOOK_KEYS)
_NS = 1_000_000_000


class FeaturesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings of the order-flow and book features (``[features]``)."""

    enabled: bool = True
    flow_window_s: float = 10.0
    flow_buckets: int = 20
    volume_baseline: int = 60
    volume_min_baseline: int = 6
    rv_sample_s: float = 1.0
    rv_window_s: float = 60.0
    large_trade_mult: float = 10.0
    large_trade_min_qty: float = 0.0
    quote: bool = True
    depth_levels: int = 0
    symbols: dict[str, dict[str, Any]] = {}

    def for_symbol(self, symbol: str) -> FeaturesConfig:
        """Return the settings of ``symbol``: these, with its overrides applied."""
        wanted = symbol.upper()
        overrides = next((v for k, v in self.symbols.items() if k.upper() == wanted), None)
        if not overrides:
            return self
        merged = {**msgspec.structs.asdict(self), **overrides, "symbols": {}}
        return msgspec.convert(merged, FeaturesConfig)

    def problems(self) -> list[str]:
        """Return ``key: what to change`` for every bad value (empty when valid)."""
        out: list[str] = []
        positive = ("flow_window_s", "rv_sample_s", "rv_window_s")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                out.append(f"{name}: must be a positive number of seconds")
        for name in ("flow_buckets", "volume_baseline", "volume_min_baseline"):
            if getattr(self, name) < 1:
                out.append(f"{name}: must be a positive whole number")
        if self.depth_levels < 0:
            out.append("depth_levels: must be 0 (off) or a number of levels")
        if not out and self.flow_window_s / self.flow_buckets < 0.001:
            out.append("flow_buckets: buckets must be at least 1 ms wide")
        if not out and round(self.rv_window_s / self.rv_sample_s) < 2:
            out.append("rv_window_s: must hold at least two rv_sample_s samples")
        if self.volume_min_baseline > self.volume_baseline:
            out.append("volume_min_baseline: must not exceed volume_baseline")
        if not (self.large_trade_mult >= 0 and self.large_trade_min_qty >= 0):
            out.append("large_trade_mult, large_trade_min_qty: must not be negative")
        return out


class Features:
    """The feature values of one symbol and the calculators that keep them."""

    __slots__ = ("config", "depth_hook", "flow", "micro", "quote_hook", "values")

    def __init__(self, config: FeaturesConfig) -> None:
        self.config = config
        self.values: dict[str, float] = {}
        self.flow = TradeFlow(
            self.values,
            window_ns=round(config.flow_window_s * _NS),
            buckets=config.flow_buckets,
            baseline=config.volume_baseline,
            min_baseline=config.volume_min_baseline,
            sample_ns=round(config.rv_sample_s * _NS),
            samples=round(config.rv_window_s / config.rv_sample_s),
            large_mult=config.large_trade_mult,
            large_min_qty=config.large_trade_min_qty,
        )
        self.micro = Microstructure(self.values, levels=max(1, config.depth_levels))
        #: What the symbol state calls per best bid/ask and per applied L2 diff (None: off).
        self.quote_hook = self.micro.on_quote if config.quote else None
        self.depth_hook = self.micro.on_book_update if config.depth_levels > 0 else None

    def on_trade(self, price: float, qty: float, side: int, ts: int) -> None:
        """Add one trade (the state calls ``flow.on_trade`` directly on the hot path)."""
        self.flow.on_trade(price, qty, side, ts)

    def on_quote(self, quote: Quote) -> None:
        """Update the best bid/ask features."""
        self.micro.on_quote(quote)

    def on_book(self, book: BookView) -> None:
        """Update the depth features from a live L2 book."""
        self.micro.on_book(book)

    def advance(self, ts: int) -> None:
        """Move the time windows to exchange time ``ts`` without a trade."""
        self.flow.advance(ts)
