"""The engine child of a load test: ``python -m tickhawk.loadtest.engineproc SPEC_JSON``.

Runs :class:`~tickhawk.app.live.LiveApp` with the demo's 1-second preset
(trade, bookTicker and depth@100ms of every symbol; six indicators; the
momentum strategy) against the simulator child, exactly as ``tickhawk run``
would, and beside it one timer (off the hot path) that

- every 100 ms: samples the backlog, receive time − exchange time of the
  newest messages handled (the median over symbols);
- every second: writes an :class:`EngineTick` line on stdout, with the
  outages the engine's own recovery tracker closed in that second.

Latencies come from a signal sink (one call per signal, not per message):
receive → signal and receive → state updated ("WebSocket handling") of each
signal, into :class:`~tickhawk.loadtest.histogram.LogHistogram`. GC pauses
come from ``gc.callbacks``. On ``account`` it writes the per-symbol trade
accounting (:class:`EngineAccount`); on ``stop`` or end of stdin it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import statistics
import sys
import time
from typing import Any

import msgspec

from tickhawk.app.live import LiveApp, install_event_loop
from tickhawk.book.sync import BookEvent
from tickhawk.config import parse_config
from tickhawk.loadtest.histogram import LogHistogram
from tickhawk.loadtest.resyncs import ResyncTracker
from tickhawk.loadtest.sizing import engine_data
from tickhawk.loadtest.wire import (
    EngineAccount,
    EngineCommand,
    EngineSpec,
    EngineTick,
    Outage,
    SymbolAccount,
)
from tickhawk.model import Signal

__all__ = ["EngineProbe", "main"]

_log = logging.getLogger("tickhawk.loadtest.engine")
_encoder = msgspec.json.Encoder()
_commands = msgspec.json.Decoder(EngineCommand)
_SYNCED = frozenset({"live", "stale"})
_LIVE = frozenset({"live", "rotating"})
_SAMPLE_S = 0.1


def _write(message: msgspec.Struct) -> None:
    sys.stdout.buffer.write(_encoder.encode(message) + b"\n")
    sys.stdout.buffer.flush()


class EngineProbe:
    """Everything the engine child measures about the app it runs."""

    def __init__(self, app: LiveApp) -> None:
        self.app = app
        self.signal_hist = LogHistogram()
        self.state_hist = LogHistogram()
        self.resyncs = ResyncTracker()
        self._recovered: object = None  # the last engine Recovery forwarded
        self.backlog_fine: list[tuple[float, float]] = []
        self.gc_collections = 0
        self.gc_pause_ms = 0.0
        self.gc_pause_max_ms = 0.0
        self._gc_start = 0
        self._seen: dict[str, int] = {}
        app.engine.sinks.append(self._on_signal)
        app.engine.book_listeners.append(self._on_book)

    # -- hooks (signals and book transitions are rare: not the per-message path) ---------

    def _on_signal(self, signal: Signal) -> None:
        self.signal_hist.add((signal.t_emitted - signal.t_recv) / 1_000.0)
        self.state_hist.add((signal.t_state - signal.t_recv) / 1_000.0)

    def _on_book(self, event: BookEvent) -> None:
        self.resyncs.on_transition(event.symbol, event.state, event.reason, time.monotonic())

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """``gc.callbacks`` entry: time every collection."""
        if phase == "start":
            self._gc_start = time.perf_counter_ns()
        elif self._gc_start:
            pause = (time.perf_counter_ns() - self._gc_start) / 1e6
            self._gc_start = 0
            self.gc_collections += 1
            self.gc_pause_ms += pause
            self.gc_pause_max_ms = max(self.gc_pause_max_ms, pause)

    # -- polls -----------------------------------------------------------------------------

    def sessions_live(self) -> bool:
        """Return whether every session is connected (a rotation keeps it live)."""
        return all(s.state.value in _LIVE for s in self.app.sessions)

    def books(self) -> tuple[int, int]:
        """Return (books in sync, books)."""
        syncs = [s.book_sync for s in self.app.engine.states.values() if s.book_sync is not None]
        return sum(1 for sync in syncs if sync.state.value in _SYNCED), len(syncs)

    def new_outages(self) -> list[Outage]:
        """Return the outages the engine's recovery tracker closed since the last call."""
        kept = list(self.app.recovery.recoveries)
        start = 0
        for index in range(len(kept) - 1, -1, -1):
            if kept[index] is self._recovered:
                start = index + 1
                break
        fresh = kept[start:]
        if fresh:
            self._recovered = fresh[-1]
        now = time.time()
        return [
            Outage(
                at=now,
                connection=r.connection,
                seconds=r.seconds,
                reconnect_s=r.reconnect_s,
                books_s=r.books_s,
                backfill_s=r.backfill_s,
                drops=r.drops,
                dominated_by=r.dominated_by,
            )
            for r in fresh
        ]

    def sample_backlog(self) -> None:
        """Record receive − exchange time of the newest live messages (ms; median over symbols).

        Per symbol handled since the last sample: its newest trade (unless a late
        or back-filled one) and its newest depth diff. The median over symbols
        follows a queue that builds up in the engine while staying clear of one
        symbol's jitter.
        """
        lags: list[float] = []
        seen = self._seen
        now_ns = time.time_ns()
        for symbol, state in self.app.engine.states.items():
            ring = state.trades
            if ring.count != seen.get(symbol, 0):
                seen[symbol] = ring.count
                index = (ring.next - 1) % ring.capacity
                if ring.id[index] == state.last_trade_id:  # not a late or back-filled trade
                    lags.append((ring.ts_recv[index] - ring.ts_event[index]) / 1e6)
                    continue
            book = state.last_book
            if book is not None and now_ns - book.ts_recv < 100_000_000:  # in the last 100 ms
                lags.append((book.ts_recv - book.ts_event) / 1e6)
        if lags:
            self.backlog_fine.append((time.monotonic(), statistics.median(lags)))

    def tick(self) -> EngineTick:
        """Return this second's line and reset the per-second parts."""
        app = self.app
        snap = app.snapshot()
        signal_hist, signal_max = self.signal_hist.take()
        state_hist, state_max = self.state_hist.take()
        fine, self.backlog_fine = self.backlog_fine, []
        synced, total = self.books()
        live = self.sessions_live() and synced == total and not app.recovery.recovering
        tick = EngineTick(
            ts=snap.ts,
            mono=time.monotonic(),
            live=live,
            messages=snap.messages,
            trades=snap.trades,
            signals=snap.signals,
            rejected=snap.rejected,
            reconnects=sum(c.reconnects for c in snap.connections),
            stale_reconnects=sum(c.stale_reconnects for c in snap.connections),
            signal_hist=signal_hist,
            signal_max_us=signal_max,
            state_hist=state_hist,
            state_max_us=state_max,
            gc_collections=self.gc_collections,
            gc_pause_max_ms=self.gc_pause_max_ms,
            gc_pause_ms=self.gc_pause_ms,
            backlog_ms=max((ms for _, ms in fine), default=None),
            backlog_fine=fine,
            sessions=[c.state for c in snap.connections],
            books_live=synced,
            books_total=total,
            book_gaps=snap.book_gaps,
            trade_gaps=snap.trade_gaps,
            trades_missing=snap.trades_missing,
            trades_backfilled=snap.trades_backfilled,
            available_s=snap.available_s,
            outages=self.new_outages(),
            resyncs=self.resyncs.take(),
            stages_p99_us={name: stage.p99_us for name, stage in snap.stages.items()},
        )
        self.gc_collections = 0
        self.gc_pause_ms = 0.0
        self.gc_pause_max_ms = 0.0
        return tick

    def account(self) -> EngineAccount:
        """Return every symbol's trade accounting."""
        symbols = {}
        for symbol, state in self.app.engine.states.items():
            sync = state.book_sync
            symbols[symbol] = SymbolAccount(
                last_id=state.last_trade_id,
                applied=state.trades.count,
                missing=len(state.missing_trade_ids),
                duplicates=state.duplicate_trades,
                book_gaps=sync.gaps if sync is not None else 0,
            )
        return EngineAccount(symbols=symbols)


