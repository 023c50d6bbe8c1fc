"""``tickhawk bench``: the benchmark cases, medians and ratios to the stored baseline;
``--gate``: the performance regression gate.

The cases (:mod:`tickhawk.bench.cases`) run on the real data of
``../shared/data``: decoding per message kind, book updates, bar updates,
the indicator set, a strategy hook, and the full pipeline over the USD-M and
spot captures, each interleaved with a reference doing the floor work on the
same input. ``--macro`` adds the engine and the simulator over loopback at a
steady rate. ``--update-baseline`` writes the results, with instruction
counts, machine and date, to the baseline (``benchmarks/baseline.json``).
``--gate`` compares the same-run ratios and instruction counts with the
baseline's and exits 1 with one line per regression.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from tickhawk.bench.baseline import (
    Baseline,
    BaselineError,
    environment,
    read_baseline,
    write_baseline,
)
from tickhawk.bench.cases import CASES, build
from tickhawk.bench.data import USDM, BenchData, DataError
from tickhawk.bench.gate import THRESHOLDS, Verdict, compare, quantities, report_lines
from tickhawk.bench.instructions import (
    InstructionCount,
    InstructionsUnavailable,
    count_instructions,
)
from tickhawk.bench.measure import Result, measure
from tickhawk.book.l2 import IMPLEMENTATION

__all__ = ["INSTRUCTION_MESSAGES", "add_arguments", "run", "select"]

#: Messages of the USD-M capture whose instructions are counted (~1 min under callgrind).
INSTRUCTION_MESSAGES = 20_000
_INSTRUCTION_QUANTITIES = [name for name in THRESHOLDS if name.startswith("instructions.")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``bench``'s arguments."""
    parser.add_argument(
        "--gate",
        action="store_true",
        help="compare the gated ratios and instruction counts with the baseline; "
        "exit 1 on a regression beyond its threshold",
    )
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help="write the results, instruction counts, machine and date to the baseline",
    )
    parser.add_argument("--reps", type=int, help="repetitions (default 7; 5 with --gate)")
    parser.add_argument(
        "--cases", help="comma-separated case names or prefixes (e.g. decode,pipeline.usdm)"
    )
    parser.add_argument(
        "--macro",
        action="store_true",
        help="also run the engine and the simulator over loopback at a steady rate",
    )
    parser.add_argument("--loopback-seconds", type=float, default=20.0, metavar="S")
    parser.add_argument(
        "--instructions",
        action=argparse.BooleanOptionalAction,
        help="count instructions under callgrind (default: on with --gate and --update-baseline)",
    )
    parser.add_argument(
        "--slowdown",
        action="append",
        default=[],
        metavar="CASE=K",
        help="make a case do its work K times (to see the gate fail: --gate --slowdown "
        "strategy.on_trade=3)",
    )
    parser.add_argument("--baseline", type=Path, default=Path("benchmarks/baseline.json"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def select(patterns: str | None) -> list[str]:
    """Return the case names matching comma-separated names or prefixes (all when None).

    Raise ``ValueError`` naming the cases there are if a pattern matches none.
    """
    if not patterns:
        return list(CASES)
    chosen: list[str] = []
    for pattern in (p.strip() for p in patterns.split(",") if p.strip()):
        matched = [n for n in CASES if n == pattern or n.startswith(pattern.rstrip(".") + ".")]
        if not matched:
            raise ValueError(f"--cases {pattern!r} matches no case; cases: {', '.join(CASES)}")
        chosen += [n for n in matched if n not in chosen]
    return chosen


class _Plan(NamedTuple):
    """What one ``tickhawk bench`` invocation does, its options checked."""

    names: list[str]
    slowdown: dict[str, int]
    reps: int
    baseline: Baseline | None
    count_instructions: bool


def _plan(args: argparse.Namespace) -> _Plan:
    """Check the options; raise ``ValueError`` (or :class:`BaselineError`) saying what to change."""
    if args.gate and args.update_baseline:
        raise ValueError("use --gate or --update-baseline, not both")
    names = select(args.cases)
    slowdown = _slowdown(args.slowdown, names)
    if slowdown and args.update_baseline:
        raise ValueError("--slowdown with --update-baseline would record a slowed baseline")
    reps = args.reps or (5 if args.gate else 7)
    if reps < 1:
        raise ValueError("--reps must be at least 1")
    baseline: Baseline | None = None
    try:
        baseline = read_baseline(args.baseline)
    except BaselineError as exc:
        if args.gate:
            raise
        if not args.update_baseline:
            _note(f"{exc}; printing without baseline ratios")
    count = args.instructions
    if count is None:
        count = args.gate or args.update_baseline
    return _Plan(names, slowdown, reps, baseline, count)


def run(args: argparse.Namespace) -> int:
    """Run ``tickhawk bench``; return the exit status."""
    started = time.monotonic()
    try:
        plan = _plan(args)
    except (ValueError, BaselineError) as exc:
        return _fail(str(exc))
    data = BenchData(args.data)
    # Callgrind runs in its own process meanwhile: it mostly waits, and the timed ratios
    # are what load does not move.
    with ThreadPoolExecutor(max_workers=1) as pool:
        counting = pool.submit(
            _instructions, data, plan.baseline, plan.count_instructions, args.gate
        )
        try:
            results = _measure(data, plan.names, plan.reps, plan.slowdown)
            instructions, skipped = counting.result()
        except DataError as exc:
            return _fail(str(exc))
    loopback = _loopback(args.loopback_seconds) if args.macro else None
    baseline = plan.baseline
    verdicts: list[Verdict] = []
    if args.gate:
        assert baseline is not None
        verdicts = compare(
            quantities(baseline.cases, baseline.instructions),
            quantities({r.name: r for r in results}, instructions),
            {name: THRESHOLDS[name] for name in _gated(plan.names)},
            {**skipped, **_book_skips(baseline)},
        )
    if args.update_baseline:
        command = "tickhawk bench --update-baseline" + (" --macro" if args.macro else "")
        write_baseline(
            args.baseline,
            results,
            reps=plan.reps,
            command=command,
            instructions=instructions,
            loopback=loopback,
            keep=baseline,
        )
        _note(f"baseline written to {args.baseline}")
        baseline = None  # not compared with itself
    if args.json:
        out: dict[str, Any] = {"reps": plan.reps, "book": IMPLEMENTATION}
        out["cases"] = {r.name: r for r in results}
        out.update(instructions=instructions, loopback=loopback, gate=verdicts)
        print(msgspec.json.encode(out).decode())
    else:
        _print_table(results, baseline, plan.reps)
        _print_extras(instructions, skipped, loopback, baseline)
        for line in report_lines(verdicts):
            print(line)
    regressions = sum(v.status == "regression" for v in verdicts)
    if args.gate:
        gated = sum(v.status != "skipped" for v in verdicts)
        summary = (
            f"gate: {regressions} regression(s) in {gated} quantities "
            f"({len(verdicts) - gated} skipped), {time.monotonic() - started:.0f} s"
        )
        print(summary, file=sys.stderr if args.json else sys.stdout)
    return 1 if regressions else 0


def _gated(names: list[str]) -> list[str]:
    """Return the gated quantities the chosen cases measure, and the instruction counts."""
    ratios = [f"ratio.{name}" for name in names if f"ratio.{name}" in THRESHOLDS]
    return ratios + _INSTRUCTION_QUANTITIES


def _book_skips(baseline: Baseline) -> dict[str, str]:
    """Skip the ratios with a book in them when the baseline measured the other L2 book
    (compiled or pure Python)."""
    recorded = baseline.environment.get("tickhawk.book")
    if recorded == IMPLEMENTATION:
        return {}
    why = f"the baseline's L2 book is {recorded or 'unrecorded'}, this one {IMPLEMENTATION}"
    with_book = ("ratio.book.", "ratio.pipeline.")
    return {name: why for name in THRESHOLDS if name.startswith(with_book)}


def _slowdown(items: list[str], names: list[str]) -> dict[str, int]:
    """Parse ``CASE=K`` items; raise ``ValueError`` with what to change."""
    out = {}
    for item in items:
        name, _, factor = item.partition("=")
        if name not in names or not factor.isdigit() or int(factor) < 1:
            raise ValueError(f"--slowdown {item!r}: use CASE=K with a case being run, K ≥ 1")
        out[name] = int(factor)
    return out


def _measure(
    data: BenchData, names: list[str], reps: int, slowdown: dict[str, int]
) -> list[Result]:
    _note(f"building {len(names)} cases on {data.data_dir}")
    cases = build(data, names, slowdown=slowdown)
    return measure(cases, reps, progress=_note)


def _instructions(
    data: BenchData, baseline: Baseline | None, wanted: bool, gate: bool
) -> tuple[InstructionCount | None, dict[str, str]]:
    """Count instructions if wanted and comparable; return the count and why any were skipped."""

    def skip(why: str) -> tuple[None, dict[str, str]]:
        return None, {name: why for name in _INSTRUCTION_QUANTITIES}

    if not wanted:
        return skip("not counted (--no-instructions)")
    if gate and baseline is not None:
        here = environment()
        differ = [k for k in here if baseline.environment.get(k) != here[k]]
        if differ:
            was = ", ".join(f"{k} {baseline.environment.get(k)}" for k in differ)
            return skip(f"the baseline's counts come from {was}; re-record with --update-baseline")
    _note(f"counting instructions of {INSTRUCTION_MESSAGES:,} messages under callgrind")
    try:
        return count_instructions(data.path(USDM), INSTRUCTION_MESSAGES), {}
    except InstructionsUnavailable as exc:
        return skip(str(exc))


def _loopback(seconds: float) -> dict[str, float]:
    from tickhawk.bench.loopback import run_once

    _note(f"loopback: simulator and engine, 50 symbols, ~10,000 msg/s, {seconds:.0f} s")
    return run_once(11_800.0, seconds, 50, 3.0)


def _print_table(results: list[Result], baseline: Baseline | None, reps: int) -> None:
    base = baseline.cases if baseline is not None else {}
    print(
        f"tickhawk bench: medians of {reps} repetitions, CPU time per operation; "
        f"L2 book: {IMPLEMENTATION}"
    )
    if baseline is not None:
        m = baseline.machine
        print(f"baseline: {baseline.recorded[:10]}, {m.get('cpu')}, Python {m.get('python')}")
    print(
        f"{'case':<19} {'ns/op':>9} {'op/s':>11} {'×base':>6}  "
        f"{'reference (same input)':<27} {'ns/op':>9} {'ratio':>7} {'base':>7}"
    )
    for r in results:
        old = base.get(r.name)
        vs = f"{r.ns_per_op / old.ns_per_op:6.2f}" if old else f"{'-':>6}"
        ref = f"{r.reference_ns_per_op:9,.1f}" if r.reference_ns_per_op else f"{'-':>9}"
        ratio = f"{r.ratio:7.3f}" if r.ratio is not None else f"{'-':>7}"
        old_ratio = f"{old.ratio:7.3f}" if old and old.ratio is not None else f"{'-':>7}"
        print(
            f"{r.name:<19} {r.ns_per_op:9,.1f} {r.per_second:11,.0f} {vs}  "
            f"{r.reference_name:<27} {ref} {ratio} {old_ratio}"
        )


def _print_extras(
    instructions: InstructionCount | None,
    skipped: dict[str, str],
    loopback: dict[str, float] | None,
    baseline: Baseline | None,
) -> None:
    if instructions is not None:
        old = baseline.instructions if baseline is not None else None
        was = f" (baseline {old.pipeline_per_msg:,.0f} / {old.decode_per_msg:,.0f})" if old else ""
        print(
            f"instructions, first {instructions.messages:,} USD-M messages: pipeline "
            f"{instructions.pipeline_per_msg:,.0f}/msg, decode only "
            f"{instructions.decode_per_msg:,.0f}/msg, ratio {instructions.ratio:.3f}{was}"
        )
    elif skipped and not any("--no-instructions" in why for why in skipped.values()):
        print(f"instructions: {next(iter(skipped.values()))}")
    if loopback is not None:
        print(
            f"loopback: {loopback['delivered_msgs_per_s']:,.0f} msg/s delivered, engine CPU "
            f"{loopback['engine_cpu_pct']:.1f} %, RSS {loopback['rss_peak_mb']:.0f} MB, "
            f"receive→signal p50 {loopback['latency_p50_us']:.0f} µs, "
            f"p99 {loopback['latency_p99_us']:.0f} µs"
        )


def _note(text: str) -> None:
    print(f"tickhawk bench: {text}", file=sys.stderr, flush=True)


def _fail(text: str) -> int:
    print(f"tickhawk bench: {text}", file=sys.stderr)
    return 2
