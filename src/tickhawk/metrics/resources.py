"""Process resource samplers, run off the hot path by the metrics task.

- CPU: the process's CPU time over the last interval as a percentage of one
  core (psutil), and the machine's per-core utilisation.
- Memory: RSS every sample; USS (memory not shared with any other process,
  what the process would give back if it exited) every ``uss_every_s``,
  because reading it walks ``/proc/<pid>/smaps`` and costs milliseconds.
- Python heap: ``sys.getallocatedblocks()`` always (free), and the traced
  heap when tracemalloc is on (:func:`start_tracemalloc` or PYTHONTRACEMALLOC).
- GC: collections and pause durations per generation, timed by a
  ``gc.callbacks`` hook (:class:`GcMonitor`).
- Event-loop lag: how late a periodic timer fires (:class:`LoopLag`).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from time import perf_counter_ns
from typing import Any

import psutil

__all__ = [
    "GcMonitor",
    "LoopLag",
    "ResourceSample",
    "ResourceSampler",
    "start_tracemalloc",
    "stop_tracemalloc",
    "tracemalloc_top",
]

_MB = 1024 * 1024


class GcMonitor:
    """Count collections and time their pauses per generation, via ``gc.callbacks``.

    The hook runs inside the collector (twice per collection); it takes a
    clock reading and a few integer updates, nothing that allocates.
    """

    def __init__(self) -> None:
        generations = len(gc.get_count())
        self.collections = [0] * generations
        self.collected = [0] * generations
        self.uncollectable = [0] * generations
        self.pause_total_ns = [0] * generations
        self.pause_max_ns = [0] * generations  # since the last take_interval()
        self._started = 0
        self._installed = False

    def install(self) -> None:
        """Start timing collections."""
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def remove(self) -> None:
        """Stop timing collections."""
        if self._installed:
            gc.callbacks.remove(self._callback)
            self._installed = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = perf_counter_ns()
            return
        pause = perf_counter_ns() - self._started
        generation = min(int(info.get("generation", 0)), len(self.collections) - 1)
        self.collections[generation] += 1
        self.collected[generation] += int(info.get("collected", 0))
        self.uncollectable[generation] += int(info.get("uncollectable", 0))
        self.pause_total_ns[generation] += pause
        if pause > self.pause_max_ns[generation]:
            self.pause_max_ns[generation] = pause

    def take_interval_max(self) -> list[int]:
        """Return the worst pause per generation since the last call, and start anew."""
        worst = self.pause_max_ns
        self.pause_max_ns = [0] * len(worst)
        return worst


class LoopLag:
    """Measure how late the event loop runs a timer: the lag every callback suffers.

    :meth:`run` sleeps ``period_s`` again and again; whatever it oversleeps is
    time the loop spent on other work (or blocked) before it could run.
    """

    def __init__(self, period_s: float = 0.1) -> None:
        self.period_s = period_s
        self.last_s = 0.0
        self.max_s = 0.0  # since the last take_max()
        self.samples = 0

    def record(self, lag_s: float) -> None:
        """Record one measured lag (negative readings are timer granularity: 0)."""
        lag = max(0.0, lag_s)
        self.last_s = lag
        self.samples += 1
        if lag > self.max_s:
            self.max_s = lag

    def take_max(self) -> float:
        """Return the worst lag since the last call, and start anew."""
        worst = self.max_s
        self.max_s = self.last_s
        return worst

    async def run(self) -> None:
        """Measure until cancelled."""
        loop = asyncio.get_running_loop()
        period = self.period_s
        while True:
            start = loop.time()
            await asyncio.sleep(period)
            self.record(loop.time() - start - period)


class ResourceSample:
    """One reading of the process's resources (sizes in MB, CPU in %)."""

    __slots__ = (
        "cpu_pct",
        "cpu_per_core",
        "heap_blocks",
        "open_fds",
        "rss_mb",
        "threads",
        "tracemalloc_mb",
        "tracemalloc_peak_mb",
        "uss_mb",
    )

    def __init__(self) -> None:
        self.cpu_pct = 0.0
        self.cpu_per_core: list[float] = []
        self.rss_mb = 0.0
        self.uss_mb = 0.0
        self.heap_blocks = 0
        self.tracemalloc_mb: float | None = None
        self.tracemalloc_peak_mb: float | None = None
        self.threads = 0
        self.open_fds = 0


class ResourceSampler:
    """Read CPU, memory and heap figures of this process; call :meth:`sample` on a timer."""

    def __init__(self, *, uss_every_s: float = 10.0, pid: int | None = None) -> None:
        self.uss_every_s = uss_every_s
        self._pid = pid
        self._process: psutil.Process | None = None
        self._cpu_last: tuple[float, float] | None = None
        self._uss_at = -float("inf")
        self.last = ResourceSample()

    def _proc(self) -> psutil.Process:
        if self._process is None:  # not in __init__: constructors do no I/O
            self._process = psutil.Process(self._pid)
            psutil.cpu_percent(percpu=True)  # the first per-core reading is meaningless
        return self._process

    def sample(self) -> ResourceSample:
        """Take a reading now; CPU is over the time since the previous reading."""
        process = self._proc()
        out = ResourceSample()
        now = time.monotonic()
        with process.oneshot():
            times = process.cpu_times()
            cpu = times.user + times.system
            if self._cpu_last is not None and now > self._cpu_last[0]:
                out.cpu_pct = 100.0 * (cpu - self._cpu_last[1]) / (now - self._cpu_last[0])
            self._cpu_last = (now, cpu)
            out.rss_mb = process.memory_info().rss / _MB
            out.threads = process.num_threads()
            if hasattr(process, "num_fds"):
                out.open_fds = process.num_fds()
        out.cpu_per_core = [float(v) for v in psutil.cpu_percent(percpu=True)]
        if now - self._uss_at >= self.uss_every_s:
            self._uss_at = now
            try:
                out.uss_mb = process.memory_full_info().uss / _MB
            except (psutil.AccessDenied, AttributeError):
                out.uss_mb = 0.0
        else:
            out.uss_mb = self.last.uss_mb
        out.heap_blocks = sys.getallocatedblocks()
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            out.tracemalloc_mb = current / _MB
            out.tracemalloc_peak_mb = peak / _MB
        self.last = out
        return out


def start_tracemalloc(frames: int = 1) -> bool:
    """Start tracing Python allocations (slows allocation down); False if already on."""
    if tracemalloc.is_tracing():
        return False
    tracemalloc.start(frames)
    return True


def stop_tracemalloc() -> bool:
    """Stop tracing Python allocations and free the traces; False if it was off."""
    if not tracemalloc.is_tracing():
        return False
    tracemalloc.stop()
    return True


def tracemalloc_top(limit: int = 20) -> list[dict[str, Any]]:
    """Return the ``limit`` source lines holding the most traced memory (empty when off)."""
    if not tracemalloc.is_tracing():
        return []
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )
    out = []
    for stat in snapshot.statistics("lineno")[:limit]:
        frame = stat.traceback[0]
        out.append(
            {
                "file": frame.filename or "?",
                "line": frame.lineno,
                "kb": round(stat.size / 1024, 1),
                "blocks": stat.count,
            }
        )
    return out
