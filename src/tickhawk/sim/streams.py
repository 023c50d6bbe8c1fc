"""Binance stream names: parse ``btcusdt@depth@100ms`` into what it asks for."""

from __future__ import annotations

from typing import NamedTuple

from tickhawk.sim.intervals import INTERVALS

__all__ = ["KINDS", "StreamError", "StreamKey", "parse_stream"]

KINDS = ("trade", "aggTrade", "bookTicker", "depth", "kline")


class StreamError(ValueError):
    """A stream name that is malformed or names something the simulator does not serve."""


class StreamKey(NamedTuple):
    """What a stream carries: ``cadence_ms`` for depth, ``interval`` for kline, else 0/""."""

    name: str
    symbol: str
    kind: str
    cadence_ms: int = 0
    interval: str = ""


def parse_stream(name: str) -> StreamKey:
    """Return the :class:`StreamKey` of a spot stream name; raise :class:`StreamError`.

    Accepted: ``<symbol>@trade``, ``@aggTrade``, ``@bookTicker``, ``@depth``,
    ``@depth@100ms``, ``@depth@1000ms`` and ``@kline_<interval>``, with the
    symbol in lower case as Binance documents.
    """
    symbol, _, rest = name.partition("@")
    if not symbol or not rest:
        raise StreamError(f"invalid stream name {name!r}")
    if symbol != symbol.lower() or not symbol.isalnum():
        raise StreamError(f"invalid stream name {name!r}: the symbol must be lower case")
    upper = symbol.upper()
    if rest in ("trade", "aggTrade", "bookTicker"):
        return StreamKey(name, upper, rest)
    if rest in ("depth", "depth@1000ms"):
        return StreamKey(name, upper, "depth", 1_000)
    if rest == "depth@100ms":
        return StreamKey(name, upper, "depth", 100)
    if rest.startswith("kline_") and rest[6:] in INTERVALS:
        return StreamKey(name, upper, "kline", 0, rest[6:])
    raise StreamError(f"invalid stream name {name!r}")
