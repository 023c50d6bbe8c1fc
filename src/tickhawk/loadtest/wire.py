"""What the runner and its two child processes say to each other: one JSON object per line.

The simulator child writes :class:`SimReady`, then a :class:`SimTick` every
second, and :class:`SimIds` when asked; it reads :class:`SimCommand` lines.
The engine child writes an :class:`EngineTick` every second and an
:class:`EngineAccount` when asked; it reads :class:`EngineCommand` lines.
Children write nothing else to stdout (logs go to stderr).
"""

from __future__ import annotations

import msgspec

from tickhawk.loadtest.sizing import EngineSettings

__all__ = [
    "EngineAccount",
    "EngineCommand",
    "EngineSpec",
    "EngineTick",
    "Outage",
    "SimCommand",
    "SimIds",
    "SimReady",
    "SimSpec",
    "SimTick",
    "SymbolAccount",
    "decode_engine",
    "decode_sim",
]


class SimSpec(msgspec.Struct, kw_only=True, frozen=True):
    """How to start the simulator child (its only argument, as JSON)."""

    n_symbols: int
    rate: float  # the market model's rate (trade + aggTrade + bookTicker), not delivered
    seed: int = 7


class SimReady(msgspec.Struct, tag="ready", kw_only=True, frozen=True):
    """The simulator listens."""

    ws_url: str
    rest_url: str
    symbols: list[str]


class SimTick(msgspec.Struct, tag="tick", kw_only=True, frozen=True):
    """The simulator's counters once a second (cumulative, except ``rate`` and ``lag_ms``)."""

    mono: float
    messages_sent: int
    by_kind: dict[str, int]
    trades_sent: int
    rate: float
    lag_ms: int
    behind_ms: float  # wall clock − simulated time: the offset every event time carries
    connections: int
    slow_disconnects: int
    faults: dict[str, int]


class SimIds(msgspec.Struct, tag="ids", kw_only=True, frozen=True):
    """Per symbol, the first and last trade id published since the first subscription."""

    ranges: dict[str, tuple[int, int]]
    paused: bool


class SimCommand(msgspec.Struct, kw_only=True, frozen=True):
    """``rate`` (value: model msgs/s), ``fault`` (spec line), ``pause``, ``ids`` or ``stop``."""

    cmd: str
    value: float = 0.0
    spec: str = ""


class EngineSpec(msgspec.Struct, kw_only=True, frozen=True):
    """How to start the engine child (its only argument, as JSON)."""

    ws_url: str
    rest_url: str
    symbols: list[str]
    streams: list[str]
    settings: EngineSettings


class Outage(msgspec.Struct, kw_only=True, frozen=True):
    """One outage, timed by the engine (``tickhawk.app.recovery.Recovery``), in seconds."""

    at: float  # epoch seconds when the engine reported it recovered
    connection: int
    seconds: float  # drop → live, books live, backfill done
    reconnect_s: float  # drop → session LIVE again
    books_s: float  # LIVE → every book LIVE
    backfill_s: float  # LIVE → every trade backfill done
    drops: int
    dominated_by: str


class EngineTick(msgspec.Struct, tag="tick", kw_only=True, frozen=True):
    """The engine's state once a second: counters are cumulative, histograms the last second."""

    ts: float
    mono: float
    live: bool  # every session connected, every book synced, no outage open
    messages: int
    trades: int
    signals: int
    rejected: int
    reconnects: int
    stale_reconnects: int = 0  # of them, forced by the stale-stream watchdog
    signal_hist: dict[int, int]
    signal_max_us: float
    state_hist: dict[int, int]
    state_max_us: float
    gc_collections: int
    gc_pause_max_ms: float
    gc_pause_ms: float
    backlog_ms: float | None
    backlog_fine: list[tuple[float, float]]  # (mono, ms) every 100 ms
    sessions: list[str]
    books_live: int
    books_total: int
    book_gaps: int
    trade_gaps: int
    trades_missing: int
    trades_backfilled: int
    available_s: float  # seconds every session was LIVE, cumulative (Snapshot.available_s)
    outages: list[Outage]  # recovered since the last tick
    resyncs: list[tuple[str, float]]  # books back LIVE since the last tick: (reason, seconds)
    stages_p99_us: dict[str, float]  # the engine's sliding-window stage latencies


class SymbolAccount(msgspec.Struct, array_like=True, frozen=True):
    """One symbol's trades as the engine holds them."""

    last_id: int
    applied: int  # distinct trade ids applied
    missing: int  # ids skipped and not filled yet
    duplicates: int
    book_gaps: int


class EngineAccount(msgspec.Struct, tag="account", kw_only=True, frozen=True):
    """The engine's per-symbol trade and gap accounting, when asked."""

    symbols: dict[str, SymbolAccount]


class EngineCommand(msgspec.Struct, kw_only=True, frozen=True):
    """``account`` or ``stop``."""

    cmd: str


_sim_decoder = msgspec.json.Decoder(SimReady | SimTick | SimIds)
_engine_decoder = msgspec.json.Decoder(EngineTick | EngineAccount)


def decode_sim(line: bytes) -> SimReady | SimTick | SimIds:
    """Decode one line of the simulator child."""
    message: SimReady | SimTick | SimIds = _sim_decoder.decode(line)
    return message


def decode_engine(line: bytes) -> EngineTick | EngineAccount:
    """Decode one line of the engine child."""
    message: EngineTick | EngineAccount = _engine_decoder.decode(line)
    return message
