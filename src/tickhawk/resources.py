"""Resource control from ``[resources]``: CPU cores, niceness and the garbage collector.

The engine is the process's main thread: its event loop runs every frame
callback. :meth:`ResourceControl.apply` pins that thread to
``cpu_affinity`` and moves every other thread of the process to the cores
left over; a thread started later (an exporter) inherits the engine's cores
unless it calls :meth:`ResourceControl.keep_off_engine` first. ``nice`` sets every
thread's niceness. ``gc_thresholds`` replaces the collector's generation
thresholds, and ``gc_freeze_after_warmup`` moves every object alive once the
warm-up is done (the engine's states, indicators, compiled feeds) into the
permanent generation, so later collections never walk them again.

A setting this machine cannot honour (a core that does not exist or is not
allowed here, a priority that needs privileges) raises
:class:`~tickhawk.config.ConfigError` with one line naming the key.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from collections.abc import Iterable

from tickhawk.config import ConfigError, ResourcesConfig

__all__ = ["ResourceControl", "allowed_cores"]

_log = logging.getLogger("tickhawk.resources")


def allowed_cores() -> set[int]:
    """Return the cores this process may run on (all online cores when unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _threads() -> list[int]:
    """Return the kernel ids of this process's threads (Linux), else just this one."""
    try:
        return sorted(int(tid) for tid in os.listdir("/proc/self/task"))
    except OSError:
        return [threading.get_native_id()]


def _ranges(cores: Iterable[int]) -> str:
    """Return ``0-3,6`` for {0, 1, 2, 3, 6}."""
    spans: list[list[int]] = []
    for core in sorted(cores):
        if spans and core == spans[-1][1] + 1:
            spans[-1][1] = core
        else:
            spans.append([core, core])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans) or "none"


class ResourceControl:
    """Apply ``[resources]`` to this process at start; freeze the heap after warm-up."""

    def __init__(self, config: ResourcesConfig) -> None:
        self.config = config
        #: What was applied, for the log and the summary (``key: value`` lines).
        self.applied: list[str] = []
        #: Objects moved to the permanent generation by :meth:`after_warmup`.
        self.frozen = 0
        #: The cores of threads other than the engine's (empty: not pinned).
        self.other_cores: set[int] = set()
        self._previous_affinity: dict[int, set[int]] = {}
        self._previous_nice: dict[int, int] = {}
        self._previous_thresholds: tuple[int, int, int] | None = None

    def check(self) -> None:
        """Raise ConfigError if this machine cannot honour the settings (nothing changes)."""
        cores = self.config.cpu_affinity
        if not cores:
            return
        if not hasattr(os, "sched_setaffinity"):
            raise ConfigError(
                "resources.cpu_affinity: CPU pinning is not supported here; remove it"
            )
        allowed = allowed_cores()
        missing = sorted(set(cores) - allowed)
        if missing:
            raise ConfigError(
                f"resources.cpu_affinity: core {', '.join(map(str, missing))} is not available "
                f"to this process; use cores from {_ranges(allowed)}"
            )

    def apply(self) -> None:
        """Pin, renice and tune the collector; raise ConfigError on what cannot be done."""
        self.check()
        config = self.config
        try:
            if config.cpu_affinity:
                self._pin(set(config.cpu_affinity))
            if config.nice is not None:
                self._renice(config.nice)
        except ConfigError:
            self.restore()  # all or nothing
            raise
        if config.gc_thresholds:
            self._previous_thresholds = gc.get_threshold()
            thresholds = (
                list(config.gc_thresholds) + list(gc.get_threshold())[len(config.gc_thresholds) :]
            )
            gc.set_threshold(*thresholds)
            self.applied.append(f"gc_thresholds: {tuple(gc.get_threshold())}")
        if self.applied:
            _log.info("resources: %s", "; ".join(self.applied))

    def keep_off_engine(self) -> None:
        """Move the calling thread off the engine's cores (first thing in an auxiliary thread)."""
        if self.other_cores:
            os.sched_setaffinity(threading.get_native_id(), self.other_cores)

    def _pin(self, engine: set[int]) -> None:
        allowed = allowed_cores()
        others = (allowed - engine) or engine
        main = threading.main_thread().native_id
        for tid in _threads():
            cores = engine if tid == main else others
            try:
                self._previous_affinity[tid] = set(os.sched_getaffinity(tid))
                os.sched_setaffinity(tid, cores)
            except ProcessLookupError:
                continue  # the thread ended meanwhile
        self.other_cores = others
        self.applied.append(
            f"cpu_affinity: engine on {_ranges(engine)}, other threads on {_ranges(others)}"
        )

    def _renice(self, nice: int) -> None:
        for tid in _threads():
            try:
                previous = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            except ProcessLookupError:
                continue
            except PermissionError:
                now = os.getpriority(os.PRIO_PROCESS, 0)
                raise ConfigError(
                    f"resources.nice: {nice} needs root or CAP_SYS_NICE to raise the priority; "
                    f"use {now} or more"
                ) from None
            self._previous_nice[tid] = previous
        self.applied.append(f"nice: {nice}")

    def after_warmup(self) -> None:
        """Freeze every live object into the permanent generation (when configured)."""
        if not self.config.gc_freeze_after_warmup:
            return
        gc.collect()  # garbage frozen now would never be collected
        before = gc.get_freeze_count()
        gc.freeze()
        self.frozen = gc.get_freeze_count() - before
        _log.info("resources: froze %d objects after warm-up", self.frozen)

    def restore(self) -> None:
        """Undo what :meth:`apply` and :meth:`after_warmup` did (the run is over)."""
        if self.frozen:
            gc.unfreeze()
            self.frozen = 0
        if self._previous_thresholds is not None:
            gc.set_threshold(*self._previous_thresholds)
            self._previous_thresholds = None
        for tid, cores in self._previous_affinity.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cores)
        self._previous_affinity.clear()
        self.other_cores = set()
        for tid, nice in self._previous_nice.items():
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        self._previous_nice.clear()
