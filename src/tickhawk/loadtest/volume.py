"""The volume profile: memory and latency against the number of symbols.

Each count gets a fresh simulator and engine (the symbols are fixed at
start), sized as the preset sizes that many symbols (:mod:`tickhawk.loadtest.sizing`), warmed
up until every book is live, then measured for ``duration`` seconds. A count
the machine cannot bring live in time is reported with its error and the
sweep goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickhawk.loadtest.children import LoadtestError
from tickhawk.loadtest.profiles import Options, Outcome, figures_of, make_rig, warm_up
from tickhawk.loadtest.report import VolumePoint
from tickhawk.loadtest.samples import Sample, Window
from tickhawk.loadtest.sizing import EngineSettings
from tickhawk.loadtest.slo import Figures

__all__ = ["volume"]


def _round(value: float | None, digits: int = 1) -> float | None:
    return round(value, digits) if value is not None else None


def _point(count: int, settings: EngineSettings | None, startup: float | None) -> VolumePoint:
    return VolumePoint(
        symbols=count,
        book_max_levels=settings.book_max_levels if settings else None,
        bar_history=settings.bar_history if settings else None,
        trade_capacity=settings.trade_capacity if settings else None,
        ceiling_mb=settings.ceiling_mb if settings else None,
        startup_s=_round(startup, 2),
        rss_peak_mb=None,
        rss_final_mb=None,
        sim_rss_mb=None,
        signal_p99_us=None,
        ws_p99_us=None,
        cpu_pct=None,
        delivered=None,
    )


def _measured(point: VolumePoint, window: Window) -> VolumePoint:
    point.rss_peak_mb = window.peak("rss_mb")
    point.rss_final_mb = window.samples[-1].rss_mb if window.samples else None
    point.sim_rss_mb = window.peak("sim_rss_mb")
    point.signal_p99_us = _round(window.signal.percentile(99))
    point.ws_p99_us = _round(window.state.percentile(99))
    point.cpu_pct = _round(window.mean("cpu_pct"))
    point.wait_pct = _round(window.mean("wait_pct"))
    point.delivered = _round(window.mean("delivered"))
    point.reconnects = window.total("reconnects")
    point.stale_reconnects = window.total("stale_reconnects")
    return point


async def volume(options: Options) -> Outcome:
    """Run ``duration`` seconds at each symbol count; memory and latency against the count."""
    points: list[VolumePoint] = []
    samples: list[Sample] = []
    offset = 0.0
    cores: tuple[int | None, int | None] = (None, None)
    settings: EngineSettings | None = None
    logs: dict[str, list[str]] = {}
    windows: list[Window] = []
    failures: list[str] = []
    for count in options.counts:
        options.note(f"volume: {count} symbols")
        rig = make_rig(options, count)
        try:
            async with rig:
                await warm_up(rig, options)
                start = rig.measure(f"{count} symbols")
                await rig.run_for(options.duration)
        except LoadtestError as error:
            failures.append(f"{count} symbols: {error}")
            point = _point(count, rig.settings, None)
            point.error = str(error)
        else:
            window = rig.log.window(start)
            windows.append(window)
            point = _measured(_point(count, rig.settings, rig.started_live), window)
        points.append(point)
        cores, settings = rig.cores, rig.settings
        for sample in rig.samples:
            sample.t = round(sample.t + offset, 3)
        samples += rig.samples
        offset = samples[-1].t + 1.0 if samples else offset
        for name, lines in rig.logs().items():
            logs.setdefault(name, []).extend([f"--- {count} symbols", *lines])
    every = [figures_of(w, options.rate) for w in windows]
    figures = Figures(
        rss_peak_mb=_worst([f.rss_peak_mb for f in every], max),
        cpu_mean_pct=_worst([f.cpu_mean_pct for f in every], max),
        signal_p99_us=_worst([f.signal_p99_us for f in every], max),
        ws_p99_us=_worst([f.ws_p99_us for f in every], max),
        delivered_mean=_worst([f.delivered_mean for f in every], min),
        asked=options.rate,
        cpu_note="the worst symbol count",
    )
    summary: dict[str, Any] = {}
    for point in points:
        summary[f"rss_peak_mb@{point.symbols}"] = _round(point.rss_peak_mb)
        summary[f"signal_p99_us@{point.symbols}"] = point.signal_p99_us
        summary[f"stale_reconnects@{point.symbols}"] = point.stale_reconnects
    return Outcome(
        samples=samples,
        figures=figures,
        summary=summary,
        cores=cores,
        settings=settings,
        logs=logs,
        failures=failures,
        result=points,
    )


def _worst(values: list[float | None], pick: Callable[[list[float]], float]) -> float | None:
    kept = [v for v in values if v is not None]
    return pick(kept) if kept else None
