"""The stress profile: ramp the delivered rate until an SLO breaks or the backlog grows.

Each step asks for a rate, lets ``settle`` seconds pass (the rate controller
converges, queues fill), then measures. A step passes when the engine took
≥ 95 % of the asked rate, the latency SLOs held, nobody was disconnected and
the engine's backlog (less the simulator's own lag) did not grow. When
the *simulator* could not send the asked rate (it lagged or its core was
full) while the engine kept up, the search ends there and says so: the
figure is then a floor for the engine, not its limit.
"""

from __future__ import annotations

import statistics

from tickhawk.loadtest.control import StressSearch
from tickhawk.loadtest.profiles import Options, Outcome, figures_of, warm_up, window_summary
from tickhawk.loadtest.profiles import make_rig as _make_rig
from tickhawk.loadtest.report import StressResult, StressStep
from tickhawk.loadtest.rig import Rig
from tickhawk.loadtest.samples import Window, least_squares_slope
from tickhawk.loadtest.slo import Figures, Targets

__all__ = ["judge_step", "stress"]

_SETTLE_S = 3.0
_BACKLOG_LIMIT_MS = 1_000.0  # past this the engine is a second behind: not sustainable
_BACKLOG_GROWING_MS = 100.0  # a growing backlog counts once it is this large...
_BACKLOG_SLOPE = 5.0  # ...and still growing this fast (ms/s)
_SIM_LAG_MS = 250.0  # the simulator is this far behind its clock: it could not produce
_BUSY_WAIT_PCT = 15.0  # waiting this much for a core: other work holds it
_UNREAD_KB = 256.0  # the engine's socket holds this much (median over the step): it is behind


def judge_step(window: Window, asked: float, targets: Targets) -> StressStep:
    """Return the verdict of one measured step (pure: tests feed it synthetic samples).

    The engine failed the step when it was disconnected, broke a latency SLO,
    left data unread in its socket (median receive queue ≥ 256 KB: it could
    not keep up), or its backlog grew while the simulator kept time. The
    simulator was the limit when it sent less than 95 % of the asked rate
    while falling behind its own clock (lag over 250 ms) or filling its core,
    and the engine showed none of those failures. The simulator's "sent"
    counts what it handed to its socket layer, so a simulator starved of CPU
    looks like a slow reader there: the engine's own receive queue tells.
    """
    samples = window.samples
    delivered = window.mean("delivered") or 0.0
    sent = window.mean("sent") or 0.0
    engine_backlog = [(s.t, s.backlog_ms) for s in samples if s.backlog_ms is not None]
    backlog_max = max((ms for _, ms in engine_backlog), default=None)
    slope = least_squares_slope(engine_backlog)
    signal_p99 = window.signal.percentile(99)
    ws_p99 = window.state.percentile(99)
    drops = window.total("drops") + window.total("reconnects")
    sim_cpu = window.mean("sim_cpu_pct") or 0.0
    sim_lag = window.peak("sim_lag_ms") or 0.0
    sim_behind = sim_lag > _SIM_LAG_MS or sim_cpu > 90.0
    queued = [s.engine_rx_kb for s in samples if s.engine_rx_kb is not None]
    unread = statistics.median(queued) if queued else None
    reasons: list[str] = []
    if drops:
        reasons.append(f"{drops} disconnects")
    if signal_p99 is not None and signal_p99 >= targets.signal_p99_ms * 1_000:
        reasons.append(f"signal p99 {signal_p99 / 1_000:.1f} ms")
    if ws_p99 is not None and ws_p99 >= targets.ws_p99_ms * 1_000:
        reasons.append(f"WebSocket handling p99 {ws_p99 / 1_000:.1f} ms")
    if unread is not None and unread >= _UNREAD_KB:
        reasons.append(f"{unread:,.0f} KB unread in the engine's socket (median)")
    if not sim_behind and backlog_max is not None:
        # While the simulator lags, its clock correction is a second old: no verdict.
        if backlog_max >= _BACKLOG_LIMIT_MS:
            reasons.append(f"backlog {backlog_max:,.0f} ms")
        elif backlog_max >= _BACKLOG_GROWING_MS and slope is not None and slope > _BACKLOG_SLOPE:
            reasons.append(f"backlog growing {slope:.0f} ms/s")
    wait = window.mean("wait_pct")
    if reasons and wait is not None and wait >= _BUSY_WAIT_PCT:
        reasons.append(
            f"the engine waited {wait:.0f} % of the time for its core: the machine is busy"
        )
    if reasons:
        verdict = "fail"
    elif sent < 0.95 * asked and sim_behind:
        verdict = "sim_limit"
        reasons.append(
            f"the simulator sent {sent:,.0f} of {asked:,.0f} msg/s "
            f"(lag {sim_lag:,.0f} ms, CPU {sim_cpu:.0f} % of its core, waiting for it "
            f"{window.mean('sim_wait_pct') or 0:.0f} %)"
        )
    elif delivered < 0.95 * asked:
        verdict = "fail"
        reasons.append(f"delivered {delivered:,.0f} of {asked:,.0f} msg/s")
    else:
        verdict = "pass"
    return StressStep(
        asked=round(asked, 1),
        delivered=round(delivered, 1),
        sent=round(sent, 1),
        signal_p99_us=signal_p99,
        ws_p99_us=ws_p99,
        backlog_max_ms=round(backlog_max, 2) if backlog_max is not None else None,
        backlog_slope_ms_s=round(slope, 3) if slope is not None else None,
        engine_rx_kb=unread,
        cpu_pct=round(window.mean("cpu_pct") or 0.0, 1),
        wait_pct=round(wait, 1) if wait is not None else None,
        sim_cpu_pct=round(sim_cpu, 1),
        sim_lag_ms=sim_lag,
        drops=drops,
        verdict=verdict,
        reasons=reasons,
    )


