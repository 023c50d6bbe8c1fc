"""Order books that are never silently wrong: truth from the exchange, properties, sync rules."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
from collections.abc import Mapping
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickhawk.app.replay import replay, streams_in
from tickhawk.bench.data import depth_items
from tickhawk.book import l2
from tickhawk.book.l2 import CompiledL2Book, L2Book, PythonL2Book
from tickhawk.book.sync import BookEvent, BookState, BookSync, guess_limit
from tickhawk.capture import load_capture
from tickhawk.engine import Engine
from tickhawk.model import BookUpdate
from tickhawk.presets import fast_config
from tickhawk.venues.binance.schema import DepthSnapshot


def run_capture(
    path: Path,
) -> tuple[dict[int, tuple[float, float]], list[tuple[int, bytes]], BookSync]:
    """Replay a capture through the pipeline; return the book's top after each applied diff."""
    messages = load_capture(path)
    streams = streams_in(messages)
    market = "usdm" if any(s.endswith("@0ms") for s in streams) else "spot"
    config = fast_config(["BTCUSDT"], sorted({s.split("@", 1)[1] for s in streams}), market=market)
    tops: dict[int, tuple[float, float]] = {}

    def on_book(update: BookUpdate, book: L2Book) -> None:
        tops[update.last_id] = (book.best_bid, book.best_ask)

    engine, *_ = replay(messages, config, streams=streams, on_book=on_book)
    sync = engine.states["BTCUSDT"].book_sync
    assert sync is not None
    return tops, messages, sync


@pytest.mark.parametrize("capture", ["usdm", "spot"])
def test_book_matches_every_book_ticker_of_the_same_update(
    capture: str, usdm_capture: Path, spot_capture: Path
) -> None:
    path = usdm_capture if capture == "usdm" else spot_capture
    tops, messages, _ = run_capture(path)
    pairs = matched = 0
    for _, payload in messages:
        if b"@bookTicker" not in payload[:40]:
            continue
        data = json.loads(payload)["data"]
        top = tops.get(data["u"])
        if top is None:
            continue
        pairs += 1
        matched += top == (float(data["b"]), float(data["a"]))
    print(f"{capture}: {pairs} bookTickers carry the id of an applied diff")
    assert pairs >= 300, pairs  # several hundred exchange-given truths
    assert matched == pairs  # 100 %


@pytest.mark.parametrize("capture", ["usdm", "spot"])
def test_a_capture_book_resyncs_once_its_price_leaves_the_snapshot(
    capture: str, usdm_capture: Path, spot_capture: Path
) -> None:
    """The capture's one snapshot holds 1,000 levels a side (a Binance limit: cut there).

    The price falls below its worst bid after 217 s (USD-M) / 260 s (spot): from
    then on the book cannot know the untouched levels it reaches, so it
    resyncs, once (a capture has no second snapshot), and never showed a top
    beyond the snapshot's edge.
    """
    tops, messages, sync = run_capture(usdm_capture if capture == "usdm" else spot_capture)
    snapshot = next(p for _, p in messages if p.startswith(b'{"lastUpdateId"'))
    decoded = msgspec.json.decode(snapshot, type=DepthSnapshot, strict=False)
    assert len(decoded.bids) == len(decoded.asks) == 1000
    assert sync.transitions == {
        "live:bridged": 1,
        "out_of_sync:depth_exhausted": 1,
        "syncing:depth_exhausted": 1,
    }
    assert min(bid for bid, _ in tops.values()) >= decoded.bids[-1][0]
    assert max(ask for _, ask in tops.values()) <= decoded.asks[-1][0]
    assert sync.applied > 2000


def _depth_lines(messages: list[tuple[int, bytes]]) -> list[int]:
    return [i for i, (_, p) in enumerate(messages) if b"@depth" in p[:40]]


