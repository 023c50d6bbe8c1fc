"""The REST side (aiohttp): Binance's public market-data endpoints and error shapes.

Every path exists under ``/api/v3`` (spot) and ``/fapi/v1`` (the futures
prefix, an alias). Errors are HTTP 400 with ``{"code":..,"msg":..}``; every
response carries ``X-MBX-USED-WEIGHT-1M``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt
from aiohttp import web

from tickhawk.sim.intervals import INTERVALS
from tickhawk.sim.klines import KlineText
from tickhawk.sim.symbols import SymbolSpec, fixed8
from tickhawk.sim.tape import Trades, TradeTape

__all__ = ["BinanceError", "MarketData", "RestFaults", "WeightMeter", "make_app"]

_JSON = "application/json"
_MAX_WINDOW_MS = 3_600_000


class MarketData(Protocol):
    """What the REST endpoints read: the synthetic market or a replay."""

    specs: list[SymbolSpec]

    def find(self, symbol: str) -> int | None:
        """Return the number of ``symbol`` or None."""
        ...

    def now_ms(self) -> int:
        """Return the server time."""
        ...

    async def depth_json(self, index: int, limit: int) -> bytes:
        """Return the depth snapshot body."""
        ...

    def tape(self, index: int) -> TradeTape:
        """Return the trade history."""
        ...

    def klines(
        self, index: int, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Return the bars of a klines request."""
        ...


class RestFaults(Protocol):
    """Fault-injection seam of the REST side (``sim.faults``)."""

    rest_armed: bool

    def rest_error_for(self, path: str) -> tuple[int, str, dict[str, str]] | None:
        """Return ``(status, body, headers)`` to answer ``path`` with, or None."""
        ...

    async def depth_json(self, index: int, limit: int) -> bytes:
        """Return the depth body as the armed faults make it."""
        ...


