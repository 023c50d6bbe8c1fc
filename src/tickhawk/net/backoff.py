"""Reconnect delays: at once after a healthy connection, then capped exponential, full jitter.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads the
reconnects of many clients cut at the same moment, so they do not return to
the venue in waves. The cap bounds how long a recovered venue waits for us.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]

#: Beyond this many failures the ceiling is the cap anyway; it also keeps ``2 ** n`` small.
_MAX_DOUBLINGS = 32


class Backoff:
    """Say how long to wait before the next connect attempt.

    After ``failures`` consecutive failed attempts the wait is drawn uniformly
    from ``[0, min(cap_s, base_s * 2 ** (failures - 1))]``; with no failure
    (the first retry after a connection that worked) it is 0.
    """

    def __init__(
        self, *, base_s: float = 0.25, cap_s: float = 5.0, rng: random.Random | None = None
    ) -> None:
        if not 0 < base_s <= cap_s:
            raise ValueError(f"backoff needs 0 < base_s <= cap_s, not {base_s} and {cap_s}")
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng or random.Random()

    def ceiling(self, failures: int) -> float:
        """Return the longest wait after ``failures`` consecutive failures."""
        if failures <= 0:
            return 0.0
        return min(self.cap_s, self.base_s * 2.0 ** min(failures - 1, _MAX_DOUBLINGS))

    def delay(self, failures: int) -> float:
        """Return the wait (seconds) before the next attempt after ``failures`` failures."""
        ceiling = self.ceiling(failures)
        return self._rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
