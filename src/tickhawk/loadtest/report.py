"""``DIR/report.json``: the structures of a load test's report, and the machine it ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import msgspec
import psutil

from tickhawk import __version__
from tickhawk.loadtest.samples import Sample
from tickhawk.loadtest.sizing import EngineSettings
from tickhawk.loadtest.slo import SloRow, Targets
from tickhawk.loadtest.wire import Outage

__all__ = [
    "ChaosFault",
    "ChaosResult",
    "Machine",
    "Parameters",
    "Report",
    "SoakResult",
    "SpikeResult",
    "StressResult",
    "StressStep",
    "VolumePoint",
    "machine_info",
    "write_json",
]

SHARED_NOTE = (
    "measured on a machine shared with other work: figures vary between runs; "
    "compare runs made at the same time"
)


class Machine(msgspec.Struct, kw_only=True):
    """Where the run happened."""

    platform: str
    python: str
    cpu_model: str
    cores: int
    cores_allowed: int
    memory_mb: float
    load_start: list[float]
    load_end: list[float] = msgspec.field(default_factory=list)
    sim_core: int | None = None
    engine_core: int | None = None
    note: str = SHARED_NOTE


class Parameters(msgspec.Struct, kw_only=True):
    """What was asked for."""

    rate: float
    symbols: int
    duration_s: float
    warmup_s: float
    seed: int
    pin: bool
    rest_weight_budget: int | None
    targets: Targets
    fault_every_s: float | None = None
    fault_kinds: list[str] | None = None
    counts: list[int] | None = None
    step_s: float | None = None
    max_rate: float | None = None
    spike_factor: float | None = None
    spike_s: float | None = None


class StressStep(msgspec.Struct, kw_only=True):
    """One step of the stress ramp."""

    asked: float
    delivered: float
    sent: float
    signal_p99_us: float | None
    ws_p99_us: float | None
    backlog_max_ms: float | None
    backlog_slope_ms_s: float | None
    engine_rx_kb: float | None  # median of the engine's socket receive queue
    cpu_pct: float
    wait_pct: float | None  # the engine waiting for its core (other work on the machine)
    sim_cpu_pct: float
    sim_lag_ms: float
    drops: int
    verdict: str  # pass, fail or sim_limit
    reasons: list[str]


class StressResult(msgspec.Struct, kw_only=True):
    """The highest delivered rate the engine sustained, and why it stopped there."""

    max_sustainable_msgs: float | None
    max_asked_msgs: float | None
    limit: str
    sim_limited: bool
    steps: list[StressStep]


class SpikeResult(msgspec.Struct, kw_only=True):
    """A burst of ``factor`` times the base rate for ``seconds``."""

    base_rate: float
    spike_rate: float
    seconds: float
    delivered_spike: float | None
    reached: (
        bool  # delivered ≥ 90 % of the spike rate (else the simulator or the machine fell short)
    )
    peak_signal_p99_us: float | None
    peak_signal_max_us: float | None
    peak_backlog_ms: float | None
    drain_threshold_ms: float
    drain_s: float | None  # None: not drained within the wait


class SoakResult(msgspec.Struct, kw_only=True):
    """A long run: memory trend and latency drift."""

    measured_s: float
    skipped_s: float
    rss_start_mb: float | None
    rss_end_mb: float | None
    rss_slope_mb_h: float | None
    signal_p99_first_us: float | None
    signal_p99_last_us: float | None
    latency_drift_us: float | None
    gc_pause_max_ms: float | None


class VolumePoint(msgspec.Struct, kw_only=True):
    """One symbol count of the volume sweep."""

    symbols: int
    book_max_levels: int | None  # the engine's settings at this count (see docs/loadtest.md)
    bar_history: int | None
    trade_capacity: int | None = None
    ceiling_mb: float | None  # the engine's own memory ceiling for them
    startup_s: float | None  # engine start to every book live
    rss_peak_mb: float | None
    rss_final_mb: float | None
    sim_rss_mb: float | None
    signal_p99_us: float | None
    ws_p99_us: float | None
    cpu_pct: float | None
    delivered: float | None
    wait_pct: float | None = None  # the engine waiting for its core (other work on the machine)
    reconnects: int | None = None  # in the measured window
    stale_reconnects: int | None = None  # of them, forced by the stale-stream watchdog
    error: str | None = None  # why this count could not be measured


class ChaosFault(msgspec.Struct, kw_only=True):
    """One injected fault and what the engine did about it."""

    t: float
    kind: str
    specs: list[str]
    engine_live: bool  # False: injected while the last fault's recovery still ran
    gaps_injected: int = 0
    gaps_detected: int = 0
    outages: int = 0
    recovery_s: float | None = None
    resyncs: int = 0


class ChaosResult(msgspec.Struct, kw_only=True):
    """Details of a chaos run (the headline fields are at the report's top level)."""

    faults: list[ChaosFault]
    outages: list[Outage]
    resyncs: list[tuple[str, float]]
    recovery_p50_s: float | None
    recovery_p90_s: float | None
    recovery_max_s: float | None
    dominant_phase: str  # the phase that dominated most outages (the engine's judgement)
    phase_medians_s: dict[str, float]  # reconnect from the drop; books, backfill from LIVE
    lost_by_symbol: dict[str, int]
    trades_unsettled: bool  # the engine had not caught up with the market when compared
    rss_start_mb: float | None  # after the first minute (or half the run, if shorter)
    rss_end_mb: float | None
    rss_slope_mb_h: float | None  # least squares over the same samples (None: under 3 s)


class Report(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Everything a load test measured; written to ``DIR/report.json``."""

    tickhawk: str = __version__
    profile: str
    started: str
    wall_s: float
    parameters: Parameters
    engine: EngineSettings | None = None
    machine: Machine
    summary: dict[str, float | int | str | bool | None]
    slo: list[SloRow]
    passed: bool
    failures: list[str]
    samples: list[Sample]
    stress: StressResult | None = None
    spike: SpikeResult | None = None
    soak: SoakResult | None = None
    volume: list[VolumePoint] | None = None
    chaos: ChaosResult | None = None
    # The chaos profile's headline fields (issue 5): absent for other profiles.
    trades_sent: int | None = None
    trades_processed: int | None = None
    trades_lost: int | None = None
    gaps_injected: int | None = None
    gaps_detected: int | None = None
    gaps_undetected: int | None = None
    recoveries_s: list[float] | None = None
    availability: float | None = None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(sim_core: int | None, engine_core: int | None) -> Machine:
    """Describe this machine now."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return Machine(
        platform=platform.platform(),
        python=platform.python_version(),
        cpu_model=_cpu_model(),
        cores=psutil.cpu_count() or 0,
        cores_allowed=allowed or (psutil.cpu_count() or 0),
        memory_mb=round(psutil.virtual_memory().total / 2**20, 1),
        load_start=[round(x, 2) for x in os.getloadavg()],
        sim_core=sim_core,
        engine_core=engine_core,
    )


def write_json(report: Report, directory: Path) -> Path:
    """Write ``directory/report.json`` (indented); return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.json"
    path.write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=1) + b"\n")
    return path
