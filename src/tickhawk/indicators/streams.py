"""Indicators on TA-Lib's stateful streams (``talib.stream``), any function by name.

A :class:`StreamIndicator` feeds one TA-Lib stream from bars: ``update`` commits
a closed bar (O(1)), ``peek`` evaluates the forming bar without committing it.
The stream opens once enough bars are seen (TA-Lib's lookback + 1); until then
the outputs are NaN. Inputs (close; high/low/close; volume; open) and output
names come from TA-Lib's own function metadata, so every function it offers
works the same way.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec
import numpy as np
import talib
import talib.stream
from talib import abstract

from tickhawk.model import Bar

_InsufficientHistory: type[Exception] = talib.InsufficientHistory  # type: ignore[attr-defined]

__all__ = [
    "BarLike",
    "IndicatorError",
    "IndicatorSet",
    "IndicatorSpec",
    "StreamIndicator",
    "available_functions",
    "parse_spec",
]

_NAN = math.nan
_FIELDS = ("open", "high", "low", "close", "volume")


class IndicatorError(ValueError):
    """An indicator specification that cannot be built; the message says what to change."""


class IndicatorSpec(msgspec.Struct, frozen=True):
    """One indicator: an alias, a TA-Lib function name and its parameters."""

    alias: str
    fn: str
    params: dict[str, float] = {}


class BarLike(Protocol):
    """What an indicator reads from a bar: ``open high low close volume`` attributes.

    Both :class:`~tickhawk.model.Bar` and the forming bar of
    :class:`~tickhawk.bars.time_bars.TimeBars` have them.
    """

    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def volume(self) -> float: ...


def available_functions() -> list[str]:
    """Return every function name ``talib.stream`` offers."""
    names: list[str] = talib.get_functions()  # type: ignore[no-untyped-call]
    return sorted(name for name in names if hasattr(talib.stream, name))


def _check_spec(spec: IndicatorSpec) -> tuple[Any, dict[str, Any], int]:
    names = available_functions()
    fn = spec.fn.upper()
    if fn not in names:
        close = difflib.get_close_matches(fn, names, n=4)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise IndicatorError(f"indicator {spec.alias!r}: unknown TA-Lib function {spec.fn!r}{hint}")
    function = abstract.Function(fn)  # type: ignore[attr-defined]
    allowed = dict(function.parameters)
    for key in spec.params:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            listed = ", ".join(f"{k}={v}" for k, v in allowed.items()) or "none"
            raise IndicatorError(
                f"indicator {spec.alias!r}: {fn} has no parameter {key!r}{hint} (allowed: {listed})"
            )
    params = {k: type(allowed[k])(v) for k, v in spec.params.items()}
    try:
        function.set_parameters(params)
        lookback = int(function.lookback)
    except Exception as exc:
        raise IndicatorError(f"indicator {spec.alias!r}: bad parameters for {fn}: {exc}") from None
    return function, params, lookback


def _input_fields(function: Any) -> tuple[str, ...]:
    fields: list[str] = []
    for value in function.input_names.values():
        for name in [value] if isinstance(value, str) else value:
            if name not in _FIELDS:
                raise IndicatorError(
                    f"TA-Lib function {function.info['name']} reads input {name!r}, "
                    "which bars do not have"
                )
            fields.append(name)
    return tuple(fields)


class StreamIndicator:
    """One TA-Lib stream fed from bars."""

    __slots__ = (
        "_history",
        "_peek",
        "_stream",
        "fields",
        "fn",
        "keys",
        "lookback",
        "outputs",
        "params",
        "spec",
    )

    def __init__(self, spec: IndicatorSpec) -> None:
        function, params, lookback = _check_spec(spec)
        self.spec = spec
        self.fn = spec.fn.upper()
        self.params = params
        self.lookback = lookback
        self.fields = _input_fields(function)
        self.outputs: tuple[str, ...] = tuple(function.output_names)
        if len(self.outputs) == 1:
            self.keys: tuple[str, ...] = (spec.alias,)
        else:
            self.keys = tuple(f"{spec.alias}.{name}" for name in self.outputs)
        self._history: list[list[float]] = [[] for _ in self.fields]
        self._stream: Any = None
        self._peek: Callable[[Any], Any] | None = None

    @property
    def ready(self) -> bool:
        """Return whether the stream is open (enough history seen)."""
        return self._stream is not None

    @property
    def bars_needed(self) -> int:
        """Return how many closed bars the stream needs before its first value."""
        return self.lookback + 1

    def update(self, bar: BarLike) -> Any:
        """Commit a closed bar; return the output(s), NaN while warming up."""
        stream = self._stream
        if stream is not None:
            return stream.update(*[getattr(bar, f) for f in self.fields])
        for column, field in zip(self._history, self.fields, strict=True):
            column.append(getattr(bar, field))
            if len(column) > self.lookback + 1:
                del column[0]
        if len(self._history[0]) >= self.lookback + 1:
            self._open()
        return self.value

    def _open(self) -> None:
        arrays = [np.asarray(column, dtype=np.float64) for column in self._history]
        try:
            stream = getattr(talib.stream, self.fn)(*arrays, **self.params)
        except _InsufficientHistory:
            return  # NaN inputs in the window; keep sliding until it is clean
        self._stream = stream
        self._history = []
        self._peek = _peeker(stream.peek, self.fields)

    def peek(self, bar: BarLike) -> Any:
        """Return the output(s) as if ``bar`` closed now, without committing it."""
        peek = self._peek
        if peek is None:
            return self._peek_warming(bar)
        return peek(bar)

    def _peek_warming(self, bar: BarLike) -> Any:
        """Before the stream opens: a value only when this bar completes the history."""
        if self._stream is not None or len(self._history[0]) != self.lookback:
            return self.value
        arrays = [
            np.asarray([*column, getattr(bar, field)], dtype=np.float64)
            for column, field in zip(self._history, self.fields, strict=True)
        ]
        try:
            return getattr(talib.stream, self.fn)(*arrays, **self.params).value
        except _InsufficientHistory:
            return self.value

    @property
    def value(self) -> Any:
        """Return the output(s) at the last committed bar (NaN before ready)."""
        if self._stream is None:
            return _NAN if len(self.outputs) == 1 else (_NAN,) * len(self.outputs)
        return self._stream.value


def _peeker(peek: Callable[..., Any], fields: tuple[str, ...]) -> Callable[[Any], Any]:
    """Return a function calling ``peek`` with the bar's fields, specialised for speed."""
    if fields == ("close",):
        return lambda bar: peek(bar.close)
    if fields == ("high", "low", "close"):
        return lambda bar: peek(bar.high, bar.low, bar.close)
    if fields == ("high", "low", "close", "volume"):
        return lambda bar: peek(bar.high, bar.low, bar.close, bar.volume)
    if fields == ("open", "high", "low", "close"):
        return lambda bar: peek(bar.open, bar.high, bar.low, bar.close)
    return lambda bar: peek(*[getattr(bar, f) for f in fields])


