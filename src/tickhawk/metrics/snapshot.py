"""One JSON-able picture of a running engine: the contract between the engine and its readers.

:meth:`tickhawk.app.live.LiveApp.snapshot` builds a :class:`Snapshot`; the
Prometheus exporter, the JSON snapshot endpoint, the per-second stats lines a
load test reads (``tickhawk run --stats FILE``), the alert rules and the
terminal dashboard all read this one structure, so they never disagree.
Fields a part of the engine does not measure (yet) keep their defaults.
Latencies are microseconds, sizes MB, rates per second, times epoch seconds.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "STAGES",
    "AlertState",
    "ConnectionStats",
    "QueueStats",
    "Resources",
    "Snapshot",
    "StageStats",
    "SymbolRow",
]

#: Latency stages, in pipeline order. ``event_to_recv`` is exchange event time →
#: receive (wall clocks of two machines: indicative only); ``recv_to_signal`` is the
#: whole in-process path of a message that raised a signal; ``recv_to_handled`` is
#: the whole in-process handling of any message (frame received → its symbol state
#: updated): the "WebSocket handling" time. See docs/observability.md.
STAGES = (
    "event_to_recv",
    "recv_to_decoded",
    "decoded_to_state",
    "state_to_strategy",
    "strategy_to_signal",
    "recv_to_signal",
    "recv_to_handled",
)


class StageStats(msgspec.Struct, kw_only=True):
    """Latency percentiles of one stage over the sliding window (µs).

    ``count`` is the events (messages or signals) the window represents;
    ``samples`` the ones actually timed (per-message stages time a random
    1 in N messages, each standing for the N it was drawn from).
    """

    count: int = 0
    p50_us: float = 0.0
    p90_us: float = 0.0
    p99_us: float = 0.0
    p999_us: float = 0.0
    max_us: float = 0.0
    samples: int = 0
    window_s: float = 0.0
    negative: int = 0  # readings below zero (clock skew), recorded as 0; since start


class QueueStats(msgspec.Struct, kw_only=True):
    """A bounded buffer between stages: how full it is and what it dropped."""

    depth: int = 0
    capacity: int = 0
    dropped: int = 0


class ConnectionStats(msgspec.Struct, kw_only=True):
    """One WebSocket session."""

    name: str
    state: str
    streams: int = 0
    connects: int = 0
    reconnects: int = 0
    frames: int = 0
    bytes: int = 0
    protocol_errors: int = 0
    stale_reconnects: int = 0
    rotations: int = 0
    circuit_open: bool = False
    ping_rtt_ms: float | None = None


class Resources(msgspec.Struct, kw_only=True):
    """Process resources, sampled off the hot path."""

    cpu_pct: float = 0.0  # of one core, over the last sample interval
    cpu_per_core: list[float] = msgspec.field(default_factory=list)
    rss_mb: float = 0.0
    uss_mb: float = 0.0
    gc_collections: list[int] = msgspec.field(default_factory=list)  # per generation
    gc_pause_max_ms: float = 0.0  # worst pause in the last interval
    gc_pause_total_ms: float = 0.0  # since start
    loop_lag_ms: float = 0.0  # event-loop lag, last sample
    loop_lag_max_ms: float = 0.0  # worst over the last interval
    rss_slope_mb_h: float | None = None  # leak detection: trend with enough samples
    rss_slope_low_mb_h: float | None = None  # its lower confidence bound
    leak_suspected: bool = False
    gc_pause_total_ms_per_gen: list[float] = msgspec.field(default_factory=list)  # since start
    gc_pause_max_ms_per_gen: list[float] = msgspec.field(default_factory=list)  # last interval
    heap_blocks: int = 0  # sys.getallocatedblocks(): Python objects' memory blocks
    tracemalloc_mb: float | None = None  # traced Python heap, when tracemalloc is on
    tracemalloc_peak_mb: float | None = None
    tracemalloc_slope_mb_h: float | None = None
    threads: int = 0
    open_fds: int = 0


class AlertState(msgspec.Struct, kw_only=True):
    """An alert that is firing."""

    name: str
    severity: str
    message: str
    since: float
    value: float = 0.0
    threshold: float = 0.0


class SymbolRow(msgspec.Struct, kw_only=True):
    """One symbol's line (only when asked for: a thousand symbols are a large snapshot)."""

    symbol: str
    price: float = 0.0
    bid: float = 0.0
    ask: float = 0.0
    spread_bps: float = 0.0
    book_state: str = "none"
    trades: int = 0
    last_signal: str = ""
    quotes: int = 0
    book_updates: int = 0


class Snapshot(msgspec.Struct, kw_only=True):
    """Everything a running engine says about itself."""

    ts: float
    uptime_s: float
    messages: int = 0
    msgs_per_s: float = 0.0
    trades: int = 0
    trades_per_s: float = 0.0
    bars: int = 0
    signals: int = 0
    rejected: int = 0
    rejects_by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    stages: dict[str, StageStats] = msgspec.field(default_factory=dict)
    backlog_ms: float = 0.0  # wall clock now − exchange time of the last message handled
    resources: Resources = msgspec.field(default_factory=Resources)
    connections: list[ConnectionStats] = msgspec.field(default_factory=list)
    books: dict[str, int] = msgspec.field(default_factory=dict)  # book state → symbols
    book_gaps: int = 0  # chain breaks detected
    trade_gaps: int = 0  # jumps in trade ids seen on the stream
    trades_missing: int = 0  # ids still missing (not back-filled yet, or lost)
    trades_backfilled: int = 0
    backfill_failures: int = 0
    recoveries_s: list[float] = msgspec.field(default_factory=list)  # drop → live and synced
    available_s: float = 0.0  # time every session was live
    alerts: list[AlertState] = msgspec.field(default_factory=list)
    symbols: list[SymbolRow] = msgspec.field(default_factory=list)
    venue: str = ""  # e.g. "binance-spot"
    quotes: int = 0  # best bid/ask updates applied
    book_updates: int = 0  # L2 diffs received
    queues: dict[str, QueueStats] = msgspec.field(default_factory=dict)
    drops: dict[str, int] = msgspec.field(default_factory=dict)  # dropped on purpose, by reason
    sample_every: float = 0.0  # per-message stage timings: 1 in this many messages
    alert_events: int = 0  # alerts fired or cleared since start
    webhook_failures: int = 0
