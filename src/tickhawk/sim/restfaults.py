"""Fault injection on the REST side: error answers, late and old depth snapshots.

The injector arms these; the REST app consults :class:`RestFaultDesk` (its
``RestFaults`` seam) only while something is armed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from tickhawk.sim.encode import levels_json
from tickhawk.sim.faultspec import OldSnapshot, RestError, SnapshotDelay
from tickhawk.sim.snapshots import BookHistory
from tickhawk.sim.symbols import SymbolSpec

__all__ = ["FaultSource", "RestFaultDesk"]

_REST_BODIES = {
    429: (-1003, "Too many requests; current limit is exceeded. Please use WebSocket Streams."),
    418: (-1003, "Way too many requests; IP banned until later. Please use WebSocket Streams."),
}
_INTERNAL = (-1001, "Internal error; unable to process your request. Please try again.")

RestFault = RestError | SnapshotDelay | OldSnapshot
_F = TypeVar("_F", RestError, SnapshotDelay, OldSnapshot)


class FaultSource(Protocol):
    """What the faults read from the feed: symbols and fresh snapshots."""

    specs: list[SymbolSpec]

    def find(self, symbol: str) -> int | None:
        """Return the number of ``symbol`` or None."""
        ...

    async def depth_json(self, index: int, limit: int) -> bytes:
        """Return the depth snapshot body."""
        ...


class RestFaultDesk:
    """Armed REST faults, each for its next ``count`` matching requests.

    ``history`` keeps old book snapshots: an old snapshot is the newest kept
    one at least ``age`` old, else the oldest kept (younger than ``age`` while
    the history is young). With none kept (replay mode, no depth subscriber
    yet) the fresh snapshot is served, counted as ``old_snapshot_unavailable``.
    """

    def __init__(
        self,
        source: FaultSource,
        count: Callable[[str], None],
        now_ms: Callable[[], int],
        history: BookHistory | None,
    ) -> None:
        self.source = source
        self.count = count
        self.now_ms = now_ms
        self.history = history
        self.rest_armed = False
        self.armed: list[list[Any]] = []  # [fault, remaining]

    def add(self, fault: RestFault) -> None:
        """Arm one REST fault."""
        self.armed.append([fault, fault.count])
        self.rest_armed = True

    def clear(self) -> None:
        """Disarm every REST fault."""
        self.armed.clear()
        self.rest_armed = False

    def _take(self, kind: type[_F], match: str) -> _F | None:
        """Use one request of the first armed fault of ``kind`` matching ``match``."""
        for item in self.armed:
            fault = item[0]
            if not isinstance(fault, kind):
                continue
            wanted = fault.path if isinstance(fault, RestError) else fault.symbol
            if wanted is not None and wanted != match:
                continue
            item[1] -= 1
            if item[1] <= 0:
                self.armed.remove(item)
            self.rest_armed = bool(self.armed)
            return fault
        return None

    def rest_error_for(self, path: str) -> tuple[int, str, dict[str, str]] | None:
        """Return ``(status, body, headers)`` if a REST error is armed for ``path``, else None."""
        fault = self._take(RestError, path.rsplit("/", 1)[-1])
        if fault is None:
            return None
        self.count("rest_error")
        self.count(f"rest_error_{fault.status}")
        code, message = _REST_BODIES.get(fault.status, _INTERNAL)
        headers = {}
        if fault.status in (418, 429):
            headers["Retry-After"] = str(max(0, math.ceil(fault.retry_after)))
        return fault.status, f'{{"code":{code},"msg":"{message}"}}', headers

    async def depth_json(self, index: int, limit: int) -> bytes:
        """Return a depth body as the armed faults make it (old, late, or fresh)."""
        symbol = self.source.specs[index].name
        old = self._take(OldSnapshot, symbol)
        delay = self._take(SnapshotDelay, symbol)
        body = None
        if old is not None:
            body = self._old_body(index, limit, old.age)
        if body is None:
            body = await self.source.depth_json(index, limit)
        if delay is not None:
            self.count("snapshot_delay")
            await asyncio.sleep(delay.delay)
        return body

    def _old_body(self, index: int, limit: int, age: float) -> bytes | None:
        history = self.history
        kept = None
        if history is not None:
            kept = history.find(index, self.now_ms() - round(age * 1_000))
        if kept is None:
            self.count("old_snapshot_unavailable")
            return None
        self.count("old_snapshot")
        _, update_id, bids, asks = kept
        spec = self.source.specs[index]
        top_bids = sorted(bids.items(), reverse=True)[:limit]
        top_asks = sorted(asks.items())[:limit]
        return (
            f'{{"lastUpdateId":{update_id},'
            f'"bids":{levels_json(top_bids, spec.price_e8, spec.qty_e8)},'
            f'"asks":{levels_json(top_asks, spec.price_e8, spec.qty_e8)}}}'
        ).encode()
