"""Binance REST market data over aiohttp: depth snapshots, klines, aggregate trades.

Async at the I/O edge only; answers are decoded with typed msgspec decoders.
Requests time out, retry with capped backoff on network errors and 5xx, and
honour ``429``/``418`` with ``Retry-After``. The same client serves spot
(``/api/v3``) and USD-M futures (``/fapi/v1``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from types import TracebackType
from typing import Any

import aiohttp
import msgspec

from tickhawk.model import Bar
from tickhawk.venues.binance.schema import DepthSnapshot

__all__ = ["BinanceRest", "RestError"]

_log = logging.getLogger("tickhawk.rest")
_MS = 1_000_000


class RestError(Exception):
    """A REST request that failed for good (after retries), with the reason."""


class AggTradeRow(msgspec.Struct, frozen=True):
    """One ``/aggTrades`` row."""

    a: int
    p: float
    q: float
    T: int
    m: bool
    f: int = -1
    l: int = -1  # noqa: E741 - Binance's field name


_depth = msgspec.json.Decoder(DepthSnapshot, strict=False)
# [open time, o, h, l, c, volume, close time, quote volume, trades, taker base, taker quote, 0]
_KlineRow = tuple[int, float, float, float, float, float, int, Any, int, Any, Any, Any]
_klines = msgspec.json.Decoder(list[_KlineRow], strict=False)
_agg = msgspec.json.Decoder(list[AggTradeRow], strict=False)
_time = msgspec.json.Decoder(dict[str, int])


class BinanceRest:
    """A Binance market-data REST client; use as ``async with BinanceRest(url, market)``."""

    def __init__(
        self,
        base_url: str,
        market: str = "spot",
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.prefix = "/fapi/v1" if market == "usdm" else "/api/v3"
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retries = retries
        self._session = session
        self._own_session = session is None
        self.requests = 0
        self.used_weight = 0

    async def __aenter__(self) -> BinanceRest:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
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

    async def _get(self, path: str, params: dict[str, str | int]) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._own_session = True
        url = f"{self.base_url}{self.prefix}{path}"
        last = "no attempt"
        for attempt in range(self.retries + 1):
            try:
                self.requests += 1
                async with self._session.get(url, params=params, timeout=self.timeout) as response:
                    body = await response.read()
                    weight = response.headers.get("X-MBX-USED-WEIGHT-1M")
                    if weight and weight.isdigit():
                        self.used_weight = int(weight)
                    if response.status == 200:
                        return body
                    last = f"HTTP {response.status}: {body[:200].decode('utf-8', 'replace')}"
                    if response.status in (429, 418):
                        retry_after = response.headers.get("Retry-After", "1")
                        delay = float(retry_after) if retry_after.isdigit() else 1.0
                    elif response.status >= 500:
                        delay = min(5.0, 0.2 * 2**attempt) * random.uniform(0.5, 1.0)
                    else:
                        raise RestError(f"GET {path} {params}: {last}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                delay = min(5.0, 0.2 * 2**attempt) * random.uniform(0.5, 1.0)
            if attempt < self.retries:
                _log.warning("GET %s failed (%s); retrying in %.2f s", path, last, delay)
                await asyncio.sleep(delay)
        raise RestError(f"GET {path} failed after {self.retries + 1} attempts: {last}")

    async def depth(self, symbol: str, limit: int = 1000) -> DepthSnapshot:
        """Return the order-book snapshot of ``symbol`` (``lastUpdateId``, bids, asks)."""
        return _depth.decode(await self._get("/depth", {"symbol": symbol, "limit": limit}))

    async def server_time_ms(self) -> int:
        """Return the venue's clock (``/time``) in epoch ms."""
        return _time.decode(await self._get("/time", {}))["serverTime"]

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
        rows = _klines.decode(await self._get("/klines", params))
        return [
            Bar(symbol, interval, row[0] * _MS, row[1], row[2], row[3], row[4], row[5], row[8])
            for row in rows
        ]

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
        return _agg.decode(await self._get("/aggTrades", params))
