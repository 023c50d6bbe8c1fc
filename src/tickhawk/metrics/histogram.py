"""Latency histograms over a sliding time window, in bounded memory.

A value (ns) falls in a log-linear bucket: exact below 32 ns, then 16 buckets
per power of two, so a bucket is at most 1/16 of its values wide and a
percentile read from its middle is within ±3.2 % of the true value.
:meth:`SlidingHistogram.record` is a few integer operations and one list
increment; :meth:`SlidingHistogram.record_many` bins a numpy batch at once
(what the stage probe does with the samples it collected).

The window is a ring of one-second slots (numpy rows); the recording slot is
a plain list, folded into the ring by :meth:`SlidingHistogram.rotate`, which
the metrics task calls once a second. Memory is fixed: ``window_s`` × 544
int32 counts (about 130 kB for 60 s), whatever the message rate. A cumulative
copy since start feeds Prometheus's histogram type.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tickhawk.metrics.snapshot import StageStats

__all__ = [
    "MAX_NS",
    "N_BUCKETS",
    "SlidingHistogram",
    "bucket_bounds",
    "bucket_index",
    "percentiles_from_counts",
]

_SUB_BITS = 4  # 16 sub-buckets per power of two
_SUB = 1 << _SUB_BITS
_LINEAR = 2 * _SUB  # values below this have a bucket each
#: Values above this (about 137 s) share the last bucket.
MAX_NS = (1 << 37) - 1


def bucket_index(value: int) -> int:
    """Return the bucket of a non-negative ns value."""
    if value < _LINEAR:
        return value
    if value > MAX_NS:
        value = MAX_NS
    shift = value.bit_length() - _SUB_BITS - 1
    return (shift << _SUB_BITS) + (value >> shift)


N_BUCKETS = bucket_index(MAX_NS) + 1


def bucket_bounds(index: int) -> tuple[int, int]:
    """Return the lowest value and the width of bucket ``index``."""
    if index < _LINEAR:
        return index, 1
    shift = (index >> _SUB_BITS) - 1
    mantissa = index - (shift << _SUB_BITS)
    return mantissa << shift, 1 << shift


_LOW = np.array([bucket_bounds(i)[0] for i in range(N_BUCKETS)], dtype=np.float64)
_WIDTH = np.array([bucket_bounds(i)[1] for i in range(N_BUCKETS)], dtype=np.float64)
#: The value a bucket stands for: the middle of the integers it holds.
_MID = _LOW + (_WIDTH - 1) / 2


def bucket_indexes(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return the bucket of every value of a non-negative int64 array (vectorised)."""
    clipped = np.minimum(values, MAX_NS)
    # frexp gives v = m·2^e with 0.5 <= m < 1, so e is the bit length (exact below 2^53).
    _, bit_length = np.frexp(clipped.astype(np.float64))
    shift = np.maximum(bit_length.astype(np.int64) - _SUB_BITS - 1, 0)
    indexes: npt.NDArray[np.int64] = np.where(
        clipped < _LINEAR, clipped, (shift << _SUB_BITS) + (clipped >> shift)
    )
    return indexes


def percentiles_from_counts(
    counts: npt.NDArray[np.int64], qs: tuple[float, ...], max_ns: int
) -> list[float]:
    """Return the ``qs`` percentiles (0-100) of bucket ``counts`` in ns, capped at ``max_ns``.

    A percentile is the smallest bucket whose cumulative count reaches
    ``q``% of the total (numpy's ``inverted_cdf``), read at its middle.
    """
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1]) if len(cumulative) else 0
    if total == 0:
        return [0.0] * len(qs)
    ranks = np.array([max(q / 100.0 * total, 1e-9) for q in qs])
    indexes = np.searchsorted(cumulative, ranks, side="left")
    return [float(min(_MID[min(int(i), N_BUCKETS - 1)], max_ns)) for i in indexes]


