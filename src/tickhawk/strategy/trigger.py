"""When a condition becomes a signal: on entering a direction, at most once per cooldown."""

from __future__ import annotations

__all__ = ["Trigger"]


class Trigger:
    """Fire when a condition turns on in a direction, not while it stays on.

    :meth:`fire` takes the condition's direction now (+1, -1, or 0 for off).
    It fires on a change to a non-zero direction unless the last firing is
    less than ``cooldown_ns`` of exchange time ago; a change suppressed by the
    cooldown does not fire later on its own (the condition must turn off and
    on again, or flip).
    """

    __slots__ = ("cooldown_ns", "direction", "last_ns")

    def __init__(self, cooldown_ns: int) -> None:
        self.cooldown_ns = cooldown_ns
        self.direction = 0
        self.last_ns = -(1 << 62)

    def fire(self, direction: int, ts: int) -> bool:
        """Return whether to emit for ``direction`` at exchange time ``ts`` (ns)."""
        if direction == self.direction:
            return False
        self.direction = direction
        if direction == 0 or ts - self.last_ns < self.cooldown_ns:
            return False
        self.last_ns = ts
        return True
