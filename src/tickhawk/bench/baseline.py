"""The stored baseline (``benchmarks/baseline.json``): results, machine, environment, date.

Per-operation times are the recording machine's and only informative
elsewhere; the same-run ratios and the instruction counts are what the gate
compares. Instruction counts depend on the interpreter and the compiled
libraries, so the baseline keeps their versions (:func:`environment`) and the
gate compares counts only where they match; likewise the book's ratios only
where the L2 book is the same (compiled or pure Python).
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import msgspec

from tickhawk.bench.instructions import InstructionCount
from tickhawk.bench.measure import Result
from tickhawk.book.l2 import IMPLEMENTATION

__all__ = ["Baseline", "BaselineError", "environment", "machine", "read_baseline", "write_baseline"]

#: Libraries whose builds decide the instruction count of the pipeline.
_PACKAGES = ("msgspec", "numpy", "TA-Lib", "picows", "tickhawk")


class BaselineError(Exception):
    """The baseline file is missing or unreadable; the message says what to do."""


class Baseline(msgspec.Struct):
    """What ``tickhawk bench --update-baseline`` recorded."""

    recorded: str
    command: str
    machine: dict[str, str | int]
    environment: dict[str, str]
    reps: int
    cases: dict[str, Result]
    instructions: InstructionCount | None = None
    loopback: dict[str, float] | None = None


def machine() -> dict[str, str | int]:
    """Return what the figures were measured on: CPU model, cores, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def environment() -> dict[str, str]:
    """Return the interpreter build and the versions of the libraries on the hot path."""
    out = {"python": sys.version.replace("\n", " "), "arch": platform.machine()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    out["tickhawk.book"] = IMPLEMENTATION  # the compiled L2 book or its pure-Python fallback
    return out


def read_baseline(path: Path) -> Baseline:
    """Return the baseline at ``path``; raise :class:`BaselineError` with a one-line reason."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=Baseline)
    except FileNotFoundError:
        raise BaselineError(
            f"no baseline at {path}: run from a tickhawk checkout, pass --baseline FILE, "
            "or record one with --update-baseline"
        ) from None
    except (OSError, msgspec.DecodeError) as exc:
        raise BaselineError(f"cannot read the baseline {path}: {exc}") from None


def write_baseline(
    path: Path,
    results: list[Result],
    *,
    reps: int,
    command: str,
    instructions: InstructionCount | None,
    loopback: dict[str, float] | None,
    keep: Baseline | None = None,
) -> Baseline:
    """Write a new baseline of ``results``; cases and loopback figures not measured now are
    kept from ``keep``."""
    baseline = Baseline(
        recorded=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        command=command,
        machine=machine(),
        environment=environment(),
        reps=reps,
        cases={**(keep.cases if keep else {}), **{r.name: r for r in results}},
        instructions=instructions,  # counts of another environment would not compare
        loopback=loopback or (keep.loopback if keep else None),
    )
    path.write_bytes(msgspec.json.format(msgspec.json.encode(baseline), indent=2) + b"\n")
    return baseline
