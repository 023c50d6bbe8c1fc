"""The memory budget: what a configuration can grow to, computed before anything is allocated.

Every structure that holds data is bounded by the configuration (trade rings
are preallocated; bar histories, books and indicator windows are capped), so
the most memory an engine can reach is a sum over symbols of per-item costs.
:func:`estimate` computes that ceiling from the configuration alone;
:func:`check` refuses a configuration whose ceiling exceeds
``resources.memory_budget_mb`` with one line saying by how much and which
settings would make it fit.

The per-item constants below were measured on CPython 3.11 (x86-64) by
``python benchmarks/memory_budget.py --calibrate``; the same script fills real
engines to capacity at 50 and 1,000 symbols and reports the estimate's error.
Not counted: diffs buffered while a book waits for its REST snapshot (bounded
by ``book.buffer_limit``, transient) and trade ids remembered across a gap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from tickhawk.bars.history import BarHistory
from tickhawk.book.l2 import IMPLEMENTATION
from tickhawk.config import Config, ConfigError
from tickhawk.indicators.spec import resolve
from tickhawk.model import parse_interval
from tickhawk.ring import TradeRing

__all__ = [
    "BudgetError",
    "Estimate",
    "Part",
    "book_side_bytes",
    "capture_bytes",
    "check",
    "dict_table_bytes",
    "estimate",
]

MB = 1 << 20

#: Interpreter, tickhawk and its libraries imported, the event loop, a session, the view.
BASE_BYTES = 76 * MB
#: One symbol's state and dicts before any data, with the wiring and allocator slack a
#: whole engine of the demo preset shows beyond its parts (calibrated on that engine).
SYMBOL_BYTES = 11_300
#: One subscribed stream of one symbol: its route and stream name.
STREAM_BYTES = 110
#: One bar aggregator (symbol × interval), empty.
INTERVAL_BYTES = 870
#: One closed bar kept in history (exact: one slot of seven preallocated 8-byte columns).
BAR_BYTES = BarHistory.bytes_per_bar()
#: One trade slot of the preallocated ring (exact: five 8-byte columns and a side byte).
TRADE_BYTES = TradeRing.bytes_per_trade()
#: One book sync and its empty L2 book.
BOOK_BYTES = 1_650
#: One price level beyond the dict's table: price and quantity floats, its share of the
#: ordered near keys and allocator slack (the most of books of 200 to 5,000 levels).
LEVEL_BYTES = 69
#: The compiled book (``book/_l2core.pyx``): one slot of a side's level table (price and
#: quantity doubles, two int32 index slots), and a side's fixed part (its 513 near keys).
COMPILED_SLOT_BYTES = 24
COMPILED_SIDE_BYTES = 4_400
#: One indicator set (symbol × interval): its values dict and generated feed functions.
INDICATOR_SET_BYTES = 3_000
#: One indicator: its TA-Lib stream state and its line in the generated feeds.
INDICATOR_BYTES = 1_600
#: Each output of an indicator beyond its first.
OUTPUT_BYTES = 1_000
#: The order-flow and book features of one symbol, beyond their window slots.
FEATURES_BYTES = 2_600
#: One slot of a feature window (a double in an array).
FEATURE_SLOT_BYTES = 8
#: One built-in strategy of one symbol: its instance, trigger and the hooks that call it.
STRATEGY_BYTES = 300
#: One line of a loaded capture beyond its payload: bytes header, tuple, int, list slot.
CAPTURE_LINE_BYTES = 33 + 56 + 32 + 8


class BudgetError(ConfigError):
    """A configuration whose memory ceiling exceeds ``resources.memory_budget_mb``."""


class Part(NamedTuple):
    """One line of an estimate.

    ``key`` is the setting that sizes it (empty when none does), ``value`` its
    current value and ``cost`` the part's bytes as a function of that value
    (None when it cannot be lowered).
    """

    name: str
    bytes: int
    key: str = ""
    value: int = 0
    cost: Callable[[int], int] | None = None
    minimum: int = 1


class Estimate(NamedTuple):
    """The memory ceiling of a configuration, by part."""

    symbols: int
    parts: list[Part]
    budget_mb: int

    @property
    def total(self) -> int:
        """Return the ceiling in bytes."""
        return sum(part.bytes for part in self.parts)

    @property
    def total_mb(self) -> float:
        """Return the ceiling in MB."""
        return self.total / MB

    @property
    def over(self) -> int:
        """Return the bytes over the budget (0 or less: it fits)."""
        return self.total - self.budget_mb * MB

    def table(self) -> str:
        """Return the breakdown as aligned text lines."""
        lines = [f"memory ceiling for {self.symbols:,} symbols:"]
        for part in self.parts:
            setting = f"  ({part.key} = {part.value:,})" if part.key and part.cost else ""
            lines.append(f"  {part.name:<12} {part.bytes / MB:>9.1f} MB{setting}")
        verdict = "fits" if self.over <= 0 else f"{self.over / MB:,.0f} MB over"
        lines.append(
            f"  {'total':<12} {self.total_mb:>9.1f} MB  "
            f"(resources.memory_budget_mb = {self.budget_mb:,}: {verdict})"
        )
        return "\n".join(lines)

    def refusal(self) -> str:
        """Return the one-line reason this configuration does not fit, with what to lower."""
        over = self.over
        head = (
            f"the configuration needs about {self.total_mb:,.0f} MB, {math.ceil(over / MB):,} MB "
            f"over resources.memory_budget_mb = {self.budget_mb:,}"
        )
        hints = []
        for part in sorted(self.parts, key=lambda p: -p.bytes):
            if part.cost is None or part.value <= part.minimum:
                continue
            lowered = _lowered(part, over)
            saves = part.bytes - part.cost(lowered)
            most = "" if saves >= over else "at most "
            hints.append(
                f"{part.key} ({part.value:,} → {lowered:,} saves {most}{saves / MB:,.0f} MB)"
            )
            if len(hints) == 2:
                break
        fitting = self.symbols_that_fit()
        if 0 < fitting < self.symbols:
            hints.append(f"venue.symbols ({self.symbols:,} → {fitting:,})")
        need = math.ceil(self.total_mb)
        if not hints:
            return f"{head}: raise resources.memory_budget_mb to at least {need:,}"
        return (
            f"{head}: lower {' or '.join(hints)}, or raise resources.memory_budget_mb to {need:,}"
        )

    def symbols_that_fit(self) -> int:
        """Return how many symbols of this configuration fit the budget (0: none)."""
        shared = sum(p.bytes for p in self.parts if p.name == "base" or not p.key)
        per_symbol = (self.total - shared) / self.symbols if self.symbols else 0.0
        room = self.budget_mb * MB - shared
        if per_symbol <= 0 or room <= 0:
            return 0
        return int(room // per_symbol)


def _nice_values(below: int) -> list[int]:
    """Return 1-2-2.5-5 × 10ⁿ values and powers of two under ``below``, largest first."""
    values = {2**k for k in range(below.bit_length()) if 2**k < below}
    scale = 1
    while scale < below:
        values.update(v for v in (scale, 2 * scale, 5 * scale, 25 * scale // 10) if v < below)
        scale *= 10
    return sorted((v for v in values if v >= 1), reverse=True)


def _lowered(part: Part, over: int) -> int:
    """Return the largest round value of ``part``'s setting saving ``over`` (else its minimum)."""
    assert part.cost is not None
    for value in _nice_values(part.value):
        if value >= part.minimum and part.bytes - part.cost(value) >= over:
            return value
    return part.minimum


