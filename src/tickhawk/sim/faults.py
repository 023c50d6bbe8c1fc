"""Fault injection: ``sim.faults``, on command or on a schedule of simulated time.

Book faults (a gap in a depth stream, duplicated or reordered messages, an
old REST snapshot, a stale stream) and connection or input faults (drop a
connection cleanly or by TCP reset, stall it, malformed or oversized frames,
REST errors, a late snapshot). Every effect is counted in :attr:`counts`
(also ``sim.stats.faults``), so a test or a load test can compare what was
injected with what the client detected.

Scheduled faults fire at exact simulated times: the synthetic feed runs the
market up to the step before a fault is due, fires it, then goes on, so for
a seed (and ``start_time_ms``) the same messages are hit on every run. Stream
faults act on the next messages of the matching streams; nothing is armed on
the hot path unless a fault is pending (one attribute check per batch).
"""

from __future__ import annotations

import logging
import random
import socket
import struct
from collections.abc import Callable
from typing import Any

from picows import WSCloseCode

from tickhawk.sim.book import SimBook
from tickhawk.sim.faultspec import (
    Drop,
    Fault,
    OldSnapshot,
    RestError,
    ScheduledFault,
    SnapshotDelay,
    Stale,
    Stall,
    fault_kind,
    make_fault,
    parse_fault,
)
from tickhawk.sim.hub import Connection, Hub
from tickhawk.sim.restfaults import FaultSource, RestFaultDesk
from tickhawk.sim.snapshots import BookHistory
from tickhawk.sim.streamfaults import StreamEffect, StreamFaults

__all__ = ["FaultInjector"]

_log = logging.getLogger("tickhawk.sim.faults")
_NEVER = 1 << 62