def test_a_removed_diff_is_detected_and_the_book_resyncs(usdm_capture: Path) -> None:
    messages = load_capture(usdm_capture)
    depth = _depth_lines(messages)
    victim = depth[len(depth) // 2]
    state_events: list[BookEvent] = []
    streams = streams_in(messages)
    config = fast_config(["BTCUSDT"], sorted({s.split("@", 1)[1] for s in streams}), market="usdm")
    engine = Engine(config)
    engine.book_listeners.append(state_events.append)
    feed = engine.feed(streams)
    state = engine.states["BTCUSDT"]
    decode = msgspec.json.Decoder(DepthSnapshot, strict=False).decode
    for i, (ts, payload) in enumerate(messages):
        if i == victim:
            continue
        if payload.startswith(b'{"lastUpdateId"'):
            state.on_snapshot(decode(payload), ts)
        else:
            feed.on_message(payload, 0, ts)
    reasons = [(e.state, e.reason) for e in state_events]
    assert ("live", "bridged") in reasons
    assert ("out_of_sync", "gap") in reasons  # the hole was seen
    assert reasons[-1] == ("syncing", "gap")  # and a resync began (no new snapshot in a capture)
    assert state.book is None  # strategies never see the broken book
    sync = state.book_sync
    assert sync is not None and sync.transitions["out_of_sync:gap"] == 1


# -- a synthetic diff stream, to drive every rule --------------------------------------------


def diff(
    first: int,
    last: int,
    bids: list[tuple[float, float]] = (),
    asks: list[tuple[float, float]] = (),
    prev: int = -1,
) -> BookUpdate:  # type: ignore[assignment]
    return BookUpdate("X", first, last, prev, list(bids), list(asks), last, last)


SNAP = DepthSnapshot(100, [(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.0), (102.0, 2.0)])


def make_sync(futures: bool = False) -> tuple[BookSync, list[str], list[tuple[str, str]]]:
    requests: list[str] = []
    events: list[tuple[str, str]] = []
    sync = BookSync(
        "X",
        futures=futures,
        stale_after_s=1.0,
        request_snapshot=requests.append,
        on_event=lambda e: events.append((e.state, e.reason)),
    )
    return sync, requests, events


def test_spot_rules_buffer_bridge_and_chain() -> None:
    sync, requests, events = make_sync()
    assert not sync.on_diff(diff(95, 99))  # older than the coming snapshot
    assert not sync.on_diff(diff(100, 103, bids=[(99.5, 3.0)]))  # will bridge (U <= 101 <= u)
    assert requests == ["X"] and sync.state is BookState.SYNCING
    sync.on_snapshot(SNAP)
    assert sync.live and events == [("live", "bridged")]
    assert sync.book.top() == (99.5, 3.0, 101.0, 1.0)
    assert sync.on_diff(diff(104, 104, asks=[(101.0, 0.0)]))
    assert sync.book.best_ask == 102.0
    assert not sync.on_diff(diff(104, 104))  # a duplicate: ignored, still live
    assert sync.live and sync.duplicates == 1
    assert not sync.on_diff(diff(106, 107))  # 105 missing: a gap
    assert events[-2:] == [("out_of_sync", "gap"), ("syncing", "gap")]
    assert requests == ["X", "X"] and len(sync.book) == 0  # thrown away until resynced


def test_futures_rules_chain_through_pu() -> None:
    sync, _, events = make_sync(futures=True)
    sync.on_diff(diff(90, 99, prev=80))  # u < lastUpdateId: dropped at the snapshot
    sync.on_diff(diff(95, 105, prev=99, bids=[(99.0, 5.0)]))  # U <= 100 <= u: the bridge
    sync.on_snapshot(SNAP)
    assert sync.live and sync.book.bids[99.0] == 5.0
    assert sync.on_diff(diff(106, 110, prev=105))
    assert not sync.on_diff(diff(112, 115, prev=111))  # pu != previous u
    assert ("out_of_sync", "gap") in events


def test_reordered_diffs_are_detected() -> None:
    sync, _, events = make_sync()
    sync.on_snapshot(SNAP)
    assert sync.on_diff(diff(101, 102))
    assert not sync.on_diff(diff(105, 106))  # arrived before 103-104
    assert ("out_of_sync", "gap") in events
    assert not sync.live


def test_a_snapshot_older_than_the_buffered_diffs_is_fetched_again() -> None:
    sync, requests, _events = make_sync()
    sync.on_diff(diff(150, 160))
    sync.on_diff(diff(161, 170))
    sync.on_snapshot(SNAP)  # lastUpdateId 100 < 150 - 1: cannot bridge
    assert not sync.live and requests == ["X", "X"]
    assert sync.transitions["syncing:snapshot_too_old"] == 1
    assert [u.first_id for u in sync.buffer] == [150, 161]  # kept for the next snapshot
    sync.on_snapshot(DepthSnapshot(155, [(99.0, 1.0)], [(101.0, 1.0)]))
    assert sync.live and sync.last_id == 170


def test_crossed_book_and_invalid_levels_resync() -> None:
    sync, _, events = make_sync()
    sync.on_snapshot(SNAP)
    sync.on_diff(diff(101, 101))
    assert not sync.on_diff(diff(102, 102, bids=[(101.5, 1.0)]))  # bid above the ask
    assert ("out_of_sync", "crossed") in events and not sync.live
    sync2, _, events2 = make_sync()
    sync2.on_snapshot(SNAP)
    sync2.on_diff(diff(101, 101))
    sync2.invalidate("invalid_level", 102)
    assert ("out_of_sync", "invalid_level") in events2 and not sync2.live


def test_stale_then_live_again() -> None:
    sync, _, events = make_sync()
    sync.on_snapshot(SNAP)
    sync.on_diff(diff(101, 101))  # ts 101 ns
    assert not sync.check_stale(101 + 500_000_000)
    assert sync.check_stale(101 + 2_000_000_000)
    assert events[-1] == ("stale", "no update")
    assert sync.on_diff(diff(102, 102))
    assert events[-1] == ("live", "updates resumed")


# -- the L2 book against a naive reference, both implementations -------------------------------

BOOKS = [
    pytest.param(PythonL2Book, id="python"),
    pytest.param(
        CompiledL2Book,
        id="compiled",
        marks=pytest.mark.skipif(CompiledL2Book is None, reason="C extension not built"),
    ),
]

levels = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=60).map(float),
        st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.25, 7.0]),
    ),
    max_size=12,
)


