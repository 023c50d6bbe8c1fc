"""Prometheus ``/metrics`` and the JSON snapshot, served over HTTP by aiohttp.

:class:`SnapshotCollector` builds every metric family from one
:class:`~tickhawk.metrics.snapshot.Snapshot` at scrape time, so exporting
costs nothing per message. Label cardinality is bounded: per-symbol series
appear only when the run has at most ``symbol_labels`` symbols (default 50);
beyond that only totals per venue, stream kind, stage, connection and reason
are exported — a thousand symbols do not become thousands of series.

:class:`MetricsServer` serves ``/metrics``, ``/snapshot.json``
(``?symbols=1`` adds one row per symbol), ``/alerts.json`` and, for
memory hunts, ``/debug/tracemalloc`` (GET: the top allocation sites; POST
``/debug/tracemalloc/start`` or ``/stop``). It binds 127.0.0.1 unless told
otherwise.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tickhawk.metrics.histogram import N_BUCKETS, bucket_bounds
from tickhawk.metrics.resources import start_tracemalloc, stop_tracemalloc, tracemalloc_top
from tickhawk.metrics.snapshot import Snapshot

if TYPE_CHECKING:
    from tickhawk.metrics.alerts import AlertEngine
    from tickhawk.metrics.registry import Metrics

__all__ = ["ListenError", "MetricsServer", "SnapshotCollector", "SnapshotSource"]

_MB = 1024 * 1024
_US = 1e-6
#: Cumulative histogram bounds: powers of two from 256 ns to 64 s (bucket edges, exact).
_HISTOGRAM_SHIFTS = range(8, 37)


class SnapshotSource(Protocol):
    """Anything that can describe the running engine (the live app)."""

    def snapshot(self, *, symbols: bool = False) -> Snapshot: ...


class ListenError(Exception):
    """The exporter cannot listen where it was asked to; the message says what to change."""


def _gauge(name: str, doc: str, value: float, unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value, unit=unit)


def _labelled(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    doc: str,
    labels: list[str],
    rows: list[tuple[list[str], float]],
) -> Metric:
    family = kind(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


class SnapshotCollector:
    """A prometheus-client collector reading the engine's snapshot at scrape time."""

    def __init__(
        self,
        source: SnapshotSource,
        *,
        metrics: Metrics | None = None,
        symbols: int = 0,
        symbol_labels: int = 50,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self.per_symbol = 0 < symbols <= symbol_labels
        # Bucket index where each exported histogram bound starts.
        self._edges = [(1 << shift, _index_at(1 << shift)) for shift in _HISTOGRAM_SHIFTS]

    def describe(self) -> list[Metric]:
        """Return nothing: the families are known at scrape time only."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family from one fresh snapshot."""
        snap = self.source.snapshot(symbols=self.per_symbol)
        venue = [snap.venue]
        yield _labelled(GaugeMetricFamily, "tickhawk_info", "tickhawk run", ["venue"], [(venue, 1)])
        yield _gauge("tickhawk_uptime_seconds", "Seconds since the engine started", snap.uptime_s)
        for name, doc, value in (
            ("messages", "Messages decoded", snap.messages),
            ("trades", "Trades applied", snap.trades),
            ("quotes", "Best bid/ask updates applied", snap.quotes),
            ("book_updates", "Order-book diffs received", snap.book_updates),
            ("bars", "Bars closed", snap.bars),
            ("signals", "Signals emitted", snap.signals),
        ):
            yield _labelled(
                CounterMetricFamily, f"tickhawk_{name}", doc, ["venue"], [(venue, value)]
            )
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_messages_per_second",
            "Messages per second over the last second",
            ["venue"],
            [(venue, snap.msgs_per_s)],
        )
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_trades_per_second",
            "Trades per second over the last second",
            ["venue"],
            [(venue, snap.trades_per_s)],
        )
        yield _labelled(
            CounterMetricFamily,
            "tickhawk_rejected",
            "Messages rejected, by reason",
            ["reason"],
            [([reason], count) for reason, count in snap.rejects_by_reason.items()],
        )
        yield _labelled(
            CounterMetricFamily,
            "tickhawk_dropped",
            "Events dropped on purpose (duplicates, overflow), by reason",
            ["reason"],
            [([reason], count) for reason, count in snap.drops.items()],
        )
        yield from self._queues(snap)
        yield from self._stages(snap)
        yield _gauge(
            "tickhawk_backlog_seconds",
            "Wall clock now minus the exchange time of the newest message handled",
            snap.backlog_ms / 1000.0,
        )
        yield from self._resources(snap)
        yield from self._connections(snap)
        yield from self._books(snap)
        yield from self._alerts(snap)
        if self.per_symbol:
            yield from self._symbols(snap)

    # -- families ---------------------------------------------------------------

    def _queues(self, snap: Snapshot) -> Iterator[Metric]:
        queues = snap.queues.items()
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_queue_depth",
            "Items waiting in a bounded queue",
            ["queue"],
            [([n], q.depth) for n, q in queues],
        )
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_queue_capacity",
            "Capacity of a bounded queue",
            ["queue"],
            [([n], q.capacity) for n, q in queues],
        )
        yield _labelled(
            CounterMetricFamily,
            "tickhawk_queue_dropped",
            "Items a bounded queue dropped",
            ["queue"],
            [([n], q.dropped) for n, q in queues],
        )

    def _stages(self, snap: Snapshot) -> Iterator[Metric]:
        window = GaugeMetricFamily(
            "tickhawk_stage_latency_window_seconds",
            "Stage latency percentiles over the sliding window",
            labels=["stage", "quantile"],
        )
        top = GaugeMetricFamily(
            "tickhawk_stage_latency_window_max_seconds",
            "Largest stage latency in the sliding window (of the timed events)",
            labels=["stage"],
        )
        events = GaugeMetricFamily(
            "tickhawk_stage_window_events",
            "Events the stage's window percentiles represent",
            labels=["stage"],
        )
        for stage, stats in snap.stages.items():
            for quantile, value in (
                ("0.5", stats.p50_us),
                ("0.9", stats.p90_us),
                ("0.99", stats.p99_us),
                ("0.999", stats.p999_us),
            ):
                window.add_metric([stage, quantile], value * _US)
            top.add_metric([stage], stats.max_us * _US)
            events.add_metric([stage], stats.count)
        yield window
        yield top
        yield events
        yield _gauge(
            "tickhawk_stage_sample_every",
            "Per-message stages time one message in this many (random gaps)",
            snap.sample_every,
        )
        if self.metrics is None:
            return
        histogram = HistogramMetricFamily(
            "tickhawk_stage_latency_seconds",
            "Stage latency since start (timed events, weighted)",
            labels=["stage"],
        )
        for stage, hist in self.metrics.stages.items():
            counts = hist.cumulative_counts()
            cumulative = counts.cumsum()
            total = int(cumulative[-1])
            buckets: list[tuple[str, float]] = []
            for bound, index in self._edges:
                below = int(cumulative[index - 1]) if index > 0 else 0
                buckets.append((repr(bound / 1e9), below))
            buckets.append(("+Inf", total))
            histogram.add_metric([stage], buckets, hist.total_sum_ns / 1e9)
        yield histogram
        yield _labelled(
            CounterMetricFamily,
            "tickhawk_signals_by_strategy",
            "Signals emitted, by strategy",
            ["strategy"],
            [([name], n) for name, n in self.metrics.signals_by_strategy.items()],
        )

    def _resources(self, snap: Snapshot) -> Iterator[Metric]:
        r = snap.resources
        yield _gauge("tickhawk_cpu_percent", "Process CPU, percent of one core", r.cpu_pct)
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_cpu_core_percent",
            "Machine CPU utilisation per core",
            ["core"],
            [([str(i)], v) for i, v in enumerate(r.cpu_per_core)],
        )
        yield _gauge("tickhawk_rss_bytes", "Resident set size", r.rss_mb * _MB)
        yield _gauge("tickhawk_uss_bytes", "Unique set size (not shared)", r.uss_mb * _MB)
        yield _gauge("tickhawk_heap_blocks", "Python allocated memory blocks", r.heap_blocks)
        if r.tracemalloc_mb is not None:
            yield _gauge("tickhawk_tracemalloc_bytes", "Traced Python heap", r.tracemalloc_mb * _MB)
        gens = range(len(r.gc_collections))
        yield _labelled(
            CounterMetricFamily,
            "tickhawk_gc_collections",
            "Garbage collections, by generation",
            ["generation"],
            [([str(g)], r.gc_collections[g]) for g in gens],
        )
        yield _labelled(
            CounterMetricFamily,
            "tickhawk_gc_pause_seconds",
            "Time spent in garbage collection, by generation",
            ["generation"],
            [([str(g)], v / 1000.0) for g, v in enumerate(r.gc_pause_total_ms_per_gen)],
        )
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_gc_pause_max_seconds",
            "Longest garbage-collection pause in the last second, by generation",
            ["generation"],
            [([str(g)], v / 1000.0) for g, v in enumerate(r.gc_pause_max_ms_per_gen)],
        )
        yield _gauge(
            "tickhawk_loop_lag_seconds", "Event-loop lag, last sample", r.loop_lag_ms / 1e3
        )
        yield _gauge(
            "tickhawk_loop_lag_max_seconds",
            "Worst event-loop lag in the last second",
            r.loop_lag_max_ms / 1e3,
        )
        if r.rss_slope_mb_h is not None:
            yield _gauge("tickhawk_rss_slope_mb_per_hour", "RSS trend", r.rss_slope_mb_h)
            yield _gauge(
                "tickhawk_rss_slope_low_mb_per_hour",
                "Lower confidence bound of the RSS trend",
                r.rss_slope_low_mb_h or 0.0,
            )
        yield _gauge("tickhawk_leak_suspected", "1 while a leak is suspected", r.leak_suspected)
        yield _gauge("tickhawk_threads", "Threads", r.threads)
        yield _gauge("tickhawk_open_fds", "Open file descriptors", r.open_fds)

    def _connections(self, snap: Snapshot) -> Iterator[Metric]:
        conns = snap.connections
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_connection_up",
            "1 while the WebSocket session is live",
            ["connection", "state"],
            [([c.name, c.state], c.state == "live") for c in conns],
        )
        for name, doc, attr in (
            ("connection_connects", "Connections established", "connects"),
            ("connection_reconnects", "Reconnections after a drop", "reconnects"),
            ("connection_frames", "Frames received", "frames"),
            ("connection_bytes", "Payload bytes received", "bytes"),
            (
                "connection_protocol_errors",
                "Connections closed on protocol errors",
                "protocol_errors",
            ),
            (
                "connection_stale_reconnects",
                "Reconnections of a silent connection",
                "stale_reconnects",
            ),
        ):
            yield _labelled(
                CounterMetricFamily,
                f"tickhawk_{name}",
                doc,
                ["connection"],
                [([c.name], getattr(c, attr)) for c in conns],
            )
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_connection_ping_rtt_seconds",
            "WebSocket ping round trip",
            ["connection"],
            [([c.name], c.ping_rtt_ms / 1e3) for c in conns if c.ping_rtt_ms is not None],
        )

    def _books(self, snap: Snapshot) -> Iterator[Metric]:
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_books",
            "Order books by state",
            ["state"],
            [([state], n) for state, n in snap.books.items()],
        )
        for name, doc, value in (
            ("book_gaps", "Breaks in book diff chains detected", snap.book_gaps),
            ("trade_gaps", "Jumps in trade ids seen", snap.trade_gaps),
            ("trades_backfilled", "Trades back-filled over REST", snap.trades_backfilled),
            ("backfill_failures", "Back-fills that failed", snap.backfill_failures),
            ("recoveries", "Recoveries after a drop", len(snap.recoveries_s)),
        ):
            yield CounterMetricFamily(f"tickhawk_{name}", doc, value=value)
        yield _gauge("tickhawk_trades_missing", "Trade ids still missing", snap.trades_missing)
        if snap.recoveries_s:
            yield _gauge(
                "tickhawk_last_recovery_seconds",
                "Drop → live and synced, the last time",
                snap.recoveries_s[-1],
            )
        yield _gauge("tickhawk_available_seconds", "Time every session was live", snap.available_s)

    def _alerts(self, snap: Snapshot) -> Iterator[Metric]:
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_alert_firing",
            "1 for each alert firing",
            ["alert", "severity"],
            [([a.name, a.severity], 1) for a in snap.alerts],
        )
        yield _gauge("tickhawk_alerts_firing", "Alerts firing", len(snap.alerts))
        yield CounterMetricFamily(
            "tickhawk_alert_events", "Alerts fired or resolved", value=snap.alert_events
        )
        yield CounterMetricFamily(
            "tickhawk_alert_webhook_failures",
            "Alert webhook POSTs that failed",
            value=snap.webhook_failures,
        )

    def _symbols(self, snap: Snapshot) -> Iterator[Metric]:
        rows = snap.symbols
        for name, doc, attr in (
            ("symbol_trades", "Trades applied, per symbol", "trades"),
            ("symbol_quotes", "Best bid/ask updates, per symbol", "quotes"),
            ("symbol_book_updates", "Book diffs received, per symbol", "book_updates"),
        ):
            yield _labelled(
                CounterMetricFamily,
                f"tickhawk_{name}",
                doc,
                ["symbol"],
                [([r.symbol], getattr(r, attr)) for r in rows],
            )
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_symbol_price",
            "Last trade price",
            ["symbol"],
            [([r.symbol], r.price) for r in rows],
        )
        yield _labelled(
            GaugeMetricFamily,
            "tickhawk_symbol_spread_bps",
            "Best ask minus best bid, basis points of the mid",
            ["symbol"],
            [([r.symbol], r.spread_bps) for r in rows],
        )


