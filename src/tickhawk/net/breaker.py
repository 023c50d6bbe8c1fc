"""A circuit breaker per venue: stop hammering a venue that keeps refusing us, probe later.

Backoff alone still retries every few seconds on every connection, for ever.
After ``failures`` connect attempts in a row have failed (over all the
venue's sessions) the breaker opens: nobody connects for ``cooldown_s``. Then
it is half-open: one session probes; if the probe connects and delivers, the
breaker closes and everyone reconnects, else it opens for another cool-down.

The breaker is plain synchronous code on an injected clock; the sessions
sleep for it.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

__all__ = ["BreakerState", "CircuitBreaker"]

_log = logging.getLogger("tickhawk.net")

#: While a probe is in flight, the other sessions look again this often.
PROBE_POLL_S = 0.1


class BreakerState(enum.Enum):
    """Where a breaker is."""

    CLOSED = "closed"  # connecting normally
    OPEN = "open"  # not connecting until the cool-down ends
    HALF_OPEN = "half_open"  # one probe is in flight


class CircuitBreaker:
    """Count consecutive connect failures of one venue; open after ``failures`` of them.

    Sessions call :meth:`wait_s` before an attempt (and sleep that long if it is
    not 0), :meth:`begin` when the attempt starts, then :meth:`success` once a
    connection delivers or :meth:`failure` when it does not.
    """

    def __init__(
        self,
        name: str,
        *,
        failures: int = 10,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or not cooldown_s > 0:
            raise ValueError("a circuit breaker needs failures >= 1 and cooldown_s > 0")
        self.name = name
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.consecutive = 0
        self.opens = 0  # times it opened from closed
        self.probes = 0
        self.probe_failures = 0
        self._opened_at = 0.0  # the last time it opened (a failed probe reopens it)
        self._open_since = 0.0  # when it left CLOSED
        self._probe_at = 0.0
        self._last_error = ""

    @property
    def is_open(self) -> bool:
        """Return whether connecting is held back (open, or a probe in flight)."""
        return self.state is not BreakerState.CLOSED

    def wait_s(self) -> float:
        """Return how long to wait before an attempt may start (0: start now)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return 0.0
        now = self.clock()
        if state is BreakerState.OPEN:
            return max(0.0, self._opened_at + self.cooldown_s - now)
        if now - self._probe_at > self.cooldown_s:
            return 0.0  # the probe never reported (its session stopped): allow another
        return PROBE_POLL_S

    def begin(self) -> bool:
        """Note that an attempt starts; return whether it is the half-open probe."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        now = self.clock()
        if state is BreakerState.OPEN:
            if now < self._opened_at + self.cooldown_s:
                return False  # still cooling down (the caller did not wait)
        elif now - self._probe_at <= self.cooldown_s:
            return False  # a probe is in flight
        self.state = BreakerState.HALF_OPEN
        self._probe_at = now
        self.probes += 1
        _log.info("circuit %s: half-open, probing once", self.name)
        return True

    def success(self) -> None:
        """Note a connection that works: reset the count, close the breaker."""
        self.consecutive = 0
        if self.state is not BreakerState.CLOSED:
            down_s = self.clock() - self._open_since
            self.state = BreakerState.CLOSED
            _log.warning(
                "circuit %s closed: the venue answers again (held back %.0f s)", self.name, down_s
            )

    def failure(self, error: str) -> None:
        """Note a failed attempt (``error`` says why); open the breaker if it is one too many."""
        self.consecutive += 1
        self._last_error = error
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self.probe_failures += 1
            self.state = BreakerState.OPEN
            self._opened_at = self.clock()
            _log.info(
                "circuit %s: probe failed (%s); next probe in %.0f s",
                self.name,
                error,
                self.cooldown_s,
            )
        elif state is BreakerState.CLOSED and self.consecutive >= self.failures:
            self.state = BreakerState.OPEN
            self._opened_at = self._open_since = self.clock()
            self.opens += 1
            _log.warning(
                "circuit %s open: %d connect attempts in a row failed (last: %s); "
                "not connecting for %.0f s, then one probe",
                self.name,
                self.consecutive,
                error,
                self.cooldown_s,
            )
