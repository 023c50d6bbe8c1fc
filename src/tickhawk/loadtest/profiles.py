"""The load profiles steady, spike and soak (stress, volume and chaos have their own modules).

Every profile starts a :class:`~tickhawk.loadtest.rig.Rig`, waits until the
engine is live and every book synced, lets ``warmup`` seconds pass (the rate
controller settles), then measures. Each returns an :class:`Outcome`: the
samples, the figures the SLO table is judged on, its own result and the
headline figures of the report's summary.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tickhawk.loadtest.report import SoakResult, SpikeResult
from tickhawk.loadtest.rig import Rig
from tickhawk.loadtest.samples import Sample, Window, least_squares_slope
from tickhawk.loadtest.sizing import EngineSettings
from tickhawk.loadtest.slo import Figures, Targets

__all__ = [
    "Options",
    "Outcome",
    "drained_at",
    "figures_of",
    "soak_result",
    "spike",
    "steady",
    "warm_up",
]


@dataclass(frozen=True)
class Options:
    """A load test's parameters, checked by the command line."""

    profile: str
    rate: float
    symbols: int
    duration: float
    warmup: float
    seed: int
    pin: bool
    targets: Targets
    fault_every: float = 10.0
    fault_kinds: tuple[str, ...] = ()  # chaos: the kinds to draw from (empty: all)
    counts: tuple[int, ...] = ()
    step: float = 7.0
    max_rate: float = 1_000_000.0
    spike_factor: float = 10.0
    spike_seconds: float = 5.0
    #: The engine's REST weight budget per minute. The simulator does not limit weight,
    #: so by default neither does the engine (Binance's budget: 4,800, see docs/loadtest.md).
    rest_weight_budget: int | None = 1_000_000
    engine_overrides: dict[str, float | int | bool | str] = field(default_factory=dict)
    on_sample: Callable[[Sample], None] | None = None
    note: Callable[[str], None] = print


@dataclass
class Outcome:
    """What a profile measured."""

    samples: list[Sample]
    figures: Figures
    summary: dict[str, Any]
    cores: tuple[int | None, int | None] = (None, None)
    settings: EngineSettings | None = None
    logs: dict[str, list[str]] = field(default_factory=dict)  # child name → its stderr
    failures: list[str] = field(default_factory=list)
    result: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _round(value: float | None, digits: int = 1) -> float | None:
    return round(value, digits) if value is not None else None


def make_rig(options: Options, symbols: int | None = None) -> Rig:
    """Return the rig of a profile."""
    return Rig(
        symbols=symbols or options.symbols,
        rate=options.rate,
        seed=options.seed,
        pin=options.pin,
        rest_weight_budget=options.rest_weight_budget,
        engine_overrides=options.engine_overrides,
        on_sample=options.on_sample,
    )


async def warm_up(rig: Rig, options: Options) -> None:
    """Wait until the engine is live and synced, then ``warmup`` more seconds."""
    rig.phase = "warmup"
    # Warm-up fetches klines and a snapshot per symbol: allow for many symbols.
    await rig.wait_live(timeout=60.0 + 0.1 * rig.n_symbols)
    await rig.run_for(options.warmup)


def figures_of(window: Window, asked: float, *, cpu: bool = True, note: str = "") -> Figures:
    """Return the SLO figures of a measured window."""
    return Figures(
        rss_peak_mb=window.peak("rss_mb"),
        cpu_mean_pct=window.mean("cpu_pct") if cpu else None,
        signal_p99_us=window.signal.percentile(99),
        ws_p99_us=window.state.percentile(99),
        delivered_mean=window.mean("delivered"),
        asked=asked,
        cpu_note=note,
    )


def window_summary(window: Window) -> dict[str, Any]:
    """Return the headline figures of a measured window."""
    return {
        "delivered_mean_msgs": _round(window.mean("delivered")),
        "sent_mean_msgs": _round(window.mean("sent")),
        "signals": window.total("signals"),
        "signal_p50_us": _round(window.signal.percentile(50)),
        "signal_p99_us": _round(window.signal.percentile(99)),
        "signal_p999_us": _round(window.signal.percentile(99.9)),
        "signal_max_us": _round(window.signal.percentile(100)),
        "ws_p99_us": _round(window.state.percentile(99)),
        "cpu_mean_pct": _round(window.mean("cpu_pct")),
        "wait_mean_pct": _round(window.mean("wait_pct")),
        "sim_cpu_mean_pct": _round(window.mean("sim_cpu_pct")),
        "rss_peak_mb": _round(window.peak("rss_mb")),
        "rss_final_mb": _round(window.samples[-1].rss_mb) if window.samples else None,
        "gc_pause_max_ms": _round(window.peak("gc_pause_max_ms"), 3),
        "gc_pause_total_ms": _round(sum(s.gc_pause_ms for s in window.samples), 3),
        "backlog_p50_ms": _round(_median([s.backlog_ms for s in window.samples])),
        "backlog_max_ms": _round(window.peak("backlog_ms")),
        "rejects": window.total("rejects"),
        "drops": window.total("drops"),
        "reconnects": window.total("reconnects"),
        "stale_reconnects": window.total("stale_reconnects"),
        "measured_s": len(window),
    }


def _median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


# -- steady and soak ---------------------------------------------------------------------


