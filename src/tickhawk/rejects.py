"""Counted, rate-limited rejection of bad input.

Bad input from a venue or a file never stops the engine: it is counted by
reason, logged at most once per ``log_interval_s`` per reason, and skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["Rejects"]

_log = logging.getLogger("tickhawk.rejects")


class Rejects:
    """Count rejections by reason; log each reason at most once per interval."""

    __slots__ = ("_clock", "_interval_ns", "_last_log", "counts", "logger")

    def __init__(
        self,
        *,
        log_interval_s: float = 1.0,
        clock: Callable[[], int] = time.monotonic_ns,
        logger: logging.Logger = _log,
    ) -> None:
        self.counts: dict[str, int] = {}
        self._last_log: dict[str, int] = {}
        self._interval_ns = int(log_interval_s * 1e9)
        self._clock = clock
        self.logger = logger

    def reject(self, reason: str, detail: str = "") -> None:
        """Count one rejection for ``reason``; log it unless logged too recently."""
        counts = self.counts
        counts[reason] = counts.get(reason, 0) + 1
        now = self._clock()
        last = self._last_log.get(reason)
        if last is None or now - last >= self._interval_ns:
            self._last_log[reason] = now
            self.logger.warning(
                "skipped bad input (%s, %d so far): %s", reason, counts[reason], detail[:200]
            )

    @property
    def total(self) -> int:
        """Return the number of rejections of every reason."""
        return sum(self.counts.values())
