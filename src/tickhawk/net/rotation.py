"""Rotation: replace a session's connection make-before-break, before the venue cuts it.

Binance closes a connection after 24 hours. At ``rotate_after_s`` the
:class:`Rotator` opens a second connection with the same streams beside the
first; a :class:`~tickhawk.net.handover.Handover` merges the two so that each
message is delivered once, in stream order. Once the overlap is proven (or
after ``OVERLAP_MAX_S``) the new connection becomes the session's and the old
one is closed. If the old one drops during the overlap, the new one takes
over at once; if the new one fails, the old one serves on and the rotation is
tried again ``RETRY_S`` later.

The seam: the session is a :class:`RotationHost` (open a connection, make a
connection its own, report a state change); the rotator owns the rest (its
task, its merge, when the merge ends, its counters). Venue knowledge enters
only through the injected :class:`~tickhawk.net.handover.SequenceKey`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Protocol

from tickhawk.net.events import Reason, SessionState
from tickhawk.net.handover import Handover, SequenceKey
from tickhawk.net.link import ConnectError, Link, MessageHandler, ignore
from tickhawk.net.options import ConnectionOptions

__all__ = ["OVERLAP_MAX_S", "RETRY_S", "RotationHost", "Rotator"]

_log = logging.getLogger("tickhawk.net")

#: The overlap is checked this often; the switch comes without proof after OVERLAP_MAX_S.
_OVERLAP_POLL_S = 0.02
OVERLAP_MAX_S = 10.0
#: A failed rotation is tried again this long after.
RETRY_S = 30.0


class RotationHost(Protocol):
    """What a rotation needs from its session (:class:`~tickhawk.net.session.WsSession`)."""

    name: str
    options: ConnectionOptions
    on_message: MessageHandler
    state: SessionState

    @property
    def current(self) -> Link | None:
        """Return the connection that delivers now."""
        ...

    def new_link(self, *, primary: bool) -> Link:
        """Return a numbered connection, not yet open."""
        ...

    async def connect_link(self, link: Link, deliver: MessageHandler) -> None:
        """Open ``link`` with the session's streams, messages to ``deliver``; raise ConnectError."""
        ...

    def make_current(self, link: Link) -> None:
        """Make ``link`` the connection the session holds (and watches)."""
        ...

    def set_state(self, state: SessionState, reason: str, detail: str = "") -> None:
        """Move the session to ``state`` (an event for its listeners)."""
        ...

    def drop_reason(self, link: Link) -> tuple[str, str]:
        """Say (and count) why ``link`` closed: ``(reason, detail)``."""
        ...


class _Attempt:
    """A rotation under way: its task, its merge, the new connection once it is up."""

    __slots__ = ("handover", "link", "subscribed", "task")

    def __init__(self, handover: Handover) -> None:
        self.handover = handover
        self.task: asyncio.Task[None] | None = None
        self.link: Link | None = None
        self.subscribed = False


