"""Replay mode: serve a recorded capture, payloads forwarded byte for byte.

The capture (``<receive ns> <JSON>`` per line, see :mod:`tickhawk.capture`)
holds combined-stream envelopes and, once, the raw REST depth snapshot. The
streams found in it are served on the WebSocket: combined clients get the
recorded line itself, raw clients the recorded ``data`` bytes. The REST depth
endpoint answers with the recorded snapshot once replay has passed its line,
as the real client saw it. Trades seen so far also feed the REST trades,
aggTrades and klines endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
from picows import WSCloseCode

from tickhawk.capture import load_capture
from tickhawk.sim.bars import BarStore
from tickhawk.sim.hub import Hub
from tickhawk.sim.klines import select_bars
from tickhawk.sim.streams import StreamError, StreamKey
from tickhawk.sim.symbols import E8, SymbolSpec, split_name
from tickhawk.sim.tape import TradeTape

__all__ = ["Capture", "ReplayFeed", "ReplayLine"]

_log = logging.getLogger("tickhawk.sim")
_ENVELOPE = b'{"stream":"'
_DATA = b'","data":'
_BATCH = 512
_SLOW_CLIENT_S = 30.0


class _WireTrade(msgspec.Struct):
    t: int
    p: str
    q: str
    T: int
    m: bool


class _Snapshot(msgspec.Struct):
    bids: list[tuple[str, str]]


class ReplayLine(msgspec.Struct, frozen=True, gc=False):
    """One capture line: receive time, stream name ("" for the snapshot), payload, whole line."""

    ns: int
    stream: str
    data: bytes
    line: bytes


def _units_e8(text: str) -> int:
    """Return decimal text such as ``"61837.63000000"`` in exact units of 1e-8."""
    whole, _, fraction = text.partition(".")
    return int(whole) * E8 + int((fraction + "00000000")[:8])


def _decimals(texts: list[str]) -> int:
    """Return the fewest decimals that write every value exactly (at most 8)."""
    needed = 0
    for text in texts:
        _, _, fraction = text.partition(".")
        needed = max(needed, len(fraction.rstrip("0")))
    return needed


class Capture:
    """A parsed capture: its lines, streams, symbol and snapshot."""

    def __init__(self, lines: list[ReplayLine]) -> None:
        self.lines = lines
        self.streams = sorted({line.stream for line in lines if line.stream})
        self.snapshot_index = next((n for n, line in enumerate(lines) if not line.stream), -1)
        symbols = sorted({name.partition("@")[0].upper() for name in self.streams})
        self.symbol = symbols[0] if symbols else "UNKNOWN"
        self.spec = self._infer_spec()

    @classmethod
    def load(cls, path: str | Path) -> Capture:
        """Read and split a capture file (blocking; run it in a thread)."""
        lines: list[ReplayLine] = []
        for ns, body in load_capture(path):
            if body.startswith(_ENVELOPE):
                end = body.find(b'"', len(_ENVELOPE))
                if end > 0 and body.startswith(_DATA, end) and body.endswith(b"}"):
                    stream = body[len(_ENVELOPE) : end].decode()
                    lines.append(ReplayLine(ns, stream, body[end + len(_DATA) : -1], body))
                    continue
            if body.startswith(b'{"lastUpdateId"'):
                lines.append(ReplayLine(ns, "", body, body))
        return cls(lines)

    def _infer_spec(self) -> SymbolSpec:
        prices: list[str] = []
        quantities: list[str] = []
        if self.snapshot_index >= 0:
            snapshot = msgspec.json.decode(self.lines[self.snapshot_index].data, type=_Snapshot)
            prices = [price for price, _ in snapshot.bids[:200]]
            quantities = [qty for _, qty in snapshot.bids[:200]]
        price = float(prices[0]) if prices else 1.0
        base, quote = split_name(self.symbol)
        return SymbolSpec(
            name=self.symbol,
            base_asset=base,
            quote_asset=quote,
            price=price,
            tick_exp=-_decimals(prices) if prices else -2,
            step_exp=-_decimals(quantities) if quantities else -5,
        )


class ReplayFeed:
    """Play a :class:`Capture` to the hub's clients; the REST data source of replay mode."""

    def __init__(self, capture: Capture, speed: float, wait_clients: int, close_on_end: bool):
        self.capture = capture
        self.speed = speed
        self.wait_clients = wait_clients
        self.close_on_end = close_on_end
        self.specs = [capture.spec]
        self.position = 0  # lines played
        self.done = asyncio.Event()
        self.snapshot_ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self._clients = asyncio.Event()
        self._trade_decoder = msgspec.json.Decoder(_WireTrade)
        self._tape: TradeTape | None = None
        self.bars: BarStore | None = None
        self._ranges: list[list[int]] = []
        self._scale = (10 ** (8 + capture.spec.tick_exp), 10 ** (8 + capture.spec.step_exp))

    # -- StreamBackend --------------------------------------------------------------------

    def resolve(self, name: str) -> StreamKey:
        """Return the key of a stream found in the capture; raise ``StreamError`` otherwise."""
        if name not in self.capture.streams:
            found = ", ".join(self.capture.streams)
            raise StreamError(f"stream {name!r} is not in the capture (it has: {found})")
        symbol, _, kind = name.partition("@")
        return StreamKey(name, symbol.upper(), kind)

    def start_stream(self, stream: int, key: StreamKey) -> None:
        """Nothing to start: the capture plays whatever is subscribed."""

    def stop_stream(self, stream: int, key: StreamKey) -> None:
        """Nothing to stop."""

    def clients_changed(self, hub: Hub) -> None:
        """Start the replay once enough clients subscribed."""
        subscribed = sum(1 for connection in hub.connections if connection.streams)
        if subscribed >= self.wait_clients:
            self._clients.set()

    # -- running --------------------------------------------------------------------------

    async def run(self, hub: Hub) -> None:
        """Play the capture once, then idle (or close the clients)."""
        if self.wait_clients > 0:
            await self._clients.wait()
        lines = self.capture.lines
        loop = asyncio.get_running_loop()
        origin = loop.time()
        first_ns = lines[0].ns if lines else 0
        while self.position < len(lines):
            end = min(len(lines), self.position + _BATCH)
            if math.isfinite(self.speed):
                now = loop.time()
                due = origin + (lines[self.position].ns - first_ns) / 1e9 / self.speed
                if due > now:
                    await asyncio.sleep(due - now)
                    continue
                limit_ns = first_ns + (now - origin) * self.speed * 1e9
                end = self.position + 1
                while (
                    end < len(lines) and end - self.position < _BATCH and lines[end].ns <= limit_ns
                ):
                    end += 1
            self._play(hub, self.position, end)
            await self._drain(hub)
        self.done.set()
        _log.info("sim: replay finished (%d lines)", len(lines))
        if self.close_on_end:
            hub.close_all(WSCloseCode.OK, "replay finished")

    def _play(self, hub: Hub, start: int, end: int) -> None:
        lines = self.capture.lines
        snapshot = self.capture.snapshot_index
        if start <= snapshot < end:
            end = snapshot + 1  # stop right after the snapshot so REST sees this moment
        batch: list[tuple[int, bytes, bytes | None]] = []
        stream_ids = hub.stream_ids
        subscribers = hub.subscribers
        for line in lines[start:end]:
            if not line.stream:
                continue
            trade_id = self._record_trade(line.data) if line.stream.endswith("@trade") else None
            stream = stream_ids.get(line.stream)
            if stream is not None and subscribers[stream]:
                batch.append((stream, line.data, line.line))
                if trade_id is not None:
                    self._note_sent(trade_id)
        if batch:
            hub.publish_bytes(batch)
        self.position = end
        if end > snapshot >= 0:
            self.snapshot_ready.set()

    async def _drain(self, hub: Hub) -> None:
        """Wait for clients whose sockets are full; close one stuck for too long."""
        await asyncio.sleep(0)
        for connection in list(hub.connections):
            if connection.writable.is_set():
                continue
            try:
                await asyncio.wait_for(connection.writable.wait(), _SLOW_CLIENT_S)
            except TimeoutError:
                hub.drop_slow(connection)

    def _note_sent(self, trade_id: int) -> None:
        ranges = self._ranges
        if ranges and ranges[-1][1] == trade_id - 1:
            ranges[-1][1] = trade_id
        else:
            ranges.append([trade_id, trade_id])

    def trade_ids_sent(self, index: int) -> list[tuple[int, int]]:
        """Return the trade id ranges sent on the capture's trade stream."""
        del index
        return [(first, last) for first, last in self._ranges]

    def _record_trade(self, data: bytes) -> int | None:
        try:
            trade = self._trade_decoder.decode(data)
        except msgspec.DecodeError:
            return None
        price_unit, qty_unit = self._scale
        price = _units_e8(trade.p) // price_unit
        qty = _units_e8(trade.q) // qty_unit
        if self._tape is None or self.bars is None:
            self._tape = TradeTape(100_000, trade.t)
            self.bars = BarStore([price], trade.T, seconds=3_600, minutes=1_440)
        if trade.t == self._tape.next_id:  # skip gaps and repeats: the tape needs contiguous ids
            self.bars.roll_to(trade.T)
            self._tape.add(trade.t, price, qty, trade.T, trade.m)
            self.bars.add(0, price, qty, 1, trade.m, trade.t)
        return trade.t

    # -- MarketData -----------------------------------------------------------------------

    def find(self, symbol: str) -> int | None:
        """Return 0 for the capture's symbol, else None."""
        return 0 if symbol == self.capture.symbol else None

    def now_ms(self) -> int:
        """Return the wall-clock time (the capture's clock is in the past)."""
        return int(time.time() * 1_000)

    async def depth_json(self, index: int, limit: int) -> bytes:
        """Return the recorded snapshot once replay has passed it."""
        del index, limit
        if self.capture.snapshot_index < 0:
            raise LookupError("the capture holds no depth snapshot")
        if not self.snapshot_ready.is_set():
            ready = asyncio.ensure_future(self.snapshot_ready.wait())
            stopping = asyncio.ensure_future(self.stopping.wait())
            try:
                await asyncio.wait((ready, stopping), return_when=asyncio.FIRST_COMPLETED)
            finally:
                ready.cancel()
                stopping.cancel()
            if not self.snapshot_ready.is_set():
                raise LookupError("the simulator stopped before the replay reached the snapshot")
        return self.capture.lines[self.capture.snapshot_index].data

    def tape(self, index: int) -> TradeTape:
        """Return the trades replayed so far."""
        del index
        if self._tape is None:
            return TradeTape(1, 0)
        return self._tape

    def klines(
        self, index: int, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Return bars of the trades replayed so far (no history before the capture)."""
        del index
        if self.bars is None:
            empty = np.zeros(0, dtype=np.int64)
            return empty, np.zeros((0, 11), dtype=np.int64)
        opens, rows = self.bars.live_bars(0, interval)
        return select_bars(opens, rows, start_ms, end_ms, limit)
