"""The WebSocket side, through a client written from Binance's docs (aiohttp)."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import defaultdict
from typing import Any

import aiohttp
import msgspec
import pytest
from sim_helpers import (
    START_MS,
    AggTrade,
    BookTicker,
    DepthUpdate,
    Envelope,
    Kline,
    Trade,
    dec,
    run,
    schema_of,
    until,
)

from tickhawk.sim import SimConfig, Simulator

STREAMS = [
    "btcusdt@trade",
    "btcusdt@aggTrade",
    "btcusdt@depth@100ms",
    "btcusdt@depth",
    "btcusdt@bookTicker",
    "btcusdt@kline_1s",
    "btcusdt@kline_1m",
    "ethusdt@trade",
]


def _config(**changes: Any) -> SimConfig:
    base: dict[str, Any] = {
        "symbols": ["BTCUSDT", "ETHUSDT"],
        "rate": 3_000.0,
        "seed": 11,
        "start_time_ms": START_MS,
    }
    base.update(changes)
    return SimConfig(**base)


async def _text(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> str:
    message = await ws.receive(timeout=timeout)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return str(message.data)


async def _reply(ws: aiohttp.ClientWebSocketResponse, request: dict[str, Any]) -> Any:
    """Send a live request; skip stream data until its reply."""
    await ws.send_str(msgspec.json.encode(request).decode())
    while True:
        body = msgspec.json.decode(await _text(ws))
        if "id" in body and ("result" in body or "error" in body):
            return body


def _check_payloads(by_stream: dict[str, list[Any]]) -> None:
    trades = by_stream["btcusdt@trade"]
    assert [t.t for t in trades] == list(range(trades[0].t, trades[0].t + len(trades)))
    for trade in trades:
        assert trade.s == "BTCUSDT" and trade.M is True and trade.E >= trade.T
        assert dec(trade.p) > 0 and dec(trade.q) > 0
    aggs = by_stream["btcusdt@aggTrade"]
    for before, after in itertools.pairwise(aggs):
        assert after.a == before.a + 1 and after.f == before.l + 1
    for agg in aggs:
        assert dec(agg.p) > 0 and agg.l >= agg.f
    diffs = by_stream["btcusdt@depth@100ms"]
    for before, after in itertools.pairwise(diffs):
        assert before.u + 1 == after.U, "diff chain must be contiguous"
        assert after.E - before.E >= 100 and after.E % 100 == 0
    slow = by_stream["btcusdt@depth"]
    for before, after in itertools.pairwise(slow):
        assert before.u + 1 == after.U and after.E % 1_000 == 0
    for diff in diffs + slow:
        assert diff.u >= diff.U
        assert [dec(p) for p, _ in diff.b] == sorted((dec(p) for p, _ in diff.b), reverse=True)
        assert [dec(p) for p, _ in diff.a] == sorted(dec(p) for p, _ in diff.a)
        assert all(dec(q) >= 0 for _, q in diff.b + diff.a)
    tickers = by_stream["btcusdt@bookTicker"]
    for before, after in itertools.pairwise(tickers):
        assert after.u > before.u
    for ticker in tickers:
        assert dec(ticker.b) < dec(ticker.a), "book crossed"
        assert dec(ticker.B) > 0 and dec(ticker.A) > 0
    seconds = by_stream["btcusdt@kline_1s"]
    for kline in seconds:
        body = kline.k
        assert body.i == "1s" and body.x is True and body.t + 999 == body.T
        assert kline.E == body.T + 1
        assert dec(body.l) <= min(dec(body.o), dec(body.c)) <= dec(body.h)
        assert body.n == (body.L - body.f + 1 if body.n else 0)
    for kline in by_stream["btcusdt@kline_1m"]:
        assert kline.k.i == "1m" and kline.k.t + 59_999 == kline.k.T and kline.k.x is False
    assert by_stream["ethusdt@trade"] and all(t.s == "ETHUSDT" for t in by_stream["ethusdt@trade"])


def test_combined_streams_carry_binance_payloads() -> None:
    async def scenario() -> None:
        async with (
            Simulator(_config()) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/stream?streams={'/'.join(STREAMS)}") as ws,
        ):
            by_stream: dict[str, list[Any]] = defaultdict(list)
            while len(by_stream["btcusdt@kline_1s"]) < 3 or not by_stream["btcusdt@kline_1m"]:
                envelope = msgspec.json.decode(await _text(ws), type=Envelope)
                schema = schema_of(envelope.stream)
                by_stream[envelope.stream].append(msgspec.json.decode(envelope.data, type=schema))
            assert set(by_stream) == set(STREAMS)
            _check_payloads(by_stream)
            # Every trade sent was received exactly once: stop, then compare.
            await ws.send_str(
                msgspec.json.encode({"method": "UNSUBSCRIBE", "params": STREAMS, "id": 9}).decode()
            )
            while True:
                text = await _text(ws)
                if text.startswith('{"result"'):
                    assert msgspec.json.decode(text) == {"result": None, "id": 9}
                    break
                envelope = msgspec.json.decode(text, type=Envelope)
                if envelope.stream == "btcusdt@trade":
                    by_stream[envelope.stream].append(
                        msgspec.json.decode(envelope.data, type=Trade)
                    )
            received = [t.t for t in by_stream["btcusdt@trade"]]
            ranges = sim.trade_ids_sent("BTCUSDT")
            sent = [i for first, last in ranges for i in range(first, last + 1)]
            assert sent == received
            stats = sim.stats
            assert stats.connections == 1 and stats.subscriptions == 0
            assert stats.by_kind["trade"] >= len(received)
            assert stats.trades_sent["BTCUSDT"] == len(sent)

    run(scenario())


def test_raw_streams_and_live_methods() -> None:
    async def scenario() -> None:
        async with (
            Simulator(_config()) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws") as ws,
        ):
            # An idle connection gets nothing before the reply to its first request.
            await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            assert msgspec.json.decode(await _text(ws)) == {"result": [], "id": 1}
            subscribe = {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 2}
            assert await _reply(ws, subscribe) == {"result": None, "id": 2}
            trade = msgspec.json.decode(await _text(ws), type=Trade)  # raw: no envelope
            assert trade.s == "BTCUSDT"
            subscribe = {"method": "SUBSCRIBE", "params": ["ethusdt@bookTicker"], "id": "a1"}
            assert await _reply(ws, subscribe) == {"result": None, "id": "a1"}
            listed = await _reply(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
            assert listed == {"result": ["btcusdt@trade", "ethusdt@bookTicker"], "id": 3}
            combined = {"method": "GET_PROPERTY", "params": ["combined"], "id": 4}
            assert await _reply(ws, combined) == {"result": False, "id": 4}
            switch = {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}
            assert await _reply(ws, switch) == {"result": None, "id": 5}
            envelope = msgspec.json.decode(await _text(ws), type=Envelope)
            assert envelope.stream in ("btcusdt@trade", "ethusdt@bookTicker")
            drop = {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@bookTicker"]}
            assert await _reply(ws, {**drop, "id": 6}) == {"result": None, "id": 6}
            assert await _reply(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 7}) == {
                "result": [],
                "id": 7,
            }
            assert sim.stats.subscriptions == 0
            # Nothing arrives after the unsubscribe reply: the next frame answers a request.
            await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":8}')
            assert msgspec.json.decode(await _text(ws)) == {"result": [], "id": 8}

    run(scenario())


@pytest.mark.parametrize(
    ("request_text", "code", "reply_id"),
    [
        ("not json", 3, None),
        ("[1,2]", 2, None),
        ('{"method":"SUBSCRIBE","params":["nopeusdt@trade"],"id":1}', 2, 1),
        ('{"method":"SUBSCRIBE","params":["btcusdt@bogus"],"id":2}', 2, 2),
        ('{"method":"SUBSCRIBE","params":["BTCUSDT@trade"],"id":3}', 2, 3),
        ('{"method":"SUBSCRIBE","params":"btcusdt@trade","id":4}', 2, 4),
        ('{"method":"DANCE","params":[],"id":5}', 2, 5),
        ('{"method":"SUBSCRIBE","params":[],"id":-1}', 2, None),
        ('{"method":"LIST_SUBSCRIPTIONS","id":6,"extra":1}', 0, 6),
        ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":7}', 1, 7),
    ],
)
def test_bad_requests_get_binance_errors(request_text: str, code: int, reply_id: Any) -> None:
    async def scenario() -> None:
        async with (
            Simulator(_config(rate=100.0)) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws") as ws,
        ):
            await ws.send_str(request_text)
            reply = msgspec.json.decode(await _text(ws))
            assert set(reply) == {"error", "id"} and reply["id"] == reply_id
            assert reply["error"]["code"] == code and isinstance(reply["error"]["msg"], str)
            # The connection survives and still answers.
            await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":99}')
            assert msgspec.json.decode(await _text(ws)) == {"result": [], "id": 99}

    run(scenario())


def test_raw_path_and_bad_urls() -> None:
    async def scenario() -> None:
        async with Simulator(_config()) as sim, aiohttp.ClientSession() as http:
            async with http.ws_connect(
                f"{sim.ws_url}/ws/btcusdt@bookTicker/btcusdt@aggTrade"
            ) as ws:
                kinds = set()
                while len(kinds) < 2:
                    body = msgspec.json.decode(await _text(ws))
                    if "e" in body:
                        msgspec.convert(body, AggTrade)
                        kinds.add("aggTrade")
                    else:
                        msgspec.convert(body, BookTicker)
                        kinds.add("bookTicker")
            for path, status in (
                ("/stream?streams=nopeusdt@trade", 400),
                ("/ws/btcusdt@depth@250ms", 400),
                ("/elsewhere", 404),
            ):
                with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                    await http.ws_connect(f"{sim.ws_url}{path}")
                assert caught.value.status == status
            await until(lambda: sim.stats.connections == 0, what="connections closed")

    run(scenario())


def test_server_pings_and_answers_pings() -> None:
    async def scenario() -> None:
        async with (
            Simulator(_config(ping_interval_s=0.2, rate=100.0)) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws", autoping=False) as ws,
        ):
            message = await ws.receive(timeout=5)
            assert message.type == aiohttp.WSMsgType.PING
            await ws.pong(message.data)
            await ws.ping(b"hello")
            while True:
                message = await ws.receive(timeout=5)
                if message.type == aiohttp.WSMsgType.PONG:
                    assert message.data == b"hello"
                    break
                assert message.type == aiohttp.WSMsgType.PING
            assert sim.stats.connections == 1

    run(scenario())


def test_slow_consumer_is_disconnected() -> None:
    async def scenario() -> None:
        config = _config(rate=100_000.0, max_send_buffer=64 * 1024)
        async with Simulator(config) as sim:
            host, port = sim.ws_url.removeprefix("ws://").split(":")
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
            _reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(
                b"GET /stream?streams=btcusdt@trade/btcusdt@bookTicker/btcusdt@depth@100ms "
                b"HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await writer.drain()
            # Never read: the server must give up on us instead of buffering forever.
            await until(lambda: sim.stats.slow_disconnects == 1, timeout=20, what="slow drop")
            assert sim.stats.connections == 0
            writer.close()

    run(scenario())


def test_same_seed_same_trades_over_the_wire() -> None:
    async def trades() -> dict[int, tuple[str, str, bool, int]]:
        async with (
            Simulator(_config()) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws,
        ):
            seen: dict[int, tuple[str, str, bool, int]] = {}
            while len(seen) < 300:
                trade = msgspec.json.decode(await _text(ws), type=Trade)
                seen[trade.t] = (trade.p, trade.q, trade.m, trade.T)
            return seen

    first = run(trades())
    second = run(trades())
    shared = set(first) & set(second)
    assert len(shared) > 100
    assert all(first[trade_id] == second[trade_id] for trade_id in shared)


def test_diff_kline_payload_types() -> None:
    """Decode one of each payload strictly (types as Binance documents them)."""
    text = (
        '{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.00000000","0.00000000"]],'
        '"a":[]}'
    )
    assert msgspec.json.decode(text, type=DepthUpdate).b == [("1.00000000", "0.00000000")]
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode('{"e":"kline","E":1,"s":"X","k":{}}', type=Kline)


class _DropTickers:
    """A send hook (the fault-injection seam) that drops bookTicker messages."""

    def __init__(self) -> None:
        self.seen = 0

    def on_message(self, connection: object, stream: int, payload: bytes) -> bytes | None:
        self.seen += 1
        if payload.startswith(b'{"u":'):
            return None
        return payload


def test_send_hook_sees_and_filters_messages() -> None:
    async def scenario() -> None:
        async with (
            Simulator(_config()) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/stream?streams=btcusdt@trade/btcusdt@bookTicker") as ws,
        ):
            hook = _DropTickers()
            sim.send_hook = hook
            for _ in range(200):
                msgspec.json.decode(await _text(ws), type=Envelope)
            assert hook.seen > 0
            # Messages framed before the hook was set may still arrive; after it, no tickers.
            tail = [msgspec.json.decode(await _text(ws), type=Envelope) for _ in range(50)]
            assert {envelope.stream for envelope in tail} == {"btcusdt@trade"}

    run(scenario())