def apply_naive(side: dict[float, float], changes: list[tuple[float, float]]) -> None:
    for price, qty in changes:
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)


def load_naive(snapshot: list[tuple[float, float]]) -> dict[float, float]:
    return {p: q for p, q in dict(snapshot).items() if q > 0.0}


@pytest.mark.parametrize("make_book", BOOKS)
@settings(max_examples=300, deadline=None)
@given(levels, levels, st.lists(st.tuples(levels, levels), max_size=40))
def test_book_matches_a_naive_dict_book(
    make_book: type[L2Book],
    snapshot_bids: list[tuple[float, float]],
    snapshot_asks: list[tuple[float, float]],
    updates: list[tuple[list, list]],
) -> None:
    book = make_book(max_levels=100, near=2)  # the cap never binds; near spills and refills often
    book.load(snapshot_bids, snapshot_asks)
    bids = load_naive(snapshot_bids)
    asks = load_naive(snapshot_asks)
    assert book.bids == bids and book.asks == asks
    for bid_levels, ask_levels in updates:
        book.apply(bid_levels, ask_levels)
        apply_naive(bids, bid_levels)
        apply_naive(asks, ask_levels)
        assert book.bids == bids and book.asks == asks
        top_bids, top_asks = book.levels(5)
        assert top_bids == sorted(bids.items(), reverse=True)[:5]
        assert top_asks == sorted(asks.items())[:5]
        if bids:
            assert book.best_bid == max(bids)
        else:
            assert math.isnan(book.best_bid)
        if asks:
            assert book.best_ask == min(asks)
        else:
            assert math.isnan(book.best_ask)


