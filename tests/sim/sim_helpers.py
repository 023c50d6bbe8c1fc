"""A Binance client written from Binance's public docs, for the simulator tests.

Schemas are strict msgspec Structs (unknown fields and wrong types fail), so
decoding a message checks every field of it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any, Literal, TypeVar

import aiohttp
import msgspec

T = TypeVar("T")

DECIMAL = re.compile(r"^\d+\.\d{8}$")
START_MS = 1_723_161_600_000  # 2024-08-09 00:00:00 UTC, a fixed start for determinism


def run(coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run ``coroutine`` on a fresh event loop, failing after ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.005)


async def until_async(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = ""
) -> None:
    """Poll an async ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.005)


def dec(text: str) -> Decimal:
    """Return a Binance decimal string as a Decimal, checking its 8-decimal form."""
    assert DECIMAL.match(text), f"not an 8-decimal string: {text!r}"
    return Decimal(text)


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    """A wire schema that rejects unknown fields."""


class Trade(Strict):
    e: Literal["trade"]
    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool
    M: bool


class AggTrade(Strict):
    e: Literal["aggTrade"]
    E: int
    s: str
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's field name
    T: int
    m: bool
    M: bool


class DepthUpdate(Strict):
    e: Literal["depthUpdate"]
    E: int
    s: str
    U: int
    u: int
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]


class BookTicker(Strict):
    u: int
    s: str
    b: str
    B: str
    a: str
    A: str


class KlineBody(Strict):
    t: int
    T: int
    s: str
    i: str
    f: int
    L: int
    o: str
    c: str
    h: str
    l: str  # noqa: E741 - Binance's field name
    v: str
    n: int
    x: bool
    q: str
    V: str
    Q: str
    B: str


class Kline(Strict):
    e: Literal["kline"]
    E: int
    s: str
    k: KlineBody


class Envelope(Strict):
    stream: str
    data: msgspec.Raw


class Snapshot(msgspec.Struct):
    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


class RestAggTrade(Strict):
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's field name
    T: int
    m: bool
    M: bool


class RestTrade(Strict):
    id: int
    price: str
    qty: str
    quoteQty: str
    time: int
    isBuyerMaker: bool
    isBestMatch: bool


SCHEMAS: dict[str, type[Strict]] = {
    "trade": Trade,
    "aggTrade": AggTrade,
    "depth": DepthUpdate,
    "bookTicker": BookTicker,
    "kline": Kline,
}


def schema_of(stream: str) -> type[Strict]:
    """Return the payload schema of a stream name."""
    kind = stream.partition("@")[2]
    if kind.startswith("kline_"):
        return Kline
    return SCHEMAS[kind.partition("@")[0]]


class Book:
    """A local order book maintained the way Binance documents it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.update_id = snapshot.lastUpdateId
        self.bids = {Decimal(p): Decimal(q) for p, q in snapshot.bids}
        self.asks = {Decimal(p): Decimal(q) for p, q in snapshot.asks}

    def apply(self, diff: DepthUpdate) -> None:
        """Apply one diff (the caller checked ``U``/``u``)."""
        for side, levels in ((self.bids, diff.b), (self.asks, diff.a)):
            for price, qty in levels:
                if dec(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(qty)
        self.update_id = diff.u

    def levels(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """Return the bids (best first) and asks (best first)."""
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    """GET ``url``; return the decoded JSON body (asserting HTTP 200 and the weight header)."""
    async with session.get(url) as response:
        body = await response.read()
        assert response.status == 200, (url, response.status, body)
        assert response.headers["X-MBX-USED-WEIGHT-1M"].isdigit()
        return msgspec.json.decode(body)


async def get_error(session: aiohttp.ClientSession, url: str) -> tuple[int, int, str]:
    """GET ``url`` expecting an error; return ``(HTTP status, code, msg)``."""
    async with session.get(url) as response:
        assert "X-MBX-USED-WEIGHT-1M" in response.headers
        body = msgspec.json.decode(await response.read())
        assert set(body) == {"code", "msg"}, body
        return response.status, body["code"], body["msg"]
