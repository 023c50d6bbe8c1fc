"""Book faults injected by the simulator: the engine detects each one and recovers.

For every fault the book leaves LIVE with the right reason (or, for
duplicates, stays LIVE), is LIVE again afterwards, and then equals the
simulator's own book, level for level.
"""

from __future__ import annotations

import pytest

from test_faults_harness import START_MS, SYMBOLS, engine_on_sim, run, until


def test_a_gap_on_every_symbol_is_detected_once_per_book_and_resynced() -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            harness.sim.faults.gap(count=3)  # three diffs of every depth stream skipped
            for symbol in SYMBOLS:
                await harness.live_after(symbol, "out_of_sync:gap")
            faults = harness.sim.stats.faults
            detected = sum(harness.transitions(s, "out_of_sync:gap") for s in SYMBOLS)
            assert faults["gap"] == detected == 2 and faults["gap_messages"] == 6
            for symbol in SYMBOLS:
                await harness.assert_book_matches_model(symbol)

    run(scenario())


def test_duplicated_diffs_are_counted_and_the_book_stays_live_and_correct() -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            sync = harness.sync("BTCUSDT")
            harness.sim.faults.duplicate("BTCUSDT", count=3)
            await until(lambda: sync.duplicates == 3, 10, "three duplicates counted")
            assert harness.sim.stats.faults["duplicate"] == 3
            assert [e for e in harness.events if e.previous == "live"] == []
            await harness.assert_book_matches_model("BTCUSDT")
            assert sync.transitions == {"live:bridged": 1}

    run(scenario())


def test_reordered_diffs_are_a_gap_and_the_book_resyncs() -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            harness.sim.faults.reorder("BTCUSDT")
            await harness.live_after("BTCUSDT", "out_of_sync:gap")
            assert harness.sim.stats.faults["reorder"] == 1
            assert harness.transitions("ETHUSDT", "out_of_sync:gap") == 0
            await harness.assert_book_matches_model("BTCUSDT")

    run(scenario())


def test_a_snapshot_older_than_the_buffered_diffs_is_refused_then_a_new_one_syncs() -> None:
    async def scenario() -> None:
        async with engine_on_sim() as harness:
            # The simulator keeps a snapshot every 0.5 s: let it keep some older than 1 s.
            await until(lambda: harness.sim.stats.sim_time_ms > START_MS + 1_600, 10, "1.6 s")
            harness.sim.faults.old_snapshot("BTCUSDT", age=1.0)
            harness.sim.faults.gap("BTCUSDT")  # the resync fetches the old snapshot first
            await harness.live_after("BTCUSDT", "out_of_sync:gap")
            assert harness.transitions("BTCUSDT", "syncing:snapshot_too_old") == 1
            assert harness.sim.stats.faults["old_snapshot"] == 1
            assert harness.sim.faults.pending == []
            await harness.assert_book_matches_model("BTCUSDT")

    run(scenario())


@pytest.mark.parametrize(
    ("mode", "back"), [("hold", "live:updates resumed"), ("drop", "out_of_sync:gap")]
)
def test_a_stale_depth_stream_is_detected_and_the_book_comes_back(mode: str, back: str) -> None:
    """``hold`` sends the held diffs when the stream resumes; ``drop`` loses them (a gap)."""

    async def scenario() -> None:
        async with engine_on_sim(stale_after_s=0.3) as harness:
            harness.sim.faults.stale("BTCUSDT", seconds=2.0, mode=mode)
            await until(
                lambda: harness.transitions("BTCUSDT", "stale:no update") == 1,
                5,
                "the book to go STALE",
            )
            assert harness.transitions("ETHUSDT", "stale:no update") == 0
            await harness.live_after("BTCUSDT", back)
            assert harness.sim.stats.faults["stale"] == 1
            if mode == "hold":
                assert harness.transitions("BTCUSDT", "out_of_sync:gap") == 0
            await harness.assert_book_matches_model("BTCUSDT")

    run(scenario())
