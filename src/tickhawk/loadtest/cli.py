"""``tickhawk loadtest --profile NAME``: run a load profile, write DIR/report.json and report.html.

Exit status: 0 when every SLO (and, for chaos, every trade and gap) passed;
1 when one failed; 2 for bad arguments (one line on stderr); 3 when the run
itself could not be made (a child process failed to start or died).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import math
import os
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from tickhawk.loadtest.children import LoadtestError, choose_cores
from tickhawk.loadtest.html import write_html
from tickhawk.loadtest.live import LiveLine
from tickhawk.loadtest.profiles import Options, Outcome
from tickhawk.loadtest.report import (
    ChaosResult,
    Parameters,
    Report,
    SoakResult,
    SpikeResult,
    StressResult,
    machine_info,
    write_json,
)
from tickhawk.loadtest.rig import STREAMS
from tickhawk.loadtest.sizing import parse_override, size_engine
from tickhawk.loadtest.slo import SloRow, Targets, evaluate, parse_target

__all__ = ["PROFILES", "add_arguments", "options_from", "run"]

#: profile → default duration (s) and what it is
PROFILES: dict[str, tuple[float, str]] = {
    "steady": (30.0, "a fixed rate for --duration seconds"),
    "stress": (0.0, "ramp ×1.25 per step until an SLO breaks; the highest sustainable rate"),
    "spike": (10.0, "--duration s at the rate, 10× for 5 s, then until the backlog drains"),
    "soak": (1_800.0, "a long run: RSS slope (MB/h) and latency drift"),
    "volume": (20.0, "--duration s at each symbol count (--counts): RSS and p99 against count"),
    "chaos": (60.0, "steady rate with a random fault every --fault-every s; every trade counted"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``tickhawk loadtest``'s arguments (checked by :func:`options_from`)."""
    profiles = ", ".join(PROFILES)
    parser.add_argument("--profile", required=True, help=f"one of {profiles}")
    parser.add_argument(
        "--rate",
        default="10000",
        help="messages/s DELIVERED to the engine (trade + bookTicker + depth@100ms); "
        "stress: the first step; spike: the base (default 10000)",
    )
    parser.add_argument(
        "--symbols", help="simulated symbols (default 50; volume: the largest count, 1000)"
    )
    parser.add_argument(
        "--duration",
        help="measured seconds, after the warm-up (defaults: steady 30, spike 10 before the "
        "burst, soak 1800, volume 20 per count, chaos 60; stress runs until it finds the limit)",
    )
    parser.add_argument("--report", default="loadtest-report", help="report directory")
    parser.add_argument(
        "--warmup", default="5", help="seconds after the engine is live, before measuring"
    )
    parser.add_argument("--seed", default="7", help="market and fault seed (default 7)")
    parser.add_argument(
        "--fault-every", default="10", help="chaos: mean seconds between faults (default 10)"
    )
    parser.add_argument(
        "--faults", help="chaos: the fault kinds to draw from, e.g. drop_reset,gap (default all)"
    )
    parser.add_argument("--counts", help="volume: symbol counts, e.g. 50,250,1000")
    parser.add_argument("--step", default="7", help="stress: seconds per step (default 7)")
    parser.add_argument(
        "--max-rate", default="1000000", help="stress: stop ramping here (default 1000000)"
    )
    parser.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a target: memory_mb, cpu_pct, signal_p99_ms, ws_p99_ms, "
        "throughput_msgs, recovery_s (repeatable)",
    )
    parser.add_argument(
        "--rest-weight-budget",
        default="1000000",
        help="the engine's REST request weight per minute (default 1000000: the simulator "
        "does not limit weight; 4800 is the engine's Binance default)",
    )
    parser.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="set an engine configuration key, e.g. connection.stale_floor_s=30 (repeatable; "
        "recorded in the report)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the processes to cores")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def _number(args: argparse.Namespace, name: str, *, minimum: float = 0.0) -> float:
    text = getattr(args, name)
    flag = "--" + name.replace("_", "-")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{flag} must be a number, not {text!r}") from None
    if not math.isfinite(value) or value <= minimum:
        raise ValueError(f"{flag} must be a number above {minimum:g}, not {text}")
    return value