@pytest.mark.parametrize("make_book", BOOKS)
@settings(max_examples=300, deadline=None)
@given(
    levels,
    levels,
    st.lists(st.tuples(levels, levels), max_size=40),
    st.integers(min_value=1, max_value=30),
)
def test_a_capped_book_is_exact_above_its_worst_kept_level(
    make_book: type[L2Book],
    snapshot_bids: list[tuple[float, float]],
    snapshot_asks: list[tuple[float, float]],
    updates: list[tuple[list, list]],
    cap: int,
) -> None:
    book = make_book(max_levels=cap, near=2)
    book.load(snapshot_bids, snapshot_asks)
    bids = load_naive(snapshot_bids)
    asks = load_naive(snapshot_asks)
    for bid_levels, ask_levels in updates:
        book.apply(bid_levels, ask_levels)
        apply_naive(bids, bid_levels)
        apply_naive(asks, ask_levels)
        assert len(book.bids) <= cap + cap // 10 and len(book.asks) <= cap + cap // 10
        assert book.bids.items() <= bids.items() and book.asks.items() <= asks.items()
        # beyond the horizon levels may be missing; before it the book is exact
        assert {p: q for p, q in bids.items() if p > book.bid_horizon} == {
            p: q for p, q in book.bids.items() if p > book.bid_horizon
        }
        assert {p: q for p, q in asks.items() if p < book.ask_horizon} == {
            p: q for p, q in book.asks.items() if p < book.ask_horizon
        }
        if not book.exhausted:  # then the top of book is the truth
            assert book.best_bid == max(bids) if bids else math.isnan(book.best_bid)
            assert book.best_ask == min(asks) if asks else math.isnan(book.best_ask)


def test_an_exhausted_side_forces_a_resync() -> None:
    sync, _, events = make_sync()
    sync.book.max_levels = 2
    sync.on_snapshot(DepthSnapshot(100, [(99.0, 1.0), (98.0, 1.0), (97.0, 1.0)], [(101.0, 1.0)]))
    assert sync.book.bid_horizon == 97.0  # cut from the snapshot
    assert sync.on_diff(diff(101, 101, bids=[(99.0, 0.0)]))  # best 98 > horizon 97: exact
    assert not sync.on_diff(diff(102, 102, bids=[(98.0, 0.0)]))  # nothing left above 97
    assert ("out_of_sync", "depth_exhausted") in events and not sync.live


def cut(side: dict[float, float], limit: int, best_first: bool) -> list[tuple[float, float]]:
    """Return what a venue answers for ``limit``: the best ``limit`` levels of the true side."""
    return sorted(side.items(), reverse=best_first)[:limit]


