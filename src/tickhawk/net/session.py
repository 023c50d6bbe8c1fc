"""A WebSocket market-data session over picows: connect, subscribe, deliver frames.

Every text frame goes straight from picows's callback to ``on_message``
(synchronously: decode → state → strategy → signal happen inside it). The
session reconnects with capped, jittered exponential backoff (the first retry
at once) and resubscribes. Heartbeats use picows's auto-ping (ping when idle,
disconnect if no pong in time); the venue's pings are answered automatically.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable
from time import perf_counter_ns

import msgspec
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["MessageHandler", "SessionState", "WsSession"]

_log = logging.getLogger("tickhawk.net")

MessageHandler = Callable[[bytes, int, int], None]
"""``(payload, t_recv perf ns, ts_recv epoch ns)``."""

#: Binance caps a URL's stream list; longer lists are sent with SUBSCRIBE.
_MAX_URL_STREAMS = 100
_SUBSCRIBE_BATCH = 200
_SUBSCRIBE_INTERVAL_S = 0.25  # Binance allows 5 incoming messages per second


class SessionState(enum.Enum):
    """Where a session is."""

    CONNECTING = "connecting"
    LIVE = "live"
    BACKOFF = "backoff"
    CLOSED = "closed"


class _Listener(WSListener):
    def __init__(self, session: WsSession) -> None:
        self._session = session
        self._on_message = session.on_message
        self._wall = session.wall_clock
        self._fragments: list[bytes] = []

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._session._connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        t_recv = perf_counter_ns()
        msg_type = frame.msg_type
        if msg_type == WSMsgType.TEXT or msg_type == WSMsgType.BINARY:
            session = self._session
            session.frames += 1
            if frame.fin:
                payload = frame.get_payload_as_bytes()
                session.bytes += len(payload)
                self._on_message(payload, t_recv, self._wall())
            else:
                self._fragments = [frame.get_payload_as_bytes()]
        elif msg_type == WSMsgType.CONTINUATION:
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                payload = b"".join(self._fragments)
                self._fragments = []
                self._session.bytes += len(payload)
                self._on_message(payload, t_recv, self._wall())
        elif msg_type == WSMsgType.CLOSE:
            self._session.close_code = frame.get_close_code()
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._session._disconnected()


class WsSession:
    """Keep one WebSocket connection to ``base_url`` subscribed to ``streams``.

    ``base_url`` is the venue's WebSocket root (``wss://stream.binance.com:9443``);
    the session connects to ``/stream?streams=...`` (combined streams).
    """

    def __init__(
        self,
        base_url: str,
        streams: list[str],
        on_message: MessageHandler,
        *,
        wall_clock: Callable[[], int] = time.time_ns,
        connect_timeout_s: float = 5.0,
        backoff_cap_s: float = 5.0,
        ping_idle_s: float = 10.0,
        ping_timeout_s: float = 5.0,
        max_frame_size: int = 4 * 1024 * 1024,
        on_state: Callable[[SessionState], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.streams = list(streams)
        self.on_message = on_message
        self.wall_clock = wall_clock
        self.connect_timeout_s = connect_timeout_s
        self.backoff_cap_s = backoff_cap_s
        self.ping_idle_s = ping_idle_s
        self.ping_timeout_s = ping_timeout_s
        self.max_frame_size = max_frame_size
        self.on_state = on_state
        self.state = SessionState.CLOSED
        self.frames = 0
        self.bytes = 0
        self.connects = 0
        self.reconnects = 0
        self.protocol_errors = 0
        self.close_code: object = None
        self._transport: WSTransport | None = None
        self._live = asyncio.Event()
        self._stopping = False
        self._request_id = 0

    @property
    def url(self) -> str:
        """Return the URL the session connects to."""
        if 0 < len(self.streams) <= _MAX_URL_STREAMS:
            return f"{self.base_url}/stream?streams={'/'.join(self.streams)}"
        return f"{self.base_url}/stream"

    def _set_state(self, state: SessionState) -> None:
        if state is not self.state:
            self.state = state
            _log.info("session %s: %s", self.base_url, state.value)
            if self.on_state is not None:
                self.on_state(state)

    def _connected(self, transport: WSTransport) -> None:
        self._transport = transport
        self.connects += 1
        self._set_state(SessionState.LIVE)
        self._live.set()

    def _disconnected(self) -> None:
        self._transport = None
        self._live.clear()
        if not self._stopping:
            self._set_state(SessionState.BACKOFF)

    async def wait_live(self, timeout: float | None = None) -> None:
        """Wait until the session is connected (raise ``TimeoutError`` after ``timeout``)."""
        async with asyncio.timeout(timeout):
            await self._live.wait()

    def send_json(self, message: object) -> None:
        """Send a JSON text frame (subscription methods)."""
        if self._transport is not None:
            self._transport.send(WSMsgType.TEXT, msgspec.json.encode(message))

    async def _subscribe_rest(self) -> None:
        if len(self.streams) <= _MAX_URL_STREAMS:
            return
        for start in range(0, len(self.streams), _SUBSCRIBE_BATCH):
            self._request_id += 1
            params = self.streams[start : start + _SUBSCRIBE_BATCH]
            self.send_json({"method": "SUBSCRIBE", "params": params, "id": self._request_id})
            await asyncio.sleep(_SUBSCRIBE_INTERVAL_S)

    async def run(self) -> None:
        """Connect and stay connected until :meth:`close`; reconnect on any drop."""
        failures = 0
        while not self._stopping:
            self._set_state(SessionState.CONNECTING)
            try:
                transport, _ = await asyncio.wait_for(
                    ws_connect(
                        lambda: _Listener(self),
                        self.url,
                        enable_auto_ping=True,
                        auto_ping_idle_timeout=self.ping_idle_s,
                        auto_ping_reply_timeout=self.ping_timeout_s,
                        max_frame_size=self.max_frame_size,
                        websocket_handshake_timeout=self.connect_timeout_s,
                    ),
                    self.connect_timeout_s,
                )
            except Exception as exc:  # OSError, TimeoutError and picows's WSError types
                failures += 1
                _log.warning("connect to %s failed: %s", self.base_url, exc or type(exc).__name__)
            else:
                failures = 0
                await self._subscribe_rest()
                try:
                    await transport.wait_disconnected()
                except Exception as exc:  # picows re-raises what closed the connection
                    self.protocol_errors += 1
                    _log.warning("session %s closed on a protocol error: %s", self.base_url, exc)
                if self._stopping:
                    break
                self.reconnects += 1
                _log.warning("session %s dropped (close code %s)", self.base_url, self.close_code)
            self._set_state(SessionState.BACKOFF)
            if failures:
                # Full jitter over a capped exponential: the first retry comes at once.
                ceiling = min(self.backoff_cap_s, 0.25 * 2 ** (failures - 1))
                await asyncio.sleep(random.uniform(0, ceiling))
        self._set_state(SessionState.CLOSED)

    def close(self) -> None:
        """Stop reconnecting and close the connection."""
        self._stopping = True
        transport = self._transport
        if transport is not None:
            transport.send_close()
            transport.disconnect()
