"""What a live run shows: the dashboard (or one rich table) on a terminal, status lines otherwise.

Views sample the engine on a timer; they never run on the hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from typing import TYPE_CHECKING, Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from tickhawk.app.live import LiveApp
    from tickhawk.state import SymbolState

__all__ = ["VIEWS", "PlainView", "RichView", "StatusView", "add_view_argument", "make_view"]


class StatusView(Protocol):
    """Show a live app's progress until cancelled."""

    async def run(self, app: LiveApp) -> None: ...


def _fmt(value: float, digits: int = 2) -> str:
    if value != value or math.isinf(value):  # NaN: warming up
        return "…"
    return f"{value:,.{digits}f}"


def _sig(value: float, digits: int = 6) -> str:
    """Format with ``digits`` significant digits: prices of 60,000 and of 0.5 alike."""
    if value != value or math.isinf(value):
        return "…"
    return f"{value:.{digits}g}"


class _Rate:
    """Messages per second between two samples."""

    def __init__(self) -> None:
        self._last_count = 0
        self._last_time = time.monotonic()
        self.value = 0.0

    def sample(self, count: int) -> float:
        now = time.monotonic()
        elapsed = now - self._last_time
        if elapsed > 0:
            self.value = (count - self._last_count) / elapsed
        self._last_count = count
        self._last_time = now
        return self.value


class PlainView:
    """Print one status line every ``interval_s`` seconds (for logs and pipes)."""

    def __init__(self, interval_s: float = 5.0, stream: object = None) -> None:
        self.interval_s = interval_s
        self._stream = stream

    async def run(self, app: LiveApp) -> None:
        """Print status lines until cancelled."""
        rate = _Rate()
        out = self._stream or sys.stdout
        while True:
            await asyncio.sleep(self.interval_s)
            engine = app.engine
            p50, p99 = app.latency.percentiles(50, 99)
            last = app.recent_signals[-1] if app.recent_signals else None
            last_text = (
                f"; last signal {last.symbol} {'long' if last.direction > 0 else 'short'} "
                f"@ {last.price:g} score {last.score:.2f}"
                if last
                else ""
            )
            print(
                f"status: {rate.sample(app.messages):,.0f} msg/s, {app.messages:,} messages, "
                f"{engine.trades:,} trades, {engine.bars:,} bars, {engine.signals:,} signals, "
                f"{engine.rejects.total} rejected, receive→signal p50 {_fmt(p50, 0)} µs "
                f"p99 {_fmt(p99, 0)} µs{last_text}",
                file=out,  # type: ignore[arg-type]
                flush=True,
            )


class RichView:
    """A live terminal table: per symbol price, forming bar, indicators, last signal."""

    def __init__(self, refresh_per_s: float = 4.0, max_rows: int = 20) -> None:
        self.refresh_per_s = refresh_per_s
        self.max_rows = max_rows
        self.console = Console()

    async def run(self, app: LiveApp) -> None:
        """Redraw until cancelled."""
        rate = _Rate()
        with Live(
            self._render(app, rate), console=self.console, auto_refresh=False, transient=False
        ) as live:
            while True:
                await asyncio.sleep(1.0 / self.refresh_per_s)
                live.update(self._render(app, rate), refresh=True)

    def _render(self, app: LiveApp, rate: _Rate) -> Group:
        engine = app.engine
        p50, p99 = app.latency.percentiles(50, 99)
        header = Text.assemble(
            ("tickhawk ", "bold cyan"),
            f"{rate.sample(app.messages):,.0f} msg/s · {app.messages:,} msgs · "
            f"{engine.trades:,} trades · {engine.bars:,} bars · {engine.signals:,} signals · "
            f"{engine.rejects.total} rejected · receive→signal p50 {_fmt(p50, 0)} µs "
            f"p99 {_fmt(p99, 0)} µs",
        )
        table = Table(expand=True, show_edge=False, pad_edge=False)
        for column in (
            "symbol",
            "last",
            "book (spread)",
            "bar (o/h/l/c, vol)",
            "ema",
            "rsi",
            "macd h",
            "bb up/low",
            "atr",
            "vwap",
            "last signal",
        ):
            table.add_column(column, no_wrap=True)
        for state in list(engine.states.values())[: self.max_rows]:
            table.add_row(*_row(state))
        return Group(header, table)


def _row(state: SymbolState) -> list[str]:
    interval = next(iter(state.indicators), None)
    values = state.indicators[interval].values if interval else {}
    bars = state.bars.get(interval) if interval else None
    bar = "…"
    if bars is not None and bars.trades:
        bar = f"{bars.interval} {bars.open:g}/{bars.high:g}/{bars.low:g}/{bars.close:g}"
        bar += f", {bars.volume:.3g}"
    signal = state.last_signal
    signal_text = (
        f"{'▲ long' if signal.direction > 0 else '▼ short'} {signal.score:.2f} @ {signal.price:g}"
        if signal
        else ""
    )

    def v(key: str, digits: int = 6) -> str:
        return _sig(values.get(key, math.nan), digits)

    return [
        state.symbol,
        f"{state.last_price:g}" if state.last_price else "…",
        _book_text(state),
        bar,
        v("ema"),
        _fmt(values.get("rsi", math.nan), 1),
        v("macd.macdhist", 3),
        f"{v('bb.upperband')}/{v('bb.lowerband')}",
        v("atr", 3),
        v("vwap"),
        signal_text,
    ]


def _book_text(state: SymbolState) -> str:
    sync = state.book_sync
    if sync is None:
        return "-"
    book = state.book
    if book is None:
        return sync.state.value
    return f"live ({_sig(book.best_ask - book.best_bid, 4)})"


#: What ``--view`` chooses from; on a terminal the default is the dashboard.
VIEWS = ("dashboard", "rich", "plain")


def add_view_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--view`` (``--plain`` stays as its short form)."""
    parser.add_argument(
        "--view",
        choices=VIEWS,
        help="on a terminal: dashboard (default), rich (one live table) or plain status lines",
    )


def make_view(
    *, plain: bool = False, quiet: bool = False, kind: str | None = None
) -> StatusView | None:
    """Return the view for this output: none, status lines, the live table or the dashboard."""
    if quiet:
        return None
    if plain or kind == "plain" or not sys.stdout.isatty():
        return PlainView()
    if kind == "rich":
        return RichView()
    from tickhawk.tui import DashboardView  # textual loads only when it draws

    return DashboardView()