def _whole(text: str, flag: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{flag} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{flag} must be between {low:,} and {high:,}, not {value:,}")
    return value


def options_from(args: argparse.Namespace) -> Options:
    """Check the arguments; raise ``ValueError`` with a one-line message saying what to change."""
    profile = args.profile
    if profile not in PROFILES:
        raise ValueError(f"--profile {profile!r}: choose one of {', '.join(PROFILES)}")
    rate = _number(args, "rate")
    default_symbols = "1000" if profile == "volume" else "50"
    symbols = _whole(args.symbols or default_symbols, "--symbols", 1, 2_000)
    duration = PROFILES[profile][0] if args.duration is None else _number(args, "duration")
    warmup = _number(args, "warmup", minimum=-1.0)
    if warmup < 0:
        raise ValueError(f"--warmup must be 0 or more seconds, not {args.warmup}")
    seed = _whole(args.seed, "--seed", 0, 2**31)
    fault_every = _number(args, "fault_every", minimum=0.5)
    step = _number(args, "step", minimum=2.0)
    max_rate = _number(args, "max_rate")
    if profile == "stress" and max_rate < rate:
        raise ValueError(f"--max-rate {max_rate:g} is below --rate {rate:g}")
    counts: tuple[int, ...] = ()
    if profile == "volume":
        if args.counts:
            parts = [p.strip() for p in args.counts.split(",") if p.strip()]
            counts = tuple(sorted({_whole(p, "--counts", 1, 2_000) for p in parts}))
            if not counts:
                raise ValueError("--counts needs symbol counts, e.g. 50,250,1000")
        else:
            counts = tuple(sorted({c for c in (50, 250) if c < symbols} | {symbols}))
    elif args.counts:
        raise ValueError("--counts applies to --profile volume only")
    kinds: tuple[str, ...] = ()
    if args.faults:
        from tickhawk.loadtest.chaos import KINDS

        if profile != "chaos":
            raise ValueError("--faults applies to --profile chaos only")
        kinds = tuple(k.strip() for k in args.faults.split(",") if k.strip())
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds:
            raise ValueError(f"--faults {args.faults!r}: choose among {', '.join(KINDS)}")
    budget = _whole(args.rest_weight_budget, "--rest-weight-budget", 1, 10**9)
    overrides = dict(parse_override(text) for text in args.engine)
    if overrides:
        try:
            size_engine(["BTCUSDT"], STREAMS, overrides=overrides)
        except ValueError as error:
            raise ValueError(f"--engine: {error}") from None
    targets = Targets()
    for text in args.slo:
        targets = parse_target(targets, text)
    return Options(
        profile=profile,
        rate=rate,
        symbols=symbols,
        duration=duration,
        warmup=warmup,
        seed=seed,
        pin=not args.no_pin,
        targets=targets,
        fault_every=fault_every,
        fault_kinds=kinds,
        counts=counts,
        step=step,
        max_rate=max_rate,
        rest_weight_budget=budget,
        engine_overrides=overrides,
    )


def _runner(profile: str) -> Callable[[Options], Coroutine[Any, Any, Outcome]]:
    if profile == "stress":
        from tickhawk.loadtest.stress import stress

        return stress
    if profile == "chaos":
        from tickhawk.loadtest.chaos import chaos

        return chaos
    from tickhawk.loadtest import profiles

    if profile == "volume":
        from tickhawk.loadtest.volume import volume

        return volume
    runners: dict[str, Callable[[Options], Coroutine[Any, Any, Outcome]]] = {
        "steady": profiles.steady,
        "soak": profiles.steady,
        "spike": profiles.spike,
    }
    return runners[profile]


def build_report(
    options: Options, outcome: Outcome, started: float, wall_s: float, load_start: list[float]
) -> Report:
    """Return the report of a finished run, with its SLO table and verdict."""
    rows = evaluate(options.targets, outcome.figures)
    failures = list(outcome.failures)
    failures += [
        f"SLO {row.name}: "
        + (f"measured {row.measured:,} {row.unit}" if row.measured is not None else "not measured")
        + f", target {row.target}"
        for row in rows
        if row.passed is False
    ]
    sim_core, engine_core = outcome.cores
    machine = machine_info(sim_core, engine_core)
    machine.load_start = load_start
    machine.load_end = [round(x, 2) for x in os.getloadavg()]
    result = outcome.result
    report = Report(
        profile=options.profile,
        started=datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(
            timespec="seconds"
        ),
        wall_s=round(wall_s, 1),
        parameters=Parameters(
            rate=options.rate,
            symbols=options.symbols,
            duration_s=options.duration,
            warmup_s=options.warmup,
            seed=options.seed,
            pin=options.pin,
            rest_weight_budget=options.rest_weight_budget,
            targets=options.targets,
            fault_every_s=options.fault_every if options.profile == "chaos" else None,
            fault_kinds=list(options.fault_kinds) or None if options.profile == "chaos" else None,
            counts=list(options.counts) if options.profile == "volume" else None,
            step_s=options.step if options.profile == "stress" else None,
            max_rate=options.max_rate if options.profile == "stress" else None,
            spike_factor=options.spike_factor if options.profile == "spike" else None,
            spike_s=options.spike_seconds if options.profile == "spike" else None,
        ),
        engine=outcome.settings,
        machine=machine,
        summary=outcome.summary,
        slo=rows,
        passed=not failures,
        failures=failures,
        samples=outcome.samples,
        stress=result if isinstance(result, StressResult) else None,
        spike=result if isinstance(result, SpikeResult) else None,
        soak=result if isinstance(result, SoakResult) else None,
        volume=result if isinstance(result, list) else None,
        chaos=result if isinstance(result, ChaosResult) else None,
        **outcome.extra,
    )
    return report


def _write_logs(directory: Path, logs: dict[str, list[str]]) -> None:
    """Write each child's last stderr lines to ``directory/<name>.log``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, lines in logs.items():
        (directory / f"{name}.log").write_text("".join(f"{line}\n" for line in lines))


def _print_slo(rows: list[SloRow]) -> None:
    for row in rows:
        verdict = {True: "pass", False: "FAIL", None: "n/a"}[row.passed]
        measured = f"{row.measured:,.3f} {row.unit}" if row.measured is not None else "–"
        print(f"  {verdict:<4}  {row.name:<42} {measured:>18}  target {row.target}")


def run(args: argparse.Namespace) -> int:
    """Run ``tickhawk loadtest``; return the exit status."""
    try:
        options = options_from(args)
    except ValueError as error:
        print(f"tickhawk loadtest: {error}", file=sys.stderr)
        return 2
    directory = Path(args.report)
    if directory.exists() and not directory.is_dir():
        print(f"tickhawk loadtest: --report {directory} is a file, not a folder", file=sys.stderr)
        return 2
    live = LiveLine(quiet=args.quiet)
    options = Options(**{**options.__dict__, "on_sample": live.on_sample, "note": live.note})
    sim_core, engine_core = choose_cores(options.pin)
    pinned = (
        f"simulator on core {sim_core}, engine on core {engine_core}"
        if engine_core is not None
        else "not pinned"
    )
    live.note(f"loadtest {options.profile}: {options.rate:,.0f} msg/s delivered asked, {pinned}")
    started, clock = time.time(), time.monotonic()
    load_start = [round(x, 2) for x in os.getloadavg()]
    try:
        outcome = asyncio.run(_runner(options.profile)(options))
    except LoadtestError as error:
        live.close()
        print(f"tickhawk loadtest: {error}", file=sys.stderr)
        if error.logs:
            _write_logs(directory, error.logs)
            print(f"tickhawk loadtest: the processes' logs are in {directory}", file=sys.stderr)
        return 3
    finally:
        live.close()
    report = build_report(options, outcome, started, time.monotonic() - clock, load_start)
    json_path = write_json(report, directory)
    html_path = write_html(report, directory)
    _write_logs(directory, outcome.logs)
    print(f"loadtest {options.profile}: {'PASS' if report.passed else 'FAIL'}")
    _print_slo(report.slo)
    for key, value in report.summary.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            print(f"  {key}: {value:,}")
        elif value is not None:
            print(f"  {key}: {value}")
    for failure in report.failures:
        print(f"  failed: {failure}")
    print(f"report: {json_path} {html_path}")
    return 0 if report.passed else 1
