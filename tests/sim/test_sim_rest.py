"""The REST side: Binance's endpoints, their semantics, and agreement with the streams."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
from sim_helpers import (
    START_MS,
    Book,
    DepthUpdate,
    RestAggTrade,
    RestTrade,
    Snapshot,
    dec,
    get_error,
    get_json,
    run,
    until,
    until_async,
)

from tickhawk.sim import SimConfig, Simulator
from tickhawk.sim.market import MarketModel


def _config(**changes: Any) -> SimConfig:
    base: dict[str, Any] = {
        "symbols": ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
        "rate": 4_000.0,
        "seed": 5,
        "start_time_ms": START_MS,
    }
    base.update(changes)
    return SimConfig(**base)


def _levels(levels: list[tuple[str, str]]) -> dict[Decimal, Decimal]:
    return {dec(price): dec(qty) for price, qty in levels}


def test_depth_snapshot_and_diffs_sync_as_binance_documents() -> None:
    async def scenario() -> None:
        config = _config()
        async with (
            Simulator(config) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws,
        ):
            diffs: asyncio.Queue[DepthUpdate] = asyncio.Queue()

            async def read() -> None:
                async for message in ws:
                    diffs.put_nowait(msgspec.json.decode(message.data, type=DepthUpdate))

            reader = asyncio.create_task(read())
            try:
                # 1-2: buffer the stream; note the first event's U.
                buffered = [await asyncio.wait_for(diffs.get(), 5)]
                # 3-4: get a snapshot; refetch while it is older than the first event.
                url = f"{sim.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5000"
                snapshot = msgspec.convert(await get_json(http, url), Snapshot)
                while snapshot.lastUpdateId < buffered[0].U:
                    snapshot = msgspec.convert(await get_json(http, url), Snapshot)
                book = Book(snapshot)
                pending = buffered

                async def next_diff() -> DepthUpdate:
                    if pending:
                        return pending.pop(0)
                    return await asyncio.wait_for(diffs.get(), 5)

                # 5-6: drop events up to the snapshot; the first kept one must bridge it.
                diff = await next_diff()
                while diff.u <= book.update_id:
                    diff = await next_diff()
                assert diff.U <= book.update_id + 1 <= diff.u
                book.apply(diff)
                # 7: apply the rest, each chained to the previous; check later snapshots.
                for _ in range(3):
                    later = msgspec.convert(await get_json(http, url), Snapshot)
                    before = book.levels()
                    straddling: set[Decimal] = set()
                    while book.update_id < later.lastUpdateId:
                        diff = await next_diff()
                        assert book.update_id + 1 == diff.U
                        before = book.levels()
                        book.apply(diff)
                        straddling = {dec(p) for p, _ in diff.b + diff.a}
                    # Levels the straddling diff did not touch agree with the snapshot
                    # exactly; on an exact id match, the whole book does.
                    bids, asks = _levels(later.bids), _levels(later.asks)
                    for side, ours in ((bids, dict(before[0])), (asks, dict(before[1]))):
                        for price in (set(side) | set(ours)) - straddling:
                            assert side.get(price) == ours.get(price), price
                    if book.update_id == later.lastUpdateId:
                        assert (bids, asks) == (dict(book.levels()[0]), dict(book.levels()[1]))
                # Exactly: the same seed replayed offline gives the same book at this diff.
                model = sim.model
                assert model is not None
                offline = MarketModel(
                    model.specs, rate=config.rate, seed=config.seed, start_ms=START_MS
                )
                offline.advance_to(diff.E)
                reference = offline.books[0]
                assert reference.update_id == diff.u
                spec = model.specs[0]
                assert book.bids == {
                    Decimal(spec.price_text(p)): Decimal(spec.qty_text(q))
                    for p, q in reference.bids.items()
                }
                assert book.asks == {
                    Decimal(spec.price_text(p)): Decimal(spec.qty_text(q))
                    for p, q in reference.asks.items()
                }
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    run(scenario())


def test_agg_trades_and_trades_semantics() -> None:
    async def scenario() -> None:
        async with Simulator(_config()) as sim, aiohttp.ClientSession() as http:
            base = f"{sim.rest_url}/api/v3/aggTrades?symbol=BTCUSDT"
            model = sim.model
            assert model is not None
            await until(lambda: model.tapes[0].next_id - model.tapes[0]._first_id > 2_500)
            everything = [
                msgspec.convert(a, RestAggTrade) for a in await get_json(http, f"{base}&limit=1000")
            ]
            assert len(everything) == 1_000
            for before, after in itertools.pairwise(everything):
                assert after.a == before.a + 1 and after.f == before.l + 1 and after.T >= before.T
            assert len(await get_json(http, base)) == 500  # default limit
            # fromId: inclusive, the first `limit` from there.
            start = everything[100]
            page = await get_json(http, f"{base}&fromId={start.a}&limit=7")
            assert [msgspec.convert(a, RestAggTrade) for a in page] == everything[100:107]
            # startTime/endTime: inclusive, the first `limit` from startTime.
            low, high = everything[200].T, everything[300].T
            page = await get_json(http, f"{base}&startTime={low}&endTime={high}&limit=1000")
            expected = [a for a in everything if low <= a.T <= high]
            assert [msgspec.convert(a, RestAggTrade) for a in page] == expected
            page = await get_json(http, f"{base}&startTime={low}&limit=3")
            assert [msgspec.convert(a, RestAggTrade) for a in page] == expected[:3]
            page = await get_json(http, f"{base}&endTime={high}&limit=4")
            assert [msgspec.convert(a, RestAggTrade) for a in page] == expected[-4:]
            # Aggregates sum the trades they list.
            trades = [
                msgspec.convert(t, RestTrade)
                for t in await get_json(
                    http, f"{sim.rest_url}/api/v3/trades?symbol=BTCUSDT&limit=1000"
                )
            ]
            assert [t.id for t in trades] == list(range(trades[0].id, trades[0].id + 1_000))
            by_id = {t.id: t for t in trades}
            for agg in everything:
                members = [by_id[i] for i in range(agg.f, agg.l + 1) if i in by_id]
                if len(members) == agg.l - agg.f + 1:
                    assert sum(dec(t.qty) for t in members) == dec(agg.q)
                    assert {t.price for t in members} == {agg.p}
                    assert {t.isBuyerMaker for t in members} == {agg.m}
            for trade in trades:
                assert dec(trade.quoteQty) == (dec(trade.price) * dec(trade.qty)).quantize(
                    Decimal("0.00000001")
                )
            assert len(await get_json(http, f"{sim.rest_url}/api/v3/trades?symbol=ETHUSDT")) == 500
            # Errors as Binance answers them.
            hour = 3_600_000
            assert (await get_error(http, f"{base}&startTime=0&endTime={hour + 1}"))[:2] == (
                400,
                -1127,
            )
            assert (await get_error(http, f"{base}&limit=1001"))[:2] == (400, -1100)
            assert (await get_error(http, f"{base}&fromId=abc"))[:2] == (400, -1100)

    run(scenario())


def test_klines_agree_with_trades_and_reach_back() -> None:
    async def scenario() -> dict[str, Any]:
        async with Simulator(_config()) as sim, aiohttp.ClientSession() as http:
            model = sim.model
            assert model is not None
            await until(lambda: model.time_ms >= START_MS + 2_200, what="two closed seconds")
            klines = f"{sim.rest_url}/api/v3/klines?symbol=BTCUSDT"
            for second in (START_MS, START_MS + 1_000):
                (bar,) = await get_json(http, f"{klines}&interval=1s&startTime={second}&limit=1")
                aggs = [
                    msgspec.convert(a, RestAggTrade)
                    for a in await get_json(
                        http,
                        f"{sim.rest_url}/api/v3/aggTrades?symbol=BTCUSDT&startTime={second}"
                        f"&endTime={second + 999}&limit=1000",
                    )
                ]
                assert 0 < len(aggs) < 1_000
                assert bar[0] == second and bar[6] == second + 999
                prices = [dec(a.p) for a in aggs]
                assert [dec(v) for v in bar[1:5]] == [
                    prices[0],
                    max(prices),
                    min(prices),
                    prices[-1],
                ]
                assert dec(bar[5]) == sum(dec(a.q) for a in aggs)
                assert bar[8] == sum(a.l - a.f + 1 for a in aggs)
                assert dec(bar[7]) == sum(dec(a.p) * dec(a.q) for a in aggs)
                assert dec(bar[9]) == sum(dec(a.q) for a in aggs if not a.m)
                assert bar[11] == "0"
            # Warm-up history: 1000 bars of any interval, contiguous, ending with the open bar.
            history: dict[str, Any] = {}
            for interval, length in (("1m", 60_000), ("1h", 3_600_000), ("1d", 86_400_000)):
                bars = await get_json(http, f"{klines}&interval={interval}&limit=1000")
                assert len(bars) == 1_000
                assert all(b[0] - a[0] == length for a, b in itertools.pairwise(bars))
                assert bars[-1][0] <= model.time_ms <= bars[-1][6]
                assert all(dec(b[3]) <= min(dec(b[1]), dec(b[4])) for b in bars)
                history[interval] = bars[:-2]
            bars = await get_json(http, f"{klines}&interval=1h&endTime={START_MS - 1}&limit=5")
            assert [b[0] for b in bars] == [START_MS - (5 - i) * 3_600_000 for i in range(5)]
            bars = await get_json(http, f"{klines}&interval=5m&startTime={START_MS - 600_001}")
            assert [b[0] for b in bars] == [START_MS - 600_000, START_MS - 300_000, START_MS]
            return history

    first = run(scenario())
    second = run(scenario())
    assert first == second  # the same seed gives the same history


def test_exchange_info_ping_time_and_errors() -> None:
    async def scenario() -> None:
        async with Simulator(_config()) as sim, aiohttp.ClientSession() as http:
            rest = sim.rest_url
            assert await get_json(http, f"{rest}/api/v3/ping") == {}
            assert (await get_json(http, f"{rest}/api/v3/time"))["serverTime"] >= START_MS
            info = await get_json(http, f"{rest}/api/v3/exchangeInfo")
            assert info["timezone"] == "UTC" and info["rateLimits"]
            assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
            for symbol in info["symbols"]:
                assert symbol["status"] == "TRADING"
                assert symbol["baseAsset"] + symbol["quoteAsset"] == symbol["symbol"]
                filters = {f["filterType"]: f for f in symbol["filters"]}
                assert dec(filters["PRICE_FILTER"]["tickSize"]) > 0
                assert dec(filters["LOT_SIZE"]["stepSize"]) > 0
            one = await get_json(http, f"{rest}/api/v3/exchangeInfo?symbol=ETHUSDT")
            assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
            two = await get_json(http, f'{rest}/api/v3/exchangeInfo?symbols=["SOLUSDT","BTCUSDT"]')
            assert [s["symbol"] for s in two["symbols"]] == ["SOLUSDT", "BTCUSDT"]
            # Ticks and steps are what the streams use.
            tick = dec(info["symbols"][0]["filters"][0]["tickSize"])
            depth = await get_json(http, f"{rest}/api/v3/depth?symbol=BTCUSDT")
            assert len(depth["bids"]) == len(depth["asks"]) == 100
            assert all(dec(p) % tick == 0 for p, _ in depth["bids"] + depth["asks"])
            assert dec(depth["bids"][0][0]) < dec(depth["asks"][0][0])
            depth = await get_json(http, f"{rest}/fapi/v1/depth?symbol=BTCUSDT&limit=5")
            assert len(depth["bids"]) == 5
            errors = {
                "/api/v3/depth?symbol=NOPE": (400, -1121),
                "/api/v3/depth": (400, -1102),
                "/api/v3/depth?symbol=BTCUSDT&limit=x": (400, -1100),
                "/api/v3/depth?symbol=BTCUSDT&bogus=1": (400, -1104),
                "/api/v3/klines?symbol=BTCUSDT&interval=7m": (400, -1120),
                "/api/v3/klines?symbol=BTCUSDT": (400, -1102),
                '/api/v3/exchangeInfo?symbols=["NOPE"]': (400, -1121),
                "/api/v3/exchangeInfo?symbols=BTCUSDT": (400, -1100),
            }
            for path, expected in errors.items():
                assert (await get_error(http, f"{rest}{path}"))[:2] == expected, path
            async with http.get(f"{rest}/api/v3/nothing") as response:
                assert response.status == 404
                assert "X-MBX-USED-WEIGHT-1M" in response.headers

    run(scenario())


def test_request_weight_is_counted_and_limited() -> None:
    async def scenario() -> None:
        async with Simulator(_config(rest_weight_limit=30)) as sim, aiohttp.ClientSession() as http:
            url = f"{sim.rest_url}/api/v3/depth?symbol=BTCUSDT"

            async def limited() -> bool:
                async with http.get(url) as response:
                    used = int(response.headers["X-MBX-USED-WEIGHT-1M"])
                    if response.status == 429:
                        body = await response.json()
                        assert body["code"] == -1003 and used > 30
                        return True
                    assert used <= 30
                    return False

            await until_async(limited, what="HTTP 429")

    run(scenario())
