"""Latency histograms with logarithmic buckets, mergeable: any window gets its own percentiles.

The engine child counts latencies into buckets 2 % wide (1 µs to about 80 s)
and sends the buckets that changed each second; the runner adds seconds up
to get the percentiles of a step, a phase or the whole run, which averaging
per-second percentiles cannot give.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["BUCKETS", "LogHistogram", "bucket_of", "bucket_value"]

_GROWTH = 1.02
_LOG_GROWTH = math.log(_GROWTH)
#: 1 µs · 1.02^919 ≈ 80 s: every latency a run can see.
BUCKETS = 920


def bucket_of(value_us: float) -> int:
    """Return the bucket of a latency in µs (below 1 µs: bucket 0; beyond the top: the last)."""
    if value_us <= 1.0:
        return 0
    return min(BUCKETS - 1, int(math.log(value_us) / _LOG_GROWTH))


def bucket_value(index: int) -> float:
    """Return the value reported for bucket ``index``: its upper edge (µs), never too low."""
    return float(_GROWTH ** (index + 1))


class LogHistogram:
    """Counts per bucket; ``add`` in the child, ``merge`` and ``percentile`` in the runner."""

    __slots__ = ("counts", "max_us", "total")

    def __init__(self) -> None:
        self.counts: npt.NDArray[np.int64] = np.zeros(BUCKETS, dtype=np.int64)
        self.total = 0
        self.max_us = 0.0

    def add(self, value_us: float) -> None:
        """Count one latency (µs)."""
        self.counts[bucket_of(value_us)] += 1
        self.total += 1
        if value_us > self.max_us:
            self.max_us = value_us

    def merge(self, buckets: dict[int, int], max_us: float = 0.0) -> None:
        """Add sparse bucket counts (as :meth:`take` returns them)."""
        for index, count in buckets.items():
            if 0 <= index < BUCKETS:
                self.counts[index] += count
                self.total += count
        self.max_us = max(self.max_us, max_us)

    def take(self) -> tuple[dict[int, int], float]:
        """Return the non-empty buckets and the maximum, then reset (the per-second delta)."""
        nonzero = np.flatnonzero(self.counts)
        buckets = {int(i): int(self.counts[i]) for i in nonzero}
        top = self.max_us
        self.counts[nonzero] = 0
        self.total = 0
        self.max_us = 0.0
        return buckets, top

    def percentile(self, q: float) -> float | None:
        """Return the ``q`` percentile (0-100) in µs, the maximum for 100; None when empty."""
        if self.total == 0:
            return None
        if q >= 100.0:
            return self.max_us
        rank = max(1, math.ceil(self.total * q / 100.0))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        # The bucket's upper edge, but never above the largest value seen.
        return min(bucket_value(index), self.max_us) if self.max_us else bucket_value(index)
