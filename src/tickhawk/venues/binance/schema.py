"""Binance market-data wire schemas (spot and USD-M futures).

Each message kind has a frozen Struct that declares only the fields tickhawk
reads; msgspec skips the rest. Binance sends prices and quantities as decimal
strings, so decoders are built with ``strict=False`` to parse them straight to
floats. Conversion to domain events lives in ``feed.py``.

Field names are Binance's one-letter keys (``E`` event time, ``T`` trade time,
``U``/``u`` first/last update id, ``pu`` previous final update id).
"""

from __future__ import annotations

import msgspec

#: The depth snapshot sizes Binance documents (``/depth?limit=``); USD-M serves only
#: these up to 1,000, spot any size up to 5,000.
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
USDM_DEPTH_LIMITS = DEPTH_LIMITS[:-1]

__all__ = [
    "DEPTH_LIMITS",
    "USDM_DEPTH_LIMITS",
    "AggTradeEnvelope",
    "AggTradeMsg",
    "BookTickerEnvelope",
    "BookTickerMsg",
    "DepthEnvelope",
    "DepthMsg",
    "DepthSnapshot",
    "Envelope",
    "KlineEnvelope",
    "KlineMsg",
    "KlinePayload",
    "MethodReply",
    "TradeEnvelope",
    "TradeMsg",
]


class TradeMsg(msgspec.Struct, frozen=True, gc=False):
    """``<symbol>@trade``: ``t`` trade id, ``m`` true when the buyer is the maker."""

    t: int
    p: float
    q: float
    T: int
    m: bool


class AggTradeMsg(msgspec.Struct, frozen=True, gc=False):
    """``<symbol>@aggTrade``: ``a`` aggregate id, ``f``/``l`` first/last trade id."""

    a: int
    p: float
    q: float
    T: int
    m: bool
    f: int = -1
    l: int = -1  # noqa: E741 - Binance's field name


class DepthMsg(msgspec.Struct, frozen=True, gc=False):
    """``<symbol>@depth[@100ms|@0ms]`` diff; futures add ``pu`` and ``T``."""

    E: int
    U: int
    u: int
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]
    pu: int = -1


class BookTickerMsg(msgspec.Struct, frozen=True, gc=False):
    """``<symbol>@bookTicker``; spot sends no event time, futures send ``E``/``T``."""

    u: int
    b: float
    B: float
    a: float
    A: float
    E: int = 0


class KlinePayload(msgspec.Struct, frozen=True, gc=False):
    """The ``k`` object of a kline message."""

    t: int
    i: str
    o: float
    h: float
    l: float  # noqa: E741 - Binance's field name
    c: float
    v: float
    n: int
    x: bool


class KlineMsg(msgspec.Struct, frozen=True, gc=False):
    """``<symbol>@kline_<interval>``."""

    E: int
    k: KlinePayload


class TradeEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around a trade."""

    data: TradeMsg


class AggTradeEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around an aggregate trade."""

    data: AggTradeMsg


class DepthEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around a depth diff."""

    data: DepthMsg


class BookTickerEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around a book ticker."""

    data: BookTickerMsg


class KlineEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Combined-stream wrapper around a kline."""

    data: KlineMsg


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """The generic combined-stream head: only the stream name (the slow path)."""

    stream: str = ""


class MethodReply(msgspec.Struct, frozen=True):
    """A reply to ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS``."""

    id: int | str | None = None
    result: list[str] | None = None
    error: dict[str, object] | None = None


class DepthSnapshot(msgspec.Struct, frozen=True):
    """REST ``/api/v3/depth`` or ``/fapi/v1/depth`` answer."""

    lastUpdateId: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    E: int = 0
    T: int = 0
