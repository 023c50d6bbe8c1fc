"""The chaos profile: a steady rate with a fault at random times, then a full trade account.

Every ``fault_every`` seconds on average (0.5× to 1.5×, seeded) the runner
injects the next fault of a shuffled bag of kinds: connection drops (close
and TCP reset), a stall, a depth gap, duplicated trades, reordered depth
diffs, a malformed and an oversized frame, and a REST error or a late
snapshot (each paired with a depth gap, so that a snapshot request meets
it). Gap detection is judged per fault: the engine's count of book gaps must
grow at least as much as the simulator's count of injected gaps before the
next fault. At the end the market pauses (everything produced is sent),
the engine settles, and its per-symbol trade accounting is compared with
the simulator's trade ids: a trade is lost when the engine holds fewer
distinct ids than the market published from its first to its last.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from tickhawk.loadtest.profiles import (
    Options,
    Outcome,
    figures_of,
    make_rig,
    warm_up,
    window_summary,
)
from tickhawk.loadtest.report import ChaosFault, ChaosResult
from tickhawk.loadtest.rig import Rig
from tickhawk.loadtest.samples import least_squares_slope
from tickhawk.loadtest.slo import Figures
from tickhawk.loadtest.wire import EngineAccount, Outage, SimIds

__all__ = ["KINDS", "chaos", "fault_specs", "trades_lost"]

KINDS = (
    "drop_close",
    "drop_reset",
    "stall",
    "gap",
    "duplicate",
    "reorder",
    "malformed",
    "oversized",
    "rest_error",
    "snapshot_delay",
)
_SETTLE_S = 30.0


def fault_specs(kind: str, symbol: str) -> list[str]:
    """Return the simulator fault lines of one chaos fault on ``symbol``."""
    gap = f"gap symbol={symbol}"
    specs = {
        "drop_close": ["drop mode=close"],
        "drop_reset": ["drop mode=reset"],
        "stall": ["stall seconds=2"],
        "gap": [gap],
        "duplicate": [f"duplicate symbol={symbol} stream=trade count=5"],
        "reorder": [f"reorder symbol={symbol} stream=depth"],
        "malformed": [f"malformed symbol={symbol} stream=trade"],
        "oversized": [f"oversized symbol={symbol}"],
        "rest_error": ["rest_error status=503 count=1 path=depth", gap],
        "snapshot_delay": [f"snapshot_delay symbol={symbol} delay=0.5", gap],
    }
    return specs[kind]


def trades_lost(ids: SimIds, account: EngineAccount) -> dict[str, int]:
    """Return, per symbol, the trades the market published that the engine does not hold.

    The market's trade ids are contiguous per symbol; from the first id sent to
    the engine to the last, every one must have been applied (live or back-filled).
    """
    lost: dict[str, int] = {}
    for symbol, (first, last) in ids.ranges.items():
        held = account.symbols.get(symbol)
        expected = last - first + 1
        missing = expected - (held.applied if held is not None else 0)
        if held is not None and held.last_id < last:
            missing = max(missing, last - held.last_id)
        if missing > 0:
            lost[symbol] = missing
    return lost


class _Fault:
    def __init__(self, t: float, wall: float, kind: str, specs: list[str], rig: Rig) -> None:
        self.record = ChaosFault(t=round(t, 3), kind=kind, specs=specs)
        self.wall = wall
        self.gaps_sim = _sim_gaps(rig)
        self.gaps_engine = rig.last_engine.book_gaps if rig.last_engine is not None else 0

    def close(self, rig: Rig, outages: list[Outage], resyncs: int) -> ChaosFault:
        record = self.record
        record.gaps_injected = _sim_gaps(rig) - self.gaps_sim
        detected = (rig.last_engine.book_gaps if rig.last_engine is not None else 0) - (
            self.gaps_engine
        )
        record.gaps_detected = min(detected, record.gaps_injected)
        record.outages = len(outages)
        record.recovery_s = max((o.recovered_s for o in outages), default=None)
        record.resyncs = resyncs
        return record


def _sim_gaps(rig: Rig) -> int:
    return rig.last_sim.faults.get("gap", 0) if rig.last_sim is not None else 0


async def _settle(rig: Rig, ids: SimIds) -> tuple[EngineAccount, bool]:
    """Wait until the engine holds every symbol's last trade and misses none (≤ 30 s)."""
    deadline = time.monotonic() + _SETTLE_S
    while True:
        account = await rig.account()
        settled = all(
            (held := account.symbols.get(symbol)) is not None
            and held.last_id >= last
            and held.missing == 0
            for symbol, (_, last) in ids.ranges.items()
        )
        engine = rig.last_engine
        if settled and engine is not None and engine.live:
            return account, True
        if time.monotonic() > deadline:
            return account, False
        await rig.run_for(1)


