"""Replay of the real Binance captures in ../shared/data."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import aiohttp
import msgspec
from sim_helpers import get_json, run, until

from tickhawk.capture import load_capture
from tickhawk.sim import SimConfig, Simulator


def _recorded(path: Path) -> tuple[list[bytes], bytes]:
    """Return the capture's stream lines (as recorded) and its snapshot body."""
    lines = [body for _, body in load_capture(path)]
    snapshot = next(body for body in lines if body.startswith(b'{"lastUpdateId"'))
    return [body for body in lines if body.startswith(b'{"stream"')], snapshot


def test_spot_replay_at_max_speed_forwards_every_line(spot_capture: Path) -> None:
    lines, snapshot = _recorded(spot_capture)
    streams = sorted({msgspec.json.decode(line)["stream"] for line in lines})
    assert streams == ["btcusdt@bookTicker", "btcusdt@depth@100ms", "btcusdt@trade"]

    async def scenario() -> None:
        config = SimConfig(replay=str(spot_capture), speed="max")
        async with (
            Simulator(config) as sim,
            aiohttp.ClientSession() as http,
        ):
            assert sim.symbols == ["BTCUSDT"]
            assert sim.replay_streams == streams
            url = f"{sim.ws_url}/stream?streams={'/'.join(streams)}"
            async with http.ws_connect(url, max_msg_size=0) as ws:
                received: list[bytes] = []
                while len(received) < len(lines):
                    message = await ws.receive(timeout=10)
                    assert message.type == aiohttp.WSMsgType.TEXT
                    received.append(message.data.encode())
                assert received == lines  # every payload, in order, byte for byte
                await sim.wait_replay_done()
                assert sim.replay_done
                # The replay ended, the connection stays open and answers.
                await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":1}')
                reply = msgspec.json.decode((await ws.receive(timeout=5)).data)
                assert reply == {"result": streams, "id": 1}
            async with http.get(f"{sim.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5000") as r:
                assert r.status == 200 and await r.read() == snapshot
            trades = await get_json(http, f"{sim.rest_url}/api/v3/trades?symbol=BTCUSDT&limit=3")
            recorded = [msgspec.json.decode(x)["data"] for x in lines if b"@trade" in x[:30]]
            assert [t["id"] for t in trades] == [t["t"] for t in recorded[-3:]]
            assert [t["price"] for t in trades] == [t["p"] for t in recorded[-3:]]
            ids = sim.trade_ids_sent("BTCUSDT")
            assert ids == [(recorded[0]["t"], recorded[-1]["t"])]
            info = await get_json(http, f"{sim.rest_url}/api/v3/exchangeInfo")
            filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
            assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
            assert sim.stats.messages_sent == len(lines)

    run(scenario(), timeout=60)


def test_raw_client_gets_the_recorded_data_bytes(spot_capture: Path) -> None:
    lines, _ = _recorded(spot_capture)
    prefix = b'{"stream":"btcusdt@trade","data":'
    trades = [line[len(prefix) : -1] for line in lines if line.startswith(prefix)]

    async def scenario() -> None:
        config = SimConfig(replay=str(spot_capture), speed="max")
        async with (
            Simulator(config) as sim,
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws,
        ):
            received = [(await ws.receive(timeout=10)).data.encode() for _ in trades]
            assert received == trades
            await sim.wait_replay_done()

    run(scenario(), timeout=60)


def test_futures_snapshot_waits_for_its_line(usdm_capture: Path) -> None:
    """The REST snapshot is answered once replay passed its line (55, after its bridge)."""

    async def scenario() -> None:
        config = SimConfig(replay=str(usdm_capture), speed="max")
        async with Simulator(config) as sim, aiohttp.ClientSession() as http:
            feed = sim._feed  # the replay position is what this test is about
            assert feed is not None and hasattr(feed, "position")
            request = asyncio.ensure_future(
                get_json(http, f"{sim.rest_url}/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
            )
            await until(lambda: sim.stats.connections == 0)
            assert not request.done() and feed.position == 0  # waiting: nobody subscribed yet
            streams = "/".join(sim.replay_streams)
            async with http.ws_connect(f"{sim.ws_url}/stream?streams={streams}") as ws:
                snapshot = await asyncio.wait_for(request, 30)
                snapshot_line = feed.capture.snapshot_index
                assert feed.position > snapshot_line
                diffs = []
                while len(diffs) < 60:
                    envelope = msgspec.json.decode((await ws.receive(timeout=10)).data)
                    if envelope["stream"] == "btcusdt@depth@0ms":
                        diffs.append(envelope["data"])
                # The diff bridging the snapshot came before it, as in the capture.
                bridge = [d for d in diffs if d["U"] <= snapshot["lastUpdateId"] <= d["u"]]
                assert len(bridge) == 1
                marker = f'"U":{bridge[0]["U"]},'.encode()
                bridge_line = next(
                    number for number, line in enumerate(feed.capture.lines) if marker in line.data
                )
                assert bridge_line < snapshot_line
            await sim.wait_replay_done()

    run(scenario(), timeout=60)


def test_paced_replay_follows_the_receive_clock(spot_capture: Path, tmp_path: Path) -> None:
    stamped = load_capture(spot_capture)[:1_500]
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(b"".join(b"%d %b\n" % (ns, body) for ns, body in stamped)))
    span_s = (stamped[-1][0] - stamped[0][0]) / 1e9
    speed = span_s / 0.6  # the whole file in 0.6 s
    lines = [body for _, body in stamped if body.startswith(b'{"stream"')]

    async def scenario() -> float:
        config = SimConfig(replay=str(short), speed=speed, close_on_replay_end=True)
        async with Simulator(config) as sim, aiohttp.ClientSession() as http:
            url = f"{sim.ws_url}/stream?streams={'/'.join(sim.replay_streams)}"
            async with http.ws_connect(url) as ws:
                loop = asyncio.get_running_loop()
                started = loop.time()
                received = [(await ws.receive(timeout=10)).data.encode() for _ in lines]
                elapsed = loop.time() - started
                assert received == lines
                closing = await ws.receive(timeout=10)  # told to close at the end
                assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1000
            assert sim.replay_done
            return elapsed

    elapsed = run(scenario())
    assert elapsed >= 0.5  # paced by the recorded clock, not as fast as possible
