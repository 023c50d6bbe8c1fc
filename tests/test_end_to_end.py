"""End to end: the simulator and the engine over a real loopback WebSocket, no mocks.

Every trade the simulator sends is processed exactly once, and signals arrive.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import msgspec
import pytest

from polling import poll
from tickhawk.app.live import LiveApp
from tickhawk.config import ConfigError
from tickhawk.metrics.snapshot import Snapshot
from tickhawk.model import Signal, Trade
from tickhawk.net.session import SessionState
from tickhawk.presets import fast_config
from tickhawk.sim import SimConfig, Simulator


async def scenario() -> None:
    async with Simulator(SimConfig(n_symbols=4, rate=4000.0, seed=11)) as sim:
        config = fast_config(
            list(sim.symbols),
            ["trade", "bookTicker", "depth@100ms"],
            ws_url=sim.ws_url,
            rest_url=sim.rest_url,
        )
        app = LiveApp(config)
        received: dict[str, list[int]] = defaultdict(list)

        def on_trade(trade: Trade) -> None:
            received[trade.symbol].append(trade.id)

        for state in app.engine.states.values():
            state.trade_listeners.append(on_trade)
        signals: list[Signal] = []
        app.engine.sinks.append(signals.append)
        stop = asyncio.Event()
        run = asyncio.create_task(app.run(stop=stop))
        await app.wait_live(40)
        # warm-up back-filled every symbol's bars from the simulator's REST klines
        assert app.warmup is not None and app.warmup.results and not app.warmup.skipped
        for state in app.engine.states.values():
            assert state.indicators["1s"].values["ema"] == state.indicators["1s"].values["ema"]
        await poll(lambda: len(signals) >= 3 and app.engine.trades > 1500, 30, "signals and trades")
        states = list(app.engine.states.values())
        await poll(lambda: all(s.book is not None for s in states), 10, "every book LIVE")
        for state in states:  # exactness against the model: tests/test_faults_books.py
            book = state.book
            assert book is not None and not book.crossed and len(book) > 0
        snap = app.snapshot(symbols=True)
        assert snap.messages >= snap.trades >= 1500 and snap.signals >= 3
        assert snap.stages["recv_to_signal"].p50_us > 0
        assert snap.books == {"live": len(states)} and snap.book_gaps == 0
        assert [c.state for c in snap.connections] == ["live"]
        assert sorted(r.symbol for r in snap.symbols) == sorted(sim.symbols)
        assert all(r.book_state == "live" and 0 < r.bid < r.ask for r in snap.symbols)
        assert msgspec.json.decode(msgspec.json.encode(snap), type=Snapshot) == snap
        await sim.stop()  # stops producing and closes the connection after what was sent
        await poll(
            lambda: app.sessions[0].state is not SessionState.LIVE, 10, "the session to drop"
        )
        stop.set()
        summary = await run

        sent = sim.stats.trades_sent
        assert sum(sent.values()) == summary.trades == app.engine.trades > 1000
        for symbol in sim.symbols:
            expected = [
                i for first, last in sim.trade_ids_sent(symbol) for i in range(first, last + 1)
            ]
            assert received[symbol] == expected, symbol  # each once, in order
        assert app.engine.rejects.total == 0
        for signal in signals:
            assert signal.symbol in sim.symbols and signal.direction in (1, -1)
            assert signal.t_recv <= signal.t_decoded <= signal.t_state <= signal.t_emitted
        assert summary.signals == len(signals) and summary.latency_p99_us > 0


def test_every_trade_sent_is_processed_once_and_signals_arrive() -> None:
    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_a_symbol_the_venue_does_not_list_is_refused_at_start() -> None:
    """A typo in venue.symbols ends the start in one line (it would make the venue refuse all)."""

    async def go() -> None:
        async with Simulator(SimConfig(symbols=["BTCUSDT"], rate=200.0, seed=3)) as sim:
            config = fast_config(
                ["BTCUSDT", "BTCUSTD", "ETHUSDT"],
                ["trade"],
                ws_url=sim.ws_url,
                rest_url=sim.rest_url,
            )
            with pytest.raises(ConfigError) as raised:
                await LiveApp(config).run(duration=5)
            message = str(raised.value)
            assert "\n" not in message
            assert message.startswith("venue.symbols: BTCUSTD, ETHUSDT are not listed by the venue")
            assert "/api/v3/exchangeInfo" in message and "correct or remove them" in message

    asyncio.run(go())
