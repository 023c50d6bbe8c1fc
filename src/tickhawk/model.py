"""Domain events: what the engine works with, whatever venue they came from.

All times are integers in nanoseconds. ``ts_event`` is the venue's time of the
event (epoch ns), ``ts_recv`` the local time the frame carrying it arrived
(epoch ns, from the injected clock: the capture's clock in replay). Stage
stamps on a :class:`Signal` (``t_recv``, ``t_decoded`` ...) come from the
process's monotonic performance counter and are only meaningful as
differences: they measure the engine, not the market.

Events are frozen and hold no references to other events, so they are created
without garbage-collector tracking (``gc=False``).
"""

from __future__ import annotations

import msgspec

__all__ = [
    "BUY",
    "SELL",
    "Bar",
    "BookUpdate",
    "Quote",
    "Signal",
    "Trade",
    "interval_label",
    "parse_interval",
]

BUY = 1
SELL = -1


class Trade(msgspec.Struct, frozen=True, gc=False):
    """One trade. ``side`` is the aggressor: ``BUY`` (+1) or ``SELL`` (-1)."""

    symbol: str
    id: int
    price: float
    qty: float
    side: int
    ts_event: int
    ts_recv: int


class Quote(msgspec.Struct, frozen=True, gc=False):
    """Best bid and ask (Binance ``bookTicker``); ``update_id`` is the book id it reflects."""

    symbol: str
    update_id: int
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    ts_event: int
    ts_recv: int


class BookUpdate(msgspec.Struct, frozen=True, gc=False):
    """One L2 diff: levels as ``(price, qty)``; ``qty == 0`` removes the level.

    ``first_id``/``last_id`` are the venue's update ids (Binance ``U``/``u``);
    ``prev_last_id`` is the previous diff's ``last_id`` where the venue gives it
    (Binance futures ``pu``), else -1.
    """

    symbol: str
    first_id: int
    last_id: int
    prev_last_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    ts_event: int
    ts_recv: int


class Bar(msgspec.Struct, frozen=True, gc=False):
    """A closed time bar, ``[open_time, open_time + interval_ns)`` by exchange time."""

    symbol: str
    interval: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int


class Signal(msgspec.Struct, frozen=True):
    """A strategy's decision, with the timestamp of every stage that produced it.

    ``direction`` is +1 (long) or -1 (short); ``score`` in ``[0, 1]`` is the
    strategy's confidence. ``features`` are the values the decision read.
    ``t_*`` are monotonic ``perf_counter_ns`` stamps: frame received, message
    decoded, symbol state updated, strategy done, signal emitted.
    """

    symbol: str
    strategy: str
    direction: int
    score: float
    price: float
    reason: str
    features: dict[str, float]
    ts_event: int
    ts_recv: int
    t_recv: int
    t_decoded: int
    t_state: int
    t_strategy: int
    t_emitted: int

    @property
    def latency_ns(self) -> int:
        """Return the receive→emit latency of this signal in nanoseconds."""
        return self.t_emitted - self.t_recv


_UNITS_NS = {
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}


def parse_interval(text: str) -> int:
    """Return the length of an interval such as ``"1s"``, ``"5m"``, ``"1h"`` in ns.

    Raise ``ValueError`` with a message saying what is allowed.
    """
    unit = text[-1:] if text else ""
    count = text[:-1]
    if unit not in _UNITS_NS or not count.isdigit() or int(count) <= 0:
        raise ValueError(
            f"bad interval {text!r}: use a positive whole number and a unit s, m, h or d "
            "(e.g. 1s, 1m, 5m, 1h)"
        )
    return int(count) * _UNITS_NS[unit]


def interval_label(interval_ns: int) -> str:
    """Return the shortest label (``"1m"``) for an interval in ns."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_NS[unit]
        if interval_ns % size == 0:
            return f"{interval_ns // size}{unit}"
    raise ValueError(f"interval {interval_ns} ns is not a whole number of seconds")
