"""The WebSocket side: Binance's URL forms and live subscription methods, over picows.

URLs: ``/stream?streams=a/b`` (combined: ``{"stream":..,"data":..}``),
``/ws/<stream>[/<stream>...]`` (raw payloads), and bare ``/ws`` or
``/stream`` followed by live ``SUBSCRIBE``. Methods: ``SUBSCRIBE``,
``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY`` / ``GET_PROPERTY``
(``combined``), with Binance's reply and error shapes.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from tickhawk.sim.encode import error_json, reply_json
from tickhawk.sim.hub import MAX_STREAMS, Connection, Hub
from tickhawk.sim.streams import StreamError

__all__ = ["RequestError", "SimListener", "handle_request", "start_ws_server"]

_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_STRING_ID = re.compile(r"^[A-Za-z0-9]{1,36}$")
_decoder = msgspec.json.Decoder()


class RequestError(Exception):
    """A live request Binance would answer with an error object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _request_id(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return str(value)
    if isinstance(value, str) and _STRING_ID.match(value):
        return f'"{value}"'
    raise RequestError(2, "Invalid request: request ID must be an unsigned integer")


def _stream_params(params: object, method: str) -> list[str]:
    if not isinstance(params, list) or not all(isinstance(item, str) for item in params):
        raise RequestError(2, f"Invalid request: {method} params must be an array of strings")
    return params


def handle_request(hub: Hub, connection: Connection, text: bytes) -> str:
    """Apply one live request of ``connection``; return the reply text."""
    try:
        request = _decoder.decode(text)
    except msgspec.DecodeError as error:
        return error_json(3, f"Invalid JSON: {error}")
    if not isinstance(request, dict):
        return error_json(2, "Invalid request: expected a JSON object")
    try:
        request_id = _request_id(request.get("id"))
    except RequestError as error:
        return error_json(error.code, error.message)
    try:
        return reply_json(request_id, _apply(hub, connection, request))
    except RequestError as error:
        return error_json(error.code, error.message, request_id)


def _apply(hub: Hub, connection: Connection, request: dict[str, Any]) -> str:
    unknown = set(request) - {"method", "params", "id"}
    if unknown:
        raise RequestError(0, f"Unknown property: {sorted(unknown)[0]}")
    method = request.get("method")
    if method not in _METHODS:
        expected = ", ".join(f"`{name}`" for name in _METHODS)
        message = f"unknown variant `{method}`, expected one of {expected}"
        raise RequestError(2, f"Invalid request: {message}")
    params = request.get("params", [])
    if method == "SUBSCRIBE":
        names = _stream_params(params, method)
        try:
            keys = hub.resolve(names)
        except StreamError as error:
            raise RequestError(2, f"Invalid request: {error}") from None
        if len(set(connection.streams) | set(names)) > MAX_STREAMS:
            raise RequestError(2, f"Invalid request: at most {MAX_STREAMS} streams per connection")
        hub.subscribe(connection, keys)
        return "null"
    if method == "UNSUBSCRIBE":
        hub.unsubscribe(connection, _stream_params(params, method))
        return "null"
    if method == "LIST_SUBSCRIPTIONS":
        return msgspec.json.encode(list(connection.streams)).decode()
    if not isinstance(params, list) or not params or params[0] != "combined":
        raise RequestError(2, "Invalid request: the only property is `combined`")
    if method == "GET_PROPERTY":
        return "true" if connection.combined else "false"
    if len(params) != 2 or not isinstance(params[1], bool):
        raise RequestError(1, "Invalid value type: expected Boolean")
    connection.combined = params[1]
    return "null"


class SimListener(WSListener):
    """One client connection: subscribes its URL streams, answers its requests."""

    def __init__(
        self, hub: Hub, combined: bool, names: list[str], max_age_s: float | None = None
    ) -> None:
        super().__init__()
        self.hub = hub
        self.combined = combined
        self.names = names
        self.max_age_s = max_age_s
        self.connection: Connection | None = None
        self._age_timer: asyncio.TimerHandle | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        """Register the connection and its URL streams."""
        transport.underlying_transport.set_write_buffer_limits(high=256 * 1024)
        connection = self.hub.connect(transport, self.combined)
        self.connection = connection
        if self.names:
            self.hub.subscribe(connection, self.hub.resolve(self.names))
        if self.max_age_s is not None:
            loop = asyncio.get_running_loop()
            self._age_timer = loop.call_later(self.max_age_s, self._age_out)

    def _age_out(self) -> None:
        """Close a connection that reached the maximum age, as Binance does at 24 hours."""
        connection = self.connection
        if connection is not None and not connection.closed:
            self.hub.aged_out += 1
            connection.close(WSCloseCode.GOING_AWAY, "maximum connection age")
            self.hub.disconnect(connection)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """Answer text requests; close on a close frame (pings are answered by picows)."""
        connection = self.connection
        if connection is None:
            return
        if frame.msg_type == WSMsgType.TEXT:
            reply = handle_request(self.hub, connection, frame.get_payload_as_bytes())
            connection.send_text(reply)
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """Drop the connection's subscriptions and timers."""
        if self._age_timer is not None:
            self._age_timer.cancel()
        if self.connection is not None:
            self.hub.disconnect(self.connection)
            self.connection.forget()

    def pause_writing(self) -> None:
        """Note that the client's socket is full (replay waits for it)."""
        if self.connection is not None:
            self.connection.writable.clear()

    def resume_writing(self) -> None:
        """Note that the client's socket drains again."""
        if self.connection is not None:
            self.connection.writable.set()


def _route(
    hub: Hub, path: bytes, max_age_s: float | None = None
) -> SimListener | WSUpgradeResponseWithListener | None:
    parts = urlsplit(path.decode("utf-8", "replace"))
    route = parts.path.rstrip("/")
    if route == "/ws":
        combined, names = False, []
    elif route.startswith("/ws/"):
        combined, names = False, [name for name in route[4:].split("/") if name]
    elif route == "/stream":
        query = parse_qs(parts.query).get("streams", [""])[0]
        combined, names = True, [name for name in query.split("/") if name]
    else:
        return None
    try:
        hub.resolve(names)
    except StreamError as error:
        body = error_json(2, f"Invalid request: {error}").encode()
        response = WSUpgradeResponse.create_error_response(
            400, body, {"Content-Type": "application/json"}
        )
        return WSUpgradeResponseWithListener(response, None)
    if len(names) > MAX_STREAMS:
        body = error_json(2, f"Invalid request: at most {MAX_STREAMS} streams").encode()
        response = WSUpgradeResponse.create_error_response(400, body)
        return WSUpgradeResponseWithListener(response, None)
    return SimListener(hub, combined, names, max_age_s)


async def start_ws_server(
    hub: Hub,
    host: str,
    port: int,
    ping_interval_s: float,
    pong_timeout_s: float,
    *,
    answer_pings: bool = True,
    max_connection_age_s: float | None = None,
) -> asyncio.Server:
    """Listen for WebSocket clients; ping each every ``ping_interval_s`` (0 disables).

    ``answer_pings`` False leaves the clients' pings unanswered;
    ``max_connection_age_s`` closes each connection that old.
    """

    def factory(request: WSUpgradeRequest) -> SimListener | WSUpgradeResponseWithListener | None:
        return _route(hub, request.path, max_connection_age_s)

    interval = ping_interval_s if ping_interval_s > 0 else 20.0
    server: asyncio.Server = await ws_create_server(
        factory,
        host,
        port,
        enable_auto_ping=ping_interval_s > 0,
        auto_ping_idle_timeout=interval,
        # picows waits for the pong at most one ping interval.
        auto_ping_reply_timeout=min(pong_timeout_s, interval),
        auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY,
        enable_auto_pong=answer_pings,
        logger_name="tickhawk.sim.ws",
    )
    return server
