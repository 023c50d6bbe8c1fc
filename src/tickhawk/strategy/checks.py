"""What a strategy's settings are checked against at start: intervals, indicator keys, features."""

from __future__ import annotations

import difflib

import msgspec

from tickhawk.model import parse_interval
from tickhawk.strategy.confirm import ConfirmConfig

__all__ = [
    "CheckContext",
    "confirm_problems",
    "interval_problems",
    "key_problems",
    "require_positive",
]


class CheckContext(msgspec.Struct, frozen=True):
    """The configuration a strategy runs in, as far as its checks need it."""

    intervals: frozenset[str]
    keys: dict[str, frozenset[str]]
    features: bool
    bar_history: int
    quote_features: bool = True
    depth_features: bool = False


def interval_problems(
    key: str, interval: str, context: CheckContext, *, indicators: bool
) -> list[str]:
    """Check that ``interval`` is valid and has bars (and indicators when ``indicators``)."""
    try:
        parse_interval(interval)
    except ValueError as exc:
        return [f"{key}: {exc}"]
    if indicators and interval not in context.keys:
        return [
            f"{key}: no indicators are configured for {interval!r}; "
            f'add an [indicators."{interval}"] table'
        ]
    if interval not in context.intervals:
        return [f'{key}: no {interval} bars; add "{interval}" to engine.intervals']
    return []


def key_problems(key: str, interval: str, name: str, context: CheckContext) -> list[str]:
    """Check that indicator output ``name`` exists on ``interval``."""
    keys = context.keys.get(interval, frozenset())
    if name in keys:
        return []
    close = difflib.get_close_matches(name, sorted(keys), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    listed = ", ".join(sorted(keys)) or "none"
    return [f"{key}: {interval} indicators have no output {name!r}{hint}; outputs: {listed}"]


def confirm_problems(confirm: ConfirmConfig | None, context: CheckContext) -> list[str]:
    """Check a multi-timeframe confirmation against the configured indicators."""
    if confirm is None:
        return []
    problems = interval_problems("confirm.interval", confirm.interval, context, indicators=True)
    if problems:
        return problems
    return key_problems("confirm.indicator", confirm.interval, confirm.indicator, context)


def require_positive(owner: object, *names: str) -> list[str]:
    """Return a problem for each of ``names`` that is not a positive number."""
    return [f"{name}: must be positive" for name in names if not getattr(owner, name) > 0]
