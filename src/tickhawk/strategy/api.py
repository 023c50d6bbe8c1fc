"""The strategy API: a small class with ``on_trade`` / ``on_bar`` / ``on_book`` hooks.

A strategy instance serves one symbol. Its hooks read the symbol's state
(prices, forming bar, indicator values) and return a :class:`Decision` to emit
a signal, or ``None``. The engine turns a decision into a
:class:`~tickhawk.model.Signal` carrying the timestamp of every stage. Hooks
run synchronously on the hot path: keep them short, allocate little, never
block or await. Hooks a strategy does not override are never called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from tickhawk.model import Bar, BookUpdate, Quote, Trade

if TYPE_CHECKING:
    from tickhawk.state import SymbolState

__all__ = ["Decision", "Strategy"]


class Decision(msgspec.Struct, frozen=True):
    """What a hook returns to emit a signal.

    ``direction`` is +1 (long) or -1 (short); ``score`` in ``[0, 1]``.
    ``features`` are the values the decision read, kept with the signal.
    """

    direction: int
    score: float
    reason: str
    features: dict[str, float] = {}


class Strategy:
    """Base class of strategies: override the hooks you need.

    ``name`` identifies the strategy in signals; ``interval`` is the bar
    interval whose bars ``on_bar`` receives (``None``: every interval).
    """

    name: str = "strategy"
    interval: str | None = None

    def on_trade(self, state: SymbolState, trade: Trade) -> Decision | None:
        """React to a trade (the state already includes it)."""
        return None

    def on_bar(self, state: SymbolState, bar: Bar) -> Decision | None:
        """React to a closed bar (indicators already committed it)."""
        return None

    def on_book(self, state: SymbolState, update: BookUpdate | Quote) -> Decision | None:
        """React to a book change: an L2 diff or a best bid/ask update."""
        return None

    def bars_needed(self, interval: str) -> int:
        """Return how many closed ``interval`` bars this strategy reads (warm-up fetches them)."""
        return 0


def overrides(strategy: Strategy, hook: str) -> bool:
    """Return whether ``strategy`` overrides ``hook`` of :class:`Strategy`."""
    return getattr(type(strategy), hook) is not getattr(Strategy, hook)
