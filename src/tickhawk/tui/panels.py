"""What each dashboard panel shows, as plain rows and rich text built from one Snapshot.

Everything here is synchronous and free of textual, so a test can check what
a panel says from a constructed :class:`~tickhawk.metrics.snapshot.Snapshot`.
A value the engine does not measure (yet) keeps its default in the snapshot
and shows as "…" rather than as a misleading zero.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Iterable, Sequence

from rich.text import Text

from tickhawk.metrics.snapshot import STAGES, AlertState, Snapshot, StageStats, SymbolRow
from tickhawk.model import Signal

__all__ = [
    "NOT_MEASURED",
    "Activity",
    "Cell",
    "History",
    "alerts_text",
    "connection_rows",
    "resources_text",
    "signal_rows",
    "spark",
    "stage_rows",
    "summary_text",
    "symbol_rows",
]

NOT_MEASURED = "…"

#: Samples in a stage's p99 trend (one per refresh).
TREND_WIDTH = 16

#: What a table cell holds: plain or styled text.
Cell = str | Text

#: Eight heights of a text sparkline, lowest first.
_BLOCKS = "▁▂▃▄▅▆▇█"

_STATE_STYLE = {
    "live": "green",
    "none": "dim",
    "syncing": "yellow",
    "connecting": "yellow",
    "backoff": "red",
    "stale": "red",
    "out_of_sync": "red",
    "closed": "dim",
}

_SEVERITY_STYLE = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "cyan"}


def spark(values: Iterable[float], width: int = 20) -> str:
    """Return the last ``width`` values as a text sparkline scaled to their own range."""
    tail = list(values)[-width:]
    if not tail:
        return ""
    low, high = min(tail), max(tail)
    span = high - low
    if span <= 0:
        return _BLOCKS[0] * len(tail)
    top = len(_BLOCKS) - 1
    return "".join(_BLOCKS[round((v - low) / span * top)] for v in tail)


def _count(value: int) -> str:
    return f"{value:,}"


def _us(value: float) -> str:
    if value != value or math.isinf(value):
        return NOT_MEASURED
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _price(value: float) -> str:
    return f"{value:.6g}" if value > 0 and not math.isinf(value) else NOT_MEASURED


def _state(value: str) -> Text:
    return Text(value if value != "none" else "-", style=_STATE_STYLE.get(value, "yellow"))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


class History:
    """Bounded series over refreshes: message rate and every stage's p99."""

    def __init__(self, length: int = 120) -> None:
        self.rates: deque[float] = deque(maxlen=length)
        self.trade_rates: deque[float] = deque(maxlen=length)
        self.p99: dict[str, deque[float]] = {stage: deque(maxlen=length) for stage in STAGES}
        self._last: tuple[float, int, int] | None = None

    def add(self, snapshot: Snapshot) -> float:
        """Record one snapshot; return messages per second since the previous one."""
        last = self._last
        self._last = (snapshot.uptime_s, snapshot.messages, snapshot.trades)
        if last is not None and snapshot.uptime_s > last[0]:
            elapsed = snapshot.uptime_s - last[0]
            # A restarted count (a new run) is not a negative rate.
            self.rates.append(max(0, snapshot.messages - last[1]) / elapsed)
            self.trade_rates.append(max(0, snapshot.trades - last[2]) / elapsed)
        for stage, stats in snapshot.stages.items():
            series = self.p99.get(stage)
            if series is not None and stats.count:
                series.append(stats.p99_us)
        return self.rates[-1] if self.rates else snapshot.msgs_per_s


