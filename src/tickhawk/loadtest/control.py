"""Decisions of a load test, as plain code: the delivered-rate controller and the stress search.

``--rate`` means messages per second *delivered to the engine*. The
simulator's own ``rate`` counts the trade + aggTrade + bookTicker messages
its market produces, while the engine subscribes trade + bookTicker +
depth@100ms; the share between the two depends on the symbol count and the
rate (depth diffs come at most ten a second per symbol, whatever the rate).
So the runner measures what the simulator sends and steers its model rate.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RateController", "StressSearch"]

#: Delivered ÷ model messages with a few symbols (benchmarks/loopback.py: 11,800 → 10,000).
PRIOR_RATIO = 10_000 / 11_800


class RateController:
    """Find the model rate that makes the simulator send ``target`` msg/s to the engine.

    Two parts: the ratio sent ÷ model rate over the last ``window`` seconds
    (it moves with the symbol count and the rate), and an integral term that
    spreads the messages owed since the target was set over the next
    ``horizon`` seconds, so that the mean over a run meets the target even
    though the market's clustered arrivals make single seconds swing by
    ±20 %. Seconds in which the simulator lagged (it could not produce) or
    sent almost nothing (the engine was away) are skipped. ``aim``
    (2 %) keeps the delivered mean at or above the target.
    """

    def __init__(
        self,
        target: float,
        *,
        ratio: float = PRIOR_RATIO,
        aim: float = 1.02,
        window: int = 8,
        horizon: float = 4.0,
    ) -> None:
        self.aim = aim
        self.ratio = ratio
        self.target = target
        self.horizon = horizon
        self.owed = 0.0  # messages asked for and not sent since the target was set
        self._points: deque[tuple[float, float]] = deque(maxlen=window)
        self._skip = 0

    @property
    def model_rate(self) -> float:
        """Return the model rate to ask the simulator for now."""
        limit = 0.3 * self.target
        correction = min(limit, max(-limit, self.owed / self.horizon))
        return max(1.0, (self.target * self.aim + correction) / self.ratio)

    def restart(self) -> None:
        """Forget the messages owed so far (a measured window starts: it owes nothing)."""
        self.owed = 0.0

    def set_target(self, target: float) -> float:
        """Aim at a new delivered rate; return the model rate for it."""
        if target != self.target:
            self.target = target
            self.owed = 0.0
            self._skip = 1  # the second the change lands in is a mix of both rates
        return self.model_rate

    def update(self, model_rate: float, sent: float, lag_ms: float) -> float | None:
        """Take one second (the model rate in effect, msgs/s sent, simulator lag).

        Return a new model rate when it differs from ``model_rate`` by more than 1 %.
        """
        if self._skip:
            self._skip -= 1
            return None
        if model_rate <= 0 or lag_ms > 250 or sent < 0.2 * self.target:
            return None
        self._points.append((sent, model_rate))
        sent_sum = sum(s for s, _ in self._points)
        model_sum = sum(m for _, m in self._points)
        self.ratio = min(4.0, max(0.1, sent_sum / model_sum))
        # Bounded, so that a long stretch the simulator could not deliver is not
        # paid back as a burst.
        self.owed = min(
            self.target * 10, max(-self.target * 10, self.owed + self.target * self.aim - sent)
        )
        wanted = self.model_rate
        if abs(wanted / model_rate - 1.0) > 0.01:
            return wanted
        return None


class StressSearch:
    """Ramp the rate by ``factor`` until a step fails, then narrow between pass and fail.

    Feed each step's verdict to :meth:`record`: ``"pass"``, ``"fail"`` or
    ``"sim_limit"`` (the simulator could not send the asked rate, so nothing
    is known about the engine beyond it). A step that did not pass is
    repeated ``retries`` times before it counts (the machine is shared); after the
    first counted failure, ``refine`` geometric bisections narrow the limit.
    """

    def __init__(
        self,
        start: float,
        *,
        factor: float = 1.25,
        max_rate: float = 1_000_000.0,
        retries: int = 1,
        refine: int = 2,
    ) -> None:
        if start <= 0 or factor <= 1.0 or max_rate < start:
            raise ValueError("the stress search needs 0 < start <= max_rate and factor > 1")
        self.factor = factor
        self.max_rate = max_rate
        self.retries = retries
        self.refine_left = refine
        self.best: float | None = None  # highest asked rate that passed
        self.failed: float | None = None  # lowest asked rate that failed (counted)
        self.sim_limited = False
        self.steps: list[tuple[float, str]] = []
        self._next: float | None = start
        self._retried = 0

    def next_rate(self) -> float | None:
        """Return the next rate to try, or None when the search is over."""
        return self._next

    def record(self, rate: float, verdict: str) -> None:
        """Record the verdict of the step at ``rate`` and choose the next one."""
        if verdict not in ("pass", "fail", "sim_limit"):
            raise ValueError(f"unknown verdict {verdict!r}")
        self.steps.append((rate, verdict))
        if verdict != "pass" and self._retried < self.retries:
            self._retried += 1
            self._next = rate
            return
        self._retried = 0
        if verdict == "sim_limit":
            self.sim_limited = True
            self._next = None
            return
        if verdict == "pass":
            self.best = rate if self.best is None else max(self.best, rate)
        else:
            self.failed = rate if self.failed is None else min(self.failed, rate)
        self._next = self._choose()

    def _choose(self) -> float | None:
        if self.failed is None:  # still ramping
            assert self.best is not None
            if self.best >= self.max_rate:
                return None
            return min(self.max_rate, self.best * self.factor)
        if self.best is None or self.refine_left <= 0:
            return None
        if self.failed / self.best < 1.05:  # close enough: steps are noisier than this
            return None
        self.refine_left -= 1
        return math.sqrt(self.best * self.failed)
