"""The market model alone (no sockets): determinism, book invariants, messages."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import msgspec
import numpy as np
import pytest
from sim_helpers import START_MS, BookTicker, DepthUpdate, Trade

from polling import poll
from tickhawk.sim import SimConfig, synthetic
from tickhawk.sim.bars import CLOSE, COUNT, FIRST, HIGH, LAST, LOW, OPEN, QUOTE, VOLUME
from tickhawk.sim.market import MarketModel
from tickhawk.sim.streams import parse_stream
from tickhawk.sim.symbols import make_specs, symbol_names


def _model(count: int = 3, rate: float = 3_000.0, seed: int = 7) -> MarketModel:
    return MarketModel(
        make_specs(symbol_names(count), seed), rate=rate, seed=seed, start_ms=START_MS
    )


def _subscribe_all(model: MarketModel, kinds: tuple[str, ...]) -> dict[int, tuple[str, int]]:
    streams: dict[int, tuple[str, int]] = {}
    for index, name in enumerate(model.names):
        for kind in kinds:
            key = parse_stream(f"{name.lower()}@{kind}")
            stream = len(streams)
            model.subscribe(stream, key, index)
            streams[stream] = (kind, index)
    return streams


def _tape(model: MarketModel, index: int) -> list[tuple[int, int, int, int, bool]]:
    window = model.tapes[index].window()
    return list(
        zip(
            window.ids.tolist(),
            window.price.tolist(),
            window.qty.tolist(),
            window.time.tolist(),
            window.maker.tolist(),
            strict=True,
        )
    )


def test_same_seed_same_market() -> None:
    first, second, other = _model(), _model(), _model(seed=8)
    _subscribe_all(second, ("trade", "depth@100ms"))  # subscriptions do not change the market
    for model in (first, second, other):
        model.advance_to(START_MS + 3_000)
    for index in range(3):
        assert _tape(first, index) == _tape(second, index)
        assert first.books[index].bids == second.books[index].bids
        assert first.books[index].update_id == second.books[index].update_id
    assert _tape(first, 0) != _tape(other, 0)
    assert len(_tape(first, 0)) > 100


def test_book_never_crossed_and_diffs_rebuild_it() -> None:
    model = _model(count=4, rate=8_000.0)
    streams = _subscribe_all(model, ("depth@100ms", "depth"))
    local = {
        (index, kind): (dict(book.bids), dict(book.asks), book.update_id)
        for index, book in enumerate(model.books)
        for kind in ("depth@100ms", "depth")
    }
    for boundary in range(START_MS + 100, START_MS + 4_001, 100):
        while model.time_ms < boundary:
            model.advance_to(model.time_ms + 1)
            for book in model.books:
                assert book.best_bid < book.best_ask
                assert book.best_bid == max(book.bids) and book.best_ask == min(book.asks)
        for stream, text in model.take_outbox():
            kind, index = streams[stream]
            diff = msgspec.json.decode(text, type=DepthUpdate)
            bids, asks, last = local[(index, kind)]
            assert last + 1 == diff.U, "diff ids must chain"
            assert boundary == diff.E and diff.E % (100 if kind == "depth@100ms" else 1000) == 0
            for side, levels in ((bids, diff.b), (asks, diff.a)):
                for price, qty in levels:
                    ticks = round(float(price) / 10.0 ** model.specs[index].tick_exp)
                    lots = round(float(qty) / 10.0 ** model.specs[index].step_exp)
                    if lots:
                        side[ticks] = lots
                    else:
                        side.pop(ticks, None)
            local[(index, kind)] = (bids, asks, diff.u)
        for (index, kind), (bids, asks, last) in local.items():
            if kind == "depth" and boundary % 1_000:
                continue
            book = model.books[index]
            assert last == book.update_id
            assert bids == book.bids and asks == book.asks


def test_book_ticker_reflects_the_book() -> None:
    model = _model(count=2, rate=5_000.0)
    _subscribe_all(model, ("bookTicker",))
    count = 0
    last_u = [0, 0]
    for _ in range(2_000):
        model.advance_to(model.time_ms + 1)
        latest: dict[str, BookTicker] = {}
        for _, text in model.take_outbox():
            ticker = msgspec.json.decode(text, type=BookTicker)
            index = model.names.index(ticker.s)
            assert ticker.u > last_u[index]
            last_u[index] = ticker.u
            latest[ticker.s] = ticker
            count += 1
        for name, ticker in latest.items():
            index = model.names.index(name)
            book = model.books[index]
            assert ticker.u <= book.update_id
            assert ticker.b == model._price(index, book.best_bid)
            assert ticker.a == model._price(index, book.best_ask)
            assert model.qty_text(index, book.bids[book.best_bid]) == ticker.B
            assert model.qty_text(index, book.asks[book.best_ask]) == ticker.A
    assert count > 1_000


def test_trades_are_at_the_touch_and_ids_contiguous() -> None:
    model = _model(count=2, rate=5_000.0)
    streams = _subscribe_all(model, ("trade", "bookTicker"))
    touch = {
        name: (model._price(index, book.best_bid), model._price(index, book.best_ask), True)
        for index, (name, book) in enumerate(zip(model.names, model.books, strict=True))
    }
    ids: dict[str, list[int]] = {name: [] for name in model.names}
    for _ in range(1_500):
        model.advance_to(model.time_ms + 1)
        for stream, text in model.take_outbox():
            if streams[stream][0] == "bookTicker":
                ticker = msgspec.json.decode(text, type=BookTicker)
                touch[ticker.s] = (ticker.b, ticker.a, True)
                continue
            trade = msgspec.json.decode(text, type=Trade)
            bid, ask, fresh = touch[trade.s]
            # Messages come in event order: a taker order starts at the touch the last
            # bookTicker showed, and walks away from it.
            price, best = float(trade.p), float(bid if trade.m else ask)
            assert price == best if fresh else (price <= best if trade.m else price >= best)
            touch[trade.s] = (bid, ask, False)
            ids[trade.s].append(trade.t)
    for index, name in enumerate(model.names):
        assert ids[name] == list(range(ids[name][0], ids[name][-1] + 1))
        assert model.trade_ids_sent(index) == [(ids[name][0], ids[name][-1])]


def test_rate_is_met() -> None:
    rate = 4_000.0
    model = _model(count=20, rate=rate)
    streams = _subscribe_all(model, ("trade", "aggTrade", "bookTicker"))
    seconds = 20
    counts: Counter[str] = Counter()
    for _ in range(seconds * 10):
        model.advance_to(model.time_ms + 100)
        counts.update(streams[stream][0] for stream, _ in model.take_outbox())
    achieved = sum(counts.values()) / seconds
    assert rate * 0.8 < achieved < rate * 1.2, counts
    assert counts["bookTicker"] > counts["trade"] * 0.8


def test_stylized_facts() -> None:
    """Heavy-tailed sizes, clustered arrivals, clustered volatility (fixed seed: not flaky)."""
    model = _model(count=1, rate=2_000.0)
    model.advance_to(START_MS + 90_000)
    window = model.tapes[0].window()
    sizes = window.qty.astype(float)
    assert np.percentile(sizes, 99) > 8 * np.median(sizes)  # heavy right tail
    per_second = np.bincount((window.time - START_MS) // 1_000)
    assert per_second.var() > 3 * per_second.mean()  # overdispersed: arrivals cluster
    _, rows = model.bars.seconds_rows(0)
    returns = np.diff(np.log(rows[:-1, CLOSE].astype(float)))
    magnitude = np.abs(returns) - np.abs(returns).mean()
    assert np.corrcoef(magnitude[:-1], magnitude[1:])[0, 1] > 0.05  # volatility clusters
    kurtosis = ((returns - returns.mean()) ** 4).mean() / returns.var() ** 2
    assert kurtosis > 3.0


def test_bars_equal_the_trades() -> None:
    model = _model(count=2, rate=2_000.0)
    model.advance_to(START_MS + 65_000)
    for index in range(2):
        window = model.tapes[index].window()
        assert window.ids[0] == model.tapes[index]._first_id, "the tape must hold every trade"
        opens, rows = model.bars.seconds_rows(index)
        for open_ms, row in zip(opens[:-1].tolist(), rows[:-1], strict=True):
            mask = (window.time >= open_ms) & (window.time < open_ms + 1_000)
            if not mask.any():
                assert row[COUNT] == 0 and row[OPEN] == row[HIGH] == row[LOW] == row[CLOSE]
                continue
            prices = window.price[mask]
            assert row[COUNT] == mask.sum()
            assert (row[OPEN], row[CLOSE]) == (prices[0], prices[-1])
            assert (row[HIGH], row[LOW]) == (prices.max(), prices.min())
            assert row[VOLUME] == window.qty[mask].sum()
            assert row[QUOTE] == (window.qty[mask] * prices).sum()
            assert (row[FIRST], row[LAST]) == (window.ids[mask][0], window.ids[mask][-1])
        minute_opens, minutes = model.bars.minute_rows(index)
        for open_ms, row in zip(minute_opens[:-1].tolist(), minutes[:-1], strict=True):
            mask = (window.time >= open_ms) & (window.time < open_ms + 60_000)
            assert row[COUNT] == mask.sum()
            assert row[VOLUME] == window.qty[mask].sum()
            assert row[HIGH] == window.price[mask].max()


@pytest.mark.parametrize("interval", ["1s", "1m", "1h", "1d", "1w", "1M"])
def test_history_before_start(interval: str) -> None:
    model = _model(count=1)
    model.advance_to(START_MS + 2_000)
    opens, rows = model.klines.klines(0, interval, None, None, 1_000)
    assert len(opens) == 1_000
    assert np.all(np.diff(opens) > 0)
    assert np.all(rows[:, LOW] <= np.minimum(rows[:, OPEN], rows[:, CLOSE]))
    assert np.all(rows[:, HIGH] >= np.maximum(rows[:, OPEN], rows[:, CLOSE]))
    assert np.all(rows[:, VOLUME] >= 0)
    again_opens, again_rows = _model(count=1).klines.klines(0, interval, None, opens[-10], 500)
    shared = np.isin(opens, again_opens)
    assert shared.sum() == 500
    assert np.array_equal(rows[shared], again_rows)
    # the history closes at the start price, where the live bars begin
    live = np.searchsorted(opens, START_MS, side="right") - 1
    assert rows[live - 1, CLOSE] == model.specs[0].price_ticks


def test_wall_clock_time_catches_up_on_the_time_spent_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without start_time_ms, simulated time is the wall clock, not the clock at construction.

    Building the model (and starting the servers) takes time; the feed must catch up on it
    or every event time stays that far behind the clock and reads as a backlog downstream.
    """
    feed = synthetic.SyntheticFeed(SimConfig(symbols=["BTCUSDT"], rate=100.0, seed=3))
    start = feed.start_ms

    class _Clock:  # the wall clock 3 s after construction; the rest of ``time`` unchanged
        perf_counter = staticmethod(time.perf_counter)

        @staticmethod
        def time() -> float:
            return start / 1_000.0 + 3.0

    class _Hub:
        def publish(self, outbox: object) -> None:
            pass

    monkeypatch.setattr(synthetic, "time", _Clock)

    async def go() -> None:
        task = asyncio.create_task(feed.run(_Hub()))  # type: ignore[arg-type]
        try:
            await poll(lambda: feed.now_ms() >= start + 2_900, 2.0, "simulated time to catch up")
        finally:
            task.cancel()

    asyncio.run(go())
