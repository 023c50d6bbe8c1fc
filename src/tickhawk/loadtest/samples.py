"""Per-second samples of a load test, and figures over a window of them.

A :class:`Sample` is built when the engine child's second arrives, from that
line, the simulator child's latest line and psutil readings of both child
processes taken by the runner. Latency histograms stay beside the samples
(:class:`SampleLog`) so a window's percentiles are computed from its counts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import msgspec

from tickhawk.loadtest.histogram import LogHistogram
from tickhawk.loadtest.sockets import SocketQueues
from tickhawk.loadtest.wire import EngineTick, SimTick

__all__ = ["Sample", "SampleLog", "Usage", "Window", "least_squares_slope"]


class Usage(msgspec.Struct, frozen=True):
    """One process since the previous reading: CPU and run-queue wait (% of one core), RSS (MB).

    ``wait_pct`` is the time its main thread was ready to run but waited for a
    core (``/proc/PID/schedstat``): other work on a shared machine shows there.
    """

    cpu_pct: float
    rss_mb: float
    wait_pct: float | None = None


class Sample(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One second of a run."""

    t: float  # seconds since the run started
    phase: str
    symbols: int
    asked: float  # delivered msg/s asked for (0: none)
    model_rate: float  # the simulator's model rate (trade + aggTrade + bookTicker)
    sent: float  # msg/s the simulator wrote
    delivered: float  # msg/s the engine decoded
    signals: int
    signal_p50_us: float | None = None
    signal_p99_us: float | None = None
    signal_p999_us: float | None = None
    signal_max_us: float | None = None
    ws_p50_us: float | None = None
    ws_p99_us: float | None = None
    ws_max_us: float | None = None
    cpu_pct: float
    rss_mb: float
    wait_pct: float | None = None  # engine ready to run, waiting for its core (% of the second)
    sim_cpu_pct: float
    sim_wait_pct: float | None = None
    sim_rss_mb: float
    gc_collections: int
    gc_pause_max_ms: float
    gc_pause_ms: float
    backlog_ms: float | None = None
    engine_rx_kb: float | None = None  # arrived, not read by the engine yet (its socket queue)
    sim_tx_kb: float | None = None  # held in the simulator's socket by the engine's full window
    sim_lag_ms: int
    rejects: int
    drops: int  # slow-consumer disconnects by the simulator
    reconnects: int
    sessions: str
    stale_reconnects: int = 0  # of the reconnects, forced by the stale-stream watchdog
    books_live: int
    books_total: int
    book_gaps: int
    trades_missing: int


def _kb(size: int | None) -> float | None:
    return round(size / 1024, 1) if size is not None else None


def _delta(now: int, before: int) -> int:
    return max(0, now - before)