class Activity:
    """Trades per second per symbol, smoothed, to choose which of many symbols to show."""

    def __init__(self, smoothing: float = 0.3) -> None:
        self.smoothing = smoothing
        self.rate: dict[str, float] = {}
        self._trades: dict[str, int] = {}
        self._uptime = 0.0

    def update(self, snapshot: Snapshot) -> None:
        """Fold one snapshot's trade counts into the smoothed rates."""
        elapsed = snapshot.uptime_s - self._uptime
        if elapsed <= 0:
            return
        self._uptime = snapshot.uptime_s
        alpha = self.smoothing
        trades, rate = self._trades, self.rate
        for row in snapshot.symbols:
            previous = trades.get(row.symbol)
            trades[row.symbol] = row.trades
            if previous is None:
                rate[row.symbol] = 0.0
                continue
            now = max(0, row.trades - previous) / elapsed
            rate[row.symbol] += alpha * (now - rate[row.symbol])

    def top(self, rows: Sequence[SymbolRow], n: int) -> list[SymbolRow]:
        """Return the ``n`` busiest rows; all of them by name when they fit."""
        if len(rows) <= n:
            return sorted(rows, key=lambda r: r.symbol)
        rate = self.rate
        return heapq.nlargest(n, rows, key=lambda r: (rate.get(r.symbol, 0.0), r.trades))


def summary_text(snapshot: Snapshot, rate: float, *, paused: bool = False) -> Text:
    """Return the header line: uptime, rate, totals, books, gaps."""
    books = snapshot.books
    total_books = sum(books.values())
    text = Text.assemble(
        ("tickhawk ", "bold cyan"),
        f"up {_duration(snapshot.uptime_s)} · ",
        (f"{rate:,.0f} msg/s", "bold"),
        f" · {_count(snapshot.messages)} msgs · {_count(snapshot.trades)} trades · "
        f"{_count(snapshot.bars)} bars · {_count(snapshot.signals)} signals · ",
        (f"{snapshot.rejected:,} rejected", "red" if snapshot.rejected else ""),
    )
    if total_books:
        live = books.get("live", 0)
        text.append(" · books ")
        text.append(f"{live}/{total_books} live", "green" if live == total_books else "yellow")
    gaps = snapshot.book_gaps + snapshot.trade_gaps
    if gaps:
        text.append(f" · {snapshot.book_gaps} book gaps, {snapshot.trade_gaps} trade gaps", "red")
    if paused:
        text.append("  ⏸ paused (p to resume)", "bold yellow")
    return text


def symbol_rows(rows: Sequence[SymbolRow], activity: Activity) -> list[tuple[Cell, ...]]:
    """Return the symbols table's rows: price, spread, book, trades, rate, last signal."""
    rate = activity.rate
    return [
        (
            row.symbol,
            _price(row.price),
            f"{row.spread_bps:.2f}" if row.ask > 0 and row.bid > 0 else NOT_MEASURED,
            _state(row.book_state),
            _count(row.trades),
            f"{rate.get(row.symbol, 0.0):,.1f}",
            _signal_label(row.last_signal),
        )
        for row in rows
    ]


def _signal_label(text: str) -> Text:
    if text.endswith("long"):
        return Text(f"▲ {text}", style="green")
    if text.endswith("short"):
        return Text(f"▼ {text}", style="red")
    return Text(text)


def signal_rows(signals: Sequence[Signal], limit: int) -> list[tuple[Cell, ...]]:
    """Return the newest ``limit`` signals, newest first: time, symbol, side, score, latency."""
    rows: list[tuple[Cell, ...]] = []
    for signal in reversed(signals[-limit:] if limit > 0 else []):
        long = signal.direction > 0
        rows.append(
            (
                time.strftime("%H:%M:%S", time.localtime(signal.ts_recv / 1e9)),
                signal.symbol,
                signal.strategy,
                Text("▲ long" if long else "▼ short", style="green" if long else "red"),
                f"{signal.score:.2f}",
                _price(signal.price),
                _us((signal.t_emitted - signal.t_recv) / 1000.0),
            )
        )
    return rows


