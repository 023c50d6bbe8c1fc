"""Warm-up: bars back-filled from REST klines, indicators seeded, live bars continue seamlessly."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tickhawk.app.live import LiveApp
from tickhawk.config import parse_config
from tickhawk.engine import Engine
from tickhawk.indicators.streams import IndicatorSet
from tickhawk.indicators.warmup import (
    WarmupConfig,
    bars_to_fetch,
    split_closed,
    venue_interval,
    warm_up,
)
from tickhawk.model import Bar, Trade
from tickhawk.presets import fast_config
from tickhawk.sim import SimConfig, Simulator
from tickhawk.venues.binance.rest import BinanceRest, RestError

KLINES = (
    Path(__file__).resolve().parent.parent.parent
    / "shared/data/klines/btc-perp-20211231-20220201_1m.csv"
)
MS = 1_000_000
MINUTE = 60_000


def load_klines(n: int = 3000) -> list[Bar]:
    if not KLINES.exists():
        pytest.fail(f"test data {KLINES} is missing: clone the shared data beside the repo")
    out = []
    for line in KLINES.read_text().splitlines()[1 : n + 1]:
        ts, o, h, low, c, v = line.split(",")[:6]
        when = datetime.fromisoformat(ts).replace(tzinfo=UTC)
        open_ms = int(when.timestamp() * 1000)
        out.append(
            Bar(
                "BTCUSDT", "1m", open_ms * MS, float(o), float(h), float(low), float(c), float(v), 9
            )
        )
    return out


class CsvVenue:
    """Klines as a venue serves them at ``now_ms``: the last one still forming."""

    def __init__(self, bars: list[Bar], now_ms: int, *, refuse: set[str] | None = None) -> None:
        self.bars = [b for b in bars if b.open_time // MS <= now_ms]
        self.now_ms = now_ms
        self.refuse = refuse or set()
        self.calls: list[tuple[str, int, int | None]] = []

    async def server_time_ms(self) -> int:
        return self.now_ms

    async def klines(
        self,
        symbol: str,
        interval: str,
        *,
        limit: int = 500,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Bar]:
        self.calls.append((interval, limit, end_ms))
        if symbol in self.refuse:
            raise RestError("GET /klines: HTTP 400: Invalid symbol.")
        assert interval == "1m" and start_ms is None
        rows = [b for b in self.bars if end_ms is None or b.open_time // MS <= end_ms]
        return [Bar(symbol, interval, *_fields(b)) for b in rows[-limit:]]


def _fields(bar: Bar) -> tuple[int, float, float, float, float, float, int]:
    return bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades


def engine_for(indicators: dict[str, dict[str, dict[str, object]]], **extra: object) -> Engine:
    data: dict[str, object] = {
        "venue": {"symbols": ["BTCUSDT"]},
        "engine": {"intervals": list(indicators)},
        "indicators": indicators,
        "strategies": {},
    }
    data.update(extra)
    return Engine(parse_config(data))


SET = {"ema": {"fn": "EMA", "timeperiod": 21}, "macd": {"fn": "MACD"}, "atr": {"fn": "ATR"}}


def trade(price: float, ts_ns: int, i: int = 1) -> Trade:
    return Trade("BTCUSDT", i, price, 0.5, 1, ts_ns, ts_ns)


def test_closed_klines_seed_indicators_and_live_trades_continue_the_forming_bar() -> None:
    bars = load_klines()
    forming = bars[500]
    now_ms = forming.open_time // MS + 25_000  # 25 s into the forming minute
    engine = engine_for({"1m": SET})
    state = engine.states["BTCUSDT"]
    needed = bars_to_fetch(state, "1m", 100)
    assert needed == 34 + 100  # MACD(12, 26, 9): lookback 33, + 1, + margin
    report = asyncio.run(warm_up(engine, CsvVenue(bars, now_ms)))

    (result,) = report.results
    assert (result.committed, result.forming, result.ready) == (needed, True, True)
    closed = bars[500 - needed : 500]
    history = state.bars["1m"].history
    assert [b.open_time for b in history] == [b.open_time for b in closed]
    reference = IndicatorSet([ind.spec for ind in state.indicators["1m"].indicators])
    for bar in closed:
        reference.update(bar)
    assert state.indicators["1m"].values == reference.values  # the forming kline is not in

    aggregator = state.bars["1m"]
    assert (aggregator.open_time, aggregator.trades) == (forming.open_time, forming.trades)
    state.on_trade(trade(forming.high + 5, forming.open_time + 40 * 10**9), 0, 0)
    assert len(history) == needed  # still forming
    state.on_trade(trade(forming.close, forming.open_time + 61 * 10**9, 2), 0, 0)
    first_live = history[-1]
    assert first_live.open_time == closed[-1].open_time + 60 * 10**9  # no gap, no repeat
    assert first_live.open == forming.open and first_live.high == forming.high + 5
    assert first_live.volume == pytest.approx(forming.volume + 0.5)
    reference.update(first_live)
    assert state.indicators["1m"].committed() == reference.values
    assert all(not math.isnan(v) for v in state.indicators["1m"].values.values())


def test_an_interval_without_klines_is_built_from_a_finer_one() -> None:
    bars = load_klines()
    assert venue_interval("2m") == ("1m", 2) and venue_interval("10s") == ("1s", 10)
    assert venue_interval("4h") == ("4h", 1)
    assert bars[901].open_time % (120 * 10**9) == 0  # an even minute: a 2m bar opens
    now_ms = bars[902].open_time // MS + 1_000  # the 2m bar of klines 901-902 is forming
    engine = engine_for({"2m": {"rsi": {"fn": "RSI", "timeperiod": 5}}})
    report = asyncio.run(warm_up(engine, CsvVenue(bars, now_ms), WarmupConfig(margin_bars=10)))
    (result,) = report.results
    assert result.source == "1m" and result.committed == 16 and result.forming
    history = list(engine.states["BTCUSDT"].bars["2m"].history)
    assert [b.open_time for b in history] == [bars[i].open_time for i in range(869, 901, 2)]
    first = history[0]
    pair = bars[869:871]
    assert (first.open, first.close) == (pair[0].open, pair[1].close)
    assert first.high == max(b.high for b in pair) and first.volume == sum(b.volume for b in pair)
    aggregator = engine.states["BTCUSDT"].bars["2m"]
    assert aggregator.open_time == bars[901].open_time
    assert aggregator.volume == bars[901].volume + bars[902].volume


def test_long_lookbacks_page_back_without_gaps_or_repeats() -> None:
    bars = load_klines()
    venue = CsvVenue(bars, bars[2600].open_time // MS + 5)
    engine = engine_for(
        {"1m": {"slow": {"fn": "SMA", "timeperiod": 2000}}},
        engine={"intervals": ["1m"], "bar_history": 3000},
    )
    report = asyncio.run(warm_up(engine, venue, WarmupConfig(margin_bars=300)))
    assert report.results[0].committed == 2300 and report.requests == 3
    times = [b.open_time for b in engine.states["BTCUSDT"].bars["1m"].history]
    assert times == [b.open_time for b in bars[300:2600]]
    assert [limit for _, limit, _ in venue.calls] == [1000, 1000, 301]


def test_a_refused_symbol_is_reported_not_fatal() -> None:
    bars = load_klines(400)
    engine = engine_for({"1m": SET}, venue={"symbols": ["BTCUSDT", "NOPEUSDT"]})
    venue = CsvVenue(bars, bars[300].open_time // MS + 5, refuse={"NOPEUSDT"})
    report = asyncio.run(warm_up(engine, venue))
    assert [r.skipped for r in report.results] == [
        "",
        "RestError: GET /klines: HTTP 400: Invalid symbol.",
    ]
    assert engine.states["BTCUSDT"].indicators["1m"].ready
    assert not engine.states["NOPEUSDT"].indicators["1m"].ready


def test_warm_up_after_live_trades_commits_only_older_bars() -> None:
    bars = load_klines(400)
    engine = engine_for({"1m": SET})
    state = engine.states["BTCUSDT"]
    live_open = bars[300].open_time
    state.on_trade(trade(bars[300].open, live_open + 10**9), 0, 0)
    asyncio.run(warm_up(engine, CsvVenue(bars, live_open // MS + 2_000)))
    history = state.bars["1m"].history
    assert history[-1].open_time == bars[299].open_time and not state.bars["1m"].late
    assert state.bars["1m"].open_time == live_open and state.bars["1m"].trades == 1


def test_only_the_newest_kline_can_be_forming() -> None:
    bars = load_klines(5)
    now = bars[3].open_time + 1  # a clock behind the venue's: bar 3 looks unfinished
    closed, forming = split_closed(bars, "1m", 60 * 10**9, 1, now)
    assert forming == bars[4] and closed == bars[:4]  # but bar 4 exists: bar 3 is closed
    closed, forming = split_closed(bars, "1m", 60 * 10**9, 1, bars[4].open_time + 60 * 10**9)
    assert forming is None and closed == bars


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def simulator_scenario() -> None:
    async with Simulator(SimConfig(n_symbols=2, rate=2000.0, seed=5)) as sim:
        config = fast_config(list(sim.symbols), ["trade"], ws_url=sim.ws_url, rest_url=sim.rest_url)
        app = LiveApp(config)
        async with BinanceRest(sim.rest_url) as rest:
            report = await warm_up(app.engine, rest, config.warmup)
        assert not report.skipped and len(report.results) == 2
        state = app.engine.states[sim.symbols[0]]
        seeded = state.bars["1s"]
        last_kline = seeded.history[-1].open_time
        assert seeded.open_time == last_kline + 10**9  # forming: the next second
        assert state.indicators["1s"].ready
        closed: list[Bar] = []
        state.bar_listeners.append(lambda bar: closed.append(bar) if bar.interval == "1s" else None)
        rsi_at_first_bar: list[float] = []
        state.bar_listeners.append(
            lambda bar: rsi_at_first_bar.append(state.indicators["1s"].values["rsi"])
        )
        stop = asyncio.Event()
        run = asyncio.create_task(app.run(stop=stop))
        await app.wait_live(10)
        await until(lambda: len(closed) >= 2, 20, "two live 1 s bars")
        stop.set()
        await run
        assert closed[0].open_time == last_kline + 10**9  # continues the klines seamlessly
        assert closed[1].open_time == closed[0].open_time + 10**9
        assert not math.isnan(rsi_at_first_bar[0])  # valid from the first live bar


def test_warm_up_from_the_simulator_then_live_bars_continue() -> None:
    asyncio.run(asyncio.wait_for(simulator_scenario(), 60))
