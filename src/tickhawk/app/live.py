"""The live engine: sessions feeding the engine, statistics, the view; ``tickhawk run``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal as os_signal
import sys
import time
from collections.abc import Callable

import msgspec

from tickhawk.app.backfill import AggTradeSource, Backfiller, TradeIdSource, TradeSource
from tickhawk.app.books import BookKeeper
from tickhawk.app.recovery import RecoveryTracker
from tickhawk.app.view import StatusView, add_view_argument, make_view
from tickhawk.budget import check as check_budget
from tickhawk.budget import estimate as estimate_memory
from tickhawk.config import Config, ConfigError, load_config
from tickhawk.engine import Engine
from tickhawk.indicators.warmup import WarmupReport, warm_up
from tickhawk.metrics.latency import LatencyWindow
from tickhawk.metrics.monitor import Monitor
from tickhawk.metrics.prometheus import ListenError
from tickhawk.metrics.settings import parse_listen
from tickhawk.metrics.snapshot import ConnectionStats, Snapshot, SymbolRow
from tickhawk.model import Signal
from tickhawk.net.breaker import CircuitBreaker
from tickhawk.net.session import Reason, SessionEvent, SessionState, WsSession
from tickhawk.resources import ResourceControl
from tickhawk.venues.binance.rest import BinanceRest, RestError
from tickhawk.venues.binance.sequence import BinanceSequence

__all__ = ["LiveApp", "Summary", "add_arguments", "install_event_loop", "run"]

_log = logging.getLogger("tickhawk.live")

#: Give up warming up after this long and start with cold indicators.
WARMUP_TIMEOUT_S = 30.0
#: Give up checking the configured symbols against the venue's list after this long.
SYMBOL_CHECK_TIMEOUT_S = 15.0

#: Binance allows at most 1024 streams on one connection.
STREAMS_PER_CONNECTION = 1024


class Summary(msgspec.Struct):
    """What a live run did, printed at its end."""

    seconds: float
    messages: int
    trades: int
    bars: int
    signals: int
    rejected: int
    msgs_per_s: float
    latency_p50_us: float
    latency_p99_us: float
    cpu_s: float
    reconnects: int


def install_event_loop() -> None:
    """Use uvloop where it is installed (it is on Linux and macOS)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


