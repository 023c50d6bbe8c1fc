"""The WebSocket session layer: reconnects, breaker, heartbeat, watchdog, rotation, events.

Real loopback sockets against the real simulator (and, for refused or hung
handshakes, a small TCP gate in front of it); the delay, breaker, watchdog and
merge logic are also tested directly on their own clocks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import itertools
import logging
import random
import re
import socket
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickhawk.app.live import LiveApp
from tickhawk.config import parse_config
from tickhawk.model import Trade
from tickhawk.net.backoff import Backoff
from tickhawk.net.breaker import BreakerState, CircuitBreaker
from tickhawk.net.handover import Handover
from tickhawk.net.options import ConnectionOptions
from tickhawk.net.session import SessionEvent, SessionState, WsSession
from tickhawk.net.watchdog import StaleWatch
from tickhawk.presets import fast_config_data
from tickhawk.sim import SimConfig, Simulator
from tickhawk.sim import cli as sim_cli
from tickhawk.venues.binance.sequence import BinanceSequence

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
START_MS = 1_723_161_600_000


def run(scenario: Coroutine[Any, Any, None], timeout: float = 60.0) -> None:
    asyncio.run(asyncio.wait_for(scenario, timeout))


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


def closed_port() -> int:
    """Return a loopback port nobody listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Recorder:
    """A session's message handler: keep every message's stream and key, in arrival order."""

    def __init__(self) -> None:
        self.keys: dict[bytes, list[int]] = defaultdict(list)
        self.messages = 0
        self._sequence = BinanceSequence()

    def __call__(self, payload: bytes, t_recv: int, ts_recv: int) -> None:
        self.messages += 1
        keyed = self._sequence(payload)
        if keyed is not None:
            self.keys[keyed[0]].append(keyed[1])