class SampleLog:
    """Samples with their latency histograms; builds a sample from two child lines."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.signal_hists: list[tuple[dict[int, int], float]] = []
        self.state_hists: list[tuple[dict[int, int], float]] = []
        self.backlog_fine: list[tuple[float, float]] = []  # (t, ms)
        self._engine: EngineTick | None = None
        self._sim: SimTick | None = None
        self._sim_before: SimTick | None = None
        self._drops = 0  # slow-consumer disconnects counted up to the last sample

    def on_sim(self, tick: SimTick) -> None:
        """Remember the simulator's latest second."""
        self._sim_before, self._sim = self._sim, tick

    def _backlog(self, raw_ms: float | None) -> float | None:
        """Return the engine's backlog: receive − event time, less the simulator's offset.

        The simulated clock starts a little behind the wall clock (it is anchored
        before the servers start) and falls further behind when the simulator
        cannot keep up; neither is the engine's doing.
        """
        if raw_ms is None:
            return None
        behind = self._sim.behind_ms if self._sim is not None else 0.0
        return round(max(0.0, raw_ms - behind), 2)

    def sim_rate(self) -> float:
        """Return the simulator's msgs/s over its last second."""
        now, before = self._sim, self._sim_before
        if now is None or before is None or now.mono <= before.mono:
            return 0.0
        return (now.messages_sent - before.messages_sent) / (now.mono - before.mono)

    def add(
        self,
        tick: EngineTick,
        *,
        t: float,
        origin: float,
        phase: str,
        asked: float,
        engine: Usage,
        sim: Usage,
        queues: SocketQueues | None = None,
    ) -> Sample:
        """Build, keep and return the sample of the engine's second ``tick``."""
        before = self._engine
        self._engine = tick
        elapsed = tick.mono - before.mono if before is not None else 1.0
        sim_tick = self._sim
        signal = LogHistogram()
        signal.merge(tick.signal_hist, tick.signal_max_us)
        state = LogHistogram()
        state.merge(tick.state_hist, tick.state_max_us)
        self.signal_hists.append((tick.signal_hist, tick.signal_max_us))
        self.state_hists.append((tick.state_hist, tick.state_max_us))
        self.backlog_fine += [
            (mono - origin, backlog)
            for mono, ms in tick.backlog_fine
            if (backlog := self._backlog(ms)) is not None
        ]
        drops = sim_tick.slow_disconnects if sim_tick is not None else self._drops
        drops, self._drops = drops - self._drops, drops
        sample = Sample(
            t=round(t, 3),
            phase=phase,
            symbols=tick_symbols(tick),
            asked=asked,
            model_rate=sim_tick.rate if sim_tick is not None else 0.0,
            sent=round(self.sim_rate(), 1),
            delivered=round(
                (tick.messages - (before.messages if before is not None else 0))
                / max(elapsed, 1e-3),
                1,
            ),
            signals=tick.signals - (before.signals if before is not None else 0),
            signal_p50_us=signal.percentile(50),
            signal_p99_us=signal.percentile(99),
            signal_p999_us=signal.percentile(99.9),
            signal_max_us=signal.percentile(100),
            ws_p50_us=state.percentile(50),
            ws_p99_us=state.percentile(99),
            ws_max_us=state.percentile(100),
            cpu_pct=round(engine.cpu_pct, 2),
            rss_mb=round(engine.rss_mb, 2),
            wait_pct=round(engine.wait_pct, 2) if engine.wait_pct is not None else None,
            sim_cpu_pct=round(sim.cpu_pct, 2),
            sim_wait_pct=round(sim.wait_pct, 2) if sim.wait_pct is not None else None,
            sim_rss_mb=round(sim.rss_mb, 2),
            gc_collections=tick.gc_collections,
            gc_pause_max_ms=round(tick.gc_pause_max_ms, 3),
            gc_pause_ms=round(tick.gc_pause_ms, 3),
            backlog_ms=self._backlog(tick.backlog_ms),
            engine_rx_kb=_kb(queues.engine_rx) if queues is not None else None,
            sim_tx_kb=_kb(queues.sim_tx) if queues is not None else None,
            sim_lag_ms=sim_tick.lag_ms if sim_tick is not None else 0,
            rejects=_delta(tick.rejected, before.rejected if before is not None else 0),
            drops=max(0, drops),
            reconnects=_delta(tick.reconnects, before.reconnects if before is not None else 0),
            stale_reconnects=_delta(
                tick.stale_reconnects, before.stale_reconnects if before is not None else 0
            ),
            sessions=",".join(tick.sessions),
            books_live=tick.books_live,
            books_total=tick.books_total,
            book_gaps=tick.book_gaps,
            trades_missing=tick.trades_missing,
        )
        self.samples.append(sample)
        return sample

    def window(self, start: int, end: int | None = None) -> Window:
        """Return the figures of samples ``start:end``."""
        return Window(self, start, len(self.samples) if end is None else end)


def tick_symbols(tick: EngineTick) -> int:
    """Return the symbols the engine follows (its books, one per symbol)."""
    return tick.books_total


class Window:
    """Figures over a slice of a :class:`SampleLog`."""

    def __init__(self, log: SampleLog, start: int, end: int) -> None:
        self._log = log
        self._start = start
        self.samples = log.samples[start:end]
        self.signal = LogHistogram()
        self.state = LogHistogram()
        for buckets, top in log.signal_hists[start:end]:
            self.signal.merge(buckets, top)
        for buckets, top in log.state_hists[start:end]:
            self.state.merge(buckets, top)

    def __len__(self) -> int:
        return len(self.samples)

    def sub(self, start: int, end: int) -> Window:
        """Return the window of this window's samples ``start:end``."""
        end = min(end, len(self.samples))
        return Window(self._log, self._start + start, self._start + end)

    def mean(self, name: str) -> float | None:
        """Return the mean of a numeric sample field over the window (None if no values)."""
        values = [getattr(s, name) for s in self.samples if getattr(s, name) is not None]
        return statistics.fmean(values) if values else None

    def peak(self, name: str) -> float | None:
        """Return the largest value of a sample field over the window."""
        values = [getattr(s, name) for s in self.samples if getattr(s, name) is not None]
        return max(values) if values else None

    def total(self, name: str) -> int:
        """Return the sum of an integer sample field (deltas) over the window."""
        return int(sum(getattr(s, name) for s in self.samples))

    def slope(self, name: str) -> float | None:
        """Return the least-squares slope of a field per second over the window."""
        points = [(s.t, getattr(s, name)) for s in self.samples if getattr(s, name) is not None]
        return least_squares_slope(points)


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Return the least-squares slope of ``(x, y)`` points (None with fewer than 3)."""
    if len(points) < 3:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0 or not math.isfinite(spread):
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