def _index_at(value: int) -> int:
    """Return the first histogram bucket whose values are all ≥ ``value`` (a bucket edge)."""
    for index in range(N_BUCKETS):
        low, _ = bucket_bounds(index)
        if low >= value:
            return index
    return N_BUCKETS


class MetricsServer:
    """Serve ``/metrics`` and ``/snapshot.json`` for ``source`` on ``host:port``."""

    def __init__(
        self,
        host: str,
        port: int,
        source: SnapshotSource,
        *,
        collector: SnapshotCollector,
        alerts: AlertEngine | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.source = source
        self.alerts = alerts
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.scrapes = 0
        self.render_s = 0.0  # time spent building /metrics responses
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    async def start(self) -> tuple[str, int]:
        """Bind and serve; return the bound address. Raise :class:`ListenError` on failure."""
        try:
            infos = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise ListenError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            hint = "; choose another port" if exc.errno in (98, 48, 10048) else ""
            raise ListenError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}{hint}"
            ) from None
        sock.setblocking(False)
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/snapshot.json", self._snapshot)
        app.router.add_get("/alerts.json", self._alerts)
        app.router.add_get("/debug/tracemalloc", self._tracemalloc)
        app.router.add_post("/debug/tracemalloc/{action}", self._tracemalloc_switch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        bound = sock.getsockname()
        self.address = (str(bound[0]), int(bound[1]))
        return self.address

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(
            text="tickhawk: /metrics (Prometheus), /snapshot.json[?symbols=1], /alerts.json, "
            "/debug/tracemalloc\n"
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        self.scrapes += 1
        began = time.perf_counter()
        body = generate_latest(self.registry)
        self.render_s += time.perf_counter() - began
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _snapshot(self, request: web.Request) -> web.Response:
        symbols = request.query.get("symbols", "0") not in ("0", "", "false", "no")
        body = msgspec.json.encode(self.source.snapshot(symbols=symbols))
        return web.Response(body=body, content_type="application/json")

    async def _alerts(self, request: web.Request) -> web.Response:
        events = list(self.alerts.history) if self.alerts is not None else []
        return web.Response(body=msgspec.json.encode(events), content_type="application/json")

    async def _tracemalloc(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            raise web.HTTPBadRequest(text="limit must be a whole number\n") from None
        body = msgspec.json.encode({"top": tracemalloc_top(max(1, min(limit, 500)))})
        return web.Response(body=body, content_type="application/json")

    async def _tracemalloc_switch(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action == "start":
            changed = start_tracemalloc()
        elif action == "stop":
            changed = stop_tracemalloc()
        else:
            raise web.HTTPNotFound(text="use /debug/tracemalloc/start or /stop\n")
        return web.json_response({"tracing": action == "start", "changed": changed})