async def chaos(options: Options) -> Outcome:
    """Run ``duration`` seconds of faults at a steady rate; account for every trade."""
    rng = random.Random(options.seed)
    bag: list[str] = []
    faults: list[ChaosFault] = []
    async with make_rig(options) as rig:
        await warm_up(rig, options)
        busy = rig.symbols[: min(5, len(rig.symbols))]  # the busiest: gaps show at once
        rig.phase = "chaos"
        start = len(rig.samples)
        live_before = rig.last_engine.live_s if rig.last_engine is not None else 0.0
        t0 = time.monotonic()
        end = t0 + options.duration
        open_fault: _Fault | None = None
        outages_seen = 0
        resyncs_seen = 0
        next_at = t0 + options.fault_every * rng.uniform(0.5, 1.5)
        while time.monotonic() < end:
            await rig.run_for(min(1.0, max(0.0, next_at - time.monotonic())))
            if time.monotonic() < next_at or next_at >= end:
                continue
            if open_fault is not None:
                faults.append(open_fault.close(rig, rig.outages[outages_seen:], _count(rig, resyncs_seen)))
                outages_seen, resyncs_seen = len(rig.outages), len(rig.resyncs)
            if not bag:
                bag = list(KINDS)
                rng.shuffle(bag)
            kind = bag.pop()
            specs = fault_specs(kind, rng.choice(busy))
            t = time.monotonic() - rig.origin
            open_fault = _Fault(t, time.time(), kind, specs, rig)
            options.note(f"chaos: {t:.0f} s {kind}")
            for spec in specs:
                await rig.fault(spec)
            next_at = time.monotonic() + options.fault_every * rng.uniform(0.5, 1.5)
        t1 = time.monotonic()
        live_after = rig.last_engine.live_s if rig.last_engine is not None else 0.0
        window = rig.log.window(start)
        rig.phase = "settle"
        ids = await rig.pause_market()
        account, settled = await _settle(rig, ids)
        if open_fault is not None:
            faults.append(open_fault.close(rig, rig.outages[outages_seen:], _count(rig, resyncs_seen)))
        engine = rig.last_engine
        outages = list(rig.outages)
        resyncs = list(rig.resyncs)
        cores = rig.cores
        samples = rig.samples
    lost = trades_lost(ids, account)
    own = [o.recovered_s for o in outages]
    engine_recoveries = list(engine.recoveries_s) if engine is not None else []
    recoveries, source = (engine_recoveries, "engine") if engine_recoveries else (own, "loadtest")
    availability = (live_after - live_before) / max(t1 - t0, 1e-9)
    gaps_injected = sum(f.gaps_injected for f in faults)
    gaps_detected = sum(f.gaps_detected for f in faults)
    undetected = gaps_injected - gaps_detected
    phases = {
        "reconnect": [o.reconnect_s for o in outages],
        "books": [o.books_s - o.reconnect_s for o in outages],
        "trades": [max(0.0, o.trades_s - o.books_s) for o in outages],
    }
    medians = {name: round(statistics.median(v), 4) for name, v in phases.items() if v}
    dominant = max(medians, key=lambda name: medians[name]) if medians else "none (no outage)"
    rss_slope = least_squares_slope([(s.t, s.rss_mb) for s in window.samples])
    result = ChaosResult(
        faults=faults,
        outages=outages,
        resyncs=resyncs,
        recoveries_source=source,
        recovery_p50_s=_quantile(recoveries, 0.5),
        recovery_p90_s=_quantile(recoveries, 0.9),
        recovery_max_s=max(recoveries, default=None),
        dominant_phase=dominant,
        phase_medians_s=medians,
        lost_by_symbol=lost,
        trades_unsettled=not settled,
        rss_slope_mb_h=round(rss_slope * 3_600, 3) if rss_slope is not None else None,
    )
    base = figures_of(window, options.rate)
    figures = Figures(
        rss_peak_mb=base.rss_peak_mb,
        cpu_mean_pct=base.cpu_mean_pct,
        signal_p99_us=base.signal_p99_us,
        ws_p99_us=base.ws_p99_us,
        delivered_mean=base.delivered_mean,
        asked=options.rate,
        recovery_max_s=result.recovery_max_s,
    )
    failures = []
    if lost:
        failures.append(f"{sum(lost.values())} trades lost over {len(lost)} symbols")
    if undetected:
        failures.append(f"{undetected} of {gaps_injected} injected gaps went undetected")
    summary: dict[str, Any] = window_summary(window)
    summary.update(
        faults=len(faults),
        outages=len(outages),
        recovery_p50_s=result.recovery_p50_s,
        recovery_max_s=result.recovery_max_s,
        dominant_phase=dominant,
        availability=round(availability, 5),
        trades_lost=sum(lost.values()),
    )
    trades_sent = sum(last - first + 1 for first, last in ids.ranges.values())
    outcome = Outcome(
        samples=samples, figures=figures, summary=summary, cores=cores, failures=failures
    )
    outcome.result = result
    outcome.extra = {
        "trades_sent": trades_sent,
        "trades_processed": sum(a.applied for a in account.symbols.values()),
        "trades_lost": sum(lost.values()),
        "gaps_injected": gaps_injected,
        "gaps_detected": gaps_detected,
        "gaps_undetected": undetected,
        "recoveries_s": [round(r, 4) for r in recoveries],
        "availability": round(availability, 5),
    }
    return outcome


def _count(rig: Rig, seen: int) -> int:
    return len(rig.resyncs) - seen


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)