class Gate:
    """A TCP front for a server: ``refuse`` (accept, then close), ``hang`` or ``forward``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "refuse"
        self.accepted = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Gate:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        if self.mode == "refuse":
            writer.close()
            return
        if self.mode == "hang":
            while await reader.read(65536):
                pass  # read the handshake request, never answer it
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.append(up_writer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def running(session: WsSession) -> AsyncIterator[WsSession]:
    """Run ``session`` in the background; close it and wait for it at the end."""
    task = asyncio.create_task(session.run())
    try:
        yield session
    finally:
        session.close()
        await asyncio.wait_for(task, 10)


def options(**changes: Any) -> ConnectionOptions:
    return ConnectionOptions(**changes)


# -- backoff ------------------------------------------------------------------------------


def test_backoff_first_retry_is_immediate_then_capped_exponential_with_full_jitter() -> None:
    backoff = Backoff(base_s=0.25, cap_s=5.0, rng=random.Random(3))
    assert backoff.delay(0) == 0.0  # after a connection that worked: at once
    assert [backoff.ceiling(n) for n in range(1, 9)] == [0.25, 0.5, 1, 2, 4, 5, 5, 5]
    assert backoff.ceiling(10_000) == 5.0  # no overflow, still capped
    for failures in (1, 3, 6, 50):
        draws = [backoff.delay(failures) for _ in range(2000)]
        ceiling = backoff.ceiling(failures)
        assert min(draws) >= 0.0 and max(draws) <= ceiling
        # full jitter: uniform over [0, ceiling], not clustered at the ceiling
        assert min(draws) < 0.05 * ceiling and max(draws) > 0.95 * ceiling
        assert 0.45 * ceiling < sum(draws) / len(draws) < 0.55 * ceiling
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=1.0, cap_s=0.5)


# -- circuit breaker ------------------------------------------------------------------------


def test_breaker_opens_after_n_failures_then_lets_one_probe_through_after_the_cooldown() -> None:
    now = [100.0]
    breaker = CircuitBreaker("venue", failures=3, cooldown_s=30.0, clock=lambda: now[0])
    for _ in range(2):
        breaker.failure("refused")
        assert breaker.state is BreakerState.CLOSED and breaker.wait_s() == 0.0
    breaker.failure("refused")
    assert breaker.state is BreakerState.OPEN and breaker.opens == 1
    assert breaker.wait_s() == 30.0 and not breaker.begin()
    now[0] += 29.0
    assert breaker.wait_s() == pytest.approx(1.0)
    now[0] += 1.0
    assert breaker.wait_s() == 0.0
    assert breaker.begin() is True  # the probe
    assert breaker.state is BreakerState.HALF_OPEN and breaker.probes == 1
    assert breaker.begin() is False and breaker.wait_s() > 0  # others wait for the probe
    breaker.failure("refused")  # the probe failed: another cool-down, not another "open"
    assert breaker.state is BreakerState.OPEN and breaker.opens == 1
    assert breaker.probe_failures == 1 and breaker.wait_s() == 30.0
    now[0] += 30.0
    assert breaker.begin() is True
    breaker.success()
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive == 0
    assert breaker.wait_s() == 0.0 and not breaker.is_open


def test_a_closed_port_opens_the_breaker_once_and_it_probes_after_each_cooldown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        breaker = CircuitBreaker("closed-port", failures=3, cooldown_s=0.4)
        events: list[SessionEvent] = []
        session = WsSession(
            f"ws://127.0.0.1:{closed_port()}",
            ["btcusdt@trade"],
            Recorder(),
            options=options(backoff_cap_s=0.05),
            breaker=breaker,
        )
        session.listeners.append(events.append)
        async with running(session):
            await until(lambda: breaker.probe_failures >= 2, 10, "two failed probes")
            assert session.circuit_open
        attempts = [e.ts / 1e9 for e in events if e.state == "connecting"]
        opened = next(i for i, e in enumerate(events) if e.reason == "circuit_open")
        probes = [e.ts / 1e9 for e in events if e.reason == "probe"]
        assert len(probes) >= 2
        # 3 attempts, then nothing until each cool-down has passed
        assert len([e for e in events[:opened] if e.state == "connecting"]) == 3
        assert all(b - a >= 0.35 for a, b in itertools.pairwise(attempts[2:]))
        assert session.connect_failures == len(attempts) and session.connects == 0
        assert session.transitions["backoff:connect_failed"] == len(attempts)
        assert session.transitions["circuit_open:circuit_open"] >= 2
        assert session.state is SessionState.CLOSED

    with caplog.at_level(logging.INFO, logger="tickhawk.net"):
        run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    opened = [m for m in warnings if m.startswith("circuit closed-port open")]
    assert len(opened) == 1  # said once, not on every failed probe
    assert len(warnings) == 4  # and before it only the three failed attempts
    assert "3 connect attempts in a row failed" in opened[0]
    assert "not connecting for 0 s, then one probe" in opened[0]


def test_a_probe_that_connects_closes_the_breaker_and_data_flows() -> None:
    async def scenario() -> None:
        async with (
            Simulator(SimConfig(symbols=SYMBOLS, rate=2000.0, seed=3)) as sim,
            Gate(int(sim.ws_url.rsplit(":", 1)[1])) as gate,
        ):
            breaker = CircuitBreaker("gate", failures=2, cooldown_s=0.5)
            recorder = Recorder()
            session = WsSession(
                f"ws://127.0.0.1:{gate.port}",
                ["btcusdt@trade", "ethusdt@trade"],
                recorder,
                options=options(backoff_cap_s=0.05),
                breaker=breaker,
            )
            async with running(session):
                await until(lambda: breaker.state is BreakerState.OPEN, 10, "the breaker open")
                gate.mode = "forward"  # the venue is back
                await until(lambda: recorder.messages > 50, 10, "data through the probe")
                await until(lambda: breaker.state is BreakerState.CLOSED, 5, "the breaker closed")
                assert not session.circuit_open
                assert session.state is SessionState.LIVE
                assert session.transitions["connecting:probe"] == 1
                assert session.transitions["live:connected"] == 1

    run(scenario())


def test_a_handshake_that_never_comes_times_out_and_is_counted() -> None:
    async def scenario() -> None:
        async with Gate(closed_port()) as gate:
            gate.mode = "hang"
            events: list[SessionEvent] = []
            session = WsSession(
                f"ws://127.0.0.1:{gate.port}",
                ["btcusdt@trade"],
                Recorder(),
                options=options(connect_timeout_s=0.3, backoff_cap_s=0.05),
            )
            session.listeners.append(events.append)
            started = time.monotonic()
            async with running(session):
                await until(lambda: session.connect_failures >= 2, 10, "two timeouts")
            assert time.monotonic() - started >= 0.55  # each attempt waited its timeout
            timeouts = [e for e in events if e.reason == "connect_timeout"]
            assert len(timeouts) >= 2 and "within 0.3 s" in timeouts[0].detail
            assert session.connects == 0 and gate.accepted >= 2

    run(scenario())


# -- heartbeat --------------------------------------------------------------------------------


def test_pings_are_answered_and_their_round_trip_is_kept() -> None:
    async def scenario() -> None:
        async with Simulator(SimConfig(symbols=SYMBOLS, rate=500.0)) as sim:
            session = WsSession(
                sim.ws_url,
                ["btcusdt@trade"],
                Recorder(),
                options=options(ping_interval_s=0.1, pong_timeout_s=0.1),
            )
            async with running(session):
                await until(lambda: session.pongs >= 3, 10, "three pongs")
                assert session.ping_rtt_ms is not None and 0 < session.ping_rtt_ms < 100
                assert session.pong_timeouts == 0 and session.reconnects == 0

    run(scenario())


def test_a_venue_that_stops_answering_pings_is_given_up_at_the_pong_deadline() -> None:
    async def scenario() -> None:
        config = SimConfig(symbols=SYMBOLS, rate=500.0, answer_pings=False)
        async with Simulator(config) as sim:
            events: list[SessionEvent] = []
            session = WsSession(
                sim.ws_url,
                ["btcusdt@trade"],
                Recorder(),
                options=options(ping_interval_s=0.2, pong_timeout_s=0.2),
            )
            session.listeners.append(events.append)
            async with running(session):
                await until(lambda: session.pong_timeouts >= 2, 10, "two pong timeouts")
            drops = [e for e in events if e.state == "backoff"]
            assert drops[0].reason == "pong_timeout" and "within 0.2 s" in drops[0].detail
            assert session.reconnects >= 2 and session.pongs == 0
            live = [e.ts for e in events if e.reason in ("connected", "reconnected")]
            given_up = [e.ts for e in events if e.reason == "pong_timeout"]
            # the first ping goes out after one interval; the deadline is one timeout later
            assert given_up[0] - live[0] >= 0.35e9

    run(scenario())


# -- stale-stream watchdog ---------------------------------------------------------------------


def test_each_stream_is_judged_by_its_own_rate_with_a_floor() -> None:
    last_seen: dict[bytes, int] = {}
    watch = StaleWatch(["fast@depth", "slow@kline_1m"], last_seen, floor_s=1.0, factor=10.0)
    second = 1_000_000_000
    watch.reset(0)
    now = 0
    for step in range(1, 201):  # 20 s: depth every 100 ms, klines every 2 s
        now = step * second // 10
        last_seen[b"fast@depth"] = now
        if step % 20 == 0:
            last_seen[b"slow@kline_1m"] = now
        assert watch.check(now) is None
    assert watch.threshold_s("fast@depth") == 1.0  # 10 × 0.1 s is below the floor
    assert watch.usual_gap_s("slow@kline_1m") == pytest.approx(2.0)
    # a stream slower than the floor is judged only with the connection (silent as a whole)
    assert not watch.busy("slow@kline_1m") and watch.threshold_s("slow@kline_1m") == float("inf")
    # both fall silent: after 1.5 s the depth stream is stale, the kline stream is not
    stale = watch.check(now + 3 * second // 2)
    assert stale is not None and stale.stream == "fast@depth"
    assert stale.silent_s == pytest.approx(1.5) and stale.threshold_s == 1.0
    # a connection of klines alone: 15 s without one is still normal for it; 25 s is not
    only_slow = StaleWatch(["slow@kline_1m"], last_seen, floor_s=1.0, factor=10.0)
    only_slow.reset(0)
    for step in range(1, 6):
        last_seen[b"slow@kline_1m"] = step * 2 * second
        only_slow.check(step * 2 * second)
    assert only_slow.threshold_s() == pytest.approx(20.0)
    assert only_slow.check(10 * second + 15 * second) is None
    overdue = only_slow.check(10 * second + 25 * second)
    assert overdue is not None and overdue.stream == "slow@kline_1m" and overdue.whole
    only_slow.penalize(overdue)  # a connection that merely went quiet: judged at 2×
    assert only_slow.threshold_s() == pytest.approx(40.0)
    assert only_slow.check(10 * second + 25 * second) is None


def test_a_bursty_stream_is_not_stale_in_a_lull_like_the_ones_it_had_before() -> None:
    last_seen: dict[bytes, int] = {}
    watch = StaleWatch(["alt@trade"], last_seen, floor_s=1.0, factor=10.0)
    ms = 1_000_000
    now = 0
    watch.reset(0)
    for _burst in range(5):  # bursts of 20 trades 50 ms apart, then a 3 s lull
        for _ in range(20):
            now += 50 * ms
            last_seen[b"alt@trade"] = now
            assert watch.check(now) is None
        now += 3000 * ms
        last_seen[b"alt@trade"] = now
        assert watch.check(now) is None
    # mean gap ~0.2 s would give 2 s; twice the longest recent lull gives ~6 s
    assert 5.5 < watch.threshold_s() <= 6.0
    assert watch.check(now + 4000 * ms) is None  # an ordinary lull
    assert watch.check(now + 6500 * ms) is not None  # beyond anything it did before


def test_a_stream_that_never_spoke_or_spoke_before_the_connect_is_not_judged_on_old_gaps() -> None:
    last_seen: dict[bytes, int] = {b"a@trade": 5}
    watch = StaleWatch(["a@trade", "b@trade"], last_seen, floor_s=1.0)
    watch.reset(10)
    assert watch.check(100 * 1_000_000_000) is None  # no rate learned: nothing to judge by


def app_config(sim: Simulator, streams: list[str], **connection: Any) -> Any:
    data = fast_config_data(list(sim.symbols), streams, ws_url=sim.ws_url, rest_url=sim.rest_url)
    data["connection"] = connection
    data["warmup"] = {"enabled": False}
    return parse_config(data)


class AppRun:
    """A live app on the simulator, with the trades its engine processed and its events."""

    def __init__(self, sim: Simulator, app: LiveApp) -> None:
        self.sim = sim
        self.app = app
        self.session = app.sessions[0]
        self.trades: dict[str, list[int]] = defaultdict(list)
        self.events: list[SessionEvent] = []
        self.recorder = Recorder()
        self.session.listeners.append(self.events.append)
        for state in app.engine.states.values():
            state.trade_listeners.append(self._on_trade)
        deliver = self.session.on_message

        def record(payload: bytes, t_recv: int, ts_recv: int) -> None:
            self.recorder(payload, t_recv, ts_recv)
            deliver(payload, t_recv, ts_recv)

        self.session.on_message = record  # what the session hands the feed, key by key

    def _on_trade(self, trade: Trade) -> None:
        self.trades[trade.symbol].append(trade.id)

    def trades_sent(self, symbol: str) -> list[int]:
        return [i for a, b in self.sim.trade_ids_sent(symbol) for i in range(a, b + 1)]

    def resyncs(self) -> int:
        total = 0
        for state in self.app.engine.states.values():
            sync = state.book_sync
            assert sync is not None
            total += sum(n for key, n in sync.transitions.items() if key.startswith("out_of"))
        return total


@contextlib.asynccontextmanager
async def app_on_sim(
    sim_config: SimConfig, streams: list[str], **connection: Any
) -> AsyncIterator[AppRun]:
    async with Simulator(sim_config) as sim:
        app = LiveApp(app_config(sim, streams, **connection))
        harness = AppRun(sim, app)
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        try:
            await app.wait_live(10)
            states = app.engine.states.values()
            await until(
                lambda: all(s.book_sync is None or s.book is not None for s in states),
                10,
                "books LIVE",
            )
            yield harness
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)


def test_a_stalled_connection_is_reconnected_by_the_watchdog_and_trades_resume() -> None:
    async def scenario() -> None:
        # One busy symbol: its streams never pause for a second on their own.
        sim_config = SimConfig(symbols=["BTCUSDT"], rate=2000.0, seed=5, start_time_ms=START_MS)
        async with app_on_sim(sim_config, ["trade", "depth@100ms"], stale_floor_s=1.0) as harness:
            session = harness.session
            await until(lambda: len(harness.trades["BTCUSDT"]) > 300, 10, "trades")
            before = len(harness.trades["BTCUSDT"])
            stalled_at = time.monotonic()
            harness.sim.faults.stall(seconds=30)  # open socket, nothing sent, pings answered
            await until(lambda: "backoff:stale" in session.transitions, 10, "a stale reconnect")
            noticed = time.monotonic() - stalled_at
            # silence counts from the last message, a little before the stall began
            assert 0.8 <= noticed < 4.0
            stale = next(e for e in harness.events if e.reason == "stale")
            assert stale.previous == "live" and stale.state == "backoff"
            found = re.search(r"silent for ([\d.]+) s \(threshold ([\d.]+) s", stale.detail)
            assert found is not None, stale.detail
            assert float(found[1]) >= float(found[2]) >= 1.0  # the floor, at least
            await until(lambda: "live:reconnected" in session.transitions, 10, "back")
            assert harness.app.snapshot().connections[0].stale_reconnects == 1
            await until(lambda: len(harness.trades["BTCUSDT"]) > before + 100, 10, "trades again")
            assert harness.sim.stats.connections_total == 2

    run(scenario())


# -- rotation ---------------------------------------------------------------------------------


def test_handover_drops_what_the_old_connection_delivered_and_replays_what_it_did_not() -> None:
    sequence = BinanceSequence()
    delivered: list[tuple[bytes, int]] = []

    def deliver(payload: bytes, t_recv: int, ts_recv: int) -> None:
        keyed = sequence(payload)
        assert keyed is not None
        delivered.append(keyed)

    def trade(key: int) -> bytes:
        return b'{"stream":"x@trade","data":{"t":%d}}' % key

    handover = Handover(deliver, sequence)
    handover.pass_through(trade(1), 0, 0)  # old
    handover.from_new(trade(3), 0, 0)  # the new one is ahead: buffered
    assert handover.lagging() == ["x@trade"]  # the old has not reached 3 yet
    handover.pass_through(trade(2), 0, 0)
    handover.from_new(trade(4), 0, 0)
    handover.pass_through(trade(3), 0, 0)
    assert handover.lagging() == []
    assert handover.switch() == 1  # 4: the old never delivered it
    handover.pass_through(trade(4), 0, 0)  # a late copy
    handover.pass_through(trade(5), 0, 0)
    assert [key for _, key in delivered] == [1, 2, 3, 4, 5]
    assert handover.duplicates == 2  # 3 at the switch, then the late 4


@settings(max_examples=300, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["t", "u", "k"]), min_size=1, max_size=40),
    offsets=st.tuples(st.integers(0, 40), st.integers(0, 40)),
    order=st.lists(st.booleans(), max_size=100),
    switch_when=st.lists(st.booleans(), max_size=100),
)
def test_a_rotation_delivers_every_message_once_in_order_whatever_the_interleaving(
    kinds: list[str], offsets: tuple[int, int], order: list[bool], switch_when: list[bool]
) -> None:
    """Both connections get the same complete stream; the new one joins later (or earlier)."""
    streams = {"t": "a@trade", "u": "a@depth@100ms", "k": "a@kline_1m"}
    counters = {"t": 100, "u": 5000, "k": 0}
    messages = []
    for kind in kinds:
        counters[kind] += 1
        key = counters[kind]
        data = (
            b'{"k":{"t":%d,"x":true}}' % (key * 60_000)
            if kind == "k"
            else b'{"%s":%d}' % (kind.encode(), key)
        )
        messages.append(b'{"stream":"%s","data":%s}' % (streams[kind].encode(), data))
    old_start = min(offsets[0], len(messages))
    new_start = max(old_start, min(offsets[1], len(messages)))
    old, new = messages[old_start:], messages[new_start:]
    delivered: list[bytes] = []
    handover = Handover(lambda payload, t, ts: delivered.append(payload), BinanceSequence())
    switched = False
    steps = iter(order)
    decisions = iter(switch_when)
    while old or new:
        take_old = (not new) or (bool(old) and next(steps, True))
        if take_old:
            payload = old.pop(0)
            if not switched:
                handover.pass_through(payload, 0, 0)
        else:
            payload = new.pop(0)
            (handover.pass_through if switched else handover.from_new)(payload, 0, 0)
        if switched:
            continue
        # The session switches when no stream lags; streams that have not spoken on the
        # new connection are trusted after the settle time: modelled here as "the old
        # connection holds none of their messages sent before the new one subscribed".
        position = len(messages) - len(old)
        in_flight = {streams[k].encode() for k in kinds[position:new_start]}
        settled = in_flight <= set(handover.first_new)
        ready = not handover.lagging() and settled
        if not old or (ready and next(decisions, False)):
            handover.switch()
            switched = True
    assert delivered == messages[old_start:]


def capture_messages(path: Path) -> list[bytes]:
    """Return the combined-stream messages of a capture, in receive order."""
    with gzip.open(path) as lines:
        payloads = [line.split(b" ", 1)[1].rstrip(b"\n") for line in lines]
    return [p for p in payloads if p.startswith(b'{"stream":')]  # not the REST snapshot line


def test_binance_keys_grow_along_every_stream_of_a_real_capture(spot_capture: Path) -> None:
    sequence = BinanceSequence()
    keys: dict[bytes, list[int]] = defaultdict(list)
    with gzip.open(spot_capture) as lines:
        unkeyed = []
        for line in lines:
            payload = line.split(b" ", 1)[1].rstrip(b"\n")
            keyed = sequence(payload)
            if keyed is None:
                unkeyed.append(payload)
            else:
                keys[keyed[0]].append(keyed[1])
    assert {name: len(k) for name, k in keys.items()} == {
        b"btcusdt@depth@100ms": 3451,
        b"btcusdt@bookTicker": 28040,
        b"btcusdt@trade": 9757,
    }
    for name, stream_keys in keys.items():
        assert all(a < b for a, b in itertools.pairwise(stream_keys)), name
    assert len(unkeyed) == 1 and unkeyed[0].startswith(b'{"lastUpdateId":')  # the REST snapshot
    for reply in (b'{"result":null,"id":1}', b"not json", b'{"stream":"x@trade","data":{}}'):
        assert sequence(reply) is None


@pytest.mark.parametrize("ahead", [-40, 0, 7, 300])
def test_a_hand_over_on_a_real_capture_delivers_each_message_once_in_order(
    spot_capture: Path, ahead: int
) -> None:
    """The new connection joins at message 20,000, ``ahead`` messages ahead of the old one."""
    messages = capture_messages(spot_capture)
    delivered: list[bytes] = []
    handover = Handover(lambda payload, t, ts: delivered.append(payload), BinanceSequence())
    joins = 20_000
    for payload in messages[:joins]:
        handover.pass_through(payload, 0, 0)
    step = joins
    while True:  # both connections deliver, one message each, until the overlap is proven
        handover.pass_through(messages[step], 0, 0)
        handover.from_new(messages[step + ahead], 0, 0)
        step += 1
        if not handover.lagging():
            break
    # proven at the latest when the old one reaches the new one's first message of each stream
    first_new: dict[bytes, int] = {}
    for index in range(joins + ahead, len(messages)):
        first_new.setdefault(messages[index][11 : messages[index].index(b'"', 11)], index)
    assert step <= max(max(first_new.values()) + 1, joins + 1)
    handover.switch()
    for payload in messages[step + ahead :]:  # the new one alone, through the filter
        handover.pass_through(payload, 0, 0)
    assert delivered == messages
    assert handover.duplicates == step - joins - ahead  # what both connections delivered


def test_a_session_rotates_only_with_the_venues_sequence_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        config = SimConfig(symbols=SYMBOLS, rate=2000.0, seed=4, max_connection_age_s=3.0)
        async with Simulator(config) as sim:
            streams = ["btcusdt@trade", "ethusdt@bookTicker"]
            rotate = options(rotate_after_s=1.0, rotate_overlap_s=0.2)
            keyed_messages, plain_messages = Recorder(), Recorder()
            keyed = WsSession(
                sim.ws_url, streams, keyed_messages, name="keyed", options=rotate,
                sequence=BinanceSequence(),
            )  # fmt: skip
            plain = WsSession(sim.ws_url, streams, plain_messages, name="plain", options=rotate)
            async with running(keyed), running(plain):
                await until(lambda: plain.reconnects >= 1, 15, "the venue's age cut")
                await until(lambda: keyed.rotations >= 2, 15, "two rotations")
            assert keyed.reconnects == 0 and keyed.rotation_failures == 0
            assert plain.rotations == 0 and "rotating:rotate" not in plain.transitions
            assert plain.transitions["backoff:dropped"] >= 1
            trades = keyed_messages.keys[b"btcusdt@trade"]
            assert trades == list(range(trades[0], trades[0] + len(trades)))  # none lost or twice
            quotes = keyed_messages.keys[b"ethusdt@bookTicker"]
            assert len(quotes) > 100 and all(a < b for a, b in itertools.pairwise(quotes))
            assert sim.stats.aged_out >= 1

    with caplog.at_level(logging.INFO, logger="tickhawk.net"):
        run(scenario())
    notes = [r.getMessage() for r in caplog.records if "no sequence key" in r.getMessage()]
    assert len(notes) == 1 and notes[0].startswith("session plain:")  # said once, not per connect


def test_rotation_beats_the_venues_connection_age_limit_losing_and_repeating_nothing() -> None:
    async def scenario() -> None:
        sim_config = SimConfig(
            symbols=SYMBOLS, rate=2000.0, seed=9, start_time_ms=START_MS, max_connection_age_s=3.0
        )
        streams = ["trade", "bookTicker", "depth@100ms", "kline_1s"]
        async with app_on_sim(
            sim_config, streams, rotate_after_s=2.0, rotate_overlap_s=0.3
        ) as harness:
            session = harness.session
            await until(lambda: session.rotations >= 3, 20, "three rotations")
            await until(lambda: len(harness.trades["BTCUSDT"]) > 500, 10, "trades")
        sim = harness.sim
        assert sim.stats.aged_out == 0  # the venue never had to cut a connection
        assert session.reconnects == 0 and session.transitions.get("backoff:dropped") is None
        started, done = session.transitions["rotating:rotate"], session.transitions["live:rotated"]
        assert started - done in (0, 1)  # one may have been under way at the stop
        assert harness.resyncs() == 0  # no book was thrown away
        for symbol in SYMBOLS:
            received = harness.trades[symbol]
            assert received == harness.trades_sent(symbol)[: len(received)], symbol
            state = harness.app.engine.states[symbol]
            assert state.trade_gaps == 0 and state.duplicate_trades == 0
        for stream, keys in harness.recorder.keys.items():  # every kind: once, in order
            assert all(a < b for a, b in itertools.pairwise(keys)), stream
        assert len(harness.recorder.keys) == len(streams) * len(SYMBOLS)
        assert harness.app.snapshot().connections[0].rotations == session.rotations

    run(scenario())


def test_without_rotation_the_age_limit_cuts_and_the_session_is_back_at_once() -> None:
    async def scenario() -> None:
        sim_config = SimConfig(
            symbols=SYMBOLS, rate=2000.0, seed=9, start_time_ms=START_MS, max_connection_age_s=1.5
        )
        async with app_on_sim(sim_config, ["trade", "depth@100ms"], rotate_after_s=0) as harness:
            session = harness.session
            await until(lambda: session.transitions.get("live:reconnected", 0) >= 2, 10, "cuts")
        assert harness.sim.stats.aged_out >= 2 and session.rotations == 0
        assert harness.resyncs() >= 2  # what rotation avoids: every book synced again
        events = harness.events
        for index, event in enumerate(events):
            back = next((e for e in events[index:] if e.reason == "reconnected"), None)
            if event.reason == "dropped" and back is not None:
                connecting = events[index + 1]
                assert connecting.reason == "reconnect" and connecting.ts - event.ts < 0.1e9
                assert back.ts - event.ts < 1e9  # the first retry comes at once
                assert "code 1001" in event.detail

    run(scenario())


def test_a_cut_during_the_overlap_hands_over_to_the_new_connection_without_a_gap() -> None:
    async def scenario() -> None:
        sim_config = SimConfig(symbols=SYMBOLS, rate=2000.0, seed=9, start_time_ms=START_MS)
        async with app_on_sim(
            sim_config, ["trade", "depth@100ms"], rotate_after_s=3.0, rotate_overlap_s=2.5
        ) as harness:
            session, sim = harness.session, harness.sim
            await until(lambda: session.overlapping, 10, "the second connection")
            assert sim.stats.connections == 2
            sim.faults.drop(connection=1)  # the old one is cut mid-overlap
            await until(lambda: session.rotations == 1, 10, "the hand-over")
            count = len(harness.trades["BTCUSDT"])
            await until(lambda: len(harness.trades["BTCUSDT"]) > count + 100, 10, "trades")
        rotated = next(e for e in harness.events if e.reason == "rotated")
        assert "the old connection closed first" in rotated.detail
        assert session.reconnects == 0 and harness.resyncs() == 0
        for symbol in SYMBOLS:
            received = harness.trades[symbol]
            assert received == harness.trades_sent(symbol)[: len(received)], symbol

    run(scenario())


# -- resubscription, protocol errors, events ---------------------------------------------------


def test_more_than_100_streams_are_subscribed_again_after_every_reconnect() -> None:
    async def scenario() -> None:
        async with Simulator(SimConfig(n_symbols=130, rate=3000.0, seed=2)) as sim:
            streams = [f"{s.lower()}@{kind}" for s in sim.symbols for kind in ("trade", "kline_1m")]
            assert len(streams) == 260  # two SUBSCRIBE batches, none in the URL
            events: list[SessionEvent] = []
            recorder = Recorder()
            session = WsSession(sim.ws_url, streams, recorder, name="venue#0")
            session.listeners.append(events.append)
            assert session.url == f"{sim.ws_url}/stream"
            async with running(session):
                await until(lambda: sim.stats.subscriptions == 260, 10, "all subscribed")
                sim.faults.drop()
                await until(lambda: session.reconnects == 1, 10, "a reconnect")
                await until(lambda: sim.stats.subscriptions == 260, 10, "all subscribed again")
                assert sim.stats.connections == 1 and sim.stats.connections_total == 2
                seen = len(recorder.keys)
                await until(lambda: recorder.messages > 500, 10, "data")
                assert seen > 0
            assert [(e.previous, e.state, e.reason) for e in events] == [
                ("closed", "connecting", "start"),
                ("connecting", "live", "connected"),
                ("live", "backoff", "dropped"),
                ("backoff", "connecting", "reconnect"),
                ("connecting", "live", "reconnected"),
                ("live", "closed", "stopped"),
            ]
            assert all(e.connection == "venue#0" and e.ts > 0 for e in events)
            assert events[1].detail == "260 streams (SUBSCRIBE)"
            assert session.transitions == {
                "connecting:start": 1,
                "live:connected": 1,
                "backoff:dropped": 1,
                "connecting:reconnect": 1,
                "live:reconnected": 1,
                "closed:stopped": 1,
            }

    run(scenario())


def test_an_oversized_frame_is_a_counted_protocol_error_and_a_reconnect_not_a_crash() -> None:
    async def scenario() -> None:
        async with Simulator(SimConfig(symbols=SYMBOLS, rate=1000.0)) as sim:
            session = WsSession(
                sim.ws_url,
                ["btcusdt@trade"],
                Recorder(),
                options=options(max_frame_bytes=64 * 1024),  # the configured limit
            )
            async with running(session):
                await session.wait_live(10)
                sim.faults.oversized("BTCUSDT", size=100 * 1024)
                await until(lambda: session.reconnects == 1, 10, "a reconnect")
                await until(lambda: session.state is SessionState.LIVE, 10, "live again")
            assert session.protocol_errors == 1
            assert session.transitions["backoff:protocol_error"] == 1

    run(scenario())


def test_a_failing_listener_is_counted_and_the_session_goes_on() -> None:
    async def scenario() -> None:
        async with Simulator(SimConfig(symbols=SYMBOLS, rate=500.0)) as sim:
            recorder = Recorder()
            session = WsSession(sim.ws_url, ["btcusdt@trade"], recorder)

            def broken(event: SessionEvent) -> None:
                raise RuntimeError("listener bug")

            session.listeners.append(broken)
            async with running(session):
                await until(lambda: recorder.messages > 10, 10, "data")
            assert session.events.listener_errors == 3  # connecting, live, closed

    run(scenario())


# -- refused subscriptions ----------------------------------------------------------------------


def test_a_refused_subscribe_is_counted_and_logged_with_the_venues_message(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown symbol among 224 streams: the venue refuses its SUBSCRIBE batch, every time.

    The start-up check refuses a symbol the venue does not list, so it is skipped here: this
    is a symbol delisted after the start, which the venue refuses on every (re)subscription.
    """

    async def listed_at_start(self: LiveApp, rest: object) -> None:
        pass

    monkeypatch.setattr(LiveApp, "check_symbols", listed_at_start)

    async def scenario() -> None:
        sim_config = SimConfig(n_symbols=111, rate=3000.0, seed=6, start_time_ms=START_MS)
        async with Simulator(sim_config) as sim:
            data = fast_config_data(
                [*sim.symbols, "NOPEUSDT"],  # the simulator lists no NOPEUSDT
                ["trade", "kline_1m"],
                ws_url=sim.ws_url,
                rest_url=sim.rest_url,
            )
            data["connection"] = {"rotate_after_s": 2.0, "rotate_overlap_s": 0.3}
            data["warmup"] = {"enabled": False}
            app = LiveApp(parse_config(data))
            session, rejects = app.sessions[0], app.engine.rejects
            stop = asyncio.Event()
            task = asyncio.create_task(app.run(stop=stop))
            try:
                await app.wait_live(10)
                refused = "subscription_rejected"
                await until(lambda: rejects.counts.get(refused) == 1, 10, "the refusal")
                # the batch of 200 went through; the one with nopeusdt@trade did not
                await until(lambda: sim.stats.subscriptions == 200, 10, "the first batch")
                assert app.snapshot().rejects_by_reason[refused] == 1
                # a rotation's new connection asks again and is refused again: seen too
                await until(lambda: session.rotations >= 1, 15, "a rotation")
                assert rejects.counts[refused] >= 2
                session.send_json({"method": "SUBSCRIBE", "params": ["nope@trade"], "id": 99})
                count = rejects.counts[refused]
                await until(lambda: rejects.counts[refused] == count + 1, 10, "a direct refusal")
                assert rejects.total == rejects.counts[refused]  # nothing else was rejected
                assert session.reconnects == 0
            finally:
                stop.set()
                await asyncio.wait_for(task, 20)

    with caplog.at_level(logging.WARNING, logger="tickhawk.rejects"):
        run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "tickhawk.rejects"]
    assert lines, "no warning"
    assert lines[0] == (
        "skipped bad input (subscription_rejected, 1 so far): the venue refused request 2 "
        "(Invalid request: unknown symbol in stream 'nopeusdt@trade', code 2): the streams "
        "it asked for get no data"
    )
    assert len(lines) < 4  # at most once a second, not once per refusal