class FaultInjector:
    """Arm faults now (:meth:`inject` or one method per kind) or on a schedule.

    ``now_ms`` returns the simulated time; ``books`` the live books (None in
    replay mode: no old snapshots there); ``seed`` fixes the schedule's jitter.
    """

    def __init__(
        self,
        hub: Hub,
        source: FaultSource,
        *,
        now_ms: Callable[[], int],
        start_ms: int,
        seed: int = 0,
        books: list[SimBook] | None = None,
        history: BookHistory | None = None,
    ) -> None:
        self.hub = hub
        self.source = source
        self.now_ms = now_ms
        self.start_ms = start_ms
        self.seed = seed
        self.books = books
        self.history = history
        self.counts: dict[str, int] = {}
        self.streams = StreamFaults(hub.keys, hub.subscribers, self._count)
        self.rest = RestFaultDesk(source, self._count, now_ms, history if books else None)
        self._stalls: list[tuple[int, Connection]] = []
        self._schedule: list[list[Any]] = []  # [ScheduledFault, number, occurrence, due_ms]
        self._added = 0
        self.next_ms = _NEVER
        self._update_next()

    # -- counting ---------------------------------------------------------------------

    def _count(self, name: str, by: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + by

    # -- arming -----------------------------------------------------------------------

    def inject(self, fault: Fault | str, **options: Any) -> Fault:
        """Arm ``fault`` now (a fault Struct, or its kind and options); return it.

        ``sim.faults.inject("gap", symbol="BTCUSDT")``; see :mod:`tickhawk.sim.faultspec`
        for every kind and option.
        """
        if isinstance(fault, str):
            fault = make_fault(fault, **options)
        elif options:
            raise TypeError("give options with a fault kind name, not with a fault Struct")
        self._fire(fault, self.now_ms())
        return fault

    def schedule(self, spec: ScheduledFault | str) -> None:
        """Add a scheduled fault (``"at=5s gap symbol=BTCUSDT"``); times count from the start."""
        entry = parse_fault(spec) if isinstance(spec, str) else spec
        self._added += 1
        first = self._due(entry, self._added, 0)
        self._schedule.append([entry, self._added, 0, first])
        self._update_next()

    def _due(self, entry: ScheduledFault, number: int, occurrence: int) -> int:
        seconds = entry.at + occurrence * (entry.every or 0.0)
        if entry.jitter:
            draw = random.Random(self.seed * 1_000_003 + number * 7_919 + occurrence)
            seconds += draw.uniform(0.0, entry.jitter)
        return self.start_ms + round(seconds * 1_000)

    @property
    def pending(self) -> list[Fault]:
        """Return the faults armed and not yet done (scheduled ones not included)."""
        armed: list[Fault] = [effect.fault for effect in self.streams.effects]
        armed += [fault for fault, _ in self.rest.armed]
        return armed

    @property
    def upcoming(self) -> list[tuple[int, Fault]]:
        """Return the next firing of every scheduled fault: ``(simulated ms, fault)``, in order."""
        return sorted(((entry[3], entry[0].fault) for entry in self._schedule), key=_first)

    def clear(self) -> None:
        """Disarm everything and forget the schedule (held messages are sent; stalls end)."""
        released = self.streams.expire(_NEVER)
        self.streams.effects.clear()
        if released:
            self.hub.publish_bytes(released)
        for _, connection in self._stalls:
            connection.resume()
        self._stalls.clear()
        self.rest.clear()
        self._schedule.clear()
        self._update_next()

    # -- one method per kind ------------------------------------------------------------

    def gap(self, symbol: str | None = None, *, count: int = 1) -> Fault:
        """Skip the next ``count`` depth diffs of ``symbol`` (every symbol if None)."""
        return self.inject("gap", symbol=symbol, count=count)

    def duplicate(
        self, symbol: str | None = None, *, stream: str = "depth", count: int = 1
    ) -> Fault:
        """Send the next ``count`` messages of ``stream`` twice."""
        return self.inject("duplicate", symbol=symbol, stream=stream, count=count)

    def reorder(self, symbol: str | None = None, *, stream: str = "depth") -> Fault:
        """Swap the next two messages of ``stream``."""
        return self.inject("reorder", symbol=symbol, stream=stream)

    def old_snapshot(self, symbol: str | None = None, *, age: float = 1.0, count: int = 1) -> Fault:
        """Answer the next ``count`` depth requests with a snapshot ``age`` seconds old."""
        return self.inject("old_snapshot", symbol=symbol, age=age, count=count)

    def stale(
        self,
        symbol: str | None = None,
        *,
        stream: str = "depth",
        seconds: float = 2.0,
        mode: str = "hold",
    ) -> Fault:
        """Stop ``stream`` for ``seconds`` (socket open); ``hold`` then send, or ``drop``."""
        return self.inject("stale", symbol=symbol, stream=stream, seconds=seconds, mode=mode)

    def stall(
        self, connection: int | None = None, *, seconds: float = 2.0, mode: str = "hold"
    ) -> Fault:
        """Send nothing on a connection (every one if None) for ``seconds``."""
        return self.inject("stall", connection=connection, seconds=seconds, mode=mode)

    def drop(self, connection: int | None = None, *, mode: str = "close") -> Fault:
        """Close a connection (every one if None): ``close`` cleanly or ``reset`` (TCP RST)."""
        return self.inject("drop", connection=connection, mode=mode)

    def malformed(
        self,
        symbol: str | None = None,
        *,
        stream: str = "trade",
        mode: str = "not_json",
        count: int = 1,
    ) -> Fault:
        """Insert bad frames (``not_json``, ``schema`` or ``garbage``) into ``stream``."""
        return self.inject("malformed", symbol=symbol, stream=stream, mode=mode, count=count)

    def oversized(
        self, symbol: str | None = None, *, stream: str = "trade", size: int = 5 << 20
    ) -> Fault:
        """Insert one frame of ``size`` bytes into ``stream``."""
        return self.inject("oversized", symbol=symbol, stream=stream, size=size)

    def rest_error(
        self,
        status: int = 503,
        *,
        count: int = 1,
        retry_after: float = 1.0,
        path: str | None = None,
    ) -> Fault:
        """Answer the next ``count`` REST requests with ``status`` (429/418 carry Retry-After)."""
        return self.inject(
            "rest_error", status=status, count=count, retry_after=retry_after, path=path
        )

    def snapshot_delay(
        self, symbol: str | None = None, *, delay: float = 0.5, count: int = 1
    ) -> Fault:
        """Answer the next ``count`` depth snapshots ``delay`` seconds late."""
        return self.inject("snapshot_delay", symbol=symbol, delay=delay, count=count)

    # -- firing -----------------------------------------------------------------------

    def _fire(self, fault: Fault, due_ms: int) -> None:
        if isinstance(fault, Drop):
            self._drop(fault)
        elif isinstance(fault, Stall):
            self._stall(fault, due_ms)
        elif isinstance(fault, RestError | SnapshotDelay | OldSnapshot):
            self.rest.add(fault)
        else:
            end = due_ms + round(fault.seconds * 1_000) if isinstance(fault, Stale) else 0
            self.streams.add(StreamEffect(fault, fault_kind(fault), end))
            self.hub.filter = self.streams
        self._update_next()

    def _targets(self, number: int | None) -> list[Connection]:
        connections = [c for c in self.hub.connections if not c.closed]
        if number is not None:
            connections = [c for c in connections if c.number == number]
        if not connections:
            self._count("missed")
            _log.warning("sim: fault found no connection%s", f" #{number}" if number else "")
        return connections

    def _drop(self, fault: Drop) -> None:
        for connection in self._targets(fault.connection):
            self._count(f"drop_{fault.mode}")
            self._count("drop")
            if fault.mode == "close":
                connection.close(WSCloseCode.GOING_AWAY, "fault: drop")
            else:
                _reset(connection)
            self.hub.disconnect(connection)

    def _stall(self, fault: Stall, due_ms: int) -> None:
        end = due_ms + round(fault.seconds * 1_000)
        for connection in self._targets(fault.connection):
            self._count("stall")
            connection.stall = 1 if fault.mode == "hold" else 2
            self._stalls.append((end, connection))

    def advance(self, now_ms: int) -> None:
        """Fire what is due by ``now_ms``, end stalls, keep book snapshots (the feed calls this)."""
        if now_ms < self.next_ms:
            return
        released = self.streams.expire(now_ms)
        if released:
            self.hub.publish_bytes(released)
        if self._stalls:
            ending = [item for item in self._stalls if item[0] <= now_ms]
            self._stalls = [item for item in self._stalls if item[0] > now_ms]
            for _, connection in ending:
                connection.resume()
        for entry in sorted(self._schedule, key=lambda item: item[3]):
            scheduled, number, occurrence, due = entry
            while due <= now_ms and entry in self._schedule:
                if scheduled.fault in self.pending:
                    self._count("missed")  # its last firing still waits: do not pile up
                else:
                    self._fire(scheduled.fault, due)
                occurrence += 1
                entry[2] = occurrence
                if scheduled.every is None or (
                    scheduled.times is not None and occurrence >= scheduled.times
                ):
                    self._schedule.remove(entry)
                else:
                    due = entry[3] = self._due(scheduled, number, occurrence)
        history = self.history
        if history is not None and self.books is not None and now_ms >= history.next_ms:
            history.record(now_ms, self._depth_books())
        self._update_next()

    def _depth_books(self) -> dict[int, SimBook]:
        books: dict[int, SimBook] = {}
        assert self.books is not None
        for stream, key in enumerate(self.hub.keys):
            if key.kind == "depth" and self.hub.subscribers[stream]:
                index = self.source.find(key.symbol)
                if index is not None:
                    books[index] = self.books[index]
        return books

    def _update_next(self) -> None:
        times = [entry[3] for entry in self._schedule]
        times += [end for end, _ in self._stalls]
        end = self.streams.next_end_ms()
        if end is not None:
            times.append(end)
        if self.history is not None and self.books is not None:
            times.append(self.history.next_ms)
        self.next_ms = min(times, default=_NEVER)


def _first(item: tuple[int, Fault]) -> int:
    return item[0]


def _reset(connection: Connection) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), not a FIN."""
    transport = connection.transport.underlying_transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.closed = True
    connection.parts.clear()
    transport.abort()