@pytest.mark.parametrize("make_book", BOOKS)
@settings(max_examples=300, deadline=None)
@given(
    levels,
    levels,
    st.lists(st.tuples(levels, levels), max_size=40),
    st.integers(min_value=1, max_value=8),
    st.sampled_from([100, 6, 3]),
)
def test_a_cut_snapshot_is_exact_down_to_its_worst_level_and_no_further(
    make_book: type[L2Book],
    true_bids: list[tuple[float, float]],
    true_asks: list[tuple[float, float]],
    updates: list[tuple[list, list]],
    limit: int,
    cap: int,
) -> None:
    """The naive dict is the venue's whole book; the snapshot is its best ``limit`` levels."""
    bids = load_naive(true_bids)
    asks = load_naive(true_asks)
    book = make_book(max_levels=cap, near=2)
    book.load(cut(bids, limit, True), cut(asks, limit, False), limit=limit)
    if cap >= limit:  # no trim: the horizon is the snapshot's edge, or none
        worst_bid = min(p for p, _ in cut(bids, limit, True)) if bids else math.nan
        worst_ask = max(p for p, _ in cut(asks, limit, False)) if asks else math.nan
        cut_bids, cut_asks = len(bids) >= limit, len(asks) >= limit
        assert book.bid_horizon == (math.nextafter(worst_bid, -math.inf) if cut_bids else -math.inf)
        assert book.ask_horizon == (math.nextafter(worst_ask, math.inf) if cut_asks else math.inf)
    for bid_levels, ask_levels in [([], []), *updates]:
        problem = book.apply(bid_levels, ask_levels)
        apply_naive(bids, bid_levels)
        apply_naive(asks, ask_levels)
        # The book holds exactly the true levels strictly better than its horizon.
        exact_bids = {p: q for p, q in bids.items() if p > book.bid_horizon}
        exact_asks = {p: q for p, q in asks.items() if p < book.ask_horizon}
        assert book.bids == exact_bids and book.asks == exact_asks
        top_bids, top_asks = book.levels(5)
        assert top_bids == sorted(exact_bids.items(), reverse=True)[:5]
        assert top_asks == sorted(exact_asks.items())[:5]
        assert problem == (
            "crossed" if book.crossed else "depth_exhausted" if book.exhausted else None
        )
        if not book.exhausted:  # then the top of book is the truth
            assert book.best_bid == max(bids) if bids else math.isnan(book.best_bid)
            assert book.best_ask == min(asks) if asks else math.isnan(book.best_ask)
        if book.bids and book.asks:
            mid = 0.5 * (book.best_bid + book.best_ask)
            low, high = mid * (1.0 - 0.05), mid * (1.0 + 0.05)  # 500 bps
            depth_bid, depth_ask = book.depth_within(500.0)
            # a number only when the band is all exact, and then the true depth
            assert math.isnan(depth_bid) == (low <= book.bid_horizon)
            assert math.isnan(depth_ask) == (high >= book.ask_horizon)
            if not math.isnan(depth_bid):
                assert math.isclose(depth_bid, sum(q for p, q in bids.items() if p >= low))
            if not math.isnan(depth_ask):
                assert math.isclose(depth_ask, sum(q for p, q in asks.items() if p <= high))


@pytest.mark.parametrize("make_book", BOOKS)
def test_the_worst_level_of_a_cut_snapshot_is_exact_the_next_is_not(
    make_book: type[L2Book],
) -> None:
    book = make_book()
    book.load([(99.0, 1.0), (98.0, 2.0), (97.0, 3.0)], [(101.0, 1.0), (102.0, 2.0)], limit=3)
    # Bids: three levels for limit 3, cut. Asks: two, the venue had no more.
    assert book.bid_horizon == math.nextafter(97.0, -math.inf) and book.ask_horizon == math.inf
    assert book.bid_horizon < 97.0 and not math.nextafter(97.0, -math.inf) > book.bid_horizon
    assert book.apply([(99.0, 0.0), (96.5, 4.0)], [(110.0, 1.0)]) is None
    assert dict(book.bids) == {98.0: 2.0, 97.0: 3.0}  # 96.5: beyond the edge, not kept
    assert book.levels(5) == (
        [(98.0, 2.0), (97.0, 3.0)],
        [(101.0, 1.0), (102.0, 2.0), (110.0, 1.0)],
    )
    assert book.apply([(98.0, 0.0)], []) is None  # down to the edge: 97 is still exact
    assert book.top()[:2] == (97.0, 3.0) and not book.exhausted
    assert book.levels(5)[0] == [(97.0, 3.0)] and book.cumulative(5)[0] == [3.0]
    assert book.apply([(97.0, 0.0)], []) == "depth_exhausted"  # past it: unknown
    assert book.exhausted and book.levels(5)[0] == [] and math.isnan(book.best_bid)
    assert book.apply([(96.0, 1.0)], []) == "depth_exhausted"  # still beyond the edge
    assert book.apply([(97.0, 1.5)], []) is None and book.top()[:2] == (97.0, 1.5)
    book.load([(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.0)])  # no limit: nothing cut
    assert (book.bid_horizon, book.ask_horizon) == (-math.inf, math.inf)


