"""Binance REST market data over aiohttp: depth snapshots, klines, trades, aggregate trades.

Async at the I/O edge only; answers are decoded with typed msgspec decoders,
and a body that does not decode is a :class:`RestError`, never a traceback.
The client keeps to the venue's rules:

- every request has a timeout; network errors, timeouts and 5xx answers are
  retried with capped, jittered exponential backoff;
- ``429`` (too many requests) and ``418`` (IP banned) pause *every* request of
  the client for the ``Retry-After`` the venue sent; a pause longer than
  ``max_wait_s`` fails requests at once instead of sending them;
- a request-weight budget (Binance's weights, per minute) keeps the client
  under the venue's limit: when it is used up, requests wait for the next
  minute instead of failing. The venue's ``X-MBX-USED-WEIGHT-1M`` header
  corrects the count (other clients on the same IP use the same limit).

The same client serves spot (``/api/v3``) and USD-M futures (``/fapi/v1``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import msgspec

from tickhawk.model import Bar
from tickhawk.venues.binance.schema import DepthSnapshot

__all__ = [
    "WEIGHT_LIMITS",
    "AggTradeRow",
    "BinanceRest",
    "RestError",
    "TradeRow",
    "WeightBudget",
    "decode_agg_trades",
    "decode_depth",
    "decode_klines",
    "decode_trades",
    "request_weight",
]

_log = logging.getLogger("tickhawk.rest")
_MS = 1_000_000
_INF = float("inf")
_MAX_MS = (2**63 - 1) // _MS  # the last epoch ms an int64 of ns holds

#: Binance's request-weight limit per minute and IP, by market.
WEIGHT_LIMITS = {"spot": 6_000, "usdm": 2_400}
#: The share of the venue's limit a client uses when no budget is configured.
DEFAULT_BUDGET_SHARE = 0.8


class RestError(Exception):
    """A REST request that failed for good (after retries), with the reason.

    ``status`` is the HTTP status (0 for a network error or a bad body) and
    ``code`` Binance's error code when the answer had one.
    """

    def __init__(self, message: str, *, status: int = 0, code: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AggTradeRow(msgspec.Struct, frozen=True):
    """One ``/aggTrades`` row."""

    a: int
    p: float
    q: float
    T: int
    m: bool
    f: int = -1
    l: int = -1  # noqa: E741 - Binance's field name


class TradeRow(msgspec.Struct, frozen=True):
    """One ``/trades`` or ``/historicalTrades`` row."""

    id: int
    price: float
    qty: float
    time: int
    isBuyerMaker: bool


class _ErrorBody(msgspec.Struct):
    code: int = 0
    msg: str = ""


_depth = msgspec.json.Decoder(DepthSnapshot, strict=False)
# [open time, o, h, l, c, volume, close time, quote volume, trades, taker base, taker quote, 0]
_KlineRow = tuple[int, float, float, float, float, float, int, Any, int, Any, Any, Any]
_klines = msgspec.json.Decoder(list[_KlineRow], strict=False)
_agg = msgspec.json.Decoder(list[AggTradeRow], strict=False)
_trades = msgspec.json.Decoder(list[TradeRow], strict=False)


class _ListedSymbol(msgspec.Struct):
    symbol: str
    status: str = ""


class _ExchangeInfo(msgspec.Struct):
    symbols: list[_ListedSymbol] = []


_time = msgspec.json.Decoder(dict[str, int])
_exchange_info = msgspec.json.Decoder(_ExchangeInfo)
_error = msgspec.json.Decoder(_ErrorBody, strict=False)

_T = TypeVar("_T")


def _decode(decoder: msgspec.json.Decoder[_T], body: bytes, what: str) -> _T:
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise RestError(f"{what}: the venue's answer does not decode: {exc}") from None


def _levels_ok(levels: list[tuple[float, float]]) -> bool:
    return all(0.0 < price < _INF and 0.0 <= qty < _INF for price, qty in levels)


def decode_depth(body: bytes) -> DepthSnapshot:
    """Decode and check a depth snapshot; raise :class:`RestError` for a bad one."""
    snapshot = _decode(_depth, body, "depth")
    if not (_levels_ok(snapshot.bids) and _levels_ok(snapshot.asks)):
        raise RestError("depth: the snapshot has a bad price or quantity")
    if snapshot.lastUpdateId < 0:
        raise RestError(f"depth: lastUpdateId {snapshot.lastUpdateId} is negative")
    return snapshot


def decode_trades(body: bytes) -> list[TradeRow]:
    """Decode a ``/trades`` or ``/historicalTrades`` answer; raise :class:`RestError`."""
    return _decode(_trades, body, "trades")


def decode_agg_trades(body: bytes) -> list[AggTradeRow]:
    """Decode an ``/aggTrades`` answer; raise :class:`RestError`."""
    return _decode(_agg, body, "aggTrades")


def decode_klines(symbol: str, interval: str, body: bytes) -> list[Bar]:
    """Decode a ``/klines`` answer into bars; raise :class:`RestError` for a bad one."""
    rows = _decode(_klines, body, "klines")
    bars = []
    for row in rows:
        open_ms, o, h, low, c, volume = row[0], row[1], row[2], row[3], row[4], row[5]
        if not (0 <= open_ms <= _MAX_MS and row[8] >= 0 and 0.0 <= volume < _INF):
            raise RestError(f"klines: a bad open time, count or volume in {row[:9]}")
        if not all(0.0 < price < _INF for price in (o, h, low, c)):
            raise RestError(f"klines: a bad price in {row[:6]}")
        bars.append(Bar(symbol, interval, open_ms * _MS, o, h, low, c, volume, row[8]))
    return bars


def request_weight(market: str, path: str, params: dict[str, str | int]) -> int:
    """Return Binance's request weight of ``GET path`` with ``params`` on ``market``."""
    limit = int(params.get("limit", 0) or 0)
    if market == "usdm":
        if path == "/depth":
            limit = limit or 500
            return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
        if path == "/klines":
            limit = limit or 500
            return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
        weights = {"/aggTrades": 20, "/trades": 5, "/historicalTrades": 20}
        return weights.get(path, 1)
    if path == "/depth":
        limit = limit or 100
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    weights = {
        "/aggTrades": 4,
        "/klines": 2,
        "/trades": 25,
        "/historicalTrades": 25,
        "/exchangeInfo": 20,
    }
    return weights.get(path, 1)


