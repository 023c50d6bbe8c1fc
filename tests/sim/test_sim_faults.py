"""Fault injection seen from the wire: what each fault does to the frames and answers.

The engine's side (detection and recovery) is in ``tests/test_faults_*.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp
import msgspec
from sim_helpers import START_MS, get_json, run, until

from tickhawk.sim import SimConfig, Simulator


class _Diff(msgspec.Struct):
    E: int
    U: int
    u: int


class _Trade(msgspec.Struct):
    t: int
    T: int


class _Envelope(msgspec.Struct):
    data: _Trade


def _config(**changes: Any) -> SimConfig:
    base: dict[str, Any] = {
        "symbols": ["BTCUSDT", "ETHUSDT"],
        "rate": 3_000.0,
        "seed": 11,
        "start_time_ms": START_MS,
    }
    base.update(changes)
    return SimConfig(**base)


async def _read(ws: aiohttp.ClientWebSocketResponse, kind: type[Any], until_ms: int) -> list[Any]:
    """Decode raw payloads of one stream until one is stamped ``until_ms`` or later."""
    out: list[Any] = []
    while True:
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        item = msgspec.json.decode(message.data, type=kind)
        out.append(item)
        if (item.E if isinstance(item, _Diff) else item.T) >= until_ms:
            return out


def _holes(diffs: list[_Diff]) -> list[tuple[int, int]]:
    """Return ``(E before, E after)`` around every break in the ``U``/``u`` chain."""
    return [(a.E, b.E) for a, b in itertools.pairwise(diffs) if a.u + 1 != b.U]


def test_a_scheduled_gap_hits_the_same_diffs_every_run() -> None:
    async def once() -> tuple[list[tuple[int, int]], list[_Diff]]:
        config = _config(faults=["at=1s gap symbol=BTCUSDT count=2"])
        async with (
            Simulator(config) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws,
        ):
            diffs = await _read(ws, _Diff, START_MS + 1_500)
            assert sim.stats.faults == {"gap": 1, "gap_messages": 2}
            assert sim.faults.pending == [] and sim.faults.upcoming == []
        return _holes(diffs), diffs

    async def scenario() -> None:
        holes, diffs = await once()
        again, diffs_again = await once()
        assert holes == again and diffs[-10:] == diffs_again[-10:]
        # One hole: the first two diffs stamped at or after 1 s were not sent.
        assert len(holes) == 1
        before, after = holes[0]
        assert before < START_MS + 1_000 and after >= START_MS + 1_200

    run(scenario())


def test_duplicates_reorders_and_held_stalls_keep_every_trade() -> None:
    async def scenario() -> None:
        async with (
            Simulator(_config()) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws,
        ):
            await _read(ws, _Trade, 0)
            sim.faults.duplicate("BTCUSDT", stream="trade", count=2)
            sim.faults.reorder("BTCUSDT", stream="trade")
            sim.faults.stale("BTCUSDT", stream="trade", seconds=0.4)
            now = sim.stats.sim_time_ms
            trades = await _read(ws, _Trade, now + 800)
            ids = [trade.t for trade in trades]
            assert len(ids) - len(set(ids)) == 2  # two repeats
            assert sorted(set(ids)) == list(range(min(ids), max(ids) + 1))  # nothing lost
            assert sum(1 for a, b in itertools.pairwise(ids) if b < a) >= 1
            stats = sim.stats
            assert stats.faults == {"duplicate": 2, "reorder": 1, "stale": 1}
            assert sim.faults.hub.filter is None  # all done: the hot path is plain again

    run(scenario())


def test_bad_frames_are_inserted_not_substituted_and_not_counted_as_trades() -> None:
    async def scenario() -> None:
        async with (
            Simulator(_config()) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/stream?streams=btcusdt@trade") as ws,
        ):
            for mode in ("not_json", "schema", "garbage"):
                sim.faults.malformed("BTCUSDT", mode=mode)
            sim.faults.oversized("BTCUSDT", size=100_000)
            frames: list[str] = []
            while len(frames) < 200:
                message = await ws.receive(timeout=10)
                frames.append(str(message.data))
            good, bad = [], []
            for frame in frames:
                try:
                    good.append(msgspec.json.decode(frame, type=_Envelope).data.t)
                except msgspec.DecodeError:  # also wrong types (ValidationError)
                    bad.append(frame)
            assert len(bad) == 4 and any(len(frame) > 100_000 for frame in bad)
            assert bad[1].endswith(
                '"t":"x","a":"x","U":"x","u":"x","p":"x","q":"x",'
                '"b":"x","B":"x","A":"x","T":"x","m":"x","k":"x"}}'
            )
            assert bad[2].startswith("<html>")  # garbage has no combined envelope
            assert good == list(range(good[0], good[0] + len(good)))
            stats = sim.stats
            assert stats.faults == {"malformed": 3, "oversized": 1}
            assert stats.trades_sent["BTCUSDT"] == sum(
                last - first + 1 for first, last in sim.trade_ids_sent("BTCUSDT")
            )

    run(scenario())


def test_a_stalled_connection_keeps_its_socket_and_then_sends_what_it_held() -> None:
    async def scenario() -> None:
        async with (
            Simulator(_config()) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade", heartbeat=None) as ws,
        ):
            await _read(ws, _Trade, 0)
            sim.faults.stall(seconds=0.5)
            start = sim.stats.sim_time_ms
            trades = await _read(ws, _Trade, start + 900)
            times = [trade.T for trade in trades]
            assert max(b - a for a, b in itertools.pairwise(times)) < 300  # all held
            ids = [trade.t for trade in trades]
            assert ids == list(range(ids[0], ids[0] + len(ids)))
            assert sim.stats.connections == 1 and sim.stats.faults == {"stall": 1}

    run(scenario())


def test_drop_close_sends_a_close_frame_and_drop_reset_resets_the_socket() -> None:
    async def scenario() -> None:
        async with (
            Simulator(_config()) as sim,
            aiohttp.ClientSession() as http,
        ):
            async with http.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
                await ws.receive(timeout=5)
                sim.faults.drop(mode="close")
                while (message := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                    pass
                assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1001
            host, port = sim.ws_url.removeprefix("ws://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                b"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
            await until(lambda: sim.stats.connections == 1, 5, "the raw client")
            sim.faults.drop(mode="reset")
            try:
                while await reader.read(65_536):
                    pass
                reset = False
            except ConnectionResetError:
                reset = True
            writer.close()
            assert reset, "the peer closed with FIN, not RST"
            assert sim.stats.faults == {"drop": 2, "drop_close": 1, "drop_reset": 1}

    run(scenario())


def test_rest_faults_errors_old_and_late_snapshots() -> None:
    async def scenario() -> None:
        async with (
            Simulator(_config()) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws,
        ):
            url = f"{sim.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5"
            sim.faults.rest_error(429, retry_after=2, path="depth")
            sim.faults.rest_error(503, path="depth")
            async with http.get(f"{sim.rest_url}/api/v3/time") as response:
                assert response.status == 200  # another path: not affected
            async with http.get(url) as response:
                assert response.status == 429 and response.headers["Retry-After"] == "2"
                assert (await response.json())["code"] == -1003
            async with http.get(url) as response:
                assert response.status == 503 and (await response.json())["code"] == -1001
            await _read(ws, _Diff, START_MS + 1_600)  # the history now reaches back 1 s
            fresh = (await get_json(http, url))["lastUpdateId"]
            sim.faults.old_snapshot("BTCUSDT", age=1.0)
            old = (await get_json(http, url))["lastUpdateId"]
            assert old < fresh
            sim.faults.snapshot_delay("BTCUSDT", delay=0.3)
            started = time.monotonic()
            late = (await get_json(http, url))["lastUpdateId"]
            assert time.monotonic() - started >= 0.3 and late >= fresh
            assert sim.stats.faults == {
                "rest_error": 2,
                "rest_error_429": 1,
                "rest_error_503": 1,
                "old_snapshot": 1,
                "snapshot_delay": 1,
            }

    run(scenario())


def test_every_and_times_and_a_seeded_jitter() -> None:
    async def scenario() -> None:
        lines = ["every=200ms times=3 drop", "at=10s every=10s jitter=3s gap"]
        async with Simulator(_config(faults=lines)) as sim:
            upcoming = sim.faults.upcoming
            assert [due - START_MS for due, _ in upcoming][:1] == [200]
            jittered = upcoming[1][0] - START_MS
            assert 10_000 <= jittered <= 13_000
            await until(lambda: sim.stats.faults.get("missed") == 3, 5, "three drops")
            assert len(sim.faults.upcoming) == 1  # the drop is done after three
        async with Simulator(_config(faults=lines)) as again:
            assert again.faults.upcoming[1][0] - START_MS == jittered  # same seed, same time

    run(scenario())


def test_faults_pass_through_a_replay(spot_capture: Any) -> None:
    async def scenario() -> None:
        config = SimConfig(replay=str(spot_capture), speed=20.0)
        async with (
            Simulator(config) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws,
        ):
            await ws.receive(timeout=10)
            sim.faults.gap("BTCUSDT")
            diffs = [msgspec.json.decode((await ws.receive(timeout=10)).data, type=_Diff)]
            while len(diffs) < 5:
                diffs.append(msgspec.json.decode((await ws.receive(timeout=10)).data, type=_Diff))
            assert sim.stats.faults == {"gap": 1, "gap_messages": 1}
            sim.faults.old_snapshot("BTCUSDT")
            await get_json(http, f"{sim.rest_url}/api/v3/depth?symbol=BTCUSDT")
            assert sim.stats.faults["old_snapshot_unavailable"] == 1

    run(scenario())
