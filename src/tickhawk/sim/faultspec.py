"""Fault descriptions and the schedule syntax of the simulator's fault injection.

A fault is one small frozen Struct per kind (a tagged union, ``kind`` is the
tag). The text form, used by ``tickhawk sim --fault`` and ``--faults FILE``, is
one line per fault: the kind, its options as ``key=value``, and optionally
when it fires::

    gap symbol=BTCUSDT count=2
    at=5s gap symbol=BTCUSDT
    every=10s drop mode=reset
    at=2s every=500ms times=4 duplicate stream=trade

``at`` is the simulated time after the start of the first firing (default 0,
or one ``every`` when only ``every`` is given), ``every`` repeats, ``times``
caps the repeats, ``jitter`` delays each firing by a seeded random amount up
to that long. Durations take ``ms``, ``s`` or ``m`` (plain numbers are
seconds); sizes take ``K`` or ``M`` (KiB, MiB).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec

__all__ = [
    "Drop",
    "Duplicate",
    "Fault",
    "Gap",
    "Malformed",
    "OldSnapshot",
    "Oversized",
    "Reorder",
    "RestError",
    "ScheduledFault",
    "SnapshotDelay",
    "Stale",
    "Stall",
    "fault_kind",
    "make_fault",
    "parse_duration",
    "parse_fault",
    "parse_schedule",
]

StreamKind = Literal["trade", "aggTrade", "depth", "bookTicker", "kline"]
_STREAM_KINDS = ("trade", "aggTrade", "depth", "bookTicker", "kline")


class _Fault(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    """Base of every fault (one level of subclassing, for the tagged union)."""


class Gap(_Fault, tag="gap", frozen=True):
    """Skip the next ``count`` depth diffs of ``symbol`` (every symbol if None)."""

    symbol: str | None = None
    count: int = 1


class Duplicate(_Fault, tag="duplicate", frozen=True):
    """Send the next ``count`` messages of ``symbol``'s ``stream`` twice."""

    symbol: str | None = None
    stream: StreamKind = "depth"
    count: int = 1


class Reorder(_Fault, tag="reorder", frozen=True):
    """Swap the next two messages of ``symbol``'s ``stream``."""

    symbol: str | None = None
    stream: StreamKind = "depth"


class OldSnapshot(_Fault, tag="old_snapshot", frozen=True):
    """Answer the next ``count`` depth requests with a snapshot at least ``age`` s old."""

    symbol: str | None = None
    age: float = 1.0
    count: int = 1


class Stale(_Fault, tag="stale", frozen=True):
    """Stop ``symbol``'s ``stream`` for ``seconds`` (socket open); hold or drop its messages."""

    symbol: str | None = None
    stream: StreamKind = "depth"
    seconds: float = 2.0
    mode: Literal["hold", "drop"] = "hold"


class Stall(_Fault, tag="stall", frozen=True):
    """Send nothing on connection ``connection`` (every one if None) for ``seconds``."""

    connection: int | None = None
    seconds: float = 2.0
    mode: Literal["hold", "drop"] = "hold"


class Drop(_Fault, tag="drop", frozen=True):
    """Close connection ``connection`` (every one if None): cleanly, or by a TCP reset."""

    connection: int | None = None
    mode: Literal["close", "reset"] = "close"


class Malformed(_Fault, tag="malformed", frozen=True):
    """Insert ``count`` bad frames before the next message of ``symbol``'s ``stream``.

    ``not_json``: truncated JSON; ``schema``: valid JSON with wrong types;
    ``garbage``: a frame that is not JSON at all, without the combined envelope.
    """

    symbol: str | None = None
    stream: StreamKind = "trade"
    mode: Literal["not_json", "schema", "garbage"] = "not_json"
    count: int = 1


class Oversized(_Fault, tag="oversized", frozen=True):
    """Insert one frame of ``size`` bytes (valid JSON, not a market message) in ``stream``."""

    symbol: str | None = None
    stream: StreamKind = "trade"
    size: int = 5 * 1024 * 1024


class RestError(_Fault, tag="rest_error", frozen=True):
    """Answer the next ``count`` REST requests (to ``path``, e.g. ``depth``) with ``status``.

    ``status`` is 429 or 418 (with ``Retry-After: retry_after``) or 500-599.
    """

    status: int = 503
    count: int = 1
    retry_after: float = 1.0
    path: str | None = None


class SnapshotDelay(_Fault, tag="snapshot_delay", frozen=True):
    """Delay the next ``count`` depth snapshots of ``symbol`` by ``delay`` seconds.

    The snapshot is taken when the request arrives and answered late.
    """

    symbol: str | None = None
    delay: float = 0.5
    count: int = 1


Fault = (
    Gap
    | Duplicate
    | Reorder
    | OldSnapshot
    | Stale
    | Stall
    | Drop
    | Malformed
    | Oversized
    | RestError
    | SnapshotDelay
)