class WeightBudget:
    """Request weight spent in the current minute, against ``limit``.

    :meth:`acquire` waits (asynchronously, re-checking at least twice a
    second) while the minute's budget is used up. Minutes are wall-clock
    minutes, as the venue counts them.
    """

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.time) -> None:
        if limit <= 0:
            raise ValueError("the request-weight budget must be positive")
        self.limit = limit
        self.used = 0
        self.waits = 0  # requests that had to wait for the next minute
        self.waiting = 0  # requests waiting now
        self._clock = clock
        self._minute = -1
        self._last_log = -1

    def _roll(self) -> float:
        now = self._clock()
        minute = int(now // 60)
        if minute != self._minute:
            self._minute = minute
            self.used = 0
        return now

    async def acquire(self, weight: int) -> None:
        """Take ``weight`` from this minute's budget, waiting for the next minute if needed."""
        counted = False
        while True:
            now = self._roll()
            if self.used + weight <= self.limit or self.used == 0:
                self.used += weight
                return
            if not counted:
                counted = True
                self.waits += 1
                if self._minute != self._last_log:
                    self._last_log = self._minute
                    _log.warning(
                        "REST weight budget (%d/min) used up; requests wait for the next minute",
                        self.limit,
                    )
            self.waiting += 1
            try:
                await asyncio.sleep(min(0.5, max(0.001, (self._minute + 1) * 60 - now)))
            finally:
                self.waiting -= 1

    def observe(self, used: int) -> None:
        """Take the venue's count of this minute's weight (it includes other clients)."""
        self._roll()
        if used > self.used:
            self.used = used


class BinanceRest:
    """A Binance market-data REST client; use as ``async with BinanceRest(url, market)``.

    ``weight_budget`` is the request weight allowed per minute (default: 80 %
    of the venue's limit). ``retries`` is how often a request is retried after
    a network error, a timeout, a 5xx, a 429 or a 418.
    """

    def __init__(
        self,
        base_url: str,
        market: str = "spot",
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        weight_budget: int | None = None,
        backoff_cap_s: float = 5.0,
        max_wait_s: float = 60.0,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.market = market
        self.prefix = "/fapi/v1" if market == "usdm" else "/api/v3"
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retries = retries
        self.backoff_cap_s = backoff_cap_s
        self.max_wait_s = max_wait_s
        limit = WEIGHT_LIMITS.get(market, WEIGHT_LIMITS["spot"])
        self.budget = WeightBudget(weight_budget or int(limit * DEFAULT_BUDGET_SHARE), clock=clock)
        self._session = session
        self._own_session = session is None
        self.requests = 0  # requests sent (each attempt)
        self.failures = 0  # requests that failed for good
        self.retried = 0
        self.rate_limited = 0  # 429 answers
        self.banned = 0  # 418 answers
        self.used_weight = 0  # the venue's last X-MBX-USED-WEIGHT-1M
        self._paused_until = 0.0  # monotonic: no request before (429/418 Retry-After)
        self._pause_reason = ""

    async def __aenter__(self) -> BinanceRest:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client opened it."""
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    # -- the request loop ------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        # Equal jitter over a capped exponential: never zero, never over the cap.
        ceiling = min(self.backoff_cap_s, 0.2 * 2.0**attempt)
        return ceiling * random.uniform(0.5, 1.0)

    async def _wait_pause(self, path: str) -> None:
        wait = self._paused_until - time.monotonic()
        if wait > self.max_wait_s:
            self.failures += 1
            raise RestError(
                f"GET {path} not sent: the venue asked to pause for {wait:.0f} s more "
                f"({self._pause_reason})",
                status=418 if "418" in self._pause_reason else 429,
            )
        if wait > 0:
            await asyncio.sleep(wait)

    def _pause(self, status: int, retry_after: str | None) -> float:
        default = 1.0 if status == 429 else 120.0
        try:
            delay = float(retry_after) if retry_after else default
        except ValueError:
            delay = default
        delay = max(0.0, delay) if delay == delay else default
        until = time.monotonic() + delay
        if until > self._paused_until:
            self._paused_until = until
            what = "IP banned" if status == 418 else "too many requests"
            self._pause_reason = f"HTTP {status}: {what}"
            _log.warning("REST %s: every request waits %.1f s (Retry-After)", what, delay)
        return delay

    async def _get(self, path: str, params: dict[str, str | int]) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._own_session = True
        url = f"{self.base_url}{self.prefix}{path}"
        weight = request_weight(self.market, path, params)
        last = "no attempt"
        status = 0
        code = 0
        for attempt in range(self.retries + 1):
            await self._wait_pause(path)
            await self.budget.acquire(weight)
            delay = 0.0
            try:
                self.requests += 1
                async with self._session.get(url, params=params, timeout=self.timeout) as response:
                    body = await response.read()
                    used = response.headers.get("X-MBX-USED-WEIGHT-1M", "")
                    if used.isdigit():
                        self.used_weight = int(used)
                        self.budget.observe(self.used_weight)
                    status = response.status
                    if status == 200:
                        return body
                    error = _error_body(body)
                    code = error.code
                    last = f"HTTP {status}: {error.msg or body[:200].decode('utf-8', 'replace')}"
                    if status in (429, 418):
                        if status == 429:
                            self.rate_limited += 1
                        else:
                            self.banned += 1
                        self._pause(status, response.headers.get("Retry-After"))
                    elif status >= 500:
                        delay = self._backoff(attempt)
                    else:  # the request itself is wrong: retrying cannot help
                        self.failures += 1
                        raise RestError(f"GET {path} {params}: {last}", status=status, code=code)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = code = 0
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                delay = self._backoff(attempt)
            if attempt < self.retries:
                self.retried += 1
                _log.warning("GET %s failed (%s); retrying in %.2f s", path, last, delay)
                if delay:
                    await asyncio.sleep(delay)
        self.failures += 1
        raise RestError(
            f"GET {path} failed after {self.retries + 1} attempts: {last}", status=status, code=code
        )

    # -- endpoints ---------------------------------------------------------------------

    async def depth(self, symbol: str, limit: int = 1000) -> DepthSnapshot:
        """Return the order-book snapshot of ``symbol`` (``lastUpdateId``, bids, asks)."""
        return decode_depth(await self._get("/depth", {"symbol": symbol, "limit": limit}))

    async def listed_symbols(self) -> dict[str, str]:
        """Return every symbol the venue lists (``/exchangeInfo``) with its status (``TRADING``)."""
        info = _decode(_exchange_info, await self._get("/exchangeInfo", {}), "exchangeInfo")
        return {entry.symbol: entry.status for entry in info.symbols}

    async def server_time_ms(self) -> int:
        """Return the venue's clock (``/time``) in epoch ms."""
        answer = _decode(_time, await self._get("/time", {}), "time")
        if "serverTime" not in answer:
            raise RestError("time: the answer has no serverTime")
        return answer["serverTime"]

    async def klines(
        self,
        symbol: str,
        interval: str,
        *,
        limit: int = 500,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Bar]:
        """Return klines as bars (oldest first), the last one possibly still forming."""
        params: dict[str, str | int] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        return decode_klines(symbol, interval, await self._get("/klines", params))

    async def agg_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
    ) -> list[AggTradeRow]:
        """Return aggregate trades, oldest first (Binance's ``/aggTrades`` semantics)."""
        params: dict[str, str | int] = {"symbol": symbol, "limit": limit}
        if from_id is not None:
            params["fromId"] = from_id
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        return decode_agg_trades(await self._get("/aggTrades", params))

    async def historical_trades(
        self, symbol: str, *, from_id: int | None = None, limit: int = 1000
    ) -> list[TradeRow]:
        """Return trades from id ``from_id`` on, oldest first (``/historicalTrades``)."""
        params: dict[str, str | int] = {"symbol": symbol, "limit": limit}
        if from_id is not None:
            params["fromId"] = from_id
        return decode_trades(await self._get("/historicalTrades", params))

    async def recent_trades(self, symbol: str, *, limit: int = 1000) -> list[TradeRow]:
        """Return the venue's most recent ``limit`` trades, oldest first (``/trades``)."""
        params: dict[str, str | int] = {"symbol": symbol, "limit": limit}
        return decode_trades(await self._get("/trades", params))


def _error_body(body: bytes) -> _ErrorBody:
    try:
        return _error.decode(body)
    except msgspec.DecodeError:
        return _ErrorBody()