class IndicatorSet:
    """The indicators of one symbol and interval; outputs in :attr:`values` by key.

    :attr:`values` maps ``alias`` (single output) or ``alias.output`` to the
    latest value: committed after :meth:`update`, intra-bar after :meth:`peek`.
    """

    __slots__ = ("_warming", "indicators", "peek", "values")

    def __init__(self, specs: list[IndicatorSpec]) -> None:
        aliases = [spec.alias for spec in specs]
        duplicated = sorted({a for a in aliases if aliases.count(a) > 1})
        if duplicated:
            raise IndicatorError(f"indicator alias used twice: {', '.join(duplicated)}")
        self.indicators = [StreamIndicator(spec) for spec in specs]
        self.values: dict[str, float] = {}
        for indicator in self.indicators:
            for key in indicator.keys:
                self.values[key] = _NAN
        self.peek: Callable[[BarLike], None] = _compile_peek(self.indicators, self.values)
        """Evaluate every indicator on the forming bar into :attr:`values`."""
        self._warming = not all(ind.ready for ind in self.indicators)

    @property
    def bars_needed(self) -> int:
        """Return the bars the slowest indicator needs before its first value."""
        return max((ind.bars_needed for ind in self.indicators), default=0)

    def update(self, bar: Bar) -> None:
        """Commit a closed bar to every indicator."""
        values = self.values
        for indicator in self.indicators:
            result = indicator.update(bar)
            keys = indicator.keys
            if len(keys) == 1:
                values[keys[0]] = result
            else:
                for key, item in zip(keys, result, strict=True):
                    values[key] = item
        if self._warming:
            # A stream that just opened gets its direct call in the compiled peek.
            self.peek = _compile_peek(self.indicators, self.values)
            self._warming = not all(ind.ready for ind in self.indicators)


