"""Indicator specifications: a TA-Lib function by name, its parameters and input columns.

A spec comes from configuration (``alias = { fn = "RSI", timeperiod = 14 }``)
or from the command line (``rsi=RSI(timeperiod=14)``). Numbers are TA-Lib
parameters; a bar field name given for one of the function's inputs feeds
that input from the field instead of TA-Lib's default (``EMA(price=high)``,
``MAVP(periods=trades)``). :func:`resolve` checks a spec against TA-Lib's own
metadata and says, in one line, what to change.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from typing import Any, NoReturn

import msgspec
import talib
import talib.stream
from talib import abstract

__all__ = [
    "FIELDS",
    "IndicatorError",
    "IndicatorSpec",
    "Resolved",
    "available_functions",
    "parse_spec",
    "resolve",
    "specs_from_mapping",
]

#: Bar fields an indicator input can read.
FIELDS = ("open", "high", "low", "close", "volume", "trades")


class IndicatorError(ValueError):
    """An indicator specification that cannot be built; the message says what to change."""


class IndicatorSpec(msgspec.Struct, frozen=True):
    """One indicator: an alias, a TA-Lib function name, parameters and input overrides.

    ``inputs`` maps a TA-Lib input name (``price``, ``prices``, ``periods``)
    to the bar field(s) feeding it; inputs not named keep TA-Lib's default.
    """

    alias: str
    fn: str
    params: dict[str, float] = {}
    inputs: dict[str, tuple[str, ...]] = {}


class Resolved(msgspec.Struct, frozen=True):
    """A checked spec: the function, typed parameters, lookback, fields fed and output names."""

    fn: str
    params: dict[str, Any]
    lookback: int
    fields: tuple[str, ...]
    outputs: tuple[str, ...]


@functools.cache
def available_functions() -> tuple[str, ...]:
    """Return every function name ``talib.stream`` offers, sorted."""
    names: list[str] = talib.get_functions()  # type: ignore[no-untyped-call]
    return tuple(sorted(name for name in names if hasattr(talib.stream, name)))


def _hint(word: str, choices: list[str], n: int) -> str:
    close = difflib.get_close_matches(word, choices, n=n)
    return ", ".join(close)


def resolve(spec: IndicatorSpec) -> Resolved:
    """Check ``spec`` against TA-Lib's metadata; raise :class:`IndicatorError` naming the fix."""
    names = list(available_functions())
    fn = spec.fn.upper()
    if fn not in names:
        close = _hint(fn, names, 4)
        hint = f" (did you mean {close}?)" if close else ""
        raise IndicatorError(f"indicator {spec.alias!r}: unknown TA-Lib function {spec.fn!r}{hint}")
    function = abstract.Function(fn)  # type: ignore[attr-defined]
    allowed = dict(function.parameters)
    input_names: dict[str, Any] = dict(function.input_names)
    for key in spec.params:
        if key not in allowed:
            _unknown(spec.alias, fn, key, allowed, input_names)
    params = {k: type(allowed[k])(v) for k, v in spec.params.items()}
    for key, fields in spec.inputs.items():
        if key not in input_names:
            _unknown(spec.alias, fn, key, allowed, input_names)
        default = input_names[key]
        width = 1 if isinstance(default, str) else len(default)
        if len(fields) != width:
            raise IndicatorError(
                f"indicator {spec.alias!r}: {fn} input {key!r} takes {width} field(s), "
                f"e.g. {key} = {_example(default)}"
            )
        for field in fields:
            if field not in FIELDS:
                raise IndicatorError(
                    f"indicator {spec.alias!r}: {key} = {field!r} is not a bar field; "
                    f"use one of {', '.join(FIELDS)}"
                )
        input_names[key] = fields[0] if isinstance(default, str) else list(fields)
    fields = _fields(spec.alias, fn, input_names)
    try:
        function.set_parameters(params)
        lookback = int(function.lookback)
    except Exception as exc:
        raise IndicatorError(f"indicator {spec.alias!r}: bad parameters for {fn}: {exc}") from None
    return Resolved(fn, params, lookback, fields, tuple(function.output_names))


