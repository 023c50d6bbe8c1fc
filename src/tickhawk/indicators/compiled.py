"""Straight-line functions that feed every indicator of a set from one bar.

Generated source instead of a loop: on the hot path it saves a Python call, a
loop step, attribute reads and argument packing per indicator (the same idea
as dataclasses' generated ``__init__``). Each bar field is read once; results
go straight into the set's ``values`` dict. Keys are embedded with ``repr``,
so any alias is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["Feedable", "compile_feed"]


class Feedable(Protocol):
    """What the generator needs to know of an indicator."""

    @property
    def ready(self) -> bool: ...
    @property
    def fields(self) -> tuple[str, ...]: ...
    @property
    def keys(self) -> tuple[str, ...]: ...
    def stream_method(self, name: str) -> Callable[..., Any]: ...
    def fallback(self, name: str) -> Callable[[Any], Any]: ...


def compile_feed(
    indicators: Sequence[Feedable], values: dict[str, float], method: str
) -> Callable[[Any], None]:
    """Return ``feed(bar)`` calling ``method`` (``update``/``peek``) of every indicator.

    A ready indicator's TA-Lib stream method is called directly with the bar's
    fields; one still warming up goes through its own ``fallback(method)``,
    which takes the whole bar.
    """
    names: dict[str, Any] = {"values": values}
    fields = sorted({f for ind in indicators if ind.ready for f in ind.fields})
    lines = [f"    {field} = bar.{field}" for field in fields]
    for i, ind in enumerate(indicators):
        if ind.ready:
            names[f"f{i}"] = ind.stream_method(method)
            call = f"f{i}({', '.join(ind.fields)})"
        else:
            names[f"f{i}"] = ind.fallback(method)
            call = f"f{i}(bar)"
        targets = ", ".join(f"values[{key!r}]" for key in ind.keys)
        lines.append(f"    {targets} = {call}")
    source = f"def {method}(bar):\n" + ("\n".join(lines) or "    pass") + "\n"
    exec(compile(source, f"<tickhawk.indicators.{method}>", "exec"), names)
    feed: Callable[[Any], None] = names[method]
    return feed
