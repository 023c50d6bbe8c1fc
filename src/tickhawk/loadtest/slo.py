"""The user's service-level objectives and their evaluation against a run's figures.

Defaults are the user's targets: memory < 512 MB, CPU < 25 % of a core,
signal latency < 50 ms, WebSocket handling < 10 ms, ≥ 10,000 msg/s,
recovery < 5 s. ``--slo NAME=VALUE`` changes one. A row is ``passed=None``
(n/a) when the run does not measure it (no recovery outside chaos and
spike; no throughput target when less than the target was asked for).
"""

from __future__ import annotations

import msgspec

__all__ = ["Figures", "SloRow", "Targets", "evaluate", "parse_target", "passed"]


class Targets(msgspec.Struct, kw_only=True, frozen=True):
    """The objectives (limits; ``throughput_msgs`` is a floor)."""

    memory_mb: float = 512.0
    cpu_pct: float = 25.0
    signal_p99_ms: float = 50.0
    ws_p99_ms: float = 10.0
    throughput_msgs: float = 10_000.0
    recovery_s: float = 5.0


class Figures(msgspec.Struct, kw_only=True, frozen=True):
    """What a run measured, for the SLO table (None: not measured by this run)."""

    rss_peak_mb: float | None
    cpu_mean_pct: float | None
    signal_p99_us: float | None
    ws_p99_us: float | None
    delivered_mean: float | None
    asked: float
    recovery_max_s: float | None = None
    cpu_note: str = ""


class SloRow(msgspec.Struct, kw_only=True, frozen=True):
    """One line of the SLO table."""

    name: str
    target: str
    measured: float | None
    unit: str
    passed: bool | None
    note: str = ""


def parse_target(targets: Targets, text: str) -> Targets:
    """Return ``targets`` with ``NAME=VALUE`` applied; raise ``ValueError`` naming the choices."""
    name, sep, value = text.partition("=")
    fields = Targets.__struct_fields__
    if not sep or name.strip() not in fields:
        raise ValueError(f"--slo {text!r}: use NAME=VALUE with NAME one of {', '.join(fields)}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"--slo {text!r}: {value!r} is not a number") from None
    if not number >= 0:
        raise ValueError(f"--slo {text!r}: the value must be a number >= 0")
    return msgspec.structs.replace(targets, **{name.strip(): number})


def _below(name: str, limit: float, measured: float | None, unit: str, note: str = "") -> SloRow:
    target = f"< {limit:g} {unit}"
    if measured is None:
        return SloRow(name=name, target=target, measured=None, unit=unit, passed=None, note=note)
    return SloRow(
        name=name,
        target=target,
        measured=round(measured, 3),
        unit=unit,
        passed=measured < limit,
        note=note,
    )


def evaluate(targets: Targets, figures: Figures) -> list[SloRow]:
    """Return the SLO table of ``figures``."""
    signal = figures.signal_p99_us / 1_000 if figures.signal_p99_us is not None else None
    ws = figures.ws_p99_us / 1_000 if figures.ws_p99_us is not None else None
    rows = [
        _below("memory (engine RSS, peak)", targets.memory_mb, figures.rss_peak_mb, "MB"),
        _below(
            "CPU (engine, mean, % of one core)",
            targets.cpu_pct,
            figures.cpu_mean_pct,
            "%",
            figures.cpu_note,
        ),
        _below("signal latency (receive→signal p99)", targets.signal_p99_ms, signal, "ms"),
        _below("WebSocket handling (receive→state p99)", targets.ws_p99_ms, ws, "ms"),
    ]
    floor = targets.throughput_msgs
    target = f">= {floor:,.0f} msg/s"
    if figures.asked < floor:
        rows.append(
            SloRow(
                name="throughput (delivered, mean)",
                target=target,
                measured=figures.delivered_mean,
                unit="msg/s",
                passed=None,
                note=f"n/a: {figures.asked:,.0f} msg/s asked",
            )
        )
    else:
        measured = figures.delivered_mean
        rows.append(
            SloRow(
                name="throughput (delivered, mean)",
                target=target,
                measured=round(measured, 1) if measured is not None else None,
                unit="msg/s",
                passed=measured is not None and measured >= floor,
            )
        )
    rows.append(_below("recovery (worst)", targets.recovery_s, figures.recovery_max_s, "s"))
    return rows


def passed(rows: list[SloRow]) -> bool:
    """Return whether no row failed (n/a rows do not fail)."""
    return all(row.passed is not False for row in rows)