def test_a_cut_snapshot_emptied_to_its_edge_resyncs() -> None:
    sync, requests, events = make_sync()
    snapshot = DepthSnapshot(100, [(99.0, 1.0), (98.0, 1.0), (97.0, 1.0)], [(101.0, 1.0)])
    sync.on_snapshot(snapshot, limit=3)
    assert sync.on_diff(diff(101, 101, bids=[(99.0, 0.0), (96.0, 2.0)]))
    assert sync.on_diff(diff(102, 102, bids=[(98.0, 0.0)]))  # best 97: the edge, exact
    assert sync.book.levels(5)[0] == [(97.0, 1.0)]  # 96 is beyond it: not shown
    assert not sync.on_diff(diff(103, 103, bids=[(97.0, 0.0)]))
    assert events[-2:] == [("out_of_sync", "depth_exhausted"), ("syncing", "depth_exhausted")]
    assert requests == ["X"] and not sync.live  # a new snapshot is on its way


@pytest.mark.parametrize("limit", [1000, None])
def test_an_uncut_snapshot_never_exhausts_at_its_edge(limit: int | None) -> None:
    # Three levels for limit 1000 (or unknown, and 3 is no Binance limit): all there was.
    sync, _, events = make_sync()
    sync.on_snapshot(DepthSnapshot(100, [(99.0, 1.0), (98.0, 1.0), (97.0, 1.0)], [(101.0, 1.0)]))
    assert sync.book.bid_horizon == -math.inf
    assert sync.on_diff(diff(101, 101, bids=[(99.0, 0.0), (98.0, 0.0), (97.0, 0.0)]))
    assert sync.on_diff(diff(102, 102, bids=[(90.0, 1.0)]))
    assert sync.live and events == [("live", "bridged")] and sync.book.best_bid == 90.0


def test_a_snapshot_of_unknown_limit_is_cut_where_its_deeper_side_has_a_binance_limit() -> None:
    bids = [(100.0 - i, 1.0) for i in range(1, 6)]  # 5 levels
    asks = [(100.0 + i, 1.0) for i in range(1, 4)]  # 3 levels
    assert guess_limit(DepthSnapshot(1, bids, asks)) == 5  # asks: fewer than 5, all there was
    assert guess_limit(DepthSnapshot(1, bids, asks * 4)) is None  # 12: no Binance limit
    assert guess_limit(DepthSnapshot(1, bids[:3], asks)) is None
    sync, _, _ = make_sync()
    sync.on_snapshot(DepthSnapshot(100, bids, asks))  # a capture's: limit unknown
    assert sync.book.bid_horizon == math.nextafter(95.0, -math.inf)
    assert sync.book.ask_horizon == math.inf
    sync2, _, _ = make_sync()
    sync2.on_snapshot(DepthSnapshot(100, bids, asks), limit=10)  # asked for 10: nothing cut
    assert (sync2.book.bid_horizon, sync2.book.ask_horizon) == (-math.inf, math.inf)


@pytest.mark.skipif(CompiledL2Book is None, reason="C extension not built")
@settings(max_examples=300, deadline=None)
@given(
    levels,
    levels,
    st.lists(st.tuples(levels, levels), max_size=40),
    st.integers(min_value=1, max_value=30),
    st.integers(min_value=1, max_value=4),
    st.none() | st.integers(min_value=0, max_value=12),
)
def test_the_compiled_book_behaves_exactly_like_the_pure_python_one(
    snapshot_bids: list[tuple[float, float]],
    snapshot_asks: list[tuple[float, float]],
    updates: list[tuple[list, list]],
    cap: int,
    near: int,
    limit: int | None,
) -> None:
    assert CompiledL2Book is not None
    books = [PythonL2Book(max_levels=cap, near=near), CompiledL2Book(max_levels=cap, near=near)]

    def state(book: L2Book) -> tuple[object, ...]:
        return (
            list(book.bids.items()),  # the same levels in the same (dict) order
            list(book.asks.items()),
            book.levels(3),
            book.levels(50),
            book.top(),
            (book.bid_horizon, book.ask_horizon, book.crossed, book.exhausted, len(book)),
            book.cumulative(4),
        )

    def same(python: L2Book, compiled: L2Book) -> bool:
        # repr: NaN reads alike too. Sums may round differently (Python 3.12 compensates).
        depth = zip(python.depth_within(500.0), compiled.depth_within(500.0), strict=True)
        return repr(state(python)) == repr(state(compiled)) and all(
            math.isclose(a, b, rel_tol=1e-12) or (math.isnan(a) and math.isnan(b)) for a, b in depth
        )

    for book in books:
        book.load(snapshot_bids, snapshot_asks, limit=limit)
    assert same(*books)
    for bid_levels, ask_levels in updates:
        problems = [book.apply(bid_levels, ask_levels) for book in books]
        assert problems[0] == problems[1]
        assert same(*books)