class LiveApp:
    """Run an engine on live WebSocket sessions until stopped."""

    def __init__(self, config: Config, *, engine: Engine | None = None) -> None:
        self.config = config
        #: The memory ceiling of the configuration, refused (BudgetError) before allocating.
        self.budget = check_budget(config)
        self.resources = ResourceControl(config.resources)
        self.engine = engine or Engine(config)
        #: Stage histograms, samplers, alerts and the exporter (metrics/monitor.py).
        self.monitor = Monitor(
            config.metrics,
            config.alerts,
            venue=f"{config.venue.name}-{config.venue.market}",
            symbols=len(self.engine.states),
        )
        self.engine.sinks.append(self.monitor.metrics.on_signal)
        self.latency = LatencyWindow()
        self.recent_signals: list[Signal] = []
        self.engine.sinks.append(self._on_signal)
        self.feed = self.engine.feed(probe=self.monitor.metrics.probe)
        ws_url, self.rest_url = config.venue.endpoints()
        streams = self.feed.streams
        self.books: BookKeeper | None = None
        self.warmup: WarmupReport | None = None
        self.backfill: Backfiller | None = None
        self.recovery = RecoveryTracker()
        self.engine.book_listeners.append(lambda _event: self.recovery.check())
        connection = config.connection
        self.breaker = CircuitBreaker(
            f"{config.venue.name} {config.venue.market}",
            failures=connection.breaker_failures,
            cooldown_s=connection.breaker_cooldown_s,
        )
        self.sessions = [
            self._session(ws_url, streams[i : i + STREAMS_PER_CONNECTION])
            for i in range(0, len(streams), STREAMS_PER_CONNECTION)
        ]
        self.started = time.monotonic()
        self._cpu0 = time.process_time()
        self._stop: asyncio.Event | None = None

    def stop(self) -> None:
        """Ask a running app to stop, as SIGINT does (the dashboard's quit key)."""
        if self._stop is not None:
            self._stop.set()

    async def check_symbols(self, rest: BinanceRest) -> None:
        """Refuse symbols the venue does not list (ConfigError); warn of those not trading.

        A symbol the venue does not know would make it refuse the whole
        connection or subscription batch, good symbols included. If the list
        cannot be fetched (venue unreachable), start anyway: the sessions'
        reconnect policy handles that.
        """
        wanted = self.config.venue.symbols
        try:
            listed = await asyncio.wait_for(rest.listed_symbols(), SYMBOL_CHECK_TIMEOUT_S)
        except (RestError, TimeoutError) as exc:
            _log.warning("could not check the symbols against the venue (%s); going on", exc)
            return
        unknown = [symbol for symbol in wanted if symbol not in listed]
        if unknown:
            where = f"{rest.base_url}{rest.prefix}/exchangeInfo"
            raise ConfigError(
                f"venue.symbols: {', '.join(unknown)} "
                f"{'is' if len(unknown) == 1 else 'are'} not listed by the venue ({where}); "
                "correct or remove "
                f"{'it' if len(unknown) == 1 else 'them'} (symbols are like BTCUSDT)"
            )
        halted = [f"{s} ({listed[s]})" for s in wanted if listed[s] not in ("TRADING", "")]
        if halted:
            _log.warning("venue.symbols: not trading now: %s", ", ".join(halted))

    async def _warm_up(self, rest: BinanceRest, stop: asyncio.Event) -> None:
        """Back-fill bars from REST klines so indicators are valid from the first live bar."""
        work = asyncio.ensure_future(warm_up(self.engine, rest, self.config.warmup))
        stopped = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait(
            {work, stopped}, timeout=WARMUP_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        stopped.cancel()
        if work not in done:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            _log.warning("warm-up did not finish in %.0f s; starting cold", WARMUP_TIMEOUT_S)
            return
        try:
            self.warmup = work.result()
        except Exception as exc:  # an unreachable venue must not stop the engine
            _log.warning("warm-up failed (%s); indicators start cold", exc)

    def _session(self, ws_url: str, streams: list[str]) -> WsSession:
        depth_symbols = sorted({s.split("@", 1)[0].upper() for s in streams if "@depth" in s})
        trade_symbols = sorted(
            {s.split("@", 1)[0].upper() for s in streams if "@trade" in s or "@aggTrade" in s}
        )
        states = self.engine.states

        def synced() -> tuple[bool, bool]:
            books = all(
                states[s].book_sync is None or states[s].book is not None for s in depth_symbols
            )
            backfill = self.backfill
            return books, backfill is None or not any(backfill.busy(s) for s in trade_symbols)

        number = self.recovery.add_connection(synced)

        def on_event(event: SessionEvent) -> None:
            # A rotation hands over without a gap: only a (re)connect restarts books and backfills.
            connected = event.state == SessionState.LIVE.value and event.reason in (
                Reason.CONNECTED,
                Reason.RECONNECTED,
            )
            if connected and self.books is not None:
                self.books.on_connected(depth_symbols)
            if event.reason == Reason.RECONNECTED and self.backfill is not None:
                self.backfill.on_connected(trade_symbols)  # what the drop lost
            if event.state == SessionState.CLOSED.value:
                return  # stopped on purpose: no outage to time
            live = event.state in (SessionState.LIVE.value, SessionState.ROTATING.value)
            self.recovery.on_state(number, live)  # after the books and backfills restarted

        session = WsSession(
            ws_url,
            streams,
            self.feed.on_message,
            name=f"{ws_url}#{number}",
            options=self.config.connection,
            breaker=self.breaker,
            last_seen=self.feed.last_seen,
            sequence=BinanceSequence(),
        )
        session.listeners.append(on_event)
        return session

    def _rest(self) -> BinanceRest:
        rest = self.config.rest
        return BinanceRest(
            self.rest_url,
            self.config.venue.market,
            timeout_s=rest.timeout_s,
            retries=rest.retries,
            weight_budget=rest.weight_budget,
        )

    def _backfiller(self, rest: BinanceRest) -> Backfiller:
        settings = self.config.backfill
        source: TradeSource
        if "aggTrade" in self.config.venue.streams:
            source = AggTradeSource(rest, self.engine.rejects)
        else:
            source = TradeIdSource(rest, self.engine.rejects)
        return Backfiller(
            self.engine,
            source,
            enabled=settings.enabled,
            buffer=settings.buffer,
            timeout_s=settings.timeout_s,
        )

    def _on_signal(self, signal: Signal) -> None:
        self.latency.add(signal.t_emitted - signal.t_recv)
        recent = self.recent_signals
        recent.append(signal)
        if len(recent) > 50:
            del recent[:25]

    @property
    def messages(self) -> int:
        """Return the messages decoded so far."""
        return self.feed.messages

    async def wait_live(self, timeout: float) -> None:
        """Wait until every session is connected."""
        for session in self.sessions:
            await session.wait_live(timeout)

    def snapshot(self, *, symbols: bool = False) -> Snapshot:
        """Return everything the app measures now (``symbols``: one row per symbol too)."""
        now = time.time()
        engine = self.engine
        books: dict[str, int] = {}
        rows = []
        for state in engine.states.values():
            sync = state.book_sync
            book_state = sync.state.value if sync is not None else "none"
            if sync is not None:
                books[book_state] = books.get(book_state, 0) + 1
            if symbols:
                quote = state.quote
                bid = quote.bid if quote is not None else 0.0
                ask = quote.ask if quote is not None else 0.0
                mid = (bid + ask) / 2
                last = state.last_signal
                rows.append(
                    SymbolRow(
                        symbol=state.symbol,
                        price=state.last_price,
                        bid=bid,
                        ask=ask,
                        spread_bps=(ask - bid) / mid * 1e4 if mid > 0 else 0.0,
                        book_state=book_state,
                        trades=state.trades.count,
                        quotes=state.quotes,
                        book_updates=state.book_updates,
                        last_signal=(
                            f"{last.strategy} {'long' if last.direction > 0 else 'short'}"
                            if last is not None
                            else ""
                        ),
                    )
                )
        seconds = time.monotonic() - self.started
        snap = Snapshot(
            ts=now,
            uptime_s=round(seconds, 3),
            messages=self.messages,
            msgs_per_s=self.messages / seconds if seconds > 0 else 0.0,
            trades=engine.trades,
            bars=engine.bars,
            signals=engine.signals,
            rejected=engine.rejects.total,
            rejects_by_reason=dict(engine.rejects.counts),
            connections=[
                ConnectionStats(
                    name=session.name,
                    state=session.state.value,
                    streams=len(session.streams),
                    connects=session.connects,
                    reconnects=session.reconnects,
                    frames=session.frames,
                    bytes=session.bytes,
                    protocol_errors=session.protocol_errors,
                    stale_reconnects=session.stale_reconnects,
                    rotations=session.rotations,
                    circuit_open=session.circuit_open,
                    ping_rtt_ms=session.ping_rtt_ms,
                )
                for session in self.sessions
            ],
            books=books,
            book_gaps=sum(
                s.book_sync.gaps for s in engine.states.values() if s.book_sync is not None
            ),
            trade_gaps=sum(s.trade_gaps for s in engine.states.values()),
            trades_missing=sum(len(s.missing_trade_ids) for s in engine.states.values()),
            trades_backfilled=self.backfill.trades_backfilled if self.backfill else 0,
            backfill_failures=self.backfill.failures if self.backfill else 0,
            recoveries_s=self.recovery.recoveries_s,
            available_s=round(self.recovery.available_s, 3),
            symbols=rows,
        )
        self.monitor.fill(snap, engine)  # stages, rates, resources, alerts, backlog
        return snap

    def summary(self) -> Summary:
        """Return the run's totals so far."""
        seconds = time.monotonic() - self.started
        p50, p99 = self.latency.percentiles(50, 99)
        return Summary(
            seconds=round(seconds, 2),
            messages=self.messages,
            trades=self.engine.trades,
            bars=self.engine.bars,
            signals=self.engine.signals,
            rejected=self.engine.rejects.total,
            msgs_per_s=round(self.messages / seconds, 1) if seconds > 0 else 0.0,
            latency_p50_us=round(p50, 1),
            latency_p99_us=round(p99, 1),
            cpu_s=round(time.process_time() - self._cpu0, 3),
            reconnects=sum(s.reconnects for s in self.sessions),
        )

    async def run(
        self,
        *,
        duration: float | None = None,
        view: StatusView | None = None,
        stop: asyncio.Event | None = None,
    ) -> Summary:
        """Run until ``duration`` seconds pass, ``stop`` is set, or SIGINT/SIGTERM.

        ``[resources]`` is applied first (ConfigError if this machine cannot)
        and undone at the end; the heap is frozen once the warm-up is done.
        """
        self.resources.apply()
        stop = self._stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (os_signal.SIGINT, os_signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        self.started = time.monotonic()
        self._cpu0 = time.process_time()
        with_books = any(s.book_sync is not None for s in self.engine.states.values())
        warm = self.config.warmup.enabled
        with_trades = any("@trade" in s or "@aggTrade" in s for s in self.feed.streams)
        client = self._rest()
        rest: BinanceRest | None = client
        try:
            await self.check_symbols(client)  # ConfigError for a symbol the venue does not list
            if not (with_books or warm or with_trades):
                await client.close()
                rest = None
            await self.monitor.start(self)  # ListenError if --metrics cannot be served
            if self.monitor.address is not None:
                host, port = self.monitor.address
                host = f"[{host}]" if ":" in host else host
                print(f"metrics: http://{host}:{port}/metrics", file=sys.stderr, flush=True)
            if warm and rest is not None:
                await self._warm_up(rest, stop)
            self.resources.after_warmup()
            async with asyncio.TaskGroup() as group:
                tasks = []
                if rest is not None and with_books:
                    self.books = BookKeeper(
                        self.engine, rest, snapshot_limit=self.config.book.snapshot_limit
                    )
                    tasks.append(group.create_task(self.books.run()))
                if rest is not None and with_trades:
                    self.backfill = self._backfiller(rest)
                    self.backfill.done_listeners.append(lambda _symbol: self.recovery.check())
                    tasks.append(group.create_task(self.backfill.run()))
                tasks += [group.create_task(s.run()) for s in self.sessions]
                tasks.append(group.create_task(self.monitor.run(self)))
                if view is not None:
                    tasks.append(group.create_task(view.run(self)))
                try:
                    await asyncio.wait_for(stop.wait(), duration)
                except TimeoutError:
                    pass
                for session in self.sessions:
                    session.close()
                for task in tasks:
                    task.cancel()
        finally:
            await self.monitor.stop()
            self.resources.restore()
            if rest is not None:
                await rest.close()
            for signum in (os_signal.SIGINT, os_signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signum)
        return self.summary()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``run``'s arguments."""
    parser.add_argument("config", help="configuration file (TOML or YAML)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON")
    parser.add_argument(
        "--plain", action="store_true", help="status lines instead of the live view"
    )
    add_view_argument(parser)
    add_metrics_argument(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="print the memory ceiling of the configuration by part, and exit",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``tickhawk run CONFIG``; return the exit status."""
    try:
        config = with_metrics_listen(load_config(args.config), args.metrics)
        if args.check:
            print(estimate_memory(config).table())
        ResourceControl(config.resources).check()
        check_budget(config)
    except ConfigError as exc:
        print(f"tickhawk run: {exc}", file=sys.stderr)
        return 2
    if args.check:
        return 0
    return run_app(
        config, duration=args.duration, plain=args.plain, as_json=args.json, view=args.view
    )


def run_app(
    config: Config,
    *,
    duration: float | None,
    plain: bool,
    as_json: bool,
    before: Callable[[], object] | None = None,
    view: str | None = None,
) -> int:
    """Run a live app with a view and print its summary."""
    install_event_loop()

    async def main() -> Summary:
        app = LiveApp(config)
        shown = make_view(plain=plain or as_json, quiet=as_json, kind=view)
        return await app.run(duration=duration, view=shown)

    try:
        summary = asyncio.run(main())
    except (ConfigError, ListenError) as exc:  # memory budget, [resources], --metrics
        print(f"tickhawk run: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(msgspec.json.encode(summary).decode())
    else:
        print(_summary_line(summary))
    return 0


def add_metrics_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--metrics HOST:PORT`` (the Prometheus and JSON exporter)."""
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics and /snapshot.json there (e.g. 127.0.0.1:9464; "
        "a bare :PORT binds 127.0.0.1)",
    )


def with_metrics_listen(config: Config, listen: str | None) -> Config:
    """Return ``config`` with the exporter on ``listen``; ConfigError if it is no HOST:PORT."""
    if listen is None:
        return config
    try:
        parse_listen(listen)
    except ValueError as exc:
        raise ConfigError(f"--metrics {exc}") from None
    metrics = msgspec.structs.replace(config.metrics, listen=listen)
    return msgspec.structs.replace(config, metrics=metrics)


def _summary_line(s: Summary) -> str:
    return (
        f"summary: {s.seconds:.1f} s, {s.messages:,} messages ({s.msgs_per_s:,.0f}/s), "
        f"{s.trades:,} trades, {s.bars:,} bars, {s.signals:,} signals, {s.rejected} rejected, "
        f"receive→signal p50 {s.latency_p50_us:.0f} µs p99 {s.latency_p99_us:.0f} µs, "
        f"cpu {s.cpu_s:.2f} s, {s.reconnects} reconnects"
    )