async def _timer(probe: EngineProbe, stop: asyncio.Event) -> None:
    next_poll = time.monotonic()
    next_tick = next_poll + 1.0
    while not stop.is_set():
        next_poll += _SAMPLE_S
        await asyncio.sleep(max(0.0, next_poll - time.monotonic()))
        probe.sample_backlog()
        now = time.monotonic()
        if now >= next_tick:
            next_tick += 1.0
            if next_tick < now:  # a stalled loop: do not burst to catch up
                next_tick = now + 1.0
            _write(probe.tick())
        if next_poll < now - 1.0:
            next_poll = now


async def _commands_from(
    stdin: asyncio.StreamReader, probe: EngineProbe, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        line = await stdin.readline()
        if not line:
            break
        try:
            command = _commands.decode(line)
        except msgspec.DecodeError as error:
            _log.error("bad command %r: %s", line[:80], error)
            continue
        if command.cmd == "account":
            _write(probe.account())
        elif command.cmd == "stop":
            break
        else:
            _log.error("unknown command %r", command.cmd)
    stop.set()


def build_app(spec: EngineSpec) -> LiveApp:
    """Return the live app a load test runs: the 1-second preset on the simulator."""
    data = engine_data(
        spec.symbols, spec.streams, spec.settings, ws_url=spec.ws_url, rest_url=spec.rest_url
    )
    return LiveApp(parse_config(data))


async def _run(spec: EngineSpec) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    app = build_app(spec)
    probe = EngineProbe(app)
    gc.callbacks.append(probe.on_gc)
    stop = asyncio.Event()
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_timer(probe, stop))
            commands = group.create_task(_commands_from(stdin, probe, stop))
            await app.run(stop=stop)
            stop.set()
            commands.cancel()
    finally:
        gc.callbacks.remove(probe.on_gc)


def main(argv: list[str] | None = None) -> int:
    """Run the engine child; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("picows").setLevel(logging.ERROR)
    spec = msgspec.json.decode(argv[0], type=EngineSpec)
    install_event_loop()
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        asyncio.run(_run(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
