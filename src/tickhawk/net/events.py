"""Session states and their transitions as events: listened to, logged and counted.

Every change of a session's state is a :class:`SessionEvent` with a short
machine-readable ``reason`` and a human ``detail``. The session hands each
event to its listeners (synchronously, on the event loop: a listener must not
block), logs it (INFO, or WARNING for drops, stale streams and the circuit
breaker) and counts it under ``"<state>:<reason>"``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

import msgspec

__all__ = [
    "WARNING_REASONS",
    "EventListener",
    "EventLog",
    "Reason",
    "SessionEvent",
    "SessionState",
]

_log = logging.getLogger("tickhawk.net")


class SessionState(enum.Enum):
    """Where a session is."""

    CONNECTING = "connecting"  # an attempt is under way
    LIVE = "live"  # connected and subscribed: data flows
    ROTATING = "rotating"  # live, and a second connection is being opened to take over
    BACKOFF = "backoff"  # waiting before the next attempt
    CIRCUIT_OPEN = "circuit_open"  # the venue's circuit breaker holds attempts back
    CLOSED = "closed"  # stopped (or not started)


class Reason:
    """The reasons a session gives for a transition (``SessionEvent.reason``)."""

    START = "start"  # connecting for the first time
    RECONNECT = "reconnect"  # connecting again after a drop
    PROBE = "probe"  # the circuit breaker's half-open probe
    CONNECTED = "connected"  # the first connection is up
    RECONNECTED = "reconnected"  # up again after a drop: whatever was sent meanwhile was missed
    ROTATE = "rotate"  # the connection is old: a new one is being opened beside it
    ROTATED = "rotated"  # the new connection took over without a gap
    ROTATE_FAILED = "rotate_failed"  # the new connection failed; the old one still serves
    DROPPED = "dropped"  # the venue or the network closed the connection
    PONG_TIMEOUT = "pong_timeout"  # no pong within the deadline: the connection was given up
    STALE = "stale"  # a stream went silent for too long: reconnecting
    PROTOCOL_ERROR = "protocol_error"  # a frame broke the protocol (or was too big)
    CONNECT_FAILED = "connect_failed"  # refused, unreachable, or the handshake was rejected
    CONNECT_TIMEOUT = "connect_timeout"  # no handshake within the connect timeout
    CIRCUIT_OPEN = "circuit_open"  # too many failures in a row: holding back
    STOPPED = "stopped"  # closed on request


#: Reasons logged at WARNING (the others at INFO). The breaker says itself, once, that it
#: opened; a session held back by it, or a probe that fails, is INFO.
WARNING_REASONS = frozenset(
    {
        Reason.DROPPED,
        Reason.PONG_TIMEOUT,
        Reason.STALE,
        Reason.PROTOCOL_ERROR,
        Reason.CONNECT_FAILED,
        Reason.CONNECT_TIMEOUT,
        Reason.ROTATE_FAILED,
    }
)


class SessionEvent(msgspec.Struct, frozen=True):
    """One state transition of a session: ``connection`` went ``previous`` → ``state``."""

    connection: str
    previous: str
    state: str
    reason: str
    ts: int  # epoch ns
    detail: str = ""


EventListener = Callable[[SessionEvent], None]


class EventLog:
    """Deliver, log and count a session's transitions."""

    def __init__(self, connection: str, wall_clock: Callable[[], int]) -> None:
        self.connection = connection
        self.wall_clock = wall_clock
        self.listeners: list[EventListener] = []
        self.counts: dict[str, int] = {}
        self.listener_errors = 0

    def emit(
        self,
        previous: SessionState,
        state: SessionState,
        reason: str,
        detail: str,
        *,
        quiet: bool = False,
    ) -> None:
        """Record the transition ``previous`` → ``state`` and tell every listener.

        ``quiet`` logs a warning reason at INFO (an expected failure: a probe).
        """
        key = f"{state.value}:{reason}"
        self.counts[key] = self.counts.get(key, 0) + 1
        warn = reason in WARNING_REASONS and not quiet
        level = logging.WARNING if warn else logging.INFO
        if _log.isEnabledFor(level):
            _log.log(
                level,
                "session %s: %s -> %s (%s%s)",
                self.connection,
                previous.value,
                state.value,
                reason,
                f": {detail}" if detail else "",
            )
        if not self.listeners:
            return
        event = SessionEvent(
            self.connection, previous.value, state.value, reason, self.wall_clock(), detail
        )
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # one broken listener must not take the session down
                self.listener_errors += 1
                _log.exception("session %s: an event listener failed", self.connection)