async def steady(options: Options) -> Outcome:
    """Hold ``rate`` for ``duration`` seconds; the soak profile adds trend figures."""
    async with make_rig(options) as rig:
        await warm_up(rig, options)
        start = rig.measure(options.profile)
        await rig.run_for(options.duration)
        window = rig.log.window(start)
        cores = rig.cores
        settings = rig.settings
        samples = rig.samples
    outcome = Outcome(
        samples=samples,
        figures=figures_of(window, options.rate),
        summary=window_summary(window),
        cores=cores,
        settings=settings,
        logs=rig.logs(),
    )
    if options.profile == "soak":
        soak = soak_result(window)
        outcome.result = soak
        outcome.summary["rss_slope_mb_h"] = _round(soak.rss_slope_mb_h, 3)
        outcome.summary["latency_drift_us"] = _round(soak.latency_drift_us)
    return outcome


def soak_result(window: Window) -> SoakResult:
    """Return the memory slope (least squares after a warm-up) and the latency drift."""
    samples = window.samples
    if not samples:
        return SoakResult(
            measured_s=0,
            skipped_s=0,
            rss_start_mb=None,
            rss_end_mb=None,
            rss_slope_mb_h=None,
            signal_p99_first_us=None,
            signal_p99_last_us=None,
            latency_drift_us=None,
            gc_pause_max_ms=None,
        )
    # Caches, rings and allocator arenas fill in the first minutes: leave out
    # max(60 s, 10 %) so the slope shows a leak, not the filling.
    skip = min(len(samples) // 2, max(60, len(samples) // 10))
    kept = samples[skip:]
    slope = least_squares_slope([(s.t, s.rss_mb) for s in kept])
    quarter = max(1, len(kept) // 4)
    first_p99 = window.sub(skip, skip + quarter).signal.percentile(99)
    last_p99 = window.sub(len(samples) - quarter, len(samples)).signal.percentile(99)
    drift = last_p99 - first_p99 if first_p99 is not None and last_p99 is not None else None
    return SoakResult(
        measured_s=len(samples),
        skipped_s=skip,
        rss_start_mb=kept[0].rss_mb if kept else None,
        rss_end_mb=kept[-1].rss_mb if kept else None,
        rss_slope_mb_h=slope * 3_600 if slope is not None else None,
        signal_p99_first_us=first_p99,
        signal_p99_last_us=last_p99,
        latency_drift_us=drift,
        gc_pause_max_ms=window.peak("gc_pause_max_ms"),
    )


# -- spike --------------------------------------------------------------------------------


async def spike(options: Options) -> Outcome:
    """Base rate, then ``spike_factor`` × for ``spike_seconds``, then base until drained."""
    base = options.rate
    async with make_rig(options) as rig:
        await warm_up(rig, options)
        start = rig.measure("base")
        await rig.run_for(max(5.0, options.duration))
        base_end = len(rig.samples)
        base_window = rig.log.window(start, base_end)
        rig.phase = "spike"
        await rig.set_rate(base * options.spike_factor)
        await rig.run_for(options.spike_seconds)
        spike_end_t = rig.samples[-1].t if rig.samples else 0.0
        spike_window = rig.log.window(base_end)
        rig.phase = "drain"
        await rig.set_rate(base)
        threshold = max(20.0, 3.0 * (_median([s.backlog_ms for s in base_window.samples]) or 0))
        waited = 0
        while waited < 60 and drained_at(rig.log.backlog_fine, spike_end_t, threshold) is None:
            await rig.run_for(1)
            waited += 1
        await rig.run_for(3)
        whole = rig.log.window(start)
        after = rig.log.window(base_end)
        drain = drained_at(rig.log.backlog_fine, spike_end_t, threshold)
        cores = rig.cores
        settings = rig.settings
        samples = rig.samples
    result = SpikeResult(
        base_rate=base,
        spike_rate=base * options.spike_factor,
        seconds=options.spike_seconds,
        delivered_spike=_round(spike_window.mean("delivered")),
        reached=(spike_window.mean("delivered") or 0.0) >= 0.9 * base * options.spike_factor,
        peak_signal_p99_us=after.peak("signal_p99_us"),
        peak_signal_max_us=after.peak("signal_max_us"),
        peak_backlog_ms=after.peak("backlog_ms"),
        drain_threshold_ms=round(threshold, 2),
        drain_s=_round(drain - spike_end_t, 2) if drain is not None else None,
    )
    figures = figures_of(whole, base, cpu=False)
    figures = Figures(
        rss_peak_mb=figures.rss_peak_mb,
        cpu_mean_pct=base_window.mean("cpu_pct"),
        signal_p99_us=figures.signal_p99_us,
        ws_p99_us=figures.ws_p99_us,
        delivered_mean=base_window.mean("delivered"),
        asked=base,
        recovery_max_s=result.drain_s,
        cpu_note="over the base-rate seconds before the spike",
    )
    summary = window_summary(whole)
    summary.update(
        spike_rate_msgs=result.spike_rate,
        delivered_spike_msgs=result.delivered_spike,
        peak_signal_p99_us=_round(result.peak_signal_p99_us),
        peak_backlog_ms=_round(result.peak_backlog_ms),
        drain_s=result.drain_s,
    )
    failures = []
    if result.drain_s is None:
        failures.append(
            f"the backlog was not under {threshold:.0f} ms for good within 60 s of the spike"
        )
    return Outcome(
        samples=samples,
        figures=figures,
        summary=summary,
        cores=cores,
        settings=settings,
        logs=rig.logs(),
        failures=failures,
        result=result,
    )


def drained_at(fine: list[tuple[float, float]], after: float, threshold: float) -> float | None:
    """Return when, after ``after``, the backlog fell under ``threshold`` for good (≥ 1 s)."""
    points = [(t, ms) for t, ms in fine if t >= after]
    for index, (t, ms) in enumerate(points):
        if ms >= threshold:
            continue
        rest = points[index:]
        if rest[-1][0] - t < 1.0:
            return None  # not a full second of evidence yet
        if all(later < threshold for _, later in rest):
            return t
    return None
