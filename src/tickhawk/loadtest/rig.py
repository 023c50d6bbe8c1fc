"""The runner's side of a load test: two child processes, pinned, read line by line.

``async with Rig(...) as rig`` starts the simulator child, then the engine
child on the simulator's URLs, pins them to different cores when the
machine has two or more (simulator: the first allowed core, engine: the
last; the runner itself stays unpinned: it wakes once a second), and builds
a :class:`~tickhawk.loadtest.samples.Sample` from every engine second.
Profiles drive it: :meth:`Rig.set_rate`, :meth:`Rig.fault`,
:meth:`Rig.run_for`, :meth:`Rig.account`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType

import msgspec

from tickhawk.loadtest.children import Child, LoadtestError, choose_cores, spawn
from tickhawk.loadtest.control import RateController
from tickhawk.loadtest.samples import Sample, SampleLog
from tickhawk.loadtest.sizing import EngineSettings, fits, size_engine
from tickhawk.loadtest.sockets import socket_queues
from tickhawk.loadtest.wire import (
    EngineAccount,
    EngineCommand,
    EngineSpec,
    EngineTick,
    Outage,
    SimCommand,
    SimIds,
    SimReady,
    SimSpec,
    SimTick,
    decode_engine,
    decode_sim,
)

__all__ = ["STREAMS", "Rig"]

#: What the engine subscribes per symbol: the demo's streams.
STREAMS = ["trade", "bookTicker", "depth@100ms"]


class Rig:
    """A simulator child and an engine child, measured once a second."""

    def __init__(
        self,
        *,
        symbols: int,
        rate: float,
        seed: int = 7,
        pin: bool = True,
        rest_weight_budget: int | None = None,
        engine_overrides: dict[str, float | int | bool | str] | None = None,
        on_sample: Callable[[Sample], None] | None = None,
    ) -> None:
        self.n_symbols = symbols
        self.seed = seed
        self.rest_weight_budget = rest_weight_budget
        self.engine_overrides = dict(engine_overrides or {})
        self.settings: EngineSettings | None = None
        self.controller = RateController(rate)
        self.cores = choose_cores(pin)
        self.on_sample = on_sample
        self.log = SampleLog()
        self.phase = "start"
        self.symbols: list[str] = []
        self.ws_port = 0
        self.outages: list[Outage] = []
        self.resyncs: list[tuple[str, float]] = []
        self.last_engine: EngineTick | None = None
        self.last_sim: SimTick | None = None
        self.origin = time.monotonic()
        self.started_live: float | None = None
        self._sim: Child | None = None
        self._engine: Child | None = None
        self._group = asyncio.TaskGroup()
        self._replies: dict[str, asyncio.Future[SimIds | EngineAccount]] = {}
        self._new_sample = asyncio.Event()
        self._model_rate = self.controller.model_rate

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Rig:
        await self._group.__aenter__()
        try:
            await self._start()
        except BaseException as error:
            await self._close()
            if isinstance(error, LoadtestError):
                error.logs = self.logs()
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._close()
        if isinstance(error, LoadtestError):
            error.logs = self.logs()

    async def _close(self) -> None:
        """Stop both children; their readers end at end of file, and the task group with them.

        The body's own exception (if any) is not handed to the task group, which
        would wrap it in an ExceptionGroup: it propagates as it is.
        """
        await self._shutdown()
        await self._group.__aexit__(None, None, None)

    async def _start(self) -> None:
        sim = await spawn(
            "tickhawk.loadtest.simproc",
            SimSpec(n_symbols=self.n_symbols, rate=self._model_rate, seed=self.seed),
            "simulator",
        )
        self._sim = sim
        sim.pin(self.cores[0])
        self._group.create_task(sim.read_errors())
        ready = await self._first_line(sim, timeout=120.0)
        self.symbols = ready.symbols
        self.ws_port = int(ready.ws_url.rsplit(":", 1)[1])
        self.settings = size_engine(
            ready.symbols,
            STREAMS,
            rest_weight_budget=self.rest_weight_budget,
            overrides=self.engine_overrides,
        )
        if not fits(self.settings):
            raise LoadtestError(
                f"{len(ready.symbols):,} symbols do not fit the engine's memory budget of "
                f"{self.settings.budget_mb:,.0f} MB even with book.max_levels "
                f"{self.settings.book_max_levels} and engine.bar_history "
                f"{self.settings.bar_history} (ceiling {self.settings.ceiling_mb:,.0f} MB): "
                "use fewer --symbols"
            )
        engine = await spawn(
            "tickhawk.loadtest.engineproc",
            EngineSpec(
                ws_url=ready.ws_url,
                rest_url=ready.rest_url,
                symbols=ready.symbols,
                streams=STREAMS,
                settings=self.settings,
            ),
            "engine",
        )
        self._engine = engine
        engine.pin(self.cores[1])
        self._group.create_task(engine.read_errors())
        self._group.create_task(self._read_sim(sim))
        self._group.create_task(self._read_engine(engine))
        self.origin = time.monotonic()

    async def _first_line(self, sim: Child, timeout: float) -> SimReady:
        stdout = sim.process.stdout
        assert stdout is not None
        try:
            line = await asyncio.wait_for(stdout.readline(), timeout)
        except TimeoutError:
            raise LoadtestError(f"the simulator did not start within {timeout:.0f} s") from None
        if not line:
            await sim.process.wait()
            await asyncio.sleep(0.1)  # let the stderr reader catch the last line
            raise LoadtestError(sim.failure())
        message = decode_sim(line)
        if not isinstance(message, SimReady):
            raise LoadtestError("the simulator spoke before it was ready")
        return message

    async def _shutdown(self) -> None:
        if self._engine is not None:
            await self._engine.stop(EngineCommand(cmd="stop"), 20.0)
        if self._sim is not None:
            await self._sim.stop(SimCommand(cmd="stop"), 20.0)
        for future in self._replies.values():
            future.cancel()

    # -- reading ----------------------------------------------------------------------

    async def _read_sim(self, child: Child) -> None:
        stdout = child.process.stdout
        assert stdout is not None
        while line := await stdout.readline():
            try:
                message = decode_sim(line)
            except msgspec.DecodeError:
                child.errors.append(f"unreadable line: {line[:120]!r}")
                continue
            if isinstance(message, SimTick):
                self.last_sim = message
                self.log.on_sim(message)
                wanted = self.controller.update(
                    message.rate, self.log.sim_rate(), float(message.lag_ms)
                )
                if wanted is not None:
                    await self._send_rate(wanted)
            elif isinstance(message, SimIds):
                self._reply("ids", message)

    async def _read_engine(self, child: Child) -> None:
        stdout = child.process.stdout
        assert stdout is not None
        while line := await stdout.readline():
            try:
                message = decode_engine(line)
            except msgspec.DecodeError:
                child.errors.append(f"unreadable line: {line[:120]!r}")
                continue
            if isinstance(message, EngineAccount):
                self._reply("account", message)
                continue
            self.last_engine = message
            self.outages += message.outages
            self.resyncs += message.resyncs
            if message.live and self.started_live is None:
                self.started_live = time.monotonic() - self.origin
            assert self._sim is not None
            sample = self.log.add(
                message,
                t=time.monotonic() - self.origin,
                origin=self.origin,
                phase=self.phase,
                asked=self.controller.target,
                engine=child.usage(),
                sim=self._sim.usage(),
                queues=socket_queues(self.ws_port) if self.ws_port else None,
            )
            self._new_sample.set()
            if self.on_sample is not None:
                self.on_sample(sample)

    def logs(self) -> dict[str, list[str]]:
        """Return the last stderr lines of each child (warnings: reconnects, stale streams)."""
        return {c.name: list(c.errors) for c in (self._sim, self._engine) if c is not None}

    def _where(self) -> str:
        """Return where the engine and the simulator are, for an error message."""
        engine, sim = self.last_engine, self.last_sim
        parts = []
        if engine is not None:
            parts.append(f"books {engine.books_live}/{engine.books_total} in sync")
            parts.append(f"sessions {','.join(engine.sessions)}")
        if sim is not None and sim.lag_ms > 1_000:
            parts.append(
                f"the simulator {sim.lag_ms / 1_000:.0f} s behind its clock (its core is busy)"
            )
        return f" ({'; '.join(parts)})" if parts else ""

    def _reply(self, key: str, message: SimIds | EngineAccount) -> None:
        future = self._replies.pop(key, None)
        if future is not None and not future.done():
            future.set_result(message)

    async def check_alive(self) -> None:
        """Raise :class:`LoadtestError` if a child has exited (with its last stderr line)."""
        for child in (self._sim, self._engine):
            if child is not None and child.process.returncode is not None:
                await asyncio.sleep(0.2)  # let the stderr reader take the last lines
                raise LoadtestError(child.failure())

    # -- driving ----------------------------------------------------------------------

    @property
    def samples(self) -> list[Sample]:
        """Return the samples so far."""
        return self.log.samples

    async def _send_rate(self, model_rate: float) -> None:
        self._model_rate = model_rate
        if self._sim is not None:
            await self._sim.send(SimCommand(cmd="rate", value=model_rate))

    async def set_rate(self, delivered: float) -> None:
        """Ask for ``delivered`` msg/s to the engine from now on."""
        await self._send_rate(self.controller.set_target(delivered))

    def measure(self, phase: str) -> int:
        """Start a measured window named ``phase``; return the index of its first sample."""
        self.phase = phase
        self.controller.restart()
        return len(self.samples)

    async def fault(self, spec: str) -> None:
        """Inject one fault (a fault line of docs/simulator.md) now."""
        assert self._sim is not None
        await self._sim.send(SimCommand(cmd="fault", spec=spec))

    async def next_sample(self, timeout: float = 10.0) -> Sample | None:
        """Wait for the next sample (None after ``timeout`` without one).

        Raise :class:`LoadtestError` as soon as a child has exited.
        """
        self._new_sample.clear()
        deadline = time.monotonic() + timeout
        while True:
            wait = min(2.0, deadline - time.monotonic())
            try:
                await asyncio.wait_for(self._new_sample.wait(), max(0.0, wait))
            except TimeoutError:
                await self.check_alive()
                if time.monotonic() >= deadline:
                    return None
                continue
            return self.samples[-1]

    async def run_for(self, seconds: float) -> None:
        """Let ``seconds`` of samples pass (or that much wall time and a margin)."""
        target = len(self.samples) + round(seconds)
        deadline = time.monotonic() + seconds * 1.5 + 5.0
        while len(self.samples) < target and time.monotonic() < deadline:
            await self.next_sample(timeout=max(0.1, deadline - time.monotonic()))
        await self.check_alive()

    async def wait_live(self, timeout: float) -> None:
        """Wait until every session and every book is live; raise :class:`LoadtestError`."""
        deadline = time.monotonic() + timeout
        while self.last_engine is None or not self.last_engine.live:
            if time.monotonic() > deadline:
                raise LoadtestError(
                    f"the engine was not live and synced within {timeout:.0f} s of its start"
                    + self._where()
                )
            await self.next_sample(timeout=max(0.1, deadline - time.monotonic()))

    async def _ask(
        self, key: str, child: Child | None, command: msgspec.Struct, timeout: float
    ) -> SimIds | EngineAccount:
        assert child is not None
        future: asyncio.Future[SimIds | EngineAccount] = asyncio.get_running_loop().create_future()
        self._replies[key] = future
        await child.send(command)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            await self.check_alive()
            raise LoadtestError(
                f"the {child.name} did not answer {key!r} in {timeout:.0f} s"
            ) from None

    async def pause_market(self) -> SimIds:
        """Stop the simulated market (all it produced is sent); return its trade id ranges."""
        ids = await self._ask("ids", self._sim, SimCommand(cmd="pause"), 30.0)
        assert isinstance(ids, SimIds)
        return ids

    async def account(self) -> EngineAccount:
        """Return the engine's per-symbol trade accounting now."""
        account = await self._ask("account", self._engine, EngineCommand(cmd="account"), 30.0)
        assert isinstance(account, EngineAccount)
        return account
