"""REST discipline against the real simulator's REST server (loopback, no mocks).

Timeouts, retries with capped backoff on 5xx, 429/418 with Retry-After
pausing every request, and the request-weight budget that keeps the client
under the venue's limit (waiting, not failing), corrected by the venue's
``X-MBX-USED-WEIGHT-1M``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from tickhawk.sim import SimConfig, Simulator
from tickhawk.venues.binance.rest import (
    DEFAULT_BUDGET_SHARE,
    WEIGHT_LIMITS,
    BinanceRest,
    RestError,
    request_weight,
)

START_MS = 1_723_161_600_000


def run(scenario: Coroutine[Any, Any, None], timeout: float = 60.0) -> None:
    asyncio.run(asyncio.wait_for(scenario, timeout))


def simulator(**options: Any) -> Simulator:
    return Simulator(SimConfig(symbols=["BTCUSDT"], rate=500.0, seed=3, **options))


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


async def early_in_a_minute() -> None:
    """Wait until the wall-clock minute (the venue's weight window) has 20 s left at least."""
    await until(lambda: time.time() % 60 < 40, 25, "an early second of the minute")


class FakeClock:
    """The budget's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_700_000_040.0  # a minute's start

    def __call__(self) -> float:
        return self.now


def test_request_weights_are_binances() -> None:
    spot = [(1, 5), (100, 5), (101, 25), (500, 25), (1000, 50), (5000, 250)]
    for limit, weight in spot:
        assert request_weight("spot", "/depth", {"limit": limit}) == weight
    assert request_weight("spot", "/depth", {}) == 5  # default limit 100
    usdm = [(5, 2), (50, 2), (100, 5), (500, 10), (1000, 20)]
    for limit, weight in usdm:
        assert request_weight("usdm", "/depth", {"limit": limit}) == weight
    assert request_weight("spot", "/aggTrades", {"limit": 1000}) == 4
    assert request_weight("spot", "/trades", {}) == request_weight("spot", "/historicalTrades", {})
    assert request_weight("usdm", "/aggTrades", {}) == 20
    assert request_weight("spot", "/klines", {"limit": 1000}) == 2
    assert request_weight("usdm", "/klines", {"limit": 1000}) == 5
    assert request_weight("spot", "/time", {}) == 1
    rest = BinanceRest("http://127.0.0.1:1")
    assert rest.budget.limit == int(WEIGHT_LIMITS["spot"] * DEFAULT_BUDGET_SHARE) < 6_000
    assert BinanceRest("http://127.0.0.1:1", "usdm").budget.limit < 2_400


def test_the_weight_counted_is_the_weight_the_venue_charges() -> None:
    async def scenario() -> None:
        await early_in_a_minute()
        async with simulator() as sim, BinanceRest(sim.rest_url) as rest:
            calls: list[tuple[str, dict[str, str | int], Any]] = [
                ("/depth", {"limit": 100}, lambda: rest.depth("BTCUSDT", 100)),
                ("/depth", {"limit": 1000}, lambda: rest.depth("BTCUSDT", 1000)),
                ("/trades", {}, lambda: rest.recent_trades("BTCUSDT")),
                ("/aggTrades", {}, lambda: rest.agg_trades("BTCUSDT")),
                ("/klines", {}, lambda: rest.klines("BTCUSDT", "1m")),
                ("/time", {}, rest.server_time_ms),
            ]
            for path, params, call in calls:
                before = rest.used_weight
                await call()
                assert rest.used_weight - before == request_weight("spot", path, params), path
            assert rest.budget.used == rest.used_weight

    run(scenario())


def test_a_used_up_budget_makes_requests_wait_for_the_next_minute_not_fail() -> None:
    async def scenario() -> None:
        await early_in_a_minute()
        async with simulator(rest_weight_limit=60) as sim:
            clock = FakeClock()
            async with BinanceRest(sim.rest_url, weight_budget=30, clock=clock) as rest:
                for _ in range(6):  # 6 x 5 = the whole budget
                    await rest.depth("BTCUSDT", 100)
                assert rest.budget.used == 30 and rest.budget.waits == 0
                late = asyncio.create_task(rest.depth("BTCUSDT", 100))
                await until(lambda: rest.budget.waiting == 1, 5, "the 7th request to wait")
                await asyncio.sleep(0.3)
                assert not late.done() and rest.requests == 6  # waiting, not sent
                clock.now += 60  # the next minute
                snapshot = await asyncio.wait_for(late, 5)
                assert snapshot.bids and rest.budget.waits == 1
                assert rest.rate_limited == 0 and rest.failures == 0  # the venue never said 429

    run(scenario())


def test_the_venues_weight_header_corrects_the_budget() -> None:
    """Another client on the same IP spent weight: the header says so, the budget follows."""

    async def scenario() -> None:
        await early_in_a_minute()
        async with simulator() as sim:
            async with BinanceRest(sim.rest_url) as other:
                for _ in range(8):
                    await other.depth("BTCUSDT", 100)  # 40
            async with BinanceRest(sim.rest_url, weight_budget=50) as rest:
                await rest.depth("BTCUSDT", 100)
                assert rest.used_weight == 45 and rest.budget.used == 45
                await rest.depth("BTCUSDT", 100)  # 50: still within the budget
                late = asyncio.create_task(rest.depth("BTCUSDT", 100))
                await until(lambda: rest.budget.waiting == 1, 5, "the request to wait")
                assert rest.requests == 2
                late.cancel()

    run(scenario())


@pytest.mark.parametrize("status", [429, 418])
def test_retry_after_pauses_every_request_of_the_client(status: int) -> None:
    async def scenario() -> None:
        async with simulator() as sim, BinanceRest(sim.rest_url) as rest:
            sim.faults.rest_error(status, count=1, retry_after=1, path="depth")
            started = time.monotonic()
            first = asyncio.create_task(rest.depth("BTCUSDT", 100))
            await until(lambda: rest.rate_limited + rest.banned == 1, 5, f"the {status}")
            other = await rest.server_time_ms()  # another endpoint waits out the pause too
            assert other > 0 and time.monotonic() - started >= 0.95
            assert (await first).bids and time.monotonic() - started >= 0.95
            assert sim.stats.faults[f"rest_error_{status}"] == 1
            assert (rest.rate_limited, rest.banned) == ((1, 0) if status == 429 else (0, 1))
            assert rest.requests == 3

    run(scenario())


def test_a_ban_longer_than_max_wait_fails_requests_without_sending_them() -> None:
    async def scenario() -> None:
        async with simulator() as sim, BinanceRest(sim.rest_url, max_wait_s=1.0) as rest:
            sim.faults.rest_error(418, count=1, retry_after=30, path="depth")
            started = time.monotonic()
            with pytest.raises(RestError, match="418: IP banned") as error:
                await rest.depth("BTCUSDT", 100)
            assert error.value.status == 418 and rest.requests == 1 and rest.banned == 1
            with pytest.raises(RestError, match="pause for"):
                await rest.recent_trades("BTCUSDT")  # not sent either
            assert rest.requests == 1 and time.monotonic() - started < 5

    run(scenario())


def test_5xx_answers_are_retried_with_capped_backoff_then_fail() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            async with BinanceRest(sim.rest_url, retries=3, backoff_cap_s=0.3) as rest:
                sim.faults.rest_error(503, count=2, path="depth")
                started = time.monotonic()
                assert (await rest.depth("BTCUSDT", 100)).asks
                assert rest.requests == 3 and rest.retried == 2
                assert time.monotonic() - started < 0.3 * 2 + 1.0  # capped
            async with BinanceRest(sim.rest_url, retries=1) as rest:
                sim.faults.rest_error(500, count=5, path="trades")
                with pytest.raises(RestError, match="after 2 attempts: HTTP 500") as error:
                    await rest.recent_trades("BTCUSDT")
                assert error.value.status == 500 and error.value.code == -1001
                assert rest.requests == 2 and rest.failures == 1
                sim.faults.clear()

    run(scenario())


def test_backoff_is_jittered_and_never_above_its_cap() -> None:
    rest = BinanceRest("http://127.0.0.1:1", backoff_cap_s=2.0)
    delays = [rest._backoff(attempt) for attempt in range(30) for _ in range(20)]
    assert all(0 < delay <= 2.0 for delay in delays)
    assert len(set(delays)) > 100  # jittered
    assert max(rest._backoff(0) for _ in range(50)) <= 0.2


def test_a_slow_answer_times_out_and_the_retry_gets_it() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            async with BinanceRest(sim.rest_url, timeout_s=0.3, retries=0) as rest:
                sim.faults.snapshot_delay("BTCUSDT", delay=2.0)
                started = time.monotonic()
                with pytest.raises(RestError, match="TimeoutError"):
                    await rest.depth("BTCUSDT", 100)
                assert time.monotonic() - started < 1.5
            async with BinanceRest(sim.rest_url, timeout_s=0.3, retries=1) as rest:
                sim.faults.snapshot_delay("BTCUSDT", delay=2.0)
                assert (await rest.depth("BTCUSDT", 100)).bids
                assert rest.requests == 2

    run(scenario())


def test_a_wrong_request_is_not_retried_and_says_what_the_venue_said() -> None:
    async def scenario() -> None:
        async with simulator() as sim, BinanceRest(sim.rest_url) as rest:
            with pytest.raises(RestError, match="Invalid symbol") as error:
                await rest.depth("NOSUCHCOIN", 100)
            assert (error.value.status, error.value.code) == (400, -1121)
            assert rest.requests == 1

    run(scenario())


def test_trades_and_aggregate_trades_come_oldest_first() -> None:
    async def scenario() -> None:
        async with simulator(start_time_ms=START_MS) as sim, BinanceRest(sim.rest_url) as rest:
            await until(lambda: sim.stats.sim_time_ms > START_MS + 1_500, 10, "some trades")
            trades = await rest.recent_trades("BTCUSDT", limit=50)
            ids = [t.id for t in trades]
            assert len(ids) == 50 and ids == list(range(ids[0], ids[0] + 50))
            older = await rest.historical_trades("BTCUSDT", from_id=ids[10], limit=20)
            assert [t.id for t in older] == ids[10:30]
            assert [(t.price, t.qty) for t in older[:40]] == [
                (t.price, t.qty) for t in trades[10:30]
            ]
            aggs = await rest.agg_trades("BTCUSDT", from_id=0, limit=20)
            assert [a.a for a in aggs] == list(range(aggs[0].a, aggs[0].a + 20))
            assert all(a.f <= a.l for a in aggs)

    run(scenario())