@pytest.mark.skipif(CompiledL2Book is None, reason="C extension not built")
@pytest.mark.parametrize("max_levels", [5000, 300])
def test_both_books_agree_on_the_real_capture(usdm_capture: Path, max_levels: int) -> None:
    assert CompiledL2Book is not None
    syncs = [BookSync("BTCUSDT", futures=True, max_levels=max_levels) for _ in range(2)]
    syncs[0].book = PythonL2Book(max_levels)
    syncs[1].book = CompiledL2Book(max_levels)
    for item in depth_items(load_capture(usdm_capture)):
        if isinstance(item, DepthSnapshot):
            for sync in syncs:
                sync.on_snapshot(item)
            continue
        assert syncs[0].on_diff(item) == syncs[1].on_diff(item)
        python, compiled = (sync.book for sync in syncs)
        assert python.levels(20) == compiled.levels(20)
        assert (python.bid_horizon, python.ask_horizon) == (
            compiled.bid_horizon,
            compiled.ask_horizon,
        )
    assert syncs[0].transitions == syncs[1].transitions  # 300 levels run out: a resync
    assert syncs[0].applied == syncs[1].applied > 1000
    assert list(syncs[0].book.bids.items()) == list(syncs[1].book.bids.items())
    assert list(syncs[0].book.asks.items()) == list(syncs[1].book.asks.items())


@pytest.mark.parametrize("make_book", BOOKS)
def test_depth_reads(make_book: type[L2Book]) -> None:
    book = make_book()
    book.load([(99.0, 1.0), (98.0, 2.0), (90.0, 5.0)], [(101.0, 1.5), (102.0, 2.5), (110.0, 4.0)])
    assert book.top() == (99.0, 1.0, 101.0, 1.5)
    assert book.cumulative(2) == ([1.0, 3.0], [1.5, 4.0])
    assert book.depth_within(200) == (3.0, 4.0)  # mid 100 ± 2 %: 98..102
    assert not book.crossed and len(book) == 6
    book.load([(99.0, 1.0), (98.0, 2.0), (90.0, 5.0)], [(101.0, 1.5), (102.0, 2.5)], limit=3)
    assert book.depth_within(500) == (3.0, 4.0)  # 95..105: above the bids' edge 90, exact
    bid, ask = book.depth_within(1500)  # 85..115: the bids below 90 are not known
    assert math.isnan(bid) and ask == 4.0  # the asks are all there were


@pytest.mark.parametrize("make_book", BOOKS)
def test_apply_says_why_the_book_is_broken(make_book: type[L2Book]) -> None:
    book = make_book(max_levels=2)
    book.load([(99.0, 1.0), (98.0, 1.0), (97.0, 1.0)], [(101.0, 1.0)])
    assert book.apply([(99.0, 0.0)], []) is None
    assert book.apply([(98.0, 0.0)], []) == "depth_exhausted"  # nothing left above 97
    assert book.apply([(101.5, 1.0)], []) == "crossed"
    assert book.crossed and not book.exhausted  # 101.5 is above the horizon again
    assert book.apply([(97.0, 2.0), (96.0, 1.0)], []) == "crossed"
    assert dict(book.bids) == {101.5: 1.0}  # at or beyond the horizon 97: not kept


