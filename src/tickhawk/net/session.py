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
  connection up when no pong comes within ``pong_timeout_s`` (the round trip
  is kept in :attr:`WsSession.ping_rtt_ms`); the venue's pings are answered.
- **Stale-stream watchdog** (:class:`~tickhawk.net.watchdog.StaleWatch`): the
  whole connection silent far beyond its usual gap, or a busy stream silent
  for ``stale_floor_s``, forces a reconnect (a quiet stream alone never does).
- **Rotation** (:class:`~tickhawk.net.rotation.Rotator`): a connection older
  than ``rotate_after_s`` is replaced make-before-break, nothing lost or
  repeated; the venue's :class:`~tickhawk.net.handover.SequenceKey` orders
  the messages of the overlap (none: no rotation).

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
from tickhawk.net.handover import SequenceKey
from tickhawk.net.link import ConnectError, Link, MessageHandler, open_link
from tickhawk.net.options import ConnectionOptions
from tickhawk.net.rotation import Rotator
from tickhawk.net.watchdog import StaleWatch

__all__ = [
    "ConnectionOptions",
    "EventListener",
    "MessageHandler",
    "Reason",
    "SequenceKey",
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


class WsSession:
    """Keep one WebSocket connection to ``base_url`` subscribed to ``streams``.

    ``base_url`` is the venue's WebSocket root (``wss://stream.binance.com:9443``);
    the session connects to ``/stream?streams=...`` (combined streams).
    ``options`` are the ``[connection]`` settings; ``breaker`` is the venue's
    circuit breaker (shared by its sessions; None: none). ``last_seen`` maps
    a stream name (bytes) to the ``perf_counter_ns`` of its last message (the
    feed's :attr:`~tickhawk.venues.binance.feed.BinanceFeed.last_seen`; None:
    no stale watchdog). ``sequence`` places a message in its stream, for
    rotations (the venue's, e.g.
    :class:`~tickhawk.venues.binance.sequence.BinanceSequence`; None: no
    rotation).
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
        self.rotator = Rotator(self, sequence)
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
        self.pongs = 0
        self.ping_rtt_ms: float | None = None
        self.close_code: object = None
        self._current: Link | None = None
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
        return self.rotator.overlapping

    @property
    def rotations(self) -> int:
        """Return the connections replaced make-before-break."""
        return self.rotator.rotations

    @property
    def rotation_failures(self) -> int:
        """Return the rotations given up (the old connection served on)."""
        return self.rotator.failures

    async def wait_live(self, timeout: float | None = None) -> None:
        """Wait until the session is connected (raise ``TimeoutError`` after ``timeout``)."""
        async with asyncio.timeout(timeout):
            await self._live.wait()

    def send_json(self, message: object) -> None:
        """Send a JSON text frame on the current connection (subscription methods)."""
        link = self._current
        if link is not None and link.transport is not None:
            link.transport.send(WSMsgType.TEXT, msgspec.json.encode(message))

    # -- what the rotation uses (net/rotation.py: RotationHost) ------------------------

    @property
    def current(self) -> Link | None:
        """Return the connection that delivers now (None before the first connect)."""
        return self._current

    def set_state(
        self, state: SessionState, reason: str, detail: str = "", *, quiet: bool = False
    ) -> None:
        """Move to ``state`` and emit the transition (``quiet``: an expected failure, INFO)."""
        previous = self.state
        self.state = state
        self.events.emit(previous, state, reason, detail, quiet=quiet)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` unless the session is closed meanwhile."""
        if seconds > 0 and not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)

    # -- connecting ---------------------------------------------------------------------

    def new_link(self, *, primary: bool) -> Link:
        """Return a numbered connection, not yet open (``primary``: not a rotation's)."""
        self._links += 1
        return Link(self._links, primary=primary)

    async def connect_link(self, link: Link, deliver: MessageHandler) -> None:
        """Open ``link`` and subscribe it to every stream, messages to ``deliver``.

        Raise ``ConnectError`` if it cannot connect.
        """
        await self._open(link, deliver)
        await self._subscribe_rest(link)

    def make_current(self, link: Link) -> None:
        """Make ``link`` the connection the session holds, watches and rotates."""
        self._current = link
        self.close_code = None
        if self.watch is not None:
            self.watch.reset(perf_counter_ns())
        self.rotator.schedule(link)

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
        self.make_current(link)
        reconnect = self._ever_live
        self._ever_live = True
        self.set_state(
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
                    self.rotator.abort()
        finally:
            self._group = None
            self._live.clear()
            if self._current is not None:
                self._current.disconnect(Reason.STOPPED)
            self.set_state(SessionState.CLOSED, Reason.STOPPED)

    async def _connect_loop(self) -> None:
        reason = Reason.START
        breaker = self.breaker
        while not self._stopping:
            probe = False
            if breaker is not None:
                wait = breaker.wait_s()
                if wait > 0:
                    if self.state is not SessionState.CIRCUIT_OPEN:
                        self.set_state(
                            SessionState.CIRCUIT_OPEN,
                            Reason.CIRCUIT_OPEN,
                            f"{breaker.consecutive} connect failures in a row; "
                            f"next attempt in {wait:.1f} s",
                        )
                    await self._pause(wait)
                    continue
                probe = breaker.begin()
            self.set_state(SessionState.CONNECTING, Reason.PROBE if probe else reason)
            link = self.new_link(primary=True)
            try:
                await self._open(link, self.on_message)
            except ConnectError as exc:
                self.connect_failures += 1
                self._failures += 1
                if breaker is not None:
                    breaker.failure(exc.detail)
                # A probe is expected to fail while the venue is down: the breaker says so.
                self.set_state(SessionState.BACKOFF, exc.reason, exc.detail, quiet=probe)
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
            drop_reason, detail = self.drop_reason(link)
            self.set_state(SessionState.BACKOFF, drop_reason, detail)
            await self._pause(self.backoff.delay(self._failures))
            reason = Reason.RECONNECT

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
            if not self._stopping and self.rotator.take_over(link):
                continue
            self.rotator.abort()
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

    def drop_reason(self, link: Link) -> tuple[str, str]:
        """Say why ``link`` closed: ``(reason, detail)``; count protocol errors and pongs."""
        reason, detail = link.close_reason(self.options.pong_timeout_s)
        if reason == Reason.PROTOCOL_ERROR:
            self.protocol_errors += 1
        elif reason == Reason.PONG_TIMEOUT:
            self.pong_timeouts += 1
        return reason, detail

    # -- off the hot path: watchdog, rotation -------------------------------------------

    async def _monitor(self) -> None:
        """Sample the streams, note working connections, drive rotations, every tick."""
        while True:
            await asyncio.sleep(self._tick_s)
            link = self._current
            if link is None or link.transport is None or link.transport.is_disconnected:
                continue
            if self.state is not SessionState.LIVE and self.state is not SessionState.ROTATING:
                continue
            self._note_health(link)
            if self.watch is not None:
                stale = self.watch.check(perf_counter_ns())
                if stale is not None:
                    self.stale_reconnects += 1
                    self.watch.penalize(stale)
                    self.rotator.abort()
                    link.disconnect(
                        Reason.STALE,
                        f"{stale.stream} silent for {stale.silent_s:.1f} s (threshold "
                        f"{stale.threshold_s:.1f} s, usual gap {stale.usual_gap_s:.2f} s)",
                    )
                    continue
            if self._group is not None:
                self.rotator.tick(link, self._group)

    def close(self) -> None:
        """Stop reconnecting and close the connection(s)."""
        self._stopping = True
        self._stop.set()
        self.rotator.abort()
        if self._current is not None:
            self._current.disconnect(Reason.STOPPED)
