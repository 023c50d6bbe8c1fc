"""The regression gate: quantities machine noise does not decide, each with a threshold.

Two kinds of quantity, lower is better for all:

- ``ratio.<case>``: a case's subject ÷ its reference, measured in the same run,
  interleaved (:mod:`~tickhawk.bench.measure`). Load on a shared machine slows
  both sides alike, so the ratio moves far less than either time.
- ``instructions.*``: callgrind's instruction counts on a fixed replay
  (:mod:`~tickhawk.bench.instructions`): deterministic for one interpreter and
  set of library builds, compared only when the baseline's match.

A quantity regresses when ``now > baseline × (1 + threshold)``; the
thresholds come from the spread measured over repeated gate runs on the
loaded 2-core development machine. The timed ratios are the coarse net (10 to
25 %); the instruction counts of the pipeline are the fine one (2 %).
"""

from __future__ import annotations

import msgspec

from tickhawk.bench.instructions import InstructionCount
from tickhawk.bench.measure import Result

__all__ = ["THRESHOLDS", "Verdict", "compare", "quantities", "report_lines"]

#: Gated quantity → allowed growth over the baseline (0.10 = 10 %): about 1.5 times
#: the whole range (max ÷ min − 1) of 12 runs on the 2-core machine at load 3 to 7.5
#: (docs/performance.md), at least 10 %. Instruction counts did not move between
#: runs of the same code; 2 % leaves room for the allocator's state.
THRESHOLDS: dict[str, float] = {
    "ratio.decode.trade": 0.20,
    "ratio.decode.aggTrade": 0.15,
    "ratio.decode.depth": 0.10,
    "ratio.decode.bookTicker": 0.10,
    "ratio.decode.kline": 0.10,
    "ratio.book.apply": 0.10,
    "ratio.book.sync": 0.10,
    "ratio.bar.update": 0.15,
    "ratio.indicators.update": 0.10,
    "ratio.indicators.peek": 0.15,
    "ratio.strategy.on_trade": 0.25,
    "ratio.pipeline.usdm": 0.25,
    "ratio.pipeline.spot": 0.20,
    "instructions.pipeline_per_msg": 0.02,
    "instructions.decode_per_msg": 0.02,
    "instructions.ratio": 0.02,
}


class Verdict(msgspec.Struct):
    """One gated quantity: ``status`` is ``ok``, ``regression`` or ``skipped`` (with ``note``)."""

    name: str
    status: str
    baseline: float | None = None
    now: float | None = None
    threshold: float = 0.0
    note: str = ""

    @property
    def change(self) -> float | None:
        """Return now ÷ baseline − 1, or None when either is missing."""
        if self.baseline is None or self.now is None or self.baseline == 0:
            return None
        return self.now / self.baseline - 1.0


def quantities(
    results: dict[str, Result], instructions: InstructionCount | None
) -> dict[str, float]:
    """Return the gated quantities found in ``results`` and ``instructions``."""
    out = {f"ratio.{name}": r.ratio for name, r in results.items() if r.ratio is not None}
    if instructions is not None:
        out["instructions.pipeline_per_msg"] = instructions.pipeline_per_msg
        out["instructions.decode_per_msg"] = instructions.decode_per_msg
        out["instructions.ratio"] = instructions.ratio
    return out


def compare(
    baseline: dict[str, float],
    now: dict[str, float],
    thresholds: dict[str, float],
    skipped: dict[str, str] | None = None,
) -> list[Verdict]:
    """Return a verdict per quantity of ``thresholds``.

    A quantity in ``skipped`` (name → why) or missing from either side is
    skipped, not failed: the gate says so, and the rest still counts.
    """
    verdicts = []
    for name, threshold in thresholds.items():
        why = (skipped or {}).get(name)
        base, value = baseline.get(name), now.get(name)
        if why is None and base is None:
            why = "not in the baseline (record it with --update-baseline)"
        elif why is None and value is None:
            why = "not measured in this run"
        if why is not None:
            verdicts.append(Verdict(name, "skipped", base, value, threshold, why))
            continue
        assert base is not None and value is not None
        status = "regression" if value > base * (1.0 + threshold) else "ok"
        verdicts.append(Verdict(name, status, base, value, threshold))
    return verdicts


def report_lines(verdicts: list[Verdict]) -> list[str]:
    """Return one line per verdict; a regression's names the quantity, both values, the limit."""
    lines = []
    for v in verdicts:
        if v.status == "skipped":
            lines.append(f"skipped     {v.name}: {v.note}")
            continue
        change = v.change or 0.0
        lines.append(
            f"{'REGRESSION' if v.status == 'regression' else 'ok':<11} {v.name}: "
            f"baseline {_number(v.baseline)}, now {_number(v.now)} ({change:+.1%}), "
            f"threshold +{v.threshold:.0%}"
        )
    return lines


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