@pytest.mark.parametrize("make_book", BOOKS)
def test_the_sides_read_like_dicts(make_book: type[L2Book]) -> None:
    book = make_book()
    book.load([(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.5)])
    book.apply([(97.0, 4.0), (99.0, 3.0)], [])
    bids = book.bids
    assert isinstance(bids, Mapping) and len(bids) == 3
    assert list(bids) == [99.0, 98.0, 97.0] and list(bids.values()) == [3.0, 2.0, 4.0]
    assert list(bids.items()) == [(99.0, 3.0), (98.0, 2.0), (97.0, 4.0)]  # dict order
    assert bids == {97.0: 4.0, 98.0: 2.0, 99.0: 3.0} and bids != {99.0: 3.0}
    assert bids[98.0] == bids.get(98) == 2.0 and 99 in bids and 96.0 not in bids
    assert bids.get(96.0) is None and bids.get("x", -1.0) == -1.0 and "x" not in bids
    with pytest.raises(KeyError):
        bids[96.0]
    assert dict(book.asks) == {101.0: 1.5}
    book.clear()
    assert len(bids) == 0 and bids == {} and len(book) == 0


def test_the_compiled_book_is_in_use_when_it_was_built() -> None:
    if importlib.util.find_spec("tickhawk.book._l2core") is None:
        pytest.skip("the C extension tickhawk.book._l2core was not built (pure-Python book)")
    if os.environ.get("TICKHAWK_PURE_PYTHON", "") not in ("", "0"):
        pytest.skip("TICKHAWK_PURE_PYTHON is set: the pure-Python book was asked for")
    assert CompiledL2Book is not None, "the extension exists but does not import"
    assert L2Book is CompiledL2Book and l2.IMPLEMENTATION == "compiled"
    assert type(BookSync("X").book) is CompiledL2Book


def test_a_too_old_snapshot_is_an_event_too() -> None:
    sync, _, events = make_sync()
    sync.on_diff(diff(150, 160))
    sync.on_snapshot(SNAP)
    assert events == [("syncing", "snapshot_too_old")]


@pytest.mark.skipif(CompiledL2Book is None, reason="C extension not built")
def test_the_compiled_book_takes_its_working_size_at_the_snapshot() -> None:
    """Levels coming and going around the snapshot's count never grow the tables.

    (They used to grow in steps while the book ran: RSS crept for the first minutes.)
    """
    assert CompiledL2Book is not None
    book = CompiledL2Book(2000)
    rng = random.Random(7)
    bids = [(1000.0 - i, 1.0) for i in range(200)]
    asks = [(1001.0 + i, 1.0) for i in range(200)]
    book.load(bids, asks, limit=1000)
    loaded = book.nbytes
    for _ in range(20_000):  # churn between 150 and 300 levels a side, prices moving
        side = rng.choice((book.bids, book.asks))
        n = len(side)
        if n > 150 and (n >= 300 or rng.random() < 0.3):
            price = rng.choice(list(side))
            change = [(price, 0.0)]
        else:
            price = (
                1000.0 - rng.randrange(400) if side is book.bids else 1001.0 + rng.randrange(400)
            )
            change = [(price, 2.0)]
        if side is book.bids:
            book.apply(change, [])
        else:
            book.apply([], change)
    assert book.nbytes == loaded
    many = [(1000.0 - i, 1.0) for i in range(2000)]
    book.load(many, [], limit=5000)
    assert book.nbytes > loaded  # a deeper snapshot takes more room at once


@pytest.mark.skipif(CompiledL2Book is None, reason="C extension not built")
def test_the_compiled_book_does_not_grow_on_the_real_capture(usdm_capture: Path) -> None:
    assert CompiledL2Book is not None
    sync = BookSync("BTCUSDT", futures=True, max_levels=5000)
    sync.book = CompiledL2Book(5000)
    sizes: set[int] = set()
    for item in depth_items(load_capture(usdm_capture)):
        if isinstance(item, DepthSnapshot):
            sync.on_snapshot(item)
        elif sync.on_diff(item) and sync.live:
            sizes.add(sync.book.nbytes)
    assert sync.applied > 1000
    assert len(sizes) == 1