def dict_table_bytes(entries: int) -> int:
    """Return ``sys.getsizeof`` of a dict grown to ``entries`` non-string keys by insertion.

    Mirrors CPython 3.11's growth (a full table is rebuilt at the next power of
    two ≥ 3 × used), computed rather than built so a huge setting costs nothing.
    """
    if entries <= 0:
        return 64  # an empty dict shares the empty keys table
    size, usable = 8, 5
    while usable < entries:
        size = 8
        while size < 3 * usable:
            size <<= 1
        usable = (2 * size) // 3
    index_bytes = 1 if size < 1 << 8 else 2 if size < 1 << 16 else 4 if size < 1 << 32 else 8
    return 96 + size * index_bytes + usable * 24


def book_side_bytes(max_levels: int) -> int:
    """Return what one side of a book holding the most levels ``max_levels`` allows takes."""
    levels = max_levels + max_levels // 10  # L2Book trims only past 10 % slack
    if IMPLEMENTATION == "compiled":
        # Its table doubles only when over 3/4 full: at most the power of two ≥ 4/3 × levels.
        slots = 8
        while 3 * slots < 4 * levels:
            slots *= 2
        return COMPILED_SIDE_BYTES + slots * COMPILED_SLOT_BYTES
    return dict_table_bytes(levels) + levels * LEVEL_BYTES


