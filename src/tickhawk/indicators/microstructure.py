"""Book features: spread and microprice from the best bid/ask, depth and gaps from the L2 book.

From every best bid/ask (Binance ``bookTicker``, a :class:`~tickhawk.model.Quote`):

``spread``           ask − bid
``spread_bps``       (ask − bid) / mid in basis points
``mid``              (bid + ask) / 2
``microprice``       (bid × ask_qty + ask × bid_qty) / (bid_qty + ask_qty)
``quote_imbalance``  (bid_qty − ask_qty) / (bid_qty + ask_qty), in [-1, 1]

From the L2 book after every diff applied to a live (synced) book, through
:class:`BookView` (what :class:`~tickhawk.book.l2.L2Book` offers), when
``[features] depth_levels`` is set (they cost a few µs per diff):

``depth_imbalance``   (Σ bid qty − Σ ask qty) / Σ qty over the top ``levels`` of each side
``liquidity_gap_bps`` the widest price step between adjacent levels among the top
                      ``levels`` of either side (best bid to best ask not counted),
                      in basis points of the mid

Every value is NaN until its source has been seen.
"""

from __future__ import annotations

import math
from typing import Protocol

from tickhawk.model import Quote

__all__ = ["BOOK_KEYS", "QUOTE_KEYS", "BookView", "Microstructure"]

QUOTE_KEYS = ("spread", "spread_bps", "mid", "microprice", "quote_imbalance")
BOOK_KEYS = ("depth_imbalance", "liquidity_gap_bps")
_NAN = math.nan


class BookView(Protocol):
    """The reads the book features need from an L2 book."""

    def levels(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Return the top ``n`` bid and ask levels ``(price, qty)``, best first."""
        ...


class Microstructure:
    """Book features of one symbol, written into a shared ``values`` dict."""

    __slots__ = ("levels", "values")

    def __init__(self, values: dict[str, float], *, levels: int = 10) -> None:
        if levels < 1:
            raise ValueError("book feature levels must be at least 1")
        self.values = values
        self.levels = levels
        for key in (*QUOTE_KEYS, *BOOK_KEYS):
            values[key] = _NAN

    def on_quote(self, quote: Quote) -> None:
        """Update the best bid/ask features (prices are positive: the feed checked them)."""
        bid = quote.bid
        ask = quote.ask
        bid_qty = quote.bid_qty
        ask_qty = quote.ask_qty
        values = self.values
        spread = ask - bid
        mid = 0.5 * (bid + ask)
        values["spread"] = spread
        values["mid"] = mid
        values["spread_bps"] = spread / mid * 10_000.0
        size = bid_qty + ask_qty
        if size > 0.0:
            values["microprice"] = (bid * ask_qty + ask * bid_qty) / size
            values["quote_imbalance"] = (bid_qty - ask_qty) / size
        else:
            values["microprice"] = mid
            values["quote_imbalance"] = _NAN

    def on_book(self, book: BookView) -> None:
        """Update the depth features from a live L2 book."""
        bids, asks = book.levels(self.levels)
        values = self.values
        if not (bids and asks):
            values["depth_imbalance"] = values["liquidity_gap_bps"] = _NAN
            return
        gap = 0.0
        bid_size = 0.0
        near = bids[0][0]
        for price, qty in bids:
            bid_size += qty
            if near - price > gap:
                gap = near - price
            near = price
        ask_size = 0.0
        near = asks[0][0]
        for price, qty in asks:
            ask_size += qty
            if price - near > gap:
                gap = price - near
            near = price
        total = bid_size + ask_size
        values["depth_imbalance"] = (bid_size - ask_size) / total if total > 0.0 else _NAN
        mid = 0.5 * (bids[0][0] + asks[0][0])
        values["liquidity_gap_bps"] = gap / mid * 10_000.0 if mid > 0.0 else _NAN

    def on_book_update(self, update: object, book: BookView) -> None:
        """Take a symbol state's book listener call: ``(diff, live book)``."""
        self.on_book(book)
