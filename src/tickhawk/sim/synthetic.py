"""Synthetic mode: drive the market model in real time and publish what it produces.

The async part is one timer loop: every ``batch_ms`` it advances the model
to the current simulated time and hands the batch to the hub. Simulated time
is anchored at the start (``start_time_ms``, or the wall clock) and follows
the event loop's monotonic clock; if the host cannot keep up, simulated time
falls behind instead of skipping events (``lag_ms``).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import numpy.typing as npt

from tickhawk.sim.book import SimBook
from tickhawk.sim.config import SimConfig
from tickhawk.sim.encode import levels_json
from tickhawk.sim.faults import FaultInjector
from tickhawk.sim.hub import Hub
from tickhawk.sim.market import MarketModel
from tickhawk.sim.streams import StreamError, StreamKey, parse_stream
from tickhawk.sim.symbols import SymbolSpec, make_specs, symbol_names
from tickhawk.sim.tape import TradeTape

__all__ = ["SyntheticFeed"]

_WORK_BUDGET_S = 0.005  # model time per batch at most, so the event loop stays responsive


class SyntheticFeed:
    """Serve a :class:`MarketModel` over the hub; also the REST data source."""

    def __init__(self, config: SimConfig) -> None:
        names = config.symbols if config.symbols is not None else symbol_names(config.symbol_count)
        self.specs: list[SymbolSpec] = make_specs([name.upper() for name in names], config.seed)
        self.config = config
        count = len(self.specs)
        start_ms = config.start_time_ms
        self.start_ms = start_ms if start_ms is not None else int(time.time() * 1_000)
        self.model = MarketModel(
            self.specs,
            rate=config.rate,
            seed=config.seed,
            start_ms=self.start_ms,
            step_ms=config.step_ms,
            history_trades=min(config.history_trades, max(500, config.history_budget // count)),
            bar_seconds=max(120, min(3_600, config.bar_budget // count)),
            bar_minutes=max(120, min(1_440, config.bar_budget // count)),
            # About 130 bytes per level: keep all books near 400,000 levels.
            max_levels=min(config.book_levels, max(50, 200_000 // count)),
        )
        self._index = {spec.name: number for number, spec in enumerate(self.specs)}
        self.lag_ms = 0
        self.hub: Hub | None = None
        self.faults: FaultInjector | None = None
        self.paused = False
        self._resumed = asyncio.Event()

    # -- StreamBackend --------------------------------------------------------------------

    def resolve(self, name: str) -> StreamKey:
        """Return the key of stream ``name``; raise ``StreamError`` for unknown symbols."""
        key = parse_stream(name)
        if key.symbol not in self._index:
            raise StreamError(f"unknown symbol in stream {name!r}")
        return key

    def start_stream(self, stream: int, key: StreamKey) -> None:
        """Start emitting ``key`` as stream id ``stream``."""
        self.model.subscribe(stream, key, self._index[key.symbol])

    def stop_stream(self, stream: int, key: StreamKey) -> None:
        """Stop emitting stream id ``stream``."""
        self.model.unsubscribe(stream, key, self._index[key.symbol])

    # -- running --------------------------------------------------------------------------

    async def run(self, hub: Hub) -> None:
        """Advance the model with the clock and publish, until cancelled."""
        loop = asyncio.get_running_loop()
        origin = loop.time()
        if self.config.start_time_ms is None:
            # Simulated time is the wall clock: catch up on the time spent building the
            # model and starting the servers (35 ms at 50 symbols, 0.3 s at 1,000), or
            # every event time would stay that far behind and read as a backlog.
            origin -= max(0.0, time.time() - self.start_ms / 1_000.0)
        model = self.model
        batch_s = self.config.batch_ms / 1_000.0
        while True:
            if self.paused:
                await self._resumed.wait()
                # Simulated time goes on from where it stopped, not from the clock.
                origin = loop.time() - (model.time_ms - self.start_ms) / 1_000.0
            target = self.start_ms + int((loop.time() - origin) * 1_000.0)
            self.step_to(hub, target, time.perf_counter() + _WORK_BUDGET_S)
            self.lag_ms = max(0, target - model.time_ms)
            # Behind the clock: only yield to the loop; else wait for the next batch.
            await asyncio.sleep(0 if self.lag_ms > self.config.batch_ms else batch_s)

    def step_to(self, hub: Hub, target: int, deadline: float | None = None) -> None:
        """Advance the model toward ``target`` and publish, firing faults at their exact step."""
        model = self.model
        faults = self.faults
        while True:
            limit = target
            if faults is not None:
                faults.advance(model.time_ms + model.step_ms)  # what is due for the next step
                limit = min(target, faults.next_ms - 1)
            model.advance_to(limit, deadline)
            outbox = model.take_outbox()
            if outbox:
                hub.publish(outbox)
            if model.time_ms + model.step_ms > target:
                return
            if deadline is not None and time.perf_counter() > deadline:
                return

    def pause(self, hub: Hub) -> int:
        """Stop the market at the next depth boundary, every diff sent; return its time.

        The books then equal what a client that applied every diff holds.
        """
        cadences = [key.cadence_ms for stream, key in enumerate(hub.keys) if key.kind == "depth"]
        cadence = max(cadences, default=100)
        boundary = -(-self.model.time_ms // cadence) * cadence
        self.step_to(hub, boundary)
        self.paused = True
        self._resumed.clear()
        return self.model.time_ms

    def resume(self) -> None:
        """Let the market run again after :meth:`pause`."""
        self.paused = False
        self._resumed.set()

    # -- MarketData -----------------------------------------------------------------------

    def find(self, symbol: str) -> int | None:
        """Return the number of ``symbol`` or None."""
        return self._index.get(symbol)

    def now_ms(self) -> int:
        """Return the current simulated time."""
        return self.model.time_ms

    async def depth_json(self, index: int, limit: int) -> bytes:
        """Return the ``/api/v3/depth`` body of symbol ``index``."""
        update_id, bids, asks = self.model.depth_snapshot(index, limit)
        spec = self.specs[index]
        return (
            f'{{"lastUpdateId":{update_id},'
            f'"bids":{levels_json(bids, spec.price_e8, spec.qty_e8)},'
            f'"asks":{levels_json(asks, spec.price_e8, spec.qty_e8)}}}'
        ).encode()

    def tape(self, index: int) -> TradeTape:
        """Return the trade history of symbol ``index``."""
        return self.model.tapes[index]

    def klines(
        self, index: int, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Return the bars of a ``/api/v3/klines`` request."""
        return self.model.klines.klines(index, interval, start_ms, end_ms, limit)

    def trade_ids_sent(self, index: int) -> list[tuple[int, int]]:
        """Return the trade id ranges sent on the trade stream of symbol ``index``."""
        return self.model.trade_ids_sent(index)

    def book(self, index: int) -> SimBook:
        """Return the live book of symbol ``index`` (tests compare against it)."""
        return self.model.books[index]