def stage_rows(stages: dict[str, StageStats], history: History) -> list[tuple[Cell, ...]]:
    """Return one row per pipeline stage; "…" for a stage nothing has measured yet."""
    rows: list[tuple[Cell, ...]] = []
    for stage in STAGES:
        stats = stages.get(stage)
        if stats is None or not stats.count:
            rows.append((stage, "0", *[NOT_MEASURED] * 5, ""))
            continue
        rows.append(
            (
                stage,
                _count(stats.count),
                _us(stats.p50_us),
                _us(stats.p90_us),
                _us(stats.p99_us),
                _us(stats.p999_us),
                _us(stats.max_us),
                Text(spark(history.p99[stage], TREND_WIDTH), style="magenta"),
            )
        )
    return rows


def resources_text(snapshot: Snapshot) -> Text:
    """Return CPU, memory, GC and loop-lag lines ("…" until a sampler reports)."""
    res = snapshot.resources
    text = Text()
    if res.rss_mb <= 0:  # no sampler has filled this snapshot's resources
        text.append("cpu …  rss …\ngc …\ngc pauses …\nloop lag …", "dim")
        return text
    text.append("cpu ", "bold")
    text.append(f"{res.cpu_pct:5.1f} % of a core", "red" if res.cpu_pct >= 80 else "")
    text.append("   rss ", "bold")
    text.append(f"{res.rss_mb:,.1f} MB")
    if res.uss_mb > 0:
        text.append(f" (uss {res.uss_mb:,.1f})")
    if res.rss_slope_mb_h is not None:
        text.append(f"  trend {res.rss_slope_mb_h:+.1f} MB/h")
    text.append("\ngc ", "bold")
    if res.gc_collections:
        text.append("/".join(_count(n) for n in res.gc_collections) + " collections (gen 0/1/2)")
        text.append("\ngc pauses ", "bold")
        text.append(
            f"max {res.gc_pause_max_ms:.2f} ms lately, {res.gc_pause_total_ms:,.1f} ms in all",
            "red" if res.gc_pause_max_ms >= 10 else "",
        )
    else:
        text.append(NOT_MEASURED, "dim")
        text.append("\ngc pauses ", "bold")
        text.append(NOT_MEASURED, "dim")
    text.append("\nloop lag ", "bold")
    text.append(
        f"{res.loop_lag_ms:.2f} ms (max {res.loop_lag_max_ms:.2f})",
        "red" if res.loop_lag_max_ms >= 50 else "",
    )
    if snapshot.backlog_ms > 0:
        text.append(f"   backlog {snapshot.backlog_ms:,.0f} ms")
    return text


def connection_rows(snapshot: Snapshot) -> list[tuple[Cell, ...]]:
    """Return one row per WebSocket session: state, reconnects, traffic, ping."""
    return [
        (
            c.name,
            _state("backoff" if c.circuit_open else c.state),
            f"{c.streams:,}",
            f"{c.reconnects:,}" + (f" ({c.stale_reconnects} stale)" if c.stale_reconnects else ""),
            _count(c.frames),
            f"{c.bytes / 2**20:,.1f}",
            f"{c.ping_rtt_ms:.1f}" if c.ping_rtt_ms is not None else NOT_MEASURED,
            _count(c.protocol_errors),
        )
        for c in snapshot.connections
    ]


def alerts_text(alerts: Sequence[AlertState], logs: Sequence[str] = (), *, now: float) -> Text:
    """Return the firing alerts (severity, name, value against threshold, age), then logs."""
    text = Text()
    if not alerts:
        text.append("no alerts firing", "green")
    for number, alert in enumerate(alerts):
        if number:
            text.append("\n")
        text.append(f"{alert.severity.upper():<8} ", _SEVERITY_STYLE.get(alert.severity, "bold"))
        text.append(alert.name, "bold")
        text.append(f"  {alert.message}")
        if alert.threshold:
            text.append(f" ({alert.value:,.4g} vs {alert.threshold:,.4g})", "dim")
        if alert.since > 0:
            text.append(f"  for {_duration(max(0.0, now - alert.since))}", "dim")
    for line in logs:
        text.append("\n" + line, "dim")
    return text