def capture_bytes(messages: Sequence[tuple[int, bytes]]) -> int:
    """Return what a capture loaded by :func:`tickhawk.capture.load_capture` takes.

    Loading holds the whole text beside the parsed lines, and the allocator
    keeps most of that peak: twice the payload (measured: 56 MB for the 94,000
    lines of ``usdm_btcusdt_20240808.gz``, estimated 61 MB).
    """
    payload = sum(len(body) for _, body in messages)
    return 2 * payload + len(messages) * CAPTURE_LINE_BYTES


def _intervals(config: Config) -> int:
    labels = {parse_interval(label) for label in config.engine.intervals}
    labels |= {parse_interval(label) for label in config.indicators}
    return len(labels)


def _indicator_bytes(config: Config) -> int:
    """Return one symbol's indicator sets."""
    total = 0
    for table in config.indicator_specs().values():
        if not table:
            continue
        total += INDICATOR_SET_BYTES
        for spec in table:
            outputs = len(resolve(spec).outputs)
            total += INDICATOR_BYTES + (outputs - 1) * OUTPUT_BYTES
    return total


def _features_bytes(config: Config) -> int:
    """Return one symbol's features (the largest of any per-symbol override)."""
    if not config.features.enabled:
        return 0
    variants = [config.features] + [config.features.for_symbol(s) for s in config.features.symbols]
    slots = max(
        5 * f.flow_buckets + f.volume_baseline + round(f.rv_window_s / f.rv_sample_s)
        for f in variants
    )
    return FEATURES_BYTES + slots * FEATURE_SLOT_BYTES


def _with_books(config: Config) -> bool:
    return config.book.enabled and any(s.startswith("depth") for s in config.venue.streams)


def estimate(config: Config, *, extra: dict[str, int] | None = None) -> Estimate:
    """Return the memory ceiling of an engine built from ``config``.

    ``extra`` adds named parts measured elsewhere (replay: the loaded capture).
    """
    symbols = len({s.upper() for s in config.venue.symbols})
    intervals = _intervals(config)
    books = _with_books(config)
    strategies = sum(
        getattr(config.strategies, name) is not None for name in config.strategies.__struct_fields__
    )
    fixed = (
        SYMBOL_BYTES
        + len(config.venue.streams) * STREAM_BYTES
        + intervals * INTERVAL_BYTES
        + (BOOK_BYTES if books else 0)
        + strategies * STRATEGY_BYTES
    )
    engine = config.engine

    def trades(capacity: int) -> int:
        return symbols * capacity * TRADE_BYTES

    def bars(history: int) -> int:
        return symbols * intervals * history * BAR_BYTES

    def book(max_levels: int) -> int:
        return symbols * 2 * book_side_bytes(max_levels)

    parts = [
        Part("base", BASE_BYTES),
        Part("symbols", symbols * fixed, "venue.symbols", symbols),
        Part("trades", trades(engine.trade_capacity), "engine.trade_capacity",
             engine.trade_capacity, trades, 16),
        Part("bars", bars(engine.bar_history), "engine.bar_history", engine.bar_history,
             bars, 10),
    ]  # fmt: skip
    if books:
        parts.append(
            Part("books", book(config.book.max_levels), "book.max_levels",
                 config.book.max_levels, book, 20)
        )  # fmt: skip
    indicators = _indicator_bytes(config)
    if indicators:
        parts.append(Part("indicators", symbols * indicators, "indicators"))
    features = _features_bytes(config)
    if features:
        parts.append(Part("features", symbols * features, "features"))
    parts += [Part(name, size) for name, size in (extra or {}).items()]
    return Estimate(symbols, parts, config.resources.memory_budget_mb)


def check(config: Config, *, extra: dict[str, int] | None = None) -> Estimate:
    """Return the estimate of ``config``; raise :class:`BudgetError` when it does not fit."""
    result = estimate(config, extra=extra)
    if result.over > 0:
        raise BudgetError(result.refusal())
    return result
