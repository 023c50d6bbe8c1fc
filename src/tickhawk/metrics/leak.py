"""Leak detection: the trend of memory over time, with a confidence bound.

A process that leaks grows steadily; one that does not wobbles around a level
(allocator arenas, GC cycles, buffers filling to their bound). The detector
fits a least-squares line to the samples of the last ``window_s`` (after a
warm-up in which buffers legitimately fill), and calls a leak *suspected*
only when the lower confidence bound of the slope — over the whole window
and over each of its halves — has stayed above ``threshold_mb_h`` for
``sustain_s``. Noise does not trip it, nor does a single step (buffers
filling once, a cache warming: the half without the step is flat); steady
growth does.

Memory samples are autocorrelated (a step stays), which makes the ordinary
least-squares standard error too small; it is widened by the lag-1
autocorrelation of the residuals (effective sample size ``n(1-r)/(1+r)``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from itertools import pairwise
from statistics import NormalDist
from typing import NamedTuple

__all__ = ["LeakDetector", "Trend", "fit_trend", "t_quantile"]


class Trend(NamedTuple):
    """A fitted slope per hour, its two-sided confidence interval, and what it rests on."""

    slope_per_h: float
    low_per_h: float
    high_per_h: float
    samples: int
    span_s: float


def t_quantile(p: float, dof: float) -> float:
    """Return Student's t quantile ``p`` for ``dof`` degrees of freedom (Cornish-Fisher)."""
    z = NormalDist().inv_cdf(p)
    if dof <= 0:
        return math.inf
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3


def fit_trend(
    times_s: Sequence[float], values: Sequence[float], *, confidence: float = 0.95
) -> Trend | None:
    """Fit ``values`` against ``times_s`` by least squares; None with fewer than 3 points."""
    n = len(times_s)
    if n < 3 or n != len(values):
        return None
    mean_t = sum(times_s) / n
    mean_v = sum(values) / n
    sxx = sum((t - mean_t) ** 2 for t in times_s)
    if sxx <= 0:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in zip(times_s, values, strict=True)) / sxx
    residuals = [v - mean_v - slope * (t - mean_t) for t, v in zip(times_s, values, strict=True)]
    ssr = sum(r * r for r in residuals)
    dof = n - 2
    variance = ssr / dof
    # Autocorrelated residuals carry less information than n independent ones.
    r1 = 0.0
    if ssr > 0:
        r1 = sum(a * b for a, b in pairwise(residuals)) / ssr
    inflation = (1 + r1) / (1 - r1) if 0 < r1 < 0.99 else (199.0 if r1 >= 0.99 else 1.0)
    error = math.sqrt(variance / sxx * inflation)
    effective_dof = max(1.0, dof / inflation)
    half = t_quantile(0.5 + confidence / 2, effective_dof) * error
    return Trend(
        slope * 3600,
        (slope - half) * 3600,
        (slope + half) * 3600,
        n,
        times_s[-1] - times_s[0],
    )


class LeakDetector:
    """Watch one memory series (MB) for sustained growth.

    Call :meth:`add` with the time (seconds, monotonic) and the value as
    often as you like; it keeps one sample every ``every_s``.
    """

    def __init__(
        self,
        *,
        threshold_mb_h: float = 10.0,
        warmup_s: float = 600.0,
        window_s: float = 3600.0,
        sustain_s: float = 900.0,
        every_s: float = 10.0,
        min_samples: int = 30,
        confidence: float = 0.95,
    ) -> None:
        self.threshold_mb_h = threshold_mb_h
        self.warmup_s = warmup_s
        self.sustain_s = sustain_s
        self.every_s = every_s
        self.min_samples = max(3, min_samples)
        self.confidence = confidence
        self._times: deque[float] = deque(maxlen=max(self.min_samples, int(window_s / every_s)))
        self._values: deque[float] = deque(maxlen=self._times.maxlen)
        self._start: float | None = None
        self._above_since: float | None = None
        self.trend: Trend | None = None
        self.suspected = False

    def add(self, t_s: float, value_mb: float) -> None:
        """Offer one reading; update the trend and the verdict."""
        if self._start is None:
            self._start = t_s
        if t_s - self._start < self.warmup_s:
            return
        if self._times and t_s - self._times[-1] < self.every_s:
            return
        self._times.append(t_s)
        self._values.append(value_mb)
        if len(self._times) < self.min_samples:
            return
        times, values = list(self._times), list(self._values)
        self.trend = fit_trend(times, values, confidence=self.confidence)
        if self._growing(times, values):
            if self._above_since is None:
                self._above_since = t_s
            self.suspected = t_s - self._above_since >= self.sustain_s
        else:
            self._above_since = None
            self.suspected = False

    def _growing(self, times: list[float], values: list[float]) -> bool:
        """Return True if the whole window and both of its halves grow faster than the threshold."""
        if self.trend is None or self.trend.low_per_h <= self.threshold_mb_h:
            return False
        middle = len(times) // 2
        for part in (slice(None, middle), slice(middle, None)):
            half = fit_trend(times[part], values[part], confidence=self.confidence)
            if half is None or half.low_per_h <= self.threshold_mb_h:
                return False
        return True
