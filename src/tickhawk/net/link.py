"""One picows connection of a session: its frame callback, its heartbeat, why it closed.

The frame callback is the hot path: a text frame's payload goes to
``deliver`` (the feed, or a rotation's merge) with its receive stamps and
nothing else. Pings are timed here (picows sends them; the round trip is
kept). :func:`open_link` connects with a timeout and turns every way a
connect can fail into a :class:`ConnectError` with a reason and one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import perf_counter_ns
from typing import Protocol

from picows import WSAutoPingStrategy, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from tickhawk.net.events import Reason
from tickhawk.net.options import ConnectionOptions

__all__ = [
    "ConnectError",
    "FrameListener",
    "Link",
    "LinkOwner",
    "MessageHandler",
    "ignore",
    "open_link",
]

MessageHandler = Callable[[bytes, int, int], None]
"""``(payload, t_recv perf ns, ts_recv epoch ns)``."""


def ignore(payload: bytes, t_recv: int, ts_recv: int) -> None:
    """Swallow a message of a connection that is being closed (its successor delivers)."""


class LinkOwner(Protocol):
    """What a connection reports to: the session's counters and its connect callback."""

    frames: int
    bytes: int
    pongs: int
    ping_rtt_ms: float | None
    wall_clock: Callable[[], int]

    def link_connected(self, link: Link) -> None:
        """Take a connection whose handshake just completed (before its first frame)."""
        ...


class Link:
    """One connection and what is known about it."""

    __slots__ = (
        "awaiting_pong",
        "close_code",
        "connected_at",
        "error",
        "frames_at_connect",
        "healthy",
        "listener",
        "number",
        "ping_at",
        "primary",
        "retire_detail",
        "retire_reason",
        "transport",
    )

    def __init__(self, number: int, *, primary: bool) -> None:
        self.number = number
        self.primary = primary  # the session's own connect, not a rotation's second connection
        self.transport: WSTransport | None = None
        self.listener: FrameListener | None = None
        self.connected_at = 0.0  # monotonic
        self.frames_at_connect = 0
        self.healthy = False
        self.ping_at = 0  # perf ns of the last ping
        self.awaiting_pong = False
        self.close_code: object = None  # set when the venue sent a close frame
        self.error: BaseException | None = None
        self.retire_reason = ""  # set when the session closes the link itself
        self.retire_detail = ""

    def disconnect(self, reason: str, detail: str = "") -> None:
        """Close the connection on purpose (stale, rotated, stopped)."""
        if not self.retire_reason:
            self.retire_reason = reason
            self.retire_detail = detail
        transport = self.transport
        if transport is not None and not transport.is_disconnected:
            transport.send_close()
            transport.disconnect()

    async def wait_closed(self) -> None:
        """Wait until the connection is gone; keep what closed it."""
        if self.transport is None:
            return
        try:
            await self.transport.wait_disconnected()
        except Exception as exc:  # picows re-raises what broke the connection
            self.error = exc

    def close_reason(self, pong_timeout_s: float) -> tuple[str, str]:
        """Say why the connection closed: ``(reason, detail)``."""
        if self.retire_reason:
            return self.retire_reason, self.retire_detail
        if self.error is not None:
            return Reason.PROTOCOL_ERROR, str(self.error) or type(self.error).__name__
        if self.close_code is not None:
            return Reason.DROPPED, f"closed by the venue (code {self.close_code})"
        if self.awaiting_pong and perf_counter_ns() - self.ping_at >= pong_timeout_s * 0.9e9:
            return Reason.PONG_TIMEOUT, f"no pong within {pong_timeout_s:g} s"
        return Reason.DROPPED, "the connection was lost"


class FrameListener(WSListener):
    """The picows callbacks of one connection: frames to ``deliver``, pings timed."""

    def __init__(self, owner: LinkOwner, link: Link, deliver: MessageHandler) -> None:
        self._owner = owner
        self._link = link
        self.deliver = deliver  # swapped during a rotation
        self._wall = owner.wall_clock
        self._fragments: list[bytes] = []

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._link.transport = transport
        self._owner.link_connected(self._link)  # before any frame of the connection

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        t_recv = perf_counter_ns()
        msg_type = frame.msg_type
        if msg_type == WSMsgType.TEXT or msg_type == WSMsgType.BINARY:
            owner = self._owner
            owner.frames += 1
            if frame.fin:
                payload = frame.get_payload_as_bytes()
                owner.bytes += len(payload)
                self.deliver(payload, t_recv, self._wall())
            else:
                self._fragments = [frame.get_payload_as_bytes()]
        elif msg_type == WSMsgType.CONTINUATION:
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                payload = b"".join(self._fragments)
                self._fragments = []
                self._owner.bytes += len(payload)
                self.deliver(payload, t_recv, self._wall())
        elif msg_type == WSMsgType.CLOSE:
            if not transport.is_close_frame_sent:  # the venue's close, not the echo of ours
                self._link.close_code = frame.get_close_code()
                transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._fragments = []

    def send_user_specific_ping(self, transport: WSTransport) -> None:
        link = self._link
        link.ping_at = perf_counter_ns()
        link.awaiting_pong = True
        transport.send_ping()

    def is_user_specific_pong(self, frame: WSFrame) -> bool:
        if frame.msg_type != WSMsgType.PONG:
            return False
        link = self._link
        if link.awaiting_pong:
            link.awaiting_pong = False
            self._owner.ping_rtt_ms = (perf_counter_ns() - link.ping_at) / 1e6
            self._owner.pongs += 1
        return True


class ConnectError(Exception):
    """A connect attempt that failed: ``reason`` (a :class:`Reason`) and one line."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


async def open_link(
    owner: LinkOwner, link: Link, url: str, deliver: MessageHandler, options: ConnectionOptions
) -> None:
    """Connect ``link`` to ``url``, handing its messages to ``deliver``; raise ConnectError."""

    def listener() -> FrameListener:
        link.listener = FrameListener(owner, link, deliver)
        return link.listener

    try:
        await asyncio.wait_for(
            ws_connect(
                listener,
                url,
                enable_auto_ping=True,
                auto_ping_idle_timeout=options.ping_interval_s,
                auto_ping_reply_timeout=options.pong_timeout_s,
                auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY,
                max_frame_size=options.max_frame_bytes,
                websocket_handshake_timeout=options.connect_timeout_s,
            ),
            options.connect_timeout_s,
        )
    except TimeoutError:
        if link.transport is not None:  # the handshake raced the timeout: undo it
            link.disconnect(Reason.CONNECT_TIMEOUT)
        raise ConnectError(
            Reason.CONNECT_TIMEOUT,
            f"no WebSocket handshake within {options.connect_timeout_s:g} s",
        ) from None
    except Exception as exc:  # OSError and picows's WSError types: refused, 4xx/5xx, TLS
        raise ConnectError(Reason.CONNECT_FAILED, str(exc) or type(exc).__name__) from None
    if link.transport is None:  # picows returns when the peer hangs up mid-handshake
        raise ConnectError(
            Reason.CONNECT_FAILED, "the venue closed the connection during the handshake"
        )
