"""Latency samples over a sliding window, with percentiles on demand."""

from __future__ import annotations

import numpy as np

__all__ = ["LatencyWindow"]


class LatencyWindow:
    """Keep the last ``capacity`` latency samples (ns) in a preallocated array."""

    __slots__ = ("_next", "_samples", "capacity", "count", "max_ns")

    def __init__(self, capacity: int = 65536) -> None:
        self.capacity = capacity
        # Written in full now (np.zeros would leave its pages to the kernel until a
        # sample lands there): the memory is resident from the start instead of RSS
        # creeping while the window fills (65,536 signals take 20 minutes at 50 a second).
        self._samples = np.full(capacity, 0, dtype=np.int64)
        self._next = 0
        self.count = 0
        self.max_ns = 0

    def add(self, latency_ns: int) -> None:
        """Record one sample."""
        self._samples[self._next] = latency_ns
        self._next = (self._next + 1) % self.capacity
        self.count += 1
        if latency_ns > self.max_ns:
            self.max_ns = latency_ns

    def percentiles(self, *qs: float) -> list[float]:
        """Return the given percentiles (0-100) of the window in microseconds; NaN if empty."""
        size = min(self.count, self.capacity)
        if size == 0:
            return [float("nan")] * len(qs)
        values = np.percentile(self._samples[:size], list(qs))
        return [float(v) / 1000.0 for v in values]