async def _recover(rig: Rig, base: float) -> None:
    """After a failed step: back to the base rate until live with a small backlog (≤ 60 s)."""
    rig.phase = "recover"
    await rig.set_rate(base)
    for _ in range(60):
        await rig.run_for(1)
        last = rig.samples[-1] if rig.samples else None
        engine = rig.last_engine
        if (
            last is not None
            and engine is not None
            and engine.live
            and (last.backlog_ms or 0.0) < _BACKLOG_GROWING_MS
        ):
            return


async def stress(options: Options) -> Outcome:
    """Find the highest delivered rate the engine sustains over loopback."""
    search = StressSearch(options.rate, max_rate=options.max_rate)
    steps: list[StressStep] = []
    windows: dict[float, Window] = {}
    measure = max(2.0, options.step - _SETTLE_S)
    async with _make_rig(options) as rig:
        await warm_up(rig, options)
        while (rate := search.next_rate()) is not None:
            options.note(f"stress: step at {rate:,.0f} msg/s")
            rig.phase = f"step {rate:,.0f}"
            await rig.set_rate(rate)
            await rig.run_for(_SETTLE_S)
            start = len(rig.samples)
            await rig.run_for(measure)
            window = rig.log.window(start)
            step = judge_step(window, rate, options.targets)
            steps.append(step)
            if step.verdict == "pass":
                windows[rate] = window
            search.record(rate, step.verdict)
            if step.verdict != "pass" and search.next_rate() is not None:
                await _recover(rig, options.rate)
        cores = rig.cores
        settings = rig.settings
        samples = rig.samples
    best = search.best
    best_step = max(
        (s for s in steps if s.verdict == "pass" and s.asked == round(best or -1, 1)),
        key=lambda s: s.delivered,
        default=None,
    )
    if search.sim_limited:
        limit = "the simulator (the engine kept up: its limit is higher)"
    elif search.failed is None:
        limit = f"the --max-rate of {options.max_rate:,.0f} msg/s"
    else:
        failed = [s for s in steps if s.verdict == "fail"]
        limit = "the engine: " + "; ".join(failed[-1].reasons) if failed else "the engine"
    result = StressResult(
        max_sustainable_msgs=best_step.delivered if best_step is not None else None,
        max_asked_msgs=best,
        limit=limit,
        sim_limited=search.sim_limited,
        steps=steps,
    )
    if best is not None:
        base = figures_of(windows[best], best, cpu=False)
        summary = window_summary(windows[best])
    else:
        base = Figures(
            rss_peak_mb=max((s.rss_mb for s in samples), default=None),
            cpu_mean_pct=None,
            signal_p99_us=None,
            ws_p99_us=None,
            delivered_mean=0.0,
            asked=options.rate,
        )
        summary = {}
    figures = Figures(
        rss_peak_mb=max((s.rss_mb for s in samples), default=None),
        cpu_mean_pct=None,
        signal_p99_us=base.signal_p99_us,
        ws_p99_us=base.ws_p99_us,
        delivered_mean=result.max_sustainable_msgs,
        asked=max(options.rate, best or 0.0),
        cpu_note="n/a: stress fills the engine's core on purpose (see steady)",
    )
    summary.update(
        max_sustainable_msgs=result.max_sustainable_msgs,
        max_asked_msgs=best,
        limit=limit,
        sim_limited=search.sim_limited,
        steps=len(steps),
    )
    failures = []
    if best is None:
        failures.append(f"no step passed: the first, at {options.rate:,.0f} msg/s, met {limit}")
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