class Rotator:
    """Replace ``host``'s connection make-before-break when it grows old.

    ``key`` places a message in its stream (the venue's
    :class:`~tickhawk.net.handover.SequenceKey`); without one there is no
    rotation and the venue's age limit ends in a reconnect.
    """

    def __init__(self, host: RotationHost, key: SequenceKey | None) -> None:
        self.host = host
        self.key = key
        self.rotations = 0
        self.failures = 0
        self._attempt: _Attempt | None = None
        self._due = math.inf  # monotonic time to rotate the current connection
        self._merge_ends = 0.0  # monotonic time the last hand-over's filter is dropped
        self._said_off = False

    @property
    def enabled(self) -> bool:
        """Return whether connections are rotated at all."""
        return self.key is not None and self.host.options.rotate_after_s > 0

    @property
    def overlapping(self) -> bool:
        """Return whether a second connection is up and subscribed beside the first."""
        return self._attempt is not None and self._attempt.subscribed

    def schedule(self, link: Link) -> None:
        """Plan the rotation of ``link``, which just became the session's connection."""
        after = self.host.options.rotate_after_s
        self._due = link.connected_at + after if self.enabled else math.inf
        if after > 0 and self.key is None and not self._said_off:
            self._said_off = True
            _log.info(
                "session %s: no sequence key for the venue's messages, so no rotation: "
                "a connection the venue cuts for its age is reconnected",
                self.host.name,
            )

    def tick(self, link: Link, group: asyncio.TaskGroup) -> None:
        """End a finished hand-over's merge; start rotating ``link`` (in ``group``) when due."""
        now = time.monotonic()
        if self._merge_ends and now >= self._merge_ends:
            self._merge_ends = 0.0
            if link.listener is not None:
                link.listener.deliver = self.host.on_message  # the merge is over
        key = self.key
        if self._attempt is None and key is not None and now >= self._due:
            attempt = _Attempt(Handover(self.host.on_message, key))
            self._attempt = attempt
            attempt.task = group.create_task(
                self._rotate(attempt, link), name=f"tickhawk-rotate-{self.host.name}"
            )

    def take_over(self, old: Link) -> bool:
        """The session's connection ``old`` closed: switch to a ready new one (True) if any."""
        attempt = self._attempt
        if attempt is None or not attempt.subscribed or attempt.link is None:
            return False
        self._switch(attempt, old, early=True)
        return True

    def abort(self) -> None:
        """Give up a rotation under way (the old connection is going): close its connection."""
        attempt, self._attempt = self._attempt, None
        if attempt is None:
            return
        if attempt.task is not None and attempt.task is not asyncio.current_task():
            attempt.task.cancel()
        if attempt.link is not None:
            attempt.link.disconnect(Reason.ROTATE_FAILED)
        current = self.host.current
        if current is not None and current.listener is not None:
            current.listener.deliver = self.host.on_message

    # -- one rotation -------------------------------------------------------------------

    async def _rotate(self, attempt: _Attempt, old: Link) -> None:
        """Open a second connection beside ``old`` and hand over to it without a gap."""
        host = self.host
        handover = attempt.handover
        age = time.monotonic() - old.connected_at
        host.set_state(
            SessionState.ROTATING,
            Reason.ROTATE,
            f"connection {age / 3600:.2f} h old" if age >= 360 else f"connection {age:.1f} s old",
        )
        if old.listener is not None:
            old.listener.deliver = handover.pass_through
        new = attempt.link = host.new_link(primary=False)
        try:
            await host.connect_link(new, handover.from_new)
        except ConnectError as exc:
            self._failed(attempt, old, f"{exc.reason}: {exc.detail}")
            return
        attempt.subscribed = True
        opened = time.monotonic()
        settle = host.options.rotate_overlap_s
        while True:
            await asyncio.sleep(_OVERLAP_POLL_S)
            if new.transport is None or new.transport.is_disconnected:
                self._failed(attempt, old, "the new connection closed during the overlap")
                return
            if self._attempt is not attempt or old is not host.current:
                return  # the old one dropped and take_over already switched
            waited = time.monotonic() - opened
            if waited < settle:
                continue
            lagging = handover.lagging()
            if not lagging:
                break
            if waited > OVERLAP_MAX_S or handover.overflowing:
                _log.warning(
                    "session %s: rotation switches without proof of overlap on %d streams "
                    "(e.g. %s): the engine's gap checks cover them",
                    host.name,
                    len(lagging),
                    ", ".join(lagging[:3]),
                )
                break
        self._switch(attempt, old, early=False)

    def _switch(self, attempt: _Attempt, old: Link, *, early: bool) -> None:
        """Make the attempt's connection the session's; close ``old``."""
        host = self.host
        new = attempt.link
        assert new is not None and new.listener is not None
        handover = attempt.handover
        if old.listener is not None:
            old.listener.deliver = ignore
        new.listener.deliver = handover.pass_through  # the old one may have been ahead
        replayed = handover.switch()
        self._attempt = None
        host.make_current(new)
        new.healthy = True
        self._merge_ends = time.monotonic() + host.options.rotate_overlap_s
        self.rotations += 1
        detail = f"{replayed} buffered messages delivered, {handover.duplicates} duplicates dropped"
        if early:
            detail = f"the old connection closed first ({host.drop_reason(old)[1]}); {detail}"
        old.disconnect(Reason.ROTATED)
        host.set_state(SessionState.LIVE, Reason.ROTATED, detail)

    def _failed(self, attempt: _Attempt, old: Link, detail: str) -> None:
        """Close the attempt's connection; the old one serves on if it still does."""
        host = self.host
        self.failures += 1
        serving = old is host.current
        if serving and old.listener is not None:
            old.listener.deliver = host.on_message
        if attempt.link is not None:
            attempt.link.disconnect(Reason.ROTATE_FAILED)
        self._attempt = None
        if not serving:
            return  # the session reconnected meanwhile: its new connection has its own plan
        self._due = time.monotonic() + RETRY_S
        if host.state is SessionState.ROTATING:
            host.set_state(
                SessionState.LIVE,
                Reason.ROTATE_FAILED,
                f"{detail}; the old connection still serves, next try in {RETRY_S:g} s",
            )
