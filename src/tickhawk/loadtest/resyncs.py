"""Book resyncs as the engine child sees them: from out of sync to LIVE again, with the reason.

Outages (drop → live and synced again) are timed by the engine itself
(:class:`tickhawk.app.recovery.RecoveryTracker`); this times each book's way
back, so a chaos report can tell a gap's resync from a reconnect's.
"""

from __future__ import annotations

__all__ = ["ResyncTracker"]


class ResyncTracker:
    """Time each book from leaving LIVE (out of sync) to LIVE again, with the reason."""

    def __init__(self) -> None:
        self._since: dict[str, tuple[str, float]] = {}
        self.done: list[tuple[str, float]] = []

    def on_transition(self, symbol: str, state: str, reason: str, now: float) -> None:
        """Take one book transition (``BookEvent`` state and reason)."""
        if state == "out_of_sync":
            self._since.setdefault(symbol, (reason, now))
        elif state == "live":
            started = self._since.pop(symbol, None)
            if started is not None:
                self.done.append((started[0], now - started[1]))

    def take(self) -> list[tuple[str, float]]:
        """Return the resyncs finished since the last call."""
        done, self.done = self.done, []
        return done
