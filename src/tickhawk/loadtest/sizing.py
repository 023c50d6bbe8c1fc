"""The engine configuration a load test runs: the demo's preset, as a user gets it.

The preset (:func:`tickhawk.presets.fast_config_data`) sizes trade rings, bar
histories and books by the symbol count, to DESIGN.md's memory goals
(:data:`tickhawk.presets.SIZES`: e.g. 1,024 trades, 300 bars and 200-level
books at 1,000 symbols), so the load test measures what ``tickhawk demo``
would run. Only when those sizes (with any ``--engine`` override) exceed
``resources.memory_budget_mb`` does it lower ``book.max_levels`` and
``engine.bar_history`` step by step below them, as a user would, until the
ceiling (the engine's own :func:`tickhawk.budget.estimate`) fits; past the
last step the run is refused before it starts.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tickhawk.budget import estimate
from tickhawk.config import parse_config
from tickhawk.presets import fast_config_data

__all__ = ["EngineSettings", "engine_data", "fits", "parse_override", "size_engine"]

#: Fallbacks below the preset's sizes: (book.max_levels, engine.bar_history), largest first.
_STEPS = (
    (1_000, 1_000),
    (1_000, 500),
    (500, 500),
    (500, 300),
    (200, 300),
    (200, 120),
    (100, 120),
    (100, 60),
    (50, 60),
)


class EngineSettings(msgspec.Struct, kw_only=True, frozen=True):
    """What the engine child is configured with, beyond the preset."""

    book_max_levels: int
    bar_history: int
    ceiling_mb: float  # the engine's memory ceiling for this configuration
    trade_capacity: int = 0  # engine.trade_capacity (0: the preset's)
    snapshot_limit: int = 0  # book.snapshot_limit (0: the preset's)
    preset: bool = True  # the preset's own sizes for this symbol count (False: lowered to fit)
    budget_mb: float = 0.0  # resources.memory_budget_mb it must fit
    signal_cooldown_s: float = 0.5  # more signals than the demo's 2 s: more latency samples
    rest_weight_budget: int | None = None  # [rest] weight_budget (None: the engine's default)
    overrides: dict[str, float | int | bool | str] = {}  # --engine KEY=VALUE, applied last


def engine_data(
    symbols: list[str],
    streams: list[str],
    settings: EngineSettings,
    *,
    ws_url: str | None = None,
    rest_url: str | None = None,
) -> dict[str, Any]:
    """Return the engine's configuration as data (the preset with ``settings`` applied)."""
    data = fast_config_data(symbols, streams, ws_url=ws_url, rest_url=rest_url)
    data["strategies"]["momentum"]["cooldown_s"] = settings.signal_cooldown_s
    data["engine"]["bar_history"] = settings.bar_history
    if settings.trade_capacity:
        data["engine"]["trade_capacity"] = settings.trade_capacity
    book = data["book"]
    book["max_levels"] = settings.book_max_levels
    # A snapshot may ask for more levels than the book keeps: a side returned whole is
    # exact to its end, so the book needs no resync when the price runs through its top.
    book["snapshot_limit"] = settings.snapshot_limit or book["snapshot_limit"]
    if settings.rest_weight_budget is not None:
        data["rest"] = {"weight_budget": settings.rest_weight_budget}
    for key, value in settings.overrides.items():
        *path, last = key.split(".")
        table = data
        for part in path:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ValueError(f"--engine {key}: {part} is not a table of the configuration")
        table[last] = value
    return data


def parse_override(text: str) -> tuple[str, float | int | bool | str]:
    """Return ``(dotted.key, value)`` of ``--engine KEY=VALUE`` (numbers and true/false typed)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ValueError(
            f"--engine {text!r}: use SECTION.KEY=VALUE, e.g. connection.stale_floor_s=30"
        )
    raw = raw.strip()
    value: float | int | bool | str
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
    return key, value


def size_engine(
    symbols: list[str],
    streams: list[str],
    *,
    rest_weight_budget: int | None = None,
    overrides: dict[str, float | int | bool | str] | None = None,
) -> EngineSettings:
    """Return the preset's sizes for this many symbols, lowered only if they exceed the budget.

    Lowering takes the first of :data:`_STEPS` below the preset's sizes whose
    ceiling fits (else the last: :func:`fits` says whether it does). Raise
    ``ValueError`` (from :class:`~tickhawk.config.ConfigError`) when an
    override makes the configuration invalid.
    """
    preset = fast_config_data(symbols, streams)
    levels, bars = preset["book"]["max_levels"], preset["engine"]["bar_history"]
    base = EngineSettings(
        book_max_levels=levels,
        bar_history=bars,
        ceiling_mb=0.0,
        trade_capacity=preset["engine"]["trade_capacity"],
        snapshot_limit=preset["book"]["snapshot_limit"],
        rest_weight_budget=rest_weight_budget,
        overrides=dict(overrides or {}),
    )
    steps = [(levels, bars)] + [(m, b) for m, b in _STEPS if m <= levels and b <= bars]
    settings = base
    for step, (levels, bars) in enumerate(dict.fromkeys(steps)):
        settings = msgspec.structs.replace(
            base, book_max_levels=levels, bar_history=bars, preset=step == 0
        )
        ceiling = estimate(parse_config(engine_data(symbols, streams, settings)))
        settings = msgspec.structs.replace(
            settings, ceiling_mb=round(ceiling.total_mb, 1), budget_mb=float(ceiling.budget_mb)
        )
        if ceiling.over <= 0:
            break
    return settings


def fits(settings: EngineSettings) -> bool:
    """Return whether the settings' memory ceiling fits the budget."""
    return settings.ceiling_mb <= settings.budget_mb
