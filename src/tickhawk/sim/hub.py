"""Subscriptions and fan-out: who gets which stream, framed and written in batches.

Messages are published as ``(stream id, payload)``; each subscriber gets one
WebSocket text frame per message (wrapped in ``{"stream":..,"data":..}`` on
combined connections). Frames for a connection are collected during a
publish and written with one ``write`` call, which saves a system call per
message. A connection whose transport holds more than ``max_buffer`` unsent
bytes is a slow consumer: it is closed (code 1008) and counted, so memory
never grows without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from picows import WSCloseCode, WSTransport

from tickhawk.sim.streams import StreamKey

__all__ = ["Connection", "Hub", "MessageFilter", "SendHook", "StreamBackend", "frame_header"]

_log = logging.getLogger("tickhawk.sim")
_SMALL = [bytes([0x81, size]) for size in range(126)]
_MEDIUM = [b"\x81\x7e" + size.to_bytes(2, "big") for size in range(4_096)]
MAX_STREAMS = 1_024  # per connection, as on Binance
_ABORT_AFTER_S = 5.0


def frame_header(size: int) -> bytes:
    """Return the header of an unmasked, final WebSocket text frame of ``size`` bytes."""
    if size < 126:
        return _SMALL[size]
    if size < 4_096:
        return _MEDIUM[size]
    if size < 65_536:
        return b"\x81\x7e" + size.to_bytes(2, "big")
    return b"\x81\x7f" + size.to_bytes(8, "big")


class StreamBackend(Protocol):
    """What serves the streams: the synthetic market or a replay."""

    def resolve(self, name: str) -> StreamKey:
        """Return the key of a stream this backend serves; raise ``StreamError`` if it does not."""
        ...

    def start_stream(self, stream: int, key: StreamKey) -> None:
        """Start producing ``key`` as stream id ``stream`` (its first subscriber arrived)."""
        ...

    def stop_stream(self, stream: int, key: StreamKey) -> None:
        """Stop producing stream id ``stream`` (its last subscriber left)."""
        ...


class SendHook(Protocol):
    """Seam for fault injection: see (and change or drop) every message before it is framed."""

    def on_message(self, connection: Connection, stream: int, payload: bytes) -> bytes | None:
        """Return the payload to send (possibly changed), or None to drop it."""
        ...


class MessageFilter(Protocol):
    """Batch-level seam (fault injection): rewrite a batch before it is fanned out.

    The hub drops the filter once it is false (nothing armed any more).
    """

    def filter(
        self, messages: list[tuple[int, bytes, bytes | None]]
    ) -> list[tuple[int, bytes, bytes | None]]:
        """Return the messages to send instead of ``messages``."""
        ...

    def __bool__(self) -> bool:
        """Return whether anything is still armed."""
        ...


class Connection:
    """One WebSocket client: its subscriptions and its pending frames.

    ``stall`` (fault injection) stops writing: 1 holds the frames until
    :meth:`resume`, 2 drops them.
    """

    __slots__ = (
        "_abort",
        "closed",
        "combined",
        "held",
        "held_bytes",
        "number",
        "parts",
        "stall",
        "streams",
        "transport",
        "writable",
    )

    def __init__(self, transport: WSTransport, combined: bool, number: int) -> None:
        self.transport = transport
        self.combined = combined
        self.number = number
        self.streams: dict[str, int] = {}  # name -> stream id, in subscription order
        self.parts: list[bytes] = []
        self.closed = False
        self.writable = asyncio.Event()
        self.writable.set()
        self._abort: asyncio.TimerHandle | None = None
        self.stall = 0
        self.held: list[bytes] = []
        self.held_bytes = 0

    @property
    def buffered(self) -> int:
        """Return the bytes written but not yet sent by the transport."""
        return int(self.transport.underlying_transport.get_write_buffer_size())

    def write_pending(self) -> None:
        """Write the collected frames in one call (or hold them while stalled)."""
        if self.parts and not self.closed:
            if not self.stall:
                self.transport.underlying_transport.write(b"".join(self.parts))
            elif self.stall == 1:
                data = b"".join(self.parts)
                self.held.append(data)
                self.held_bytes += len(data)
        self.parts.clear()

    def resume(self) -> None:
        """End a stall: write the held frames."""
        self.stall = 0
        if self.held and not self.closed:
            self.transport.underlying_transport.write(b"".join(self.held))
        self.held.clear()
        self.held_bytes = 0

    def send_text(self, text: str) -> None:
        """Send one text frame now (replies to live requests)."""
        data = text.encode()
        self.parts.append(frame_header(len(data)))
        self.parts.append(data)
        self.write_pending()

    def close(self, code: WSCloseCode, reason: str) -> None:
        """Send a close frame and disconnect; abort if the peer does not drain in time."""
        if self.closed:
            return
        self.closed = True
        self.parts.clear()
        self.held.clear()
        self.held_bytes = 0
        self.transport.send_close(code, reason.encode())
        self.transport.disconnect(graceful=True)
        loop = asyncio.get_running_loop()
        self._abort = loop.call_later(_ABORT_AFTER_S, self.transport.disconnect, False)

    def forget(self) -> None:
        """Release timers once the transport is gone."""
        self.closed = True
        self.writable.set()
        if self._abort is not None:
            self._abort.cancel()
            self._abort = None


class Hub:
    """Route published messages to the connections subscribed to them."""

    def __init__(self, backend: StreamBackend, max_buffer: int) -> None:
        self.backend = backend
        self.max_buffer = max_buffer
        self.connections: list[Connection] = []
        self.stream_ids: dict[str, int] = {}
        self.keys: list[StreamKey] = []
        self.prefixes: list[bytes] = []
        self.subscribers: list[list[Connection]] = []
        self.sent: list[int] = []  # messages sent per stream id (counting each subscriber)
        self.hook: SendHook | None = None
        self.filter: MessageFilter | None = None
        self.connections_total = 0
        self.slow_disconnects = 0
        self.aged_out = 0  # connections closed at the maximum connection age
        self.on_change: list[Callable[[], None]] = []

    # -- connections and subscriptions ----------------------------------------------------

    def connect(self, transport: WSTransport, combined: bool) -> Connection:
        """Register a new connection."""
        self.connections_total += 1
        connection = Connection(transport, combined, self.connections_total)
        self.connections.append(connection)
        return connection

    def disconnect(self, connection: Connection) -> None:
        """Forget a connection and its subscriptions (its transport may still be closing)."""
        connection.closed = True
        connection.writable.set()
        if connection in self.connections:
            self.connections.remove(connection)
            self.unsubscribe(connection, list(connection.streams))

    def resolve(self, names: Iterable[str]) -> list[StreamKey]:
        """Return the keys of ``names``; raise ``StreamError`` for the first bad one."""
        return [self.backend.resolve(name) for name in names]

    def _stream_id(self, key: StreamKey) -> int:
        stream = self.stream_ids.get(key.name)
        if stream is None:
            stream = len(self.keys)
            self.stream_ids[key.name] = stream
            self.keys.append(key)
            self.prefixes.append(f'{{"stream":"{key.name}","data":'.encode())
            self.subscribers.append([])
            self.sent.append(0)
        return stream

    def subscribe(self, connection: Connection, keys: list[StreamKey]) -> None:
        """Subscribe ``connection`` to ``keys`` (already resolved); repeats are ignored."""
        for key in keys:
            if key.name in connection.streams:
                continue
            stream = self._stream_id(key)
            connection.streams[key.name] = stream
            subscribers = self.subscribers[stream]
            subscribers.append(connection)
            if len(subscribers) == 1:
                self.backend.start_stream(stream, key)
        self._changed()

    def unsubscribe(self, connection: Connection, names: list[str]) -> None:
        """Unsubscribe ``connection`` from the streams ``names`` it has."""
        for name in names:
            stream = connection.streams.pop(name, None)
            if stream is None:
                continue
            subscribers = self.subscribers[stream]
            subscribers.remove(connection)
            if not subscribers:
                self.backend.stop_stream(stream, self.keys[stream])
        self._changed()

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    @property
    def subscriptions(self) -> int:
        """Return the number of (connection, stream) subscriptions."""
        return sum(len(connection.streams) for connection in self.connections)

    # -- sending --------------------------------------------------------------------------

    def publish(self, messages: list[tuple[int, str]]) -> None:
        """Send ``(stream id, payload text)`` messages to their subscribers."""
        if self.hook is not None or self.filter is not None:
            self.publish_bytes([(stream, text.encode(), None) for stream, text in messages])
            return
        subscribers = self.subscribers
        prefixes = self.prefixes
        sent = self.sent
        for stream, text in messages:
            targets = subscribers[stream]
            if not targets:
                continue
            data = text.encode()
            size = len(data)
            sent[stream] += len(targets)
            for connection in targets:
                if connection.combined:
                    prefix = prefixes[stream]
                    connection.parts += (
                        frame_header(len(prefix) + size + 1),
                        prefix,
                        data,
                        b"}",
                    )
                else:
                    connection.parts += (frame_header(size), data)
        self.flush()

    def publish_bytes(self, messages: list[tuple[int, bytes, bytes | None]]) -> None:
        """Send ``(stream id, payload, combined form or None)`` messages to their subscribers.

        Replay passes the original combined line so that it is forwarded byte for byte.
        """
        batch_filter = self.filter
        if batch_filter is not None:
            messages = batch_filter.filter(messages)
            if not batch_filter:
                self.filter = None
        hook = self.hook
        for stream, data, wrapped in messages:
            targets = self.subscribers[stream]
            if not targets:
                continue
            for connection in targets:
                payload = data
                if hook is not None:
                    changed = hook.on_message(connection, stream, data)
                    if changed is None:
                        continue
                    payload = changed
                if connection.combined:
                    if wrapped is None or payload is not data:
                        wrapped_now = self.prefixes[stream] + payload + b"}"
                    else:
                        wrapped_now = wrapped
                    connection.parts += (frame_header(len(wrapped_now)), wrapped_now)
                else:
                    connection.parts += (frame_header(len(payload)), payload)
                self.sent[stream] += 1
        self.flush()

    def flush(self) -> None:
        """Write every connection's pending frames; close slow consumers."""
        for connection in self.connections:
            if connection.parts:
                connection.write_pending()
                if connection.buffered + connection.held_bytes > self.max_buffer:
                    self.drop_slow(connection)

    def drop_slow(self, connection: Connection) -> None:
        """Close a connection that does not keep up; count it."""
        if connection.closed:
            return
        self.slow_disconnects += 1
        _log.warning(
            "sim: closing slow WebSocket client #%d (%d bytes unsent)",
            connection.number,
            connection.buffered,
        )
        connection.close(WSCloseCode.POLICY_VIOLATION, "slow consumer")
        self.disconnect(connection)

    def close_all(self, code: WSCloseCode = WSCloseCode.GOING_AWAY, reason: str = "") -> None:
        """Close every connection."""
        for connection in list(self.connections):
            connection.close(code, reason)
            self.disconnect(connection)