class SlidingHistogram:
    """Latency samples (ns) of the last ``window_s`` seconds, plus totals since start.

    :meth:`record` adds a sample with a weight (the number of events it
    stands for); :meth:`rotate` closes the current one-second slot.
    """

    __slots__ = (
        "_current",
        "_current_max",
        "_current_samples",
        "_head",
        "_slot_max",
        "_slot_samples",
        "_slots",
        "negative",
        "total_count",
        "total_counts",
        "total_sum_ns",
        "window_s",
    )

    def __init__(self, window_s: int = 60) -> None:
        if window_s < 1:
            raise ValueError("window_s must be at least 1")
        self.window_s = window_s
        self._current = [0] * N_BUCKETS
        self._current_max = 0
        self._current_samples = 0
        self._slots = np.zeros((window_s, N_BUCKETS), dtype=np.int32)
        self._slot_max = np.zeros(window_s, dtype=np.int64)
        self._slot_samples = np.zeros(window_s, dtype=np.int64)
        self._head = 0
        self.total_counts = np.zeros(N_BUCKETS, dtype=np.int64)
        self.total_count = 0
        self.total_sum_ns = 0
        #: Samples below zero (recorded as 0): clock skew on ``event_to_recv``.
        self.negative = 0

    def record(self, value: int, weight: int = 1) -> None:
        """Add one sample of ``value`` ns standing for ``weight`` events."""
        if value < _LINEAR:
            if value < 0:
                self.negative += 1
                value = 0
            index = value
        else:
            if value > MAX_NS:
                value = MAX_NS
            shift = value.bit_length() - _SUB_BITS - 1
            index = (shift << _SUB_BITS) + (value >> shift)
        self._current[index] += weight
        self._current_samples += 1
        if value > self._current_max:
            self._current_max = value
        self.total_sum_ns += value * weight

    def record_many(self, values: npt.NDArray[np.int64], weights: npt.NDArray[np.int64]) -> None:
        """Add a batch of samples (ns) with their weights."""
        if not len(values):
            return
        negative = values < 0
        if negative.any():
            self.negative += int(negative.sum())
            values = np.where(negative, 0, values)
        values = np.minimum(values, MAX_NS)
        counts = np.bincount(bucket_indexes(values), weights=weights, minlength=N_BUCKETS)
        current = self._current
        for index in np.flatnonzero(counts).tolist():
            current[index] += int(counts[index])
        self._current_samples += len(values)
        top = int(values.max())
        if top > self._current_max:
            self._current_max = top
        self.total_sum_ns += int((values * weights).sum())

    def rotate(self) -> None:
        """Close the current slot: it joins the window, the oldest slot leaves it."""
        head = self._head
        counts = np.array(self._current, dtype=np.int64)
        self._slots[head] = counts
        self._slot_max[head] = self._current_max
        self._slot_samples[head] = self._current_samples
        self._head = (head + 1) % self.window_s
        self.total_counts += counts
        self.total_count += int(counts.sum())
        self._current = [0] * N_BUCKETS
        self._current_max = 0
        self._current_samples = 0

    def window_counts(self) -> npt.NDArray[np.int64]:
        """Return the bucket counts of the window, the current slot included."""
        counts: npt.NDArray[np.int64] = self._slots.sum(axis=0, dtype=np.int64)
        counts += np.array(self._current, dtype=np.int64)
        return counts

    def cumulative_counts(self) -> npt.NDArray[np.int64]:
        """Return the bucket counts since start, the current slot included."""
        counts: npt.NDArray[np.int64] = self.total_counts + np.array(self._current, dtype=np.int64)
        return counts

    def window_max(self) -> int:
        """Return the largest sample (ns) in the window."""
        return max(int(self._slot_max.max()), self._current_max)

    def stats(self) -> StageStats:
        """Return count, p50/p90/p99/p99.9 and max of the window (µs)."""
        counts = self.window_counts()
        count = int(counts.sum())
        samples = int(self._slot_samples.sum()) + self._current_samples
        if count == 0:
            return StageStats(window_s=float(self.window_s), negative=self.negative)
        top = self.window_max()
        p50, p90, p99, p999 = percentiles_from_counts(counts, (50, 90, 99, 99.9), top)
        return StageStats(
            count=count,
            p50_us=p50 / 1000.0,
            p90_us=p90 / 1000.0,
            p99_us=p99 / 1000.0,
            p999_us=p999 / 1000.0,
            max_us=top / 1000.0,
            samples=samples,
            window_s=float(self.window_s),
            negative=self.negative,
        )
