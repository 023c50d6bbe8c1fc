"""Connection and input faults: the engine does not crash, counts each, and recovers.

Dropped connections (clean close, TCP reset), stalled connections, bad and
oversized frames, duplicated and reordered trades, REST errors and late
snapshots, each injected by the simulator over real loopback sockets.
"""

from __future__ import annotations

import time

import pytest

from test_faults_harness import SYMBOLS, Run, engine_on_sim, run, until
from tickhawk.net.session import SessionState


async def _more_trades(harness: Run, symbol: str, extra: int = 20) -> None:
    """Wait until ``extra`` more trades of ``symbol`` arrived (the engine is still working)."""
    seen = len(harness.trades[symbol])
    await until(lambda: len(harness.trades[symbol]) >= seen + extra, 10, "more trades")


@pytest.mark.parametrize("mode", ["close", "reset"])
def test_a_dropped_connection_reconnects_and_every_book_resyncs(mode: str) -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            session = harness.app.sessions[0]
            harness.sim.faults.drop(mode=mode)
            await until(lambda: session.reconnects == 1, 10, "a reconnect")
            for symbol in SYMBOLS:
                await harness.live_after(symbol, "out_of_sync:reconnect")
            assert session.state is SessionState.LIVE
            assert harness.sim.stats.faults == {"drop": 1, f"drop_{mode}": 1}
            assert harness.sim.stats.connections_total == 2
            for symbol in SYMBOLS:
                await harness.assert_book_matches_model(symbol)

    run(scenario())


def test_a_stalled_connection_makes_books_stale_until_it_flows_again() -> None:
    async def scenario() -> None:
        async with engine_on_sim(stale_after_s=0.3) as harness:
            harness.sim.faults.stall(seconds=2.0)  # the socket stays open; nothing is sent
            await until(
                lambda: all(harness.transitions(s, "stale:no update") == 1 for s in SYMBOLS),
                5,
                "every book STALE",
            )
            for symbol in SYMBOLS:
                await harness.live_after(symbol, "live:updates resumed")
                assert harness.transitions(symbol, "out_of_sync:gap") == 0
            assert harness.app.sessions[0].reconnects == 0
            assert harness.sim.stats.faults == {"stall": 1}
            await harness.assert_book_matches_model("BTCUSDT")

    run(scenario())


def test_malformed_frames_are_counted_by_reason_and_no_trade_is_lost() -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            rejects = harness.app.engine.rejects.counts
            faults = harness.sim.faults
            faults.malformed("BTCUSDT", mode="not_json")  # truncated JSON in the envelope
            await until(lambda: rejects.get("not_json") == 1, 10, "not_json counted")
            faults.malformed("BTCUSDT", mode="schema")  # JSON with wrong types
            await until(lambda: rejects.get("schema") == 1, 10, "schema counted")
            faults.malformed("BTCUSDT", stream="depth", mode="garbage")  # not JSON at all
            await until(lambda: rejects.get("not_json") == 2, 10, "garbage counted")
            faults.oversized("BTCUSDT", size=64 * 1024)  # under the engine's frame limit
            await until(lambda: rejects.get("schema") == 2, 10, "the big frame counted")
            await _more_trades(harness, "BTCUSDT")
            assert harness.sim.stats.faults == {"malformed": 3, "oversized": 1}
            assert harness.app.sessions[0].reconnects == 0
            assert harness.transitions("BTCUSDT", "out_of_sync:gap") == 0
            for symbol in SYMBOLS:  # inserted frames replace nothing: every trade arrives
                assert (
                    harness.trades[symbol]
                    == harness.trades_sent(symbol)[: len(harness.trades[symbol])]
                )
            await harness.assert_book_matches_model("BTCUSDT")

    run(scenario())


def test_an_oversized_frame_is_refused_and_the_session_reconnects() -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            session = harness.app.sessions[0]
            harness.sim.faults.oversized("BTCUSDT", size=5 * 1024 * 1024)  # over 4 MiB
            task = harness.task
            assert task is not None
            await until(lambda: session.reconnects == 1 or task.done(), 10, "a reconnect")
            assert not task.done(), "the live app stopped"
            for symbol in SYMBOLS:
                await harness.live_after(symbol, "out_of_sync:reconnect")
            await _more_trades(harness, "BTCUSDT")

    run(scenario())


def test_reordered_trades_all_arrive_once() -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            harness.sim.faults.reorder("BTCUSDT", stream="trade")
            await until(lambda: harness.sim.stats.faults.get("reorder") == 1, 10, "a swap")
            await _more_trades(harness, "BTCUSDT")
            received = harness.trades["BTCUSDT"]
            # The swap is a jump in ids: the later trade is held until the earlier one
            # is there (app/backfill.py), so strategies see them in order.
            assert harness.app.engine.states["BTCUSDT"].trade_gaps == 1
            assert received == harness.trades_sent("BTCUSDT")[: len(received)]

    run(scenario())


def test_a_duplicated_trade_is_processed_once() -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            harness.sim.faults.duplicate("BTCUSDT", stream="trade", count=2)
            await until(lambda: harness.sim.stats.faults.get("duplicate") == 2, 10, "repeats")
            await _more_trades(harness, "BTCUSDT")
            received = harness.trades["BTCUSDT"]
            assert received == harness.trades_sent("BTCUSDT")[: len(received)]

    run(scenario())


@pytest.mark.parametrize("status", [503, 429])
def test_rest_errors_on_the_snapshot_are_retried_until_the_book_syncs(status: int) -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            harness.sim.faults.rest_error(status, count=2, retry_after=1, path="depth")
            started = time.monotonic()
            harness.sim.faults.gap("BTCUSDT")
            await harness.live_after("BTCUSDT", "out_of_sync:gap")
            faults = harness.sim.stats.faults
            assert faults["rest_error"] == faults[f"rest_error_{status}"] == 2
            if status == 429:  # Retry-After: 1 s, twice
                assert time.monotonic() - started >= 1.9
            await harness.assert_book_matches_model("BTCUSDT")

    run(scenario())


def test_a_late_snapshot_still_bridges_with_the_diffs_buffered_meanwhile() -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            harness.sim.faults.snapshot_delay("BTCUSDT", delay=0.5)
            harness.sim.faults.gap("BTCUSDT")
            await harness.live_after("BTCUSDT", "out_of_sync:gap")
            assert harness.sim.stats.faults["snapshot_delay"] == 1
            assert harness.transitions("BTCUSDT", "syncing:snapshot_too_old") == 0
            await harness.assert_book_matches_model("BTCUSDT")

    run(scenario())
