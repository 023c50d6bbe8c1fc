"""The built-in strategies as configured: build them per symbol, check their settings.

Each field of the ``[strategies]`` table holds one strategy's settings
(``None`` when absent). A settings struct offers ``enabled``,
``problems(context)`` and ``build()``; nothing here names a strategy, so a new
built-in is a new field.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from tickhawk.strategy.api import Strategy
from tickhawk.strategy.checks import CheckContext

__all__ = ["StrategySettings", "build_strategies", "enabled_settings", "strategy_problems"]


class StrategySettings(Protocol):
    """What a built-in strategy's settings offer."""

    @property
    def enabled(self) -> bool: ...
    def problems(self, context: CheckContext) -> list[str]: ...
    def build(self) -> Strategy: ...


def enabled_settings(table: msgspec.Struct) -> list[tuple[str, StrategySettings]]:
    """Return ``(name, settings)`` of every configured, enabled strategy in ``table``."""
    out: list[tuple[str, StrategySettings]] = []
    for field in msgspec.structs.fields(table):
        settings = getattr(table, field.name)
        if settings is not None and settings.enabled:
            out.append((field.name, settings))
    return out


def build_strategies(table: msgspec.Struct) -> list[Strategy]:
    """Return new instances of every enabled strategy (call once per symbol)."""
    return [settings.build() for _, settings in enabled_settings(table)]


def strategy_problems(table: msgspec.Struct, context: CheckContext) -> list[str]:
    """Return ``strategies.<name>.<key>: what to change`` for every bad setting."""
    return [
        f"strategies.{name}.{problem}"
        for name, settings in enabled_settings(table)
        for problem in settings.problems(context)
    ]