class BinanceError(Exception):
    """An error Binance answers with ``{"code":..,"msg":..}``."""

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class WeightMeter:
    """Request weight used in the current minute (Binance's ``X-MBX-USED-WEIGHT-1M``)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0
        self._minute = 0

    def charge(self, weight: int) -> int:
        """Add ``weight``; return the minute's total."""
        minute = int(time.time() // 60)
        if minute != self._minute:
            self._minute = minute
            self.used = 0
        self.used += weight
        return self.used


def _depth_weight(limit: int) -> int:
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1_000:
        return 50
    return 250


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Api:
    def __init__(self, data: MarketData, meter: WeightMeter, faults: RestFaults | None) -> None:
        self.data = data
        self.meter = meter
        self.faults = faults
        self.text = [KlineText(spec) for spec in data.specs]

    # -- parameters -----------------------------------------------------------------------

    @staticmethod
    def _allow(request: web.Request, *names: str) -> None:
        extra = [name for name in request.query if name not in names]
        if extra:
            raise BinanceError(
                -1104,
                f"Not all sent parameters were read; read '{len(request.query) - len(extra)}' "
                f"parameter(s) but was sent '{len(request.query)}'.",
            )

    def _symbol(self, request: web.Request) -> tuple[int, SymbolSpec]:
        symbol = request.query.get("symbol", "")
        if not symbol:
            raise BinanceError(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        index = self.data.find(symbol)
        if index is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return index, self.data.specs[index]

    @staticmethod
    def _int(request: web.Request, name: str, low: int = 0, high: int | None = None) -> int | None:
        text = request.query.get(name)
        if text is None or text == "":
            return None
        try:
            value = int(text)
        except ValueError:
            legal = "^[0-9]{1,20}$"
            raise BinanceError(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
            ) from None
        if value < low or (high is not None and value > high):
            legal = f"{low} - {high}" if high is not None else f">= {low}"
            raise BinanceError(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
            )
        return value

    def _reply(self, body: bytes | str, weight: int) -> web.Response:
        used = self.meter.charge(weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if self.meter.limit is not None and used > self.meter.limit:
            message = (
                f"Too much request weight used; current limit is {self.meter.limit} request "
                "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                "polling the API."
            )
            body = json.dumps({"code": -1003, "msg": message}, separators=(",", ":"))
            return web.Response(status=429, text=body, content_type=_JSON, headers=headers)
        if isinstance(body, str):
            return web.Response(text=body, content_type=_JSON, headers=headers)
        return web.Response(body=body, content_type=_JSON, headers=headers)

    # -- endpoints ------------------------------------------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        return self._reply("{}", 1)

    async def time(self, request: web.Request) -> web.Response:
        return self._reply(f'{{"serverTime":{self.data.now_ms()}}}', 1)

    async def exchange_info(self, request: web.Request) -> web.Response:
        self._allow(
            request, "symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"
        )
        specs = self.data.specs
        single = request.query.get("symbol")
        several = request.query.get("symbols")
        if single is not None and several is not None:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if single is not None:
            specs = [self._symbol(request)[1]]
        elif several is not None:
            try:
                names = json.loads(several)
            except ValueError:
                names = None
            if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
                raise BinanceError(
                    -1100,
                    "Illegal characters found in parameter 'symbols'; legal range is "
                    '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
                )
            specs = []
            for name in names:
                index = self.data.find(name)
                if index is None:
                    raise BinanceError(-1121, "Invalid symbol.")
                specs.append(self.data.specs[index])
        body = {
            "timezone": "UTC",
            "serverTime": self.data.now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.meter.limit or 6_000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61_000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(spec) for spec in specs],
        }
        return self._reply(json.dumps(body, separators=(",", ":")), 20)

    async def depth(self, request: web.Request) -> web.Response:
        self._allow(request, "symbol", "limit")
        index, _ = self._symbol(request)
        limit = self._int(request, "limit", 1) or 100
        limit = min(limit, 5_000)
        faults = self.faults
        try:
            if faults is not None and faults.rest_armed:
                body = await faults.depth_json(index, limit)
            else:
                body = await self.data.depth_json(index, limit)
        except LookupError as error:
            raise BinanceError(-1001, f"Internal error; {error}.", status=503) from None
        return self._reply(body, _depth_weight(limit))

    async def trades(self, request: web.Request) -> web.Response:
        self._allow(request, "symbol", "limit")
        index, spec = self._symbol(request)
        limit = self._int(request, "limit", 1, 1_000) or 500
        window = self.data.tape(index).window()
        window = window.take(slice(max(0, len(window) - limit), None))
        return self._reply(self._trades_json(index, spec, window), 25)

    async def historical_trades(self, request: web.Request) -> web.Response:
        """``historicalTrades``: from ``fromId`` on (the oldest kept if older), else the latest."""
        self._allow(request, "symbol", "limit", "fromId")
        index, spec = self._symbol(request)
        limit = self._int(request, "limit", 1, 1_000) or 500
        from_id = self._int(request, "fromId")
        window = self.data.tape(index).window()
        if from_id is None:
            start = max(0, len(window) - limit)
        else:
            start = int(np.searchsorted(window.ids, from_id))
        window = window.take(slice(start, start + limit))
        return self._reply(self._trades_json(index, spec, window), 25)

    def _trades_json(self, index: int, spec: SymbolSpec, window: Trades) -> str:
        text = self.text[index]
        parts = []
        for trade_id, price, qty, when, maker in zip(
            window.ids.tolist(),
            window.price.tolist(),
            window.qty.tolist(),
            window.time.tolist(),
            window.maker.tolist(),
            strict=True,
        ):
            parts.append(
                f'{{"id":{trade_id},"price":"{fixed8(price * spec.price_e8)}",'
                f'"qty":"{fixed8(qty * spec.qty_e8)}","quoteQty":"{text.quote(price * qty)}",'
                f'"time":{when},"isBuyerMaker":{"true" if maker else "false"},"isBestMatch":true}}'
            )
        return "[" + ",".join(parts) + "]"

    async def agg_trades(self, request: web.Request) -> web.Response:
        self._allow(request, "symbol", "fromId", "startTime", "endTime", "limit")
        index, spec = self._symbol(request)
        from_id = self._int(request, "fromId")
        start = self._int(request, "startTime")
        end = self._int(request, "endTime")
        limit = self._int(request, "limit", 1, 1_000) or 500
        if start is not None and end is not None and end - start > _MAX_WINDOW_MS:
            raise BinanceError(-1127, "More than 1 hours between startTime and endTime.")
        aggs = self.data.tape(index).aggregates()
        chosen = aggs.select(from_id, start, end, limit)
        parts = []
        for row in chosen.tolist():
            parts.append(
                f'{{"a":{int(aggs.agg[row])},"p":"{fixed8(int(aggs.price[row]) * spec.price_e8)}",'
                f'"q":"{fixed8(int(aggs.qty[row]) * spec.qty_e8)}","f":{int(aggs.first[row])},'
                f'"l":{int(aggs.last[row])},"T":{int(aggs.time[row])},'
                f'"m":{"true" if aggs.maker[row] else "false"},"M":true}}'
            )
        return self._reply("[" + ",".join(parts) + "]", 4)

    async def klines(self, request: web.Request) -> web.Response:
        self._allow(request, "symbol", "interval", "startTime", "endTime", "limit", "timeZone")
        index, _ = self._symbol(request)
        interval = request.query.get("interval", "")
        if not interval:
            raise BinanceError(
                -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
            )
        if interval not in INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        start = self._int(request, "startTime")
        end = self._int(request, "endTime")
        limit = self._int(request, "limit", 1, 1_000) or 500
        if start is not None and end is not None and start > end:
            raise BinanceError(-1023, "Start time is greater than end time.")
        opens, rows = self.data.klines(index, interval, start, end, limit)
        return self._reply(self.text[index].rest(opens, rows, interval), 2)


def _symbol_info(spec: SymbolSpec) -> dict[str, object]:
    return {
        "symbol": spec.name,
        "status": "TRADING",
        "baseAsset": spec.base_asset,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote_asset,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": spec.tick_size,
                "maxPrice": fixed8(spec.price_e8 * 10_000_000),
                "tickSize": spec.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": spec.step_size,
                "maxQty": fixed8(spec.qty_e8 * 10_000_000),
                "stepSize": spec.step_size,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    faults = request.app[_API_KEY].faults
    if faults is not None and faults.rest_armed:
        answer = faults.rest_error_for(request.path)
        if answer is not None:
            status, text, headers = answer
            return web.Response(status=status, text=text, content_type=_JSON, headers=headers)
    try:
        return await handler(request)
    except BinanceError as error:
        api: _Api = request.app[_API_KEY]
        used = api.meter.charge(1)
        return web.Response(
            status=error.status,
            text=json.dumps({"code": error.code, "msg": error.message}, separators=(",", ":")),
            content_type=_JSON,
            headers={"X-MBX-USED-WEIGHT-1M": str(used)},
        )


_API_KEY = web.AppKey("api", _Api)


def make_app(
    data: MarketData, meter: WeightMeter, faults: RestFaults | None = None
) -> web.Application:
    """Return the aiohttp application serving ``data`` (with ``faults`` armed on command)."""
    api = _Api(data, meter, faults)
    app = web.Application(middlewares=[_errors])
    app[_API_KEY] = api

    async def weight_header(request: web.Request, response: web.StreamResponse) -> None:
        # Every answer carries the header, also aiohttp's own (404, 405).
        response.headers.setdefault("X-MBX-USED-WEIGHT-1M", str(meter.used))

    app.on_response_prepare.append(weight_header)
    for prefix in ("/api/v3", "/fapi/v1"):
        app.router.add_get(f"{prefix}/ping", api.ping)
        app.router.add_get(f"{prefix}/time", api.time)
        app.router.add_get(f"{prefix}/exchangeInfo", api.exchange_info)
        app.router.add_get(f"{prefix}/depth", api.depth)
        app.router.add_get(f"{prefix}/trades", api.trades)
        app.router.add_get(f"{prefix}/historicalTrades", api.historical_trades)
        app.router.add_get(f"{prefix}/aggTrades", api.agg_trades)
        app.router.add_get(f"{prefix}/klines", api.klines)
    return app
