"""Everything a live app measures about itself off the hot path, in one task.

:class:`Monitor` owns the stage :class:`~tickhawk.metrics.registry.Metrics`,
the resource, GC and loop-lag samplers, the leak detectors, the alert engine
and (when asked) the HTTP exporter. Once a second it closes the latency
windows, samples resources, takes the engine's snapshot and evaluates the
alerts; :meth:`fill` completes any snapshot with what it measured.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from tickhawk.metrics.alerts import AlertEngine
from tickhawk.metrics.leak import LeakDetector
from tickhawk.metrics.prometheus import MetricsServer, SnapshotCollector, SnapshotSource
from tickhawk.metrics.registry import Metrics
from tickhawk.metrics.resources import GcMonitor, LoopLag, ResourceSample, ResourceSampler
from tickhawk.metrics.settings import RULES, AlertsConfig, MetricsConfig, parse_listen
from tickhawk.metrics.snapshot import QueueStats, Resources, Snapshot

if TYPE_CHECKING:
    from tickhawk.engine import Engine

__all__ = ["Monitor"]

_TICK_S = 1.0


class Monitor:
    """Measure the engine, sample the process, raise alerts, serve the exporter.

    ``venue`` labels the exported series; ``symbols`` (the run's symbol count)
    decides whether per-symbol series are exported.
    """

    def __init__(
        self,
        metrics: MetricsConfig | None = None,
        alerts: AlertsConfig | None = None,
        *,
        venue: str = "",
        symbols: int = 0,
        seed: int | None = None,
    ) -> None:
        self.config = metrics or MetricsConfig()
        self.venue = venue
        self.symbols = symbols
        config = self.config
        self.metrics = Metrics(
            window_s=config.window_s,
            samples_per_s=config.samples_per_s,
            sample_every=config.sample_every,
            seed=seed,
        )
        self.gc = GcMonitor()
        self.lag = LoopLag()
        self.sampler = ResourceSampler(uss_every_s=config.uss_every_s)
        self.alerts = AlertEngine(alerts or AlertsConfig())
        leak_rule = self.alerts.rule("leak")
        threshold = leak_rule.threshold if leak_rule is not None else RULES["leak"].threshold
        leak = config.leak
        self.rss_leak, self.heap_leak = (
            LeakDetector(
                threshold_mb_h=threshold,
                warmup_s=leak.warmup_s,
                window_s=leak.window_s,
                sustain_s=leak.sustain_s,
                every_s=leak.every_s,
            )
            for _ in range(2)
        )
        self.server: MetricsServer | None = None
        self.address: tuple[str, int] | None = None
        self.ticks = 0
        self._sample = ResourceSample()
        self._gc_max_ns: list[int] = []
        self._lag_max_s = 0.0
        webhook = self.alerts.webhook
        if webhook is not None:
            self.metrics.register_queue(
                "alert_webhook",
                lambda: QueueStats(
                    depth=webhook.depth, capacity=webhook.queue_size, dropped=webhook.dropped
                ),
            )

    # -- life cycle ---------------------------------------------------------------

    async def start(self, source: SnapshotSource) -> None:
        """Install the GC hook; serve the exporter if ``listen`` is set (may raise ListenError)."""
        self.gc.install()
        if self.config.listen is None:
            return
        host, port = parse_listen(self.config.listen)
        collector = SnapshotCollector(
            source,
            metrics=self.metrics,
            symbols=self.symbols,
            symbol_labels=self.config.symbol_labels,
        )
        self.server = MetricsServer(host, port, source, collector=collector, alerts=self.alerts)
        try:
            self.address = await self.server.start()
        except Exception:
            self.gc.remove()
            self.server = None
            raise

    async def stop(self) -> None:
        """Stop serving and remove the GC hook."""
        self.gc.remove()
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def run(self, source: SnapshotSource) -> None:
        """Measure until cancelled: loop lag, the once-a-second tick, the alert webhook."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.lag.run())
            if self.alerts.webhook is not None:
                group.create_task(self.alerts.webhook.run())
            group.create_task(self._ticks(source))

    async def _ticks(self, source: SnapshotSource) -> None:
        loop = asyncio.get_running_loop()
        self.tick(source)  # a first reading: CPU and rates are measured from here
        due = loop.time() + _TICK_S
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            due = due + _TICK_S if now - due < _TICK_S else now + _TICK_S
            self.tick(source)

    def tick(self, source: SnapshotSource, now: float | None = None) -> Snapshot:
        """Do one second's work; return the snapshot the alerts were evaluated on."""
        now = time.monotonic() if now is None else now
        self.ticks += 1
        self._sample = self.sampler.sample()
        self._gc_max_ns = self.gc.take_interval_max()
        self._lag_max_s = self.lag.take_max()
        self.rss_leak.add(now, self._sample.rss_mb)
        if self._sample.tracemalloc_mb is not None:
            self.heap_leak.add(now, self._sample.tracemalloc_mb)
        snap = source.snapshot()
        self.metrics.tick(now, snap.messages, snap.trades)
        snap.msgs_per_s = self.metrics.msgs_per_s
        snap.trades_per_s = self.metrics.trades_per_s
        self.alerts.evaluate(snap, now)
        snap.alerts = self.alerts.firing()
        snap.alert_events = self.alerts.events
        return snap

    # -- the snapshot ---------------------------------------------------------------

    def resources(self) -> Resources:
        """Return the latest resource figures."""
        sample = self._sample
        gc = self.gc
        rss_trend = self.rss_leak.trend
        heap_trend = self.heap_leak.trend
        return Resources(
            cpu_pct=round(sample.cpu_pct, 2),
            cpu_per_core=sample.cpu_per_core,
            rss_mb=round(sample.rss_mb, 2),
            uss_mb=round(sample.uss_mb, 2),
            gc_collections=list(gc.collections),
            gc_pause_max_ms=max(self._gc_max_ns, default=0) / 1e6,
            gc_pause_total_ms=sum(gc.pause_total_ns) / 1e6,
            loop_lag_ms=self.lag.last_s * 1e3,
            loop_lag_max_ms=self._lag_max_s * 1e3,
            rss_slope_mb_h=rss_trend.slope_per_h if rss_trend is not None else None,
            rss_slope_low_mb_h=rss_trend.low_per_h if rss_trend is not None else None,
            leak_suspected=self.rss_leak.suspected or self.heap_leak.suspected,
            gc_pause_total_ms_per_gen=[ns / 1e6 for ns in gc.pause_total_ns],
            gc_pause_max_ms_per_gen=[ns / 1e6 for ns in self._gc_max_ns],
            heap_blocks=sample.heap_blocks,
            tracemalloc_mb=sample.tracemalloc_mb,
            tracemalloc_peak_mb=sample.tracemalloc_peak_mb,
            tracemalloc_slope_mb_h=heap_trend.slope_per_h if heap_trend is not None else None,
            threads=sample.threads,
            open_fds=sample.open_fds,
        )

    def fill(self, snap: Snapshot, engine: Engine) -> None:
        """Complete ``snap`` with stages, rates, resources, alerts and the engine's totals."""
        metrics = self.metrics
        snap.venue = self.venue
        snap.stages = metrics.stage_stats()
        snap.msgs_per_s = metrics.msgs_per_s
        snap.trades_per_s = metrics.trades_per_s
        snap.sample_every = float(metrics.probe.mean_gap)
        snap.resources = self.resources()
        snap.alerts = self.alerts.firing()
        snap.alert_events = self.alerts.events
        webhook = self.alerts.webhook
        snap.webhook_failures = webhook.failures if webhook is not None else 0
        newest = 0
        quotes = book_updates = duplicate_trades = duplicate_diffs = 0
        buffered = buffer_capacity = overflow = 0
        for state in engine.states.values():
            quotes += state.quotes
            book_updates += state.book_updates
            duplicate_trades += state.duplicate_trades
            ring = state.trades
            if ring.count:
                newest = max(newest, ring.ts_event[ring.next - 1])
            if state.quote is not None:
                newest = max(newest, state.quote.ts_event)
            if state.last_book is not None:
                newest = max(newest, state.last_book.ts_event)
            sync = state.book_sync
            if sync is not None:
                duplicate_diffs += sync.duplicates
                buffered += len(sync.buffer)
                buffer_capacity += sync.buffer_limit
                overflow += sync.transitions.get("buffer_overflow", 0)
        snap.quotes = quotes
        snap.book_updates = book_updates
        if newest:
            snap.backlog_ms = round(snap.ts * 1e3 - newest / 1e6, 3)
        snap.drops = {
            "duplicate_trade": duplicate_trades,
            "duplicate_book_diff": duplicate_diffs,
            "book_buffer_overflow": overflow,
        }
        queues = metrics.queue_stats()
        if buffer_capacity:
            queues["book_buffer"] = QueueStats(
                depth=buffered, capacity=buffer_capacity, dropped=overflow
            )
        snap.queues = queues
