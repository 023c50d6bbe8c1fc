"""The live terminal dashboard: a textual app on the engine's own event loop.

The engine's hot path runs in picows frame callbacks on the same loop, so the
dashboard costs it only what it does between frames: at a bounded rate
(``refresh_per_s``, 2 by default) it takes one :class:`Snapshot` and the recent
signals, and redraws. Nothing of it runs per message. ``p`` stops even that;
``q`` (or Ctrl-C) stops the engine the way SIGINT does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Footer, Sparkline, Static

from tickhawk.metrics.snapshot import STAGES, Snapshot
from tickhawk.model import Signal
from tickhawk.tui.logs import LogBuffer, captured_logs
from tickhawk.tui.panels import (
    Activity,
    History,
    alerts_text,
    connection_rows,
    resources_text,
    signal_rows,
    stage_rows,
    summary_text,
    symbol_rows,
)
from tickhawk.tui.table import Column, TextTable

if TYPE_CHECKING:
    from tickhawk.app.live import LiveApp

__all__ = ["Dashboard", "DashboardView", "Source"]

_log = logging.getLogger("tickhawk.tui")

#: Each table's columns: (header, width, alignment).
_SYMBOL_COLUMNS: tuple[Column, ...] = (
    ("symbol", 12, "<"),
    ("price", 10, ">"),
    ("bps", 6, ">"),
    ("book", 11, "<"),
    ("trades", 9, ">"),
    ("trades/s", 8, ">"),
    ("last signal", 16, "<"),
)
_SIGNAL_COLUMNS: tuple[Column, ...] = (
    ("time", 8, "<"),
    ("symbol", 11, "<"),
    ("strategy", 8, "<"),
    ("side", 7, "<"),
    ("score", 5, ">"),
    ("price", 9, ">"),
    ("µs", 6, ">"),
)
_STAGE_COLUMNS: tuple[Column, ...] = (
    ("stage", 18, "<"),
    ("count", 10, ">"),
    ("p50 µs", 7, ">"),
    ("p90 µs", 7, ">"),
    ("p99 µs", 7, ">"),
    ("p99.9 µs", 8, ">"),
    ("max µs", 7, ">"),
    ("p99 trend", 16, "<"),
)
_CONNECTION_COLUMNS: tuple[Column, ...] = (
    ("connection", 30, "<"),
    ("state", 10, "<"),
    ("streams", 7, ">"),
    ("reconnects", 10, ">"),
    ("frames", 11, ">"),
    ("MB", 7, ">"),
    ("ping ms", 7, ">"),
    ("errors", 6, ">"),
)


class Source(Protocol):
    """What the dashboard reads: a running :class:`~tickhawk.app.live.LiveApp`."""

    @property
    def recent_signals(self) -> Sequence[Signal]: ...

    def snapshot(self, *, symbols: bool = False) -> Snapshot: ...

    def stop(self) -> None: ...


class Dashboard(App[None]):
    """Panels for symbols, signals, stage latencies, throughput, resources, connections, alerts."""

    TITLE = "tickhawk"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "stop", "quit"),
        Binding("p", "pause", "pause / resume"),
        # The terminal is raw while the dashboard runs: Ctrl-C is a key, not SIGINT.
        Binding("ctrl+c", "stop", "quit", show=False, priority=True),
    ]
    CSS = """
    #summary { height: 1; padding: 0 1; }
    .panel { border: round $primary 60%; border-title-color: $accent; }
    Horizontal > Static, Horizontal > Vertical { height: 100%; }
    TextTable { padding: 0 1; }
    #top { height: 1fr; min-height: 8; }
    #symbols { width: 1fr; }
    #signals { width: 72; }
    #stages { width: 104; }
    #side { width: 1fr; }
    #throughput-box { height: 4; }
    #resources { height: 1fr; }
    #bottom { height: 7; }
    #connections { width: 2fr; }
    #throughput-label, #throughput, #resources, #alerts { padding: 0 1; }
    #alerts { width: 1fr; }
    """

    def __init__(
        self,
        source: Source,
        *,
        refresh_per_s: float = 2.0,
        logs: LogBuffer | None = None,
        task_factory: object = None,
    ) -> None:
        super().__init__()
        if not refresh_per_s > 0:
            raise ValueError("refresh_per_s must be positive")
        self.source = source
        self.refresh_per_s = refresh_per_s
        self.logs = logs
        self.history = History()
        self.activity = Activity()
        self.paused = False
        self.refreshes = 0
        self._task_factory = task_factory
        self._rate = 0.0
        self._last: Snapshot | None = None

    def compose(self) -> ComposeResult:
        """Lay out the panels."""
        yield Static(id="summary")
        with Horizontal(id="top"):
            yield TextTable(_SYMBOL_COLUMNS, id="symbols")
            yield TextTable(_SIGNAL_COLUMNS, id="signals")
        with Horizontal(id="middle"):
            yield TextTable(_STAGE_COLUMNS, id="stages")
            with Vertical(id="side"):
                with Vertical(id="throughput-box", classes="panel"):
                    yield Static(id="throughput-label")
                    yield Sparkline([], id="throughput")
                yield Static(id="resources", classes="panel")
        with Horizontal(id="bottom"):
            yield TextTable(_CONNECTION_COLUMNS, id="connections")
            yield Static(id="alerts", classes="panel")
        yield Footer()

    def on_load(self) -> None:
        # On Python ≥ 3.12 textual switches the running loop to eager tasks; the loop
        # is the engine's, so put back what the engine runs with.
        if self._task_factory is not None or hasattr(asyncio, "eager_task_factory"):
            asyncio.get_running_loop().set_task_factory(self._task_factory)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        """Set up the tables and start the refresh timer."""
        for panel_id, title in (
            ("#symbols", "symbols"),
            ("#signals", "signals"),
            ("#stages", "latency per stage"),
            ("#connections", "connections"),
            ("#throughput-box", "throughput"),
            ("#resources", "resources"),
            ("#alerts", "alerts"),
        ):
            self.query_one(panel_id).border_title = title
        # one row per pipeline stage, whatever the engine measures
        self.query_one("#middle").styles.height = len(STAGES) + 3
        self.refresh_panels()
        self.set_interval(1.0 / self.refresh_per_s, self.refresh_panels)

    def refresh_panels(self) -> None:
        """Read one snapshot and the recent signals, and redraw (unless paused)."""
        if self.paused:
            return
        self.show(self.source.snapshot(symbols=True), self.source.recent_signals)

    def show(self, snapshot: Snapshot, signals: Sequence[Signal]) -> None:
        """Redraw every panel from ``snapshot`` and ``signals``."""
        # Panels keep their size whatever they show: every update repaints, none relayouts.
        self.refreshes += 1
        self._last = snapshot
        self._rate = self.history.add(snapshot)
        trade_rate = self.history.trade_rates[-1] if self.history.trade_rates else 0.0
        self.activity.update(snapshot)
        self._show_summary()
        symbols = self.query_one("#symbols", TextTable)
        shown = self.activity.top(snapshot.symbols, symbols.visible_rows or 20)
        total = len(snapshot.symbols)
        _title(
            symbols,
            f"symbols · {total:,}"
            if len(shown) == total
            else f"symbols · top {len(shown)} of {total:,} by trades/s",
        )
        symbols.set_rows(symbol_rows(shown, self.activity))
        feed = self.query_one("#signals", TextTable)
        _title(feed, f"signals · {snapshot.signals:,}")
        feed.set_rows(signal_rows(signals, feed.visible_rows or 20))
        stages = self.query_one("#stages", TextTable)
        stages.set_rows(stage_rows(snapshot.stages, self.history))
        self.query_one("#throughput-label", Static).update(
            Text.assemble(
                (f"{self._rate:,.0f} msg/s", "bold"),
                f"  peak {max(self.history.rates, default=0.0):,.0f}  trades {trade_rate:,.0f}/s",
            ),
            layout=False,
        )
        self.query_one("#throughput", Sparkline).data = list(self.history.rates)
        self.query_one("#resources", Static).update(resources_text(snapshot), layout=False)
        self.query_one("#connections", TextTable).set_rows(connection_rows(snapshot))
        alerts = self.query_one("#alerts", Static)
        _title(alerts, f"alerts · {len(snapshot.alerts)} firing")
        log_lines = self.logs.lines(3) if self.logs is not None else []
        alerts.update(alerts_text(snapshot.alerts, log_lines, now=time.time()), layout=False)

    def _show_summary(self) -> None:
        if self._last is not None:
            self.query_one("#summary", Static).update(
                summary_text(self._last, self._rate, paused=self.paused), layout=False
            )

    def action_stop(self) -> None:
        """Stop the engine and leave the dashboard."""
        self.source.stop()
        self.exit()

    def action_pause(self) -> None:
        """Stop or resume redrawing (the engine runs on either way)."""
        self.paused = not self.paused
        self._show_summary()
        if not self.paused:
            self.refresh_panels()


def _title(widget: Widget, title: str) -> None:
    if widget.border_title != title:  # setting it repaints the widget
        widget.border_title = title


class DashboardView:
    """Run the dashboard as a live app's view (:class:`tickhawk.app.view.StatusView`)."""

    def __init__(
        self,
        refresh_per_s: float = 2.0,
        *,
        headless: bool = False,
        size: tuple[int, int] | None = None,
    ) -> None:
        self.refresh_per_s = refresh_per_s
        self.headless = headless
        self.size = size
        self.dashboard: Dashboard | None = None

    async def run(self, app: LiveApp) -> None:
        """Show the dashboard until the app stops, or stop the app when the user quits."""
        factory = asyncio.get_running_loop().get_task_factory()
        with captured_logs() as logs:
            dashboard = self.dashboard = Dashboard(
                app, refresh_per_s=self.refresh_per_s, logs=logs, task_factory=factory
            )
            # When the app stops first it cancels this task; textual then leaves
            # application mode, restores the terminal and returns here.
            await dashboard.run_async(headless=self.headless, size=self.size)
        if dashboard.return_code:
            _log.error("the dashboard stopped on an error (above); stopping the engine")
        app.stop()