# -- the simulator's connection options from the command line ------------------------------------


@pytest.mark.parametrize("age", ["0", "-2", "nan", "inf"])
def test_a_bad_max_connection_age_ends_in_one_line(
    age: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="tickhawk sim")
    sim_cli.add_arguments(parser)
    assert sim_cli.run(parser.parse_args(["--max-connection-age", age])) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"tickhawk sim: --max-connection-age must be a positive number of seconds, not {age}\n"
    )


def test_tickhawk_sim_no_pong_and_max_connection_age_reach_a_client() -> None:
    script = (
        "import argparse, sys\n"
        "from tickhawk.sim import cli\n"
        "parser = argparse.ArgumentParser()\n"
        "cli.add_arguments(parser)\n"
        "sys.exit(cli.run(parser.parse_args(sys.argv[1:])))\n"
    )
    argv = [
        "--n-symbols", "1", "--rate", "500", "--ws-port", "0", "--rest-port", "0",
        "--duration", "40", "--no-pong", "--max-connection-age", "1.5",
    ]  # fmt: skip

    async def scenario() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, *argv, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            lines = [(await asyncio.wait_for(process.stdout.readline(), 30)).decode()]
            ws_url = lines[0].split()[2]
            assert lines[0].startswith("sim: WebSocket ws://127.0.0.1:"), lines
            for _ in range(3):
                lines.append((await asyncio.wait_for(process.stdout.readline(), 10)).decode())
            assert lines[2:] == [
                "sim: clients' pings go unanswered (--no-pong)\n",
                "sim: each connection is closed after 1.5 s (code 1001)\n",
            ]
            pinging = WsSession(
                ws_url,
                ["btcusdt@trade"],
                Recorder(),
                name="pinging",
                options=options(ping_interval_s=0.2, pong_timeout_s=0.2),
            )
            quiet = WsSession(ws_url, ["btcusdt@trade"], Recorder(), name="quiet")  # 5 s pings
            events: list[SessionEvent] = []
            quiet.listeners.append(events.append)
            async with running(pinging), running(quiet):
                await until(lambda: pinging.pong_timeouts >= 1, 15, "a pong timeout")
                await until(lambda: quiet.reconnects >= 1, 15, "the age cut")
            assert pinging.pongs == 0
            dropped = next(e for e in events if e.state == "backoff")
            assert dropped.reason == "dropped" and "code 1001" in dropped.detail
            assert quiet.pong_timeouts == 0
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 20)

    run(scenario())
