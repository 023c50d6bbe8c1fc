"""The simulator: WebSocket + REST servers around a synthetic market or a replay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

import msgspec
from aiohttp import web

from tickhawk.sim.config import SimConfig
from tickhawk.sim.faults import FaultInjector
from tickhawk.sim.hub import Hub, SendHook
from tickhawk.sim.market import MarketModel
from tickhawk.sim.replay import Capture, ReplayFeed
from tickhawk.sim.rest import WeightMeter, make_app
from tickhawk.sim.snapshots import BookHistory
from tickhawk.sim.synthetic import SyntheticFeed
from tickhawk.sim.ws import start_ws_server

__all__ = ["SimStats", "Simulator"]

_log = logging.getLogger("tickhawk.sim")


class SimStats(msgspec.Struct, frozen=True):
    """Counters at one moment. ``messages_sent`` counts every frame sent to every client."""

    messages_sent: int
    by_kind: dict[str, int]
    trades_sent: dict[str, int]
    connections: int
    connections_total: int
    subscriptions: int
    slow_disconnects: int
    sim_time_ms: int
    lag_ms: int
    faults: dict[str, int]
    aged_out: int = 0  # connections closed at max_connection_age_s


class Simulator:
    """Serve Binance-style market data; use as ``async with Simulator(config) as sim``."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._feed: SyntheticFeed | ReplayFeed | None = None
        self._hub: Hub | None = None
        self._ws_server: asyncio.Server | None = None
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._fault_task: asyncio.Task[None] | None = None
        self._faults: FaultInjector | None = None
        self._ws_port = 0
        self._rest_port = 0

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the market (or load the capture) and start both servers."""
        config = self.config
        feed: SyntheticFeed | ReplayFeed
        if config.replay is not None:
            capture = await asyncio.to_thread(Capture.load, config.replay)
            if not capture.lines:
                raise ValueError(f"capture {config.replay} holds no stream messages")
            feed = ReplayFeed(
                capture, config.replay_speed, config.replay_wait_clients, config.close_on_replay_end
            )
        else:
            feed = SyntheticFeed(config)
        hub = Hub(feed, config.max_send_buffer)
        if isinstance(feed, ReplayFeed):
            replay = feed
            hub.on_change.append(lambda: replay.clients_changed(hub))
        self._feed, self._hub = feed, hub
        faults = self._make_faults(feed, hub)
        try:
            self._ws_server = await start_ws_server(
                hub,
                config.host,
                config.ws_port,
                config.ping_interval_s,
                config.pong_timeout_s,
                answer_pings=config.answer_pings,
                max_connection_age_s=config.max_connection_age_s,
            )
            self._ws_port = int(self._ws_server.sockets[0].getsockname()[1])
            self._runner = web.AppRunner(
                make_app(feed, WeightMeter(config.rest_weight_limit), faults.rest),
                access_log=None,
                shutdown_timeout=1.0,  # requests still running at stop get 1 s
            )
            await self._runner.setup()
            site = web.TCPSite(self._runner, config.host, config.rest_port)
            await site.start()
            self._rest_port = int(self._runner.addresses[0][1])
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(feed.run(hub), name="tickhawk-sim-feed")
        self._task.add_done_callback(_log_failure)
        if isinstance(feed, ReplayFeed):  # the synthetic feed fires faults itself, on its steps
            self._fault_task = asyncio.create_task(_fault_clock(faults), name="tickhawk-sim-faults")
            self._fault_task.add_done_callback(_log_failure)
        _log.info("sim: WebSocket %s, REST %s", self.ws_url, self.rest_url)

    def _make_faults(self, feed: SyntheticFeed | ReplayFeed, hub: Hub) -> FaultInjector:
        config = self.config
        if isinstance(feed, SyntheticFeed):
            faults = FaultInjector(
                hub,
                feed,
                now_ms=feed.now_ms,
                start_ms=feed.start_ms,
                seed=config.seed,
                books=feed.model.books,
                history=BookHistory(every_ms=500, keep=8) if config.keep_snapshots else None,
            )
            feed.faults = faults
        else:
            loop = asyncio.get_running_loop()
            origin = loop.time()
            faults = FaultInjector(
                hub, feed, now_ms=lambda: int((loop.time() - origin) * 1_000), start_ms=0
            )
        for entry in config.fault_schedule():
            faults.schedule(entry)
        self._faults = faults
        return faults

    async def stop(self) -> None:
        """Stop producing, close every client and both servers; idempotent."""
        fault_task, self._fault_task = self._fault_task, None
        if fault_task is not None:
            fault_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fault_task
        if isinstance(self._feed, SyntheticFeed) and self._feed.paused:
            self._feed.resume()
        task, self._task = self._task, None
        if isinstance(self._feed, ReplayFeed):
            self._feed.stopping.set()  # release REST requests waiting for the snapshot
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._hub is not None:
            self._hub.close_all()
        server, self._ws_server = self._ws_server, None
        if server is not None:
            server.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- what clients and tests read ------------------------------------------------------

    @property
    def ws_url(self) -> str:
        """Return ``ws://host:port`` (append ``/stream?streams=...`` or ``/ws/...``)."""
        return f"ws://{self.config.host}:{self._ws_port}"

    @property
    def rest_url(self) -> str:
        """Return ``http://host:port`` of the REST API."""
        return f"http://{self.config.host}:{self._rest_port}"

    @property
    def symbols(self) -> list[str]:
        """Return the served symbols, upper case."""
        return [spec.name for spec in self._require_feed().specs]

    @property
    def model(self) -> MarketModel | None:
        """Return the synthetic market (None in replay mode)."""
        feed = self._require_feed()
        return feed.model if isinstance(feed, SyntheticFeed) else None

    @property
    def faults(self) -> FaultInjector:
        """Return the fault injector: ``sim.faults.inject("gap", symbol="BTCUSDT")``."""
        if self._faults is None:
            raise RuntimeError("the simulator is not started: use `async with Simulator(...)`")
        return self._faults

    async def pause(self) -> int:
        """Stop the synthetic market where every depth diff has been sent; return its time (ms).

        While paused, ``sim.model``'s books equal the book of a client that applied every
        diff: tests compare them. :meth:`resume` goes on from the same simulated time.
        """
        feed = self._require_feed()
        if not isinstance(feed, SyntheticFeed):
            raise RuntimeError("pause() needs synthetic mode")
        return feed.pause(self._require_hub())

    def resume(self) -> None:
        """Let the market run again after :meth:`pause`."""
        feed = self._require_feed()
        if isinstance(feed, SyntheticFeed):
            feed.resume()

    def set_rate(self, rate: float) -> None:
        """Change the synthetic market's target rate (trade + aggTrade + bookTicker msgs/s) now."""
        feed = self._require_feed()
        if not isinstance(feed, SyntheticFeed):
            raise RuntimeError("set_rate() needs synthetic mode")
        feed.model.set_rate(rate)

    @property
    def send_hook(self) -> SendHook | None:
        """Return the per-message send hook (the fault-injection seam)."""
        return self._require_hub().hook

    @send_hook.setter
    def send_hook(self, hook: SendHook | None) -> None:
        self._require_hub().hook = hook

    @property
    def stats(self) -> SimStats:
        """Return the counters now."""
        hub = self._require_hub()
        feed = self._require_feed()
        by_kind: dict[str, int] = {}
        trades: dict[str, int] = dict.fromkeys(self.symbols, 0)
        inserted = self._faults.streams.inserted if self._faults is not None else {}
        total = 0
        for stream, (key, sent) in enumerate(zip(hub.keys, hub.sent, strict=True)):
            sent -= inserted.get(stream, 0)  # frames a fault added are no market messages
            total += sent
            kind = key.kind.partition("@")[0]
            by_kind[kind] = by_kind.get(kind, 0) + sent
            if kind == "trade":
                trades[key.symbol] = trades.get(key.symbol, 0) + sent
        synthetic = isinstance(feed, SyntheticFeed)
        return SimStats(
            messages_sent=total,
            by_kind=by_kind,
            trades_sent=trades,
            connections=len(hub.connections),
            connections_total=hub.connections_total,
            subscriptions=hub.subscriptions,
            slow_disconnects=hub.slow_disconnects,
            sim_time_ms=feed.now_ms() if synthetic else 0,
            lag_ms=feed.lag_ms if isinstance(feed, SyntheticFeed) else 0,
            faults=dict(self._faults.counts) if self._faults is not None else {},
            aged_out=hub.aged_out,
        )

    def trade_ids_sent(self, symbol: str) -> list[tuple[int, int]]:
        """Return the inclusive ``(first, last)`` trade id ranges sent on ``symbol``'s trades."""
        feed = self._require_feed()
        index = feed.find(symbol.upper())
        if index is None:
            raise KeyError(f"unknown symbol {symbol!r}")
        return feed.trade_ids_sent(index)

    @property
    def replay_streams(self) -> list[str]:
        """Return the stream names found in the capture (empty in synthetic mode)."""
        feed = self._require_feed()
        return list(feed.capture.streams) if isinstance(feed, ReplayFeed) else []

    @property
    def replay_done(self) -> bool:
        """Return whether the replay has played its last line (False in synthetic mode)."""
        feed = self._require_feed()
        return isinstance(feed, ReplayFeed) and feed.done.is_set()

    async def wait_replay_done(self) -> None:
        """Wait until the replay has played its last line."""
        feed = self._require_feed()
        if not isinstance(feed, ReplayFeed):
            raise RuntimeError("wait_replay_done() needs replay mode (SimConfig.replay)")
        await feed.done.wait()

    def _require_feed(self) -> SyntheticFeed | ReplayFeed:
        if self._feed is None:
            raise RuntimeError("the simulator is not started: use `async with Simulator(...)`")
        return self._feed

    def _require_hub(self) -> Hub:
        if self._hub is None:
            raise RuntimeError("the simulator is not started: use `async with Simulator(...)`")
        return self._hub


async def _fault_clock(faults: FaultInjector) -> None:
    """Replay mode: fire scheduled faults on the wall clock since the start."""
    while True:
        faults.advance(faults.now_ms())
        await asyncio.sleep(0.01)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("sim: the feed stopped", exc_info=task.exception())
