"""A WebSocket market-data session over picows: connect, subscribe, deliver, stay connected.

Every text frame goes straight from picows's callback to ``on_message``
(synchronously: decode → state → strategy → signal happen inside it). Around
that hot path, off it:

- **Reconnect**: the first retry after a connection that worked comes at
  once; then capped exponential backoff with full jitter
  (:class:`~tickhawk.net.backoff.Backoff`). Every connect resubscribes
  (``SUBSCRIBE`` batches beyond 100 streams).
- **Circuit breaker** per venue (:class:`~tickhawk.net.breaker.CircuitBreaker`):
  after repeated failures nobody connects for a cool-down, then one probe.
- **Heartbeat**: picows pings every ``ping_interval_s`` and gives the
  connection up when no pong comes within ``pong_timeout_s``; the round trip
  of each ping is kept (:attr:`WsSession.ping_rtt_ms`). The venue's pings are
  answered automatically.
- **Stale-stream watchdog** (:class:`~tickhawk.net.watchdog.StaleWatch`): a
  stream silent far beyond its own usual gap forces a reconnect.
- **Rotation**: a connection older than ``rotate_after_s`` is replaced
  make-before-break (:class:`~tickhawk.net.handover.Handover`): nothing lost,
  nothing twice.

Each state change is a :class:`~tickhawk.net.events.SessionEvent`, handed to
:attr:`WsSession.listeners`, logged and counted in :attr:`WsSession.transitions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from time import perf_counter_ns

import msgspec
from picows import WSMsgType

from tickhawk.net.backoff import Backoff
from tickhawk.net.breaker import CircuitBreaker
from tickhawk.net.events import EventListener, EventLog, Reason, SessionEvent, SessionState
from tickhawk.net.handover import Handover
from tickhawk.net.link import ConnectError, Link, MessageHandler, ignore, open_link
from tickhawk.net.options import ConnectionOptions
from tickhawk.net.sequence import BinanceSequence, SequenceKey
from tickhawk.net.watchdog import StaleWatch

__all__ = [
    "ConnectionOptions",
    "EventListener",
    "MessageHandler",
    "Reason",
    "SessionEvent",
    "SessionState",
    "WsSession",
]

_log = logging.getLogger("tickhawk.net")

#: Binance caps a URL's stream list; longer lists are sent with SUBSCRIBE.
_MAX_URL_STREAMS = 100
_SUBSCRIBE_BATCH = 200
_SUBSCRIBE_INTERVAL_S = 0.25  # Binance allows 5 incoming messages per second
#: A connection that delivered nothing and lived less than this failed (for backoff and breaker).
_HEALTHY_AFTER_S = 2.0
#: The monitor's longest period (watchdog samples, rotation checks); shorter with a low
#: stale floor, so that sampling never hides a gap (a busy stream looks one tick apart).
_TICK_S = 0.25
_MIN_TICK_S = 0.02
#: A rotation's overlap is checked this often; it gives up waiting for proof after this long.
_OVERLAP_POLL_S = 0.02
_OVERLAP_MAX_S = 10.0
_ROTATE_RETRY_S = 30.0


class _Rotation:
    """A rotation under way: its task, its merge, the new connection once it is up."""

    def __init__(self, handover: Handover) -> None:
        self.handover = handover
        self.task: asyncio.Task[None] | None = None
        self.link: Link | None = None
        self.subscribed = False


class WsSession:
    """Keep one WebSocket connection to ``base_url`` subscribed to ``streams``.

    ``base_url`` is the venue's WebSocket root (``wss://stream.binance.com:9443``);
    the session connects to ``/stream?streams=...`` (combined streams).
    ``options`` are the ``[connection]`` settings; ``breaker`` is the venue's
    circuit breaker (shared by its sessions; None: none). ``last_seen`` maps
    a stream name (bytes) to the ``perf_counter_ns`` of its last message (the
    feed's :attr:`~tickhawk.venues.binance.feed.BinanceFeed.last_seen`; None:
    no stale watchdog). ``sequence`` keys messages for rotations.
    """

    def __init__(
        self,
        base_url: str,
        streams: list[str],
        on_message: MessageHandler,
        *,
        name: str | None = None,
        options: ConnectionOptions | None = None,
        breaker: CircuitBreaker | None = None,
        last_seen: Mapping[bytes, int] | None = None,
        sequence: SequenceKey | None = None,
        wall_clock: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name or self.base_url
        self.streams = list(streams)
        self.on_message = on_message
        self.options = options = options or ConnectionOptions()
        self.breaker = breaker
        self.wall_clock = wall_clock
        cap = options.backoff_cap_s
        self.backoff = Backoff(base_s=min(0.25, cap), cap_s=cap, rng=rng)
        self.watch = (
            StaleWatch(
                self.streams,
                last_seen,
                floor_s=options.stale_floor_s,
                factor=options.stale_factor,
            )
            if last_seen is not None
            else None
        )
        self._tick_s = min(
            _TICK_S, max(_MIN_TICK_S, options.stale_floor_s / options.stale_factor / 2)
        )
        self.sequence: SequenceKey = sequence or BinanceSequence()
        self.events = EventLog(self.name, wall_clock)
        self.listeners: list[EventListener] = self.events.listeners
        self.transitions: dict[str, int] = self.events.counts
        self.state = SessionState.CLOSED
        self.frames = 0
        self.bytes = 0
        self.connects = 0
        self.reconnects = 0
        self.connect_failures = 0
        self.protocol_errors = 0
        self.pong_timeouts = 0
        self.stale_reconnects = 0
        self.rotations = 0
        self.rotation_failures = 0
        self.pongs = 0
        self.ping_rtt_ms: float | None = None
        self.close_code: object = None
        self._current: Link | None = None
        self._rotation: _Rotation | None = None
        self._rotate_at = 0.0
        self._direct_at = 0.0
        self._failures = 0
        self._links = 0
        self._ever_live = False
        self._live = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._request_id = 0
        self._group: asyncio.TaskGroup | None = None

    # -- what readers see ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the URL the session connects to."""
        if 0 < len(self.streams) <= _MAX_URL_STREAMS:
            return f"{self.base_url}/stream?streams={'/'.join(self.streams)}"
        return f"{self.base_url}/stream"

    @property
    def circuit_open(self) -> bool:
        """Return whether the venue's circuit breaker holds this session back."""
        return self.breaker is not None and self.breaker.is_open

    @property
    def overlapping(self) -> bool:
        """Return whether a rotation's second connection is up and subscribed beside the first."""
        return self._rotation is not None and self._rotation.subscribed

    async def wait_live(self, timeout: float | None = None) -> None:
        """Wait until the session is connected (raise ``TimeoutError`` after ``timeout``)."""
        async with asyncio.timeout(timeout):
            await self._live.wait()

    def send_json(self, message: object) -> None:
        """Send a JSON text frame on the current connection (subscription methods)."""
        link = self._current
        if link is not None and link.transport is not None:
            link.transport.send(WSMsgType.TEXT, msgspec.json.encode(message))

    # -- state --------------------------------------------------------------------------

    def _set_state(
        self, state: SessionState, reason: str, detail: str = "", *, quiet: bool = False
    ) -> None:
        previous = self.state
        self.state = state
        self.events.emit(previous, state, reason, detail, quiet=quiet)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` unless the session is closed meanwhile."""
        if seconds > 0 and not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)

    # -- connecting ---------------------------------------------------------------------

    def _new_link(self, *, primary: bool) -> Link:
        self._links += 1
        return Link(self._links, primary=primary)

    def link_connected(self, link: Link) -> None:
        """A handshake completed (picows's callback, before the first frame is delivered).

        The session's own connection goes LIVE here, so that listeners (books,
        backfills) restart before any message of the new connection arrives.
        """
        link.connected_at = time.monotonic()
        link.frames_at_connect = self.frames
        self.connects += 1
        if not link.primary or self._stopping:
            return
        self._became_current(link)
        reconnect = self._ever_live
        self._ever_live = True
        self._set_state(
            SessionState.LIVE,
            Reason.RECONNECTED if reconnect else Reason.CONNECTED,
            f"{len(self.streams)} streams"
            + (" (SUBSCRIBE)" if len(self.streams) > _MAX_URL_STREAMS else ""),
        )
        self._live.set()

    async def _open(self, link: Link, deliver: MessageHandler) -> None:
        """Connect ``link``, handing its messages to ``deliver``; raise ``ConnectError``."""
        try:
            await open_link(self, link, self.url, deliver, self.options)
        except ConnectError:
            if link is self._current:  # went LIVE in a handshake that raced the timeout
                self._live.clear()
            raise

    async def _subscribe_rest(self, link: Link) -> None:
        """Subscribe the streams the URL could not carry, at Binance's request rate."""
        if len(self.streams) <= _MAX_URL_STREAMS:
            return
        for start in range(0, len(self.streams), _SUBSCRIBE_BATCH):
            transport = link.transport
            if transport is None or transport.is_disconnected:
                return
            self._request_id += 1
            params = self.streams[start : start + _SUBSCRIBE_BATCH]
            message = {"method": "SUBSCRIBE", "params": params, "id": self._request_id}
            transport.send(WSMsgType.TEXT, msgspec.json.encode(message))
            await asyncio.sleep(_SUBSCRIBE_INTERVAL_S)

    # -- the connection loop ------------------------------------------------------------

    async def run(self) -> None:
        """Connect and stay connected until :meth:`close`; reconnect on any drop."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                monitor = group.create_task(self._monitor(), name=f"tickhawk-monitor-{self.name}")
                try:
                    await self._connect_loop()
                finally:
                    monitor.cancel()
                    self._abort_rotation()
        finally:
            self._group = None
            self._live.clear()
            if self._current is not None:
                self._current.disconnect(Reason.STOPPED)
            self._set_state(SessionState.CLOSED, Reason.STOPPED)

    async def _connect_loop(self) -> None:
        reason = Reason.START
        breaker = self.breaker
        while not self._stopping:
            probe = False
            if breaker is not None:
                wait = breaker.wait_s()
                if wait > 0:
                    if self.state is not SessionState.CIRCUIT_OPEN:
                        self._set_state(
                            SessionState.CIRCUIT_OPEN,
                            Reason.CIRCUIT_OPEN,
                            f"{breaker.consecutive} connect failures in a row; "
                            f"next attempt in {wait:.1f} s",
                        )
                    await self._pause(wait)
                    continue
                probe = breaker.begin()
            self._set_state(SessionState.CONNECTING, Reason.PROBE if probe else reason)
            link = self._new_link(primary=True)
            try:
                await self._open(link, self.on_message)
            except ConnectError as exc:
                self.connect_failures += 1
                self._failures += 1
                if breaker is not None:
                    breaker.failure(exc.detail)
                # A probe is expected to fail while the venue is down: the breaker says so.
                self._set_state(SessionState.BACKOFF, exc.reason, exc.detail, quiet=probe)
                await self._pause(self.backoff.delay(self._failures))
                reason = Reason.RECONNECT
                continue
            if self._stopping:
                link.disconnect(Reason.STOPPED)
                break
            await self._subscribe_rest(link)
            link = await self._hold()
            self._live.clear()
            if self._stopping:
                break
            self._note_health(link)
            if not link.healthy:
                self._failures += 1
                if breaker is not None:
                    breaker.failure("the connection closed before it delivered anything")
            self.reconnects += 1
            drop_reason, detail = self._drop_reason(link)
            self._set_state(SessionState.BACKOFF, drop_reason, detail)
            await self._pause(self.backoff.delay(self._failures))
            reason = Reason.RECONNECT

    def _became_current(self, link: Link) -> None:
        self._current = link
        self.close_code = None
        if self.watch is not None:
            self.watch.reset(perf_counter_ns())
        after = self.options.rotate_after_s
        self._rotate_at = link.connected_at + after if after > 0 else float("inf")

    async def _hold(self) -> Link:
        """Wait until the current connection is gone for good; return it.

        A rotation replaces the current connection while this waits; a
        connection that drops while a rotation's new one is ready hands over
        to it at once.
        """
        while True:
            link = self._current
            assert link is not None
            await link.wait_closed()
            if link is not self._current:
                continue  # rotated: hold the new one
            rotation = self._rotation
            if (
                rotation is not None
                and rotation.subscribed
                and rotation.link is not None
                and not self._stopping
            ):
                self._switch(rotation, link, early=True)
                continue
            self._abort_rotation()
            self.close_code = link.close_code
            return link

    def _note_health(self, link: Link) -> None:
        """Mark a connection that delivered (or lived long enough) as working."""
        if link.healthy:
            return
        if (
            self.frames > link.frames_at_connect
            or time.monotonic() - link.connected_at >= _HEALTHY_AFTER_S
        ):
            link.healthy = True
            self._failures = 0
            if self.breaker is not None:
                self.breaker.success()

    def _drop_reason(self, link: Link) -> tuple[str, str]:
        """Say why ``link`` closed: ``(reason, detail)``; count protocol errors and pongs."""
        reason, detail = link.close_reason(self.options.pong_timeout_s)
        if reason == Reason.PROTOCOL_ERROR:
            self.protocol_errors += 1
        elif reason == Reason.PONG_TIMEOUT:
            self.pong_timeouts += 1
        return reason, detail

    # -- off the hot path: watchdog, rotation -------------------------------------------

    async def _monitor(self) -> None:
        """Sample the streams, start rotations, note working connections, every tick."""
        while True:
            await asyncio.sleep(self._tick_s)
            link = self._current
            if link is None or link.transport is None or link.transport.is_disconnected:
                continue
            if self.state is not SessionState.LIVE and self.state is not SessionState.ROTATING:
                continue
            self._note_health(link)
            if self._direct_at and time.monotonic() >= self._direct_at:
                self._direct_at = 0.0
                if link.listener is not None:
                    link.listener.deliver = self.on_message  # the merge is over
            if self.watch is not None:
                stale = self.watch.check(perf_counter_ns())
                if stale is not None:
                    self.stale_reconnects += 1
                    self.watch.penalize(stale.stream)
                    self._abort_rotation()
                    link.disconnect(
                        Reason.STALE,
                        f"{stale.stream} silent for {stale.silent_s:.1f} s (threshold "
                        f"{stale.threshold_s:.1f} s, usual gap {stale.usual_gap_s:.2f} s)",
                    )
                    continue
            if (
                self._rotation is None
                and self._group is not None
                and time.monotonic() >= self._rotate_at
            ):
                rotation = _Rotation(Handover(self.on_message, self.sequence))
                self._rotation = rotation
                rotation.task = self._group.create_task(self._rotate(rotation, link))

    async def _rotate(self, rotation: _Rotation, old: Link) -> None:
        """Open a second connection beside ``old`` and hand over to it without a gap."""
        handover = rotation.handover
        age = time.monotonic() - old.connected_at
        self._set_state(
            SessionState.ROTATING,
            Reason.ROTATE,
            f"connection {age / 3600:.2f} h old" if age >= 360 else f"connection {age:.1f} s old",
        )
        if old.listener is not None:
            old.listener.deliver = handover.pass_through
        new = rotation.link = self._new_link(primary=False)
        try:
            await self._open(new, handover.from_new)
            await self._subscribe_rest(new)
        except ConnectError as exc:
            self._rotation_failed(rotation, old, f"{exc.reason}: {exc.detail}")
            return
        rotation.subscribed = True
        opened = time.monotonic()
        settle = self.options.rotate_overlap_s
        while True:
            await asyncio.sleep(_OVERLAP_POLL_S)
            if new.transport is None or new.transport.is_disconnected:
                self._rotation_failed(rotation, old, "the new connection closed during the overlap")
                return
            if self._rotation is not rotation or old is not self._current:
                return  # the old one dropped and _hold already switched
            waited = time.monotonic() - opened
            if waited < settle:
                continue
            lagging = handover.lagging()
            if not lagging:
                break
            if waited > _OVERLAP_MAX_S or handover.overflowing:
                _log.warning(
                    "session %s: rotation switches without proof of overlap on %d streams "
                    "(e.g. %s): the engine's gap checks cover them",
                    self.name,
                    len(lagging),
                    ", ".join(lagging[:3]),
                )
                break
        self._switch(rotation, old, early=False)

    def _switch(self, rotation: _Rotation, old: Link, *, early: bool) -> None:
        """Make the rotation's connection the current one; close ``old``."""
        new = rotation.link
        assert new is not None and new.listener is not None
        handover = rotation.handover
        if old.listener is not None:
            old.listener.deliver = ignore
        new.listener.deliver = handover.pass_through
        replayed = handover.switch()
        self._rotation = None
        self._became_current(new)
        new.healthy = True
        self._direct_at = time.monotonic() + self.options.rotate_overlap_s
        self.rotations += 1
        detail = f"{replayed} buffered messages delivered, {handover.duplicates} duplicates dropped"
        if early:
            detail = f"the old connection closed first ({self._drop_reason(old)[1]}); {detail}"
        old.disconnect(Reason.ROTATED)
        self._set_state(SessionState.LIVE, Reason.ROTATED, detail)

    def _rotation_failed(self, rotation: _Rotation, old: Link, detail: str) -> None:
        self.rotation_failures += 1
        if old.listener is not None and old is self._current:
            old.listener.deliver = self.on_message
        if rotation.link is not None:
            rotation.link.disconnect(Reason.ROTATE_FAILED)
        self._rotation = None
        self._rotate_at = time.monotonic() + _ROTATE_RETRY_S
        if old is self._current and self.state is SessionState.ROTATING:
            self._set_state(
                SessionState.LIVE,
                Reason.ROTATE_FAILED,
                f"{detail}; the old connection still serves, next try in {_ROTATE_RETRY_S:g} s",
            )

    def _abort_rotation(self) -> None:
        """Give up a rotation under way (the old connection is going): close its connection."""
        rotation, self._rotation = self._rotation, None
        if rotation is None:
            return
        if rotation.task is not None and rotation.task is not asyncio.current_task():
            rotation.task.cancel()
        if rotation.link is not None:
            rotation.link.disconnect(Reason.ROTATE_FAILED)
        current = self._current
        if current is not None and current.listener is not None:
            current.listener.deliver = self.on_message

    def close(self) -> None:
        """Stop reconnecting and close the connection(s)."""
        self._stopping = True
        self._stop.set()
        self._abort_rotation()
        if self._current is not None:
            self._current.disconnect(Reason.STOPPED)