def _example(default: str | list[str]) -> str:
    if isinstance(default, str):
        return '"close"'
    return "[" + ", ".join(f'"{name}"' for name in default) + "]"


def _unknown(
    alias: str, fn: str, key: str, allowed: dict[str, Any], inputs: dict[str, Any]
) -> NoReturn:
    hint = _hint(key, [*allowed, *inputs], 3)
    listed = ", ".join(f"{k}={v}" for k, v in allowed.items()) or "none"
    feeds = ", ".join(f"{k}={_example(v)}" for k, v in inputs.items())
    raise IndicatorError(
        f"indicator {alias!r}: {fn} has no parameter {key!r}"
        + (f"; did you mean {hint}?" if hint else "")
        + f" (allowed: {listed}; inputs: {feeds})"
    )


def _fields(alias: str, fn: str, input_names: dict[str, Any]) -> tuple[str, ...]:
    fields: list[str] = []
    for key, value in input_names.items():
        for name in [value] if isinstance(value, str) else value:
            if name not in FIELDS:
                raise IndicatorError(
                    f"indicator {alias!r}: {fn} reads input {key!r}, which bars do not have: "
                    f"set {key} = one of {', '.join(FIELDS)}"
                )
            fields.append(name)
    return tuple(fields)


def parse_spec(text: str) -> IndicatorSpec:
    """Parse ``ALIAS=NAME(k=v,...)`` (or ``NAME(...)``, aliased by its lower-case name).

    A value that is a number is a parameter; a bar field name feeds the input ``k``.
    """
    alias, sep, rest = text.partition("=")
    if not sep or "(" in alias:
        alias, rest = "", text
    name, _, args = rest.partition("(")
    name = name.strip()
    args = args.rstrip().removesuffix(")")
    params: dict[str, float] = {}
    inputs: dict[str, tuple[str, ...]] = {}
    for item in filter(None, (part.strip() for part in args.split(","))):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if eq and key and value in FIELDS:
            inputs[key] = (value,)
            continue
        try:
            if not eq or not key:
                raise ValueError
            params[key] = float(value)
        except ValueError:
            raise IndicatorError(
                f"bad indicator spec {text!r}: parameters are key=number or input=field, "
                "e.g. RSI(timeperiod=14) or EMA(price=high)"
            ) from None
    if not name or not name.replace("_", "").isalnum():
        raise IndicatorError(f"bad indicator spec {text!r}: use ALIAS=NAME(k=v,...)")
    return IndicatorSpec(alias.strip() or name.lower(), name, params, inputs)


def specs_from_mapping(table: Mapping[str, Mapping[str, Any]]) -> list[IndicatorSpec]:
    """Build specs from a config table ``{alias: {fn: NAME, param: number, input: field}}``."""
    specs = []
    for alias, entry in table.items():
        if not isinstance(entry, Mapping):
            raise IndicatorError(
                f'indicator {alias!r}: write {alias} = {{ fn = "<TA-Lib name>", ... }}'
            )
        entry = dict(entry)
        fn = entry.pop("fn", None)
        if not isinstance(fn, str):
            raise IndicatorError(f'indicator {alias!r}: missing fn = "<TA-Lib function name>"')
        params: dict[str, float] = {}
        inputs: dict[str, tuple[str, ...]] = {}
        for key, value in entry.items():
            if isinstance(value, str):
                inputs[key] = (value,)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                inputs[key] = tuple(value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                params[key] = float(value)
            else:
                raise IndicatorError(
                    f"indicator {alias!r}: {key} = {value!r}: use a number (parameter) "
                    "or a bar field name (input)"
                )
        specs.append(IndicatorSpec(alias, fn, params, inputs))
    return specs