def _compile_peek(
    indicators: list[StreamIndicator], values: dict[str, float]
) -> Callable[[BarLike], None]:
    """Return one straight-line function peeking every indicator into ``values``.

    Generated source instead of a loop: on the hot path it saves a Python call,
    a loop step and attribute reads per indicator (the same idea as dataclasses'
    generated ``__init__``). Keys are embedded with ``repr``, so any alias is safe.
    """
    names: dict[str, Any] = {"values": values}
    fields = sorted({f for ind in indicators if ind.ready for f in ind.fields})
    lines = [f"    {field} = bar.{field}" for field in fields]
    for i, ind in enumerate(indicators):
        if ind.ready:
            names[f"p{i}"] = ind._stream.peek
            call = f"p{i}({', '.join(ind.fields)})"
        else:
            names[f"p{i}"] = ind.peek
            call = f"p{i}(bar)"
        targets = ", ".join(f"values[{key!r}]" for key in ind.keys)
        lines.append(f"    {targets} = {call}")
    source = "def peek(bar):\n" + ("\n".join(lines) or "    pass") + "\n"
    exec(compile(source, "<tickhawk.indicators.peek>", "exec"), names)
    peek: Callable[[BarLike], None] = names["peek"]
    return peek


def parse_spec(text: str) -> IndicatorSpec:
    """Parse ``ALIAS=NAME(k=v,...)`` (or ``NAME(...)``, aliased by its lower-case name)."""
    alias, sep, rest = text.partition("=")
    if not sep or "(" in alias:
        alias, rest = "", text
    name, _, args = rest.partition("(")
    name = name.strip()
    args = args.rstrip().removesuffix(")")
    params: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in args.split(","))):
        key, eq, value = item.partition("=")
        try:
            if not eq:
                raise ValueError
            params[key.strip()] = float(value)
        except ValueError:
            raise IndicatorError(
                f"bad indicator spec {text!r}: parameters are key=number, e.g. RSI(timeperiod=14)"
            ) from None
    if not name:
        raise IndicatorError(f"bad indicator spec {text!r}: use ALIAS=NAME(k=v,...)")
    return IndicatorSpec(alias.strip() or name.lower(), name, params)


def specs_from_mapping(table: Mapping[str, Mapping[str, Any]]) -> list[IndicatorSpec]:
    """Build specs from a config table ``{alias: {fn: NAME, param: value}}``."""
    specs = []
    for alias, entry in table.items():
        entry = dict(entry)
        fn = entry.pop("fn", None)
        if not isinstance(fn, str):
            raise IndicatorError(f'indicator {alias!r}: missing fn = "<TA-Lib function name>"')
        specs.append(IndicatorSpec(alias, fn, {k: float(v) for k, v in entry.items()}))
    return specs
