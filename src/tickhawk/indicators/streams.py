"""Indicators on TA-Lib's stateful streams (``talib.stream``), any function by name.

A :class:`StreamIndicator` feeds one TA-Lib stream from bars: ``update`` commits
a closed bar (O(1)), ``peek`` evaluates the forming bar without committing it.
The stream opens once enough bars are seen (TA-Lib's lookback + 1); until then
the outputs are NaN. Inputs (close; high/low/close; volume; open) and output
names come from TA-Lib's own function metadata, so every function it offers
works the same way. Candle patterns answer integers (-100, 0, 100 ...).

An :class:`IndicatorSet` holds the indicators of one symbol and interval and
feeds them all through one generated straight-line function per path
(:mod:`tickhawk.indicators.compiled`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import talib
import talib.stream

from tickhawk.indicators.compiled import compile_feed
from tickhawk.indicators.spec import (
    FIELDS,
    IndicatorError,
    IndicatorSpec,
    available_functions,
    parse_spec,
    resolve,
    specs_from_mapping,
)

_InsufficientHistory: type[Exception] = talib.InsufficientHistory  # type: ignore[attr-defined]

__all__ = [
    "FIELDS",
    "BarLike",
    "IndicatorError",
    "IndicatorSet",
    "IndicatorSpec",
    "StreamIndicator",
    "available_functions",
    "parse_spec",
    "specs_from_mapping",
]

_NAN = math.nan


class BarLike(Protocol):
    """What an indicator reads from a bar: ``open high low close volume trades``.

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
    @property
    def trades(self) -> int: ...


class StreamIndicator:
    """One TA-Lib stream fed from bars."""

    __slots__ = (
        "_history",
        "_max_history",
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
        resolved = resolve(spec)
        self.spec = spec
        self.fn = resolved.fn
        self.params = resolved.params
        self.lookback = resolved.lookback
        self.fields = resolved.fields
        self.outputs = resolved.outputs
        if len(self.outputs) == 1:
            self.keys: tuple[str, ...] = (spec.alias,)
        else:
            self.keys = tuple(f"{spec.alias}.{name}" for name in self.outputs)
        self._history: list[list[float]] = [[] for _ in self.fields]
        # Opening needs lookback + 1 bars, "a little more where seeding does":
        # keep a bounded window beyond it rather than giving up.
        self._max_history = 2 * (self.lookback + 1) + 64
        self._stream: Any = None

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
        self._after_append()
        return self.value

    def seed(self, columns: dict[str, np.ndarray[Any, np.dtype[np.float64]]]) -> None:
        """Commit many closed bars at once, given as one array per bar field.

        A stream not yet open is opened on the whole history in one TA-Lib
        call; the result equals committing the bars one by one.
        """
        if self._stream is not None:
            update = self._stream.update
            for row in zip(*[columns[f].tolist() for f in self.fields], strict=True):
                update(*row)
            return
        for column, field in zip(self._history, self.fields, strict=True):
            column.extend(columns[field].tolist())
        self._after_append()

    def _after_append(self) -> None:
        history = self._history
        if len(history[0]) < self.lookback + 1:
            return
        arrays = [np.asarray(column, dtype=np.float64) for column in history]
        try:
            self._stream = getattr(talib.stream, self.fn)(*arrays, **self.params)
        except _InsufficientHistory:
            extra = len(history[0]) - self._max_history
            if extra > 0:
                for column in history:
                    del column[:extra]
            return
        self._history = []

    def peek(self, bar: BarLike) -> Any:
        """Return the output(s) as if ``bar`` closed now, without committing it."""
        stream = self._stream
        if stream is not None:
            return stream.peek(*[getattr(bar, f) for f in self.fields])
        if len(self._history[0]) < self.lookback:
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

    # -- for the generated feed functions ------------------------------------

    def stream_method(self, name: str) -> Callable[..., Any]:
        """Return the open stream's ``update`` or ``peek`` (the fast path)."""
        method: Callable[..., Any] = getattr(self._stream, name)
        return method

    def fallback(self, name: str) -> Callable[[Any], Any]:
        """Return this indicator's own ``update`` or ``peek`` (taking a whole bar)."""
        method: Callable[[Any], Any] = getattr(self, name)
        return method


class IndicatorSet:
    """The indicators of one symbol and interval; outputs in :attr:`values` by key.

    :attr:`values` maps ``alias`` (single output) or ``alias.output`` to the
    latest value: committed after :meth:`update`, intra-bar after :meth:`peek`.
    ``update`` and ``peek`` are generated functions, replaced when a stream
    opens: look them up on the set at each call rather than keeping them.
    """

    __slots__ = ("_feed_update", "_opened", "indicators", "peek", "update", "values")

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
        self._opened = -1
        self._feed_update: Callable[[BarLike], None] = _nothing
        self.update: Callable[[BarLike], None] = _nothing
        """Commit a closed bar to every indicator."""
        self.peek: Callable[[BarLike], None] = _nothing
        """Evaluate every indicator on the forming bar into :attr:`values`."""
        self._compile()

    @property
    def bars_needed(self) -> int:
        """Return the bars the slowest indicator needs before its first value."""
        return max((ind.bars_needed for ind in self.indicators), default=0)

    @property
    def ready(self) -> bool:
        """Return whether every indicator has a value."""
        return self._opened == len(self.indicators)

    def keys(self) -> list[str]:
        """Return every output key, in configuration order."""
        return list(self.values)

    def committed(self) -> dict[str, float]:
        """Return the values at the last committed bar (not the peeked ones)."""
        out: dict[str, float] = {}
        for indicator in self.indicators:
            value = indicator.value
            if len(indicator.keys) == 1:
                out[indicator.keys[0]] = value
            else:
                out.update(zip(indicator.keys, value, strict=True))
        return out

    def seed(self, bars: Sequence[BarLike]) -> None:
        """Commit many closed bars at once (warm-up from history); equal to updating each."""
        if not bars:
            return
        wanted = {f for ind in self.indicators for f in ind.fields}
        columns = {
            f: np.fromiter((getattr(b, f) for b in bars), dtype=np.float64, count=len(bars))
            for f in wanted
        }
        for indicator in self.indicators:
            indicator.seed(columns)
        self.values.update(self.committed())
        self._compile()

    def _compile(self) -> None:
        self._opened = sum(ind.ready for ind in self.indicators)
        update = compile_feed(self.indicators, self.values, "update")
        self.peek = compile_feed(self.indicators, self.values, "peek")
        if self.ready:
            self.update = update
        else:
            self._feed_update = update
            self.update = self._update_warming

    def _update_warming(self, bar: BarLike) -> None:
        self._feed_update(bar)
        if sum(ind.ready for ind in self.indicators) != self._opened:
            # A stream that just opened gets its direct call in the compiled feeds.
            self._compile()


def _nothing(bar: BarLike) -> None:
    """Stand in until the feeds are compiled."""