_KINDS: dict[str, type[_Fault]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        Gap,
        Duplicate,
        Reorder,
        OldSnapshot,
        Stale,
        Stall,
        Drop,
        Malformed,
        Oversized,
        RestError,
        SnapshotDelay,
    )
}
_DURATIONS = {"age", "seconds", "retry_after", "delay"}


class ScheduledFault(msgspec.Struct, frozen=True, kw_only=True):
    """A fault and when it fires, in seconds of simulated time after the start."""

    fault: Fault
    at: float = 0.0
    every: float | None = None
    times: int | None = None
    jitter: float = 0.0

    def __post_init__(self) -> None:
        """Check the timing; raise ``ValueError`` saying what to change."""
        if self.at < 0 or self.jitter < 0:
            raise ValueError("at and jitter must not be negative")
        if self.every is not None and self.every <= 0:
            raise ValueError("every must be a positive duration, e.g. every=10s")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1")


def parse_duration(text: str, name: str = "duration") -> float:
    """Return seconds from ``500ms``, ``5s``, ``2m`` or a plain number of seconds."""
    value = text.strip()
    scale = 1.0
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if value.endswith(suffix):
            value, scale = value[: -len(suffix)], factor
            break
    try:
        seconds = float(value) * scale
    except ValueError:
        raise ValueError(f"{name}={text} is not a duration (e.g. 500ms, 5s, 2m)") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"{name}={text} must be a finite duration of 0 or more")
    return seconds


def _parse_size(text: str) -> int:
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    if value.endswith("K"):
        value, factor = value[:-1], 1024
    elif value.endswith("M"):
        value, factor = value[:-1], 1024 * 1024
    try:
        return int(float(value) * factor)
    except ValueError:
        raise ValueError(f"size={text} is not a size (e.g. 100K, 5M)") from None


def make_fault(kind: str, **options: Any) -> Fault:
    """Return the fault ``kind`` with ``options``; raise ``ValueError`` saying what to change."""
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown fault {kind!r}: use one of {', '.join(_KINDS)}")
    unknown = sorted(set(options) - set(cls.__struct_fields__))
    if unknown:
        takes = ", ".join(cls.__struct_fields__) or "no options"
        raise ValueError(f"{kind} has no option {unknown[0]!r} (it takes {takes})")
    values = {key: value for key, value in options.items() if value is not None}
    if isinstance(values.get("symbol"), str):
        values["symbol"] = values["symbol"].upper()
    try:
        fault: Fault = msgspec.convert({"kind": kind, **values}, Fault, strict=False)
    except msgspec.ValidationError as error:
        raise ValueError(f"{kind}: {error}") from None
    _check(fault)
    return fault


def _check(fault: Fault) -> None:
    kind = type(fault).__struct_config__.tag
    for name in ("count", "size"):
        if getattr(fault, name, 1) < 1:
            raise ValueError(f"{kind}: {name} must be at least 1")
    for name in ("seconds", "delay", "age", "retry_after"):
        value = getattr(fault, name, 1.0)
        if not 0 <= value < float("inf"):
            raise ValueError(f"{kind}: {name} must be a finite number of seconds >= 0")
    if isinstance(fault, Stale | Stall) and fault.seconds <= 0:
        raise ValueError(f"{kind}: seconds must be positive")
    if isinstance(fault, RestError) and not (
        fault.status in (418, 429) or 500 <= fault.status <= 599
    ):
        raise ValueError(f"rest_error: status must be 429, 418 or 500-599, not {fault.status}")


def parse_fault(line: str) -> ScheduledFault:
    """Parse one fault line (``at=5s gap symbol=BTCUSDT``); raise ``ValueError`` on errors."""
    kind: str | None = None
    options: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    try:
        for token in line.split():
            key, equals, value = token.partition("=")
            if not equals:
                if kind is not None:
                    raise ValueError(f"two fault kinds: {kind!r} and {token!r}")
                kind = token
            elif key in ("at", "every", "jitter"):
                timing[key] = parse_duration(value, key)
            elif key == "times":
                timing[key] = int(value)
            elif key in _DURATIONS:
                options[key] = parse_duration(value, key)
            elif key == "size":
                options[key] = _parse_size(value)
            else:
                options[key] = value
        if kind is None:
            raise ValueError(f"no fault kind: start with one of {', '.join(_KINDS)}")
        fault = make_fault(kind, **options)
        if "at" not in timing and "every" in timing:
            timing["at"] = timing["every"]
        return ScheduledFault(fault=fault, **timing)
    except ValueError as error:
        raise ValueError(f"fault {line.strip()!r}: {error}") from None


def parse_schedule(lines: Iterable[str]) -> list[ScheduledFault]:
    """Parse a schedule: one fault line per line; blank lines and ``#`` comments skipped."""
    out = []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(parse_fault(line))
        except ValueError as error:
            raise ValueError(f"line {number}: {error}") from None
    return out


def fault_kind(fault: Fault) -> str:
    """Return the kind name of ``fault`` (``"gap"`` ...)."""
    tag: str = type(fault).__struct_config__.tag  # type: ignore[assignment]
    return tag
