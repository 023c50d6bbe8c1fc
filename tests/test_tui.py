"""The dashboard, headless, against the real engine on the real simulator over loopback.

Textual's pilot drives the app; a pseudo-terminal drives ``tickhawk demo`` the
way a user does (keys, SIGTERM) to check it leaves the terminal as it found it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from textual import events
from textual.widgets import Sparkline, Static

from polling import poll
from tickhawk.app.live import LiveApp
from tickhawk.app.view import PlainView, make_view
from tickhawk.metrics.snapshot import (
    STAGES,
    AlertState,
    ConnectionStats,
    Resources,
    Snapshot,
    StageStats,
    SymbolRow,
)
from tickhawk.presets import fast_config
from tickhawk.sim import SimConfig, Simulator
from tickhawk.tui import Dashboard, DashboardView
from tickhawk.tui.logs import captured_logs
from tickhawk.tui.panels import Activity, spark
from tickhawk.tui.table import Column, TextTable, render_table

STREAMS = ["trade", "bookTicker", "depth@100ms"]


def text_of(static: Static) -> str:
    return str(static.content)


def rows_by_stage(table: TextTable) -> dict[str, list[str]]:
    return {str(row[0]): [str(cell) for cell in row] for row in table.rows}


def test_dashboard_shows_the_running_engine_and_q_stops_it() -> None:
    async def scenario() -> None:
        async with Simulator(SimConfig(n_symbols=6, rate=3000.0, seed=5)) as sim:
            config = fast_config(
                list(sim.symbols), STREAMS, ws_url=sim.ws_url, rest_url=sim.rest_url
            )
            app = LiveApp(config)
            run = asyncio.create_task(app.run())
            await app.wait_live(30)
            dashboard = Dashboard(app, refresh_per_s=4.0)
            async with dashboard.run_test(size=(170, 48)) as pilot:
                symbols = dashboard.query_one("#symbols", TextTable)
                feed = dashboard.query_one("#signals", TextTable)
                stages = dashboard.query_one("#stages", TextTable)
                await poll(
                    lambda: (
                        symbols.row_count == 6
                        and "…" not in symbols.column(1)
                        and set(symbols.column(3)) == {"live"}
                    ),
                    20,
                    "every symbol priced with a live book",
                )
                assert sorted(symbols.column(0)) == sorted(sim.symbols)
                drawn = symbols.text().splitlines()  # what the panel draws
                assert drawn[0].split()[:3] == ["symbol", "price", "bps"]
                assert sorted(line.split()[0] for line in drawn[1:]) == sorted(sim.symbols)
                assert all(float(spread) > 0 for spread in symbols.column(2))
                await poll(lambda: feed.row_count >= 2, 20, "signals in the feed")
                assert set(feed.column(1)) <= set(sim.symbols)
                assert set(feed.column(3)) <= {"▲ long", "▼ short"}
                assert all(float(us.replace(",", "")) > 0 for us in feed.column(6))
                rows = rows_by_stage(stages)
                assert list(rows) == list(STAGES)
                p50, p99 = (float(rows["recv_to_signal"][i].replace(",", "")) for i in (2, 4))
                assert 0 < p50 <= p99
                await poll(lambda: len(dashboard.history.rates) >= 3, 10, "rate samples")
                assert dashboard.query_one("#throughput", Sparkline).data
                assert max(dashboard.history.rates) > 500  # the simulator sends ~3,000/s
                connections = dashboard.query_one("#connections", TextTable)
                assert connections.column(1) == ["live"]
                assert int(connections.column(4)[0].replace(",", "")) > 1000  # frames
                header = text_of(dashboard.query_one("#summary", Static))
                assert "msg/s" in header and "books 6/6 live" in header

                # p pauses drawing: the snapshot count stops while the engine runs on
                await pilot.press("p")
                paused_at = dashboard.refreshes
                trades = app.engine.trades
                await poll(lambda: app.engine.trades > trades + 500, 10, "more trades")
                assert dashboard.refreshes == paused_at
                assert "paused" in text_of(dashboard.query_one("#summary", Static))
                await pilot.press("p")
                assert dashboard.refreshes > paused_at
                assert "paused" not in text_of(dashboard.query_one("#summary", Static))

                await pilot.press("q")
            summary = await asyncio.wait_for(run, 15)  # q stopped the engine too
            assert summary.trades > 1000 and summary.signals >= 2

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_alerts_resources_and_unmeasured_values_render() -> None:
    """Render constructed snapshots: alerts show, values nobody measured show as "…"."""

    async def scenario() -> None:
        app = LiveApp(fast_config(["BTCUSDT"], STREAMS))  # not started: an empty engine
        dashboard = Dashboard(app)
        async with dashboard.run_test(size=(170, 48)) as pilot:
            await pilot.press("p")  # draw only what the test shows
            alerts = dashboard.query_one("#alerts", Static)
            resources = dashboard.query_one("#resources", Static)
            stages = dashboard.query_one("#stages", TextTable)
            assert "no alerts firing" in text_of(alerts)
            assert "cpu …" in text_of(resources)
            assert list(rows_by_stage(stages)) == list(STAGES)
            assert set(stages.column(2)) == {"…"}

            now = time.time()
            snapshot = Snapshot(
                ts=now,
                uptime_s=30.0,
                messages=300_000,
                stages={
                    "recv_to_decoded": StageStats(count=9, p50_us=1.5, p90_us=3.0, p99_us=4.25)
                },
                resources=Resources(
                    cpu_pct=4.5, rss_mb=81.2, gc_collections=[120, 10, 1], loop_lag_ms=0.4
                ),
                connections=[
                    ConnectionStats(name="ws://x#0", state="backoff", reconnects=3),
                ],
                alerts=[
                    AlertState(
                        name="latency_p99",
                        severity="critical",
                        message="receive→signal p99 over budget",
                        since=now - 65,
                        value=2300.0,
                        threshold=1000.0,
                    )
                ],
                symbols=[SymbolRow(symbol="BTCUSDT", price=60_000.5, bid=60_000, ask=60_001)],
            )
            dashboard.show(snapshot, [])
            await pilot.pause()
            text = text_of(alerts)
            assert "CRITICAL" in text and "latency_p99" in text and "over budget" in text
            assert "2,300 vs 1,000" in text and "for 0:01:05" in text
            assert dashboard.query_one("#alerts").border_title == "alerts · 1 firing"
            res = text_of(resources)
            assert "4.5 % of a core" in res and "81.2 MB" in res and "120/10/1" in res
            rows = rows_by_stage(stages)
            assert rows["recv_to_decoded"][1:5] == ["9", "1.5", "3.0", "4.2"]
            assert rows["recv_to_signal"][2] == "…"  # nothing measured
            connections = dashboard.query_one("#connections", TextTable)
            assert connections.column(1) == ["backoff"] and connections.column(6) == ["…"]
            symbols = dashboard.query_one("#symbols", TextTable)
            assert symbols.column(1) == ["60000.5"] and symbols.column(3) == ["-"]
            # the screen really shows it (what a user sees, not only widget state)
            assert "latency_p99" in dashboard.export_screenshot()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_many_symbols_show_the_busiest_with_a_count() -> None:
    activity = Activity(smoothing=1.0)
    rows = [SymbolRow(symbol=f"S{i:04d}", trades=0) for i in range(1000)]
    activity.update(Snapshot(ts=0, uptime_s=1.0, symbols=rows))
    busy = [SymbolRow(symbol=r.symbol, trades=int(r.symbol[1:]) % 97) for r in rows]
    activity.update(Snapshot(ts=0, uptime_s=2.0, symbols=busy))
    top = activity.top(busy, 5)
    assert len(top) == 5 and all(r.trades == 96 for r in top)  # the busiest, not the first
    assert [r.symbol for r in activity.top(busy[:3], 5)] == ["S0000", "S0001", "S0002"]
    assert spark([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█" and spark([5, 5]) == "▁▁"


def test_text_table_aligns_pads_and_cuts_cells() -> None:
    columns: tuple[Column, ...] = (("name", 6, "<"), ("n", 5, ">"))
    lines = render_table(columns, [("BTCUSDT", "1,234"), ("ETH", "7")])
    assert lines == ["name        n", "BTCUS…  1,234", "ETH         7"]


def test_view_stops_with_the_app_and_its_quit_key_stops_the_app() -> None:
    """The dashboard as LiveApp's view: the run's end closes it; its q ends the run."""

    async def scenario() -> None:
        async with Simulator(SimConfig(n_symbols=2, rate=1000.0, seed=3)) as sim:
            config = fast_config(
                list(sim.symbols), STREAMS, ws_url=sim.ws_url, rest_url=sim.rest_url
            )
            view = DashboardView(refresh_per_s=4.0, headless=True, size=(120, 40))
            started = time.monotonic()
            summary = await LiveApp(config).run(duration=3.0, view=view)
            assert time.monotonic() - started < 10 and summary.messages > 0

            app = LiveApp(config)
            view = DashboardView(refresh_per_s=4.0, headless=True, size=(120, 40))
            run = asyncio.create_task(app.run(view=view))
            await poll(
                lambda: view.dashboard is not None and view.dashboard.refreshes >= 2, 20, "draws"
            )
            assert view.dashboard is not None
            view.dashboard.post_message(events.Key("q", "q"))
            summary = await asyncio.wait_for(run, 15)
            assert summary.messages > 0 and run.done()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def _read_until(fd: int, pattern: bytes, timeout: float, seen: bytearray) -> None:
    deadline = time.monotonic() + timeout
    while pattern not in seen:
        if time.monotonic() > deadline:
            tail = seen[-400:].decode(errors="replace")
            raise AssertionError(f"no {pattern!r} after {timeout} s; output ends {tail!r}")
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                return


def _demo_on_a_terminal() -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "150", "LINES": "45"}
    child = subprocess.Popen(
        [sys.executable, "-m", "tickhawk.cli", "demo", "--symbols", "3", "--rate", "1500"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    return child, master


def _finish(child: subprocess.Popen[bytes], master: int, seen: bytearray) -> str:
    try:
        _read_until(master, b"summary:", 20, seen)
        child.wait(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
        os.close(master)
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", seen.decode(errors="replace"))


@pytest.mark.parametrize("key", [b"q", b"\x03"], ids=["q", "ctrl-c"])
def test_demo_on_a_terminal_quits_on_a_key_and_prints_the_summary(key: bytes) -> None:
    child, master = _demo_on_a_terminal()
    seen = bytearray()
    _read_until(master, b"latency per stage", 30, seen)  # the dashboard is up
    _read_until(master, b"signals \xc2\xb7 ", 30, seen)
    os.write(master, key)
    text = _finish(child, master, seen)
    assert child.returncode == 0
    # alternate screen left, then the summary on the normal screen
    assert seen.rfind(b"\x1b[?1049l") < seen.rfind(b"summary:")
    assert re.search(r"summary: .* messages .* signals", text)
    assert "Traceback" not in text


def test_demo_on_a_terminal_stops_cleanly_on_sigterm() -> None:
    child, master = _demo_on_a_terminal()
    seen = bytearray()
    _read_until(master, b"latency per stage", 30, seen)
    child.send_signal(signal.SIGTERM)
    text = _finish(child, master, seen)
    assert child.returncode == 0
    assert seen.rfind(b"\x1b[?1049l") < seen.rfind(b"summary:")
    assert "Traceback" not in text


def test_logs_stay_off_the_terminal_while_the_dashboard_draws_then_come_out() -> None:
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w", buffering=1)
    handler = logging.StreamHandler(terminal)
    root = logging.getLogger()
    root.addHandler(handler)
    log = logging.getLogger("tickhawk.test")
    try:
        with captured_logs(capacity=2) as buffer:
            for n in range(3):
                log.warning("dropped %d", n)
            assert handler not in root.handlers and buffer.count == 3
            assert [line.split(" ", 1)[1] for line in buffer.lines(5)] == [
                "warning tickhawk.test: dropped 1",
                "warning tickhawk.test: dropped 2",
            ]
            assert not select.select([master], [], [], 0.1)[0]  # nothing reached the terminal
        assert handler in root.handlers and buffer not in root.handlers
        seen = bytearray()
        _read_until(master, b"dropped 2", 5, seen)
        assert b"(1 earlier log records not kept)" in seen and b"dropped 1" in seen
    finally:
        root.removeHandler(handler)
        terminal.close()
        os.close(master)


def test_without_a_terminal_every_view_choice_prints_status_lines() -> None:
    # pytest captures stdout: not a terminal, so CI's `--plain` runs never load textual
    for kind in (None, "dashboard", "rich", "plain"):
        assert isinstance(make_view(kind=kind), PlainView)
    assert make_view(kind="dashboard", quiet=True) is None
