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

import math
import random
import statistics
import time
from typing import Any

from tickhawk.loadtest.profiles import (
    Options,
    Outcome,
    figures_of,
    make_rig,
    soak_result,
    warm_up,
    window_summary,
)
from tickhawk.loadtest.report import ChaosFault, ChaosResult
from tickhawk.loadtest.rig import Rig
from tickhawk.loadtest.slo import Figures
from tickhawk.loadtest.wire import EngineAccount, SimIds

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
    """A fault in flight: the counters before it, to judge it when the next one comes."""

    def __init__(self, t: float, kind: str, specs: list[str], rig: Rig, live: bool) -> None:
        self.record = ChaosFault(t=round(t, 3), kind=kind, specs=specs, engine_live=live)
        self.gaps_sim = _sim_gaps(rig)
        self.gaps_engine = rig.last_engine.book_gaps if rig.last_engine is not None else 0
        self.outages = len(rig.outages)
        self.resyncs = len(rig.resyncs)

    def close(self, rig: Rig) -> ChaosFault:
        record = self.record
        record.gaps_injected = _sim_gaps(rig) - self.gaps_sim
        engine_gaps = rig.last_engine.book_gaps if rig.last_engine is not None else 0
        record.gaps_detected = min(engine_gaps - self.gaps_engine, record.gaps_injected)
        outages = rig.outages[self.outages :]
        record.outages = len(outages)
        record.recovery_s = max((o.seconds for o in outages), default=None)
        record.resyncs = len(rig.resyncs) - self.resyncs
        return record


def _sim_gaps(rig: Rig) -> int:
    return rig.last_sim.faults.get("gap", 0) if rig.last_sim is not None else 0


async def _until_live(rig: Rig, timeout: float) -> bool:
    """Wait until the engine is live and synced with no outage open; return whether it is."""
    deadline = time.monotonic() + timeout
    while rig.last_engine is None or not rig.last_engine.live:
        if time.monotonic() > deadline:
            return False
        await rig.run_for(1)
    return True


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
        if settled:
            return account, True
        if time.monotonic() > deadline:
            return account, False
        await rig.run_for(1)


async def _inject_all(rig: Rig, options: Options) -> tuple[list[ChaosFault], float, float]:
    """Inject faults for ``duration`` seconds; return them and the window's start and end."""
    rng = random.Random(options.seed)
    busy = rig.symbols[: min(5, len(rig.symbols))]  # the busiest: a gap shows at once
    bag: list[str] = []
    faults: list[ChaosFault] = []
    t0 = time.monotonic()
    end = t0 + options.duration
    pending: _Fault | None = None
    next_at = t0 + options.fault_every * rng.uniform(0.5, 1.5)
    while next_at < end:
        await rig.run_for(min(1.0, max(0.0, next_at - time.monotonic())))
        if time.monotonic() < next_at:
            continue
        # A gap in a book that is still syncing shows nothing to detect: let the last
        # fault's recovery end first (bounded, so that a stuck engine is still faulted).
        live = await _until_live(rig, min(15.0, max(0.0, end - time.monotonic())))
        if pending is not None:
            faults.append(pending.close(rig))
        if not bag:
            bag = list(options.fault_kinds or KINDS)
            rng.shuffle(bag)
        kind = bag.pop()
        specs = fault_specs(kind, rng.choice(busy))
        t = time.monotonic() - rig.origin
        pending = _Fault(t, kind, specs, rig, live)
        options.note(f"chaos: {t:.0f} s {kind}{'' if live else ' (engine still recovering)'}")
        for spec in specs:
            await rig.fault(spec)
        next_at = time.monotonic() + options.fault_every * rng.uniform(0.5, 1.5)
    await rig.run_for(max(0.0, end - time.monotonic()))
    t1 = time.monotonic()
    await _until_live(rig, _SETTLE_S)  # the last fault's recovery, with the market running
    if pending is not None:
        faults.append(pending.close(rig))
    return faults, t0, t1


async def chaos(options: Options) -> Outcome:
    """Run ``duration`` seconds of faults at a steady rate; account for every trade."""
    async with make_rig(options) as rig:
        await warm_up(rig, options)
        start = rig.measure("chaos")
        available_before = rig.last_engine.available_s if rig.last_engine is not None else 0.0
        faults, t0, t1 = await _inject_all(rig, options)
        available_after = rig.last_engine.available_s if rig.last_engine is not None else 0.0
        window = rig.log.window(start)
        rig.phase = "settle"
        ids = await rig.pause_market()
        account, settled = await _settle(rig, ids)
        outages = list(rig.outages)
        resyncs = list(rig.resyncs)
        cores = rig.cores
        settings = rig.settings
        samples = rig.samples
        elapsed = rig.samples[-1].t - rig.samples[start].t if len(rig.samples) > start else 0.0
    lost = trades_lost(ids, account)
    recoveries = [o.seconds for o in outages]
    # available_s counts until the last tick; the window ran from t0 to the settle's end.
    availability = min(1.0, (available_after - available_before) / max(elapsed, t1 - t0, 1e-9))
    judged = [f for f in faults if f.engine_live]
    gaps_injected = sum(f.gaps_injected for f in faults)
    gaps_detected = sum(f.gaps_detected for f in faults)
    undetected = sum(f.gaps_injected - f.gaps_detected for f in judged)
    phases = {
        "reconnect": [o.reconnect_s for o in outages],
        "books": [o.books_s for o in outages],
        "backfill": [o.backfill_s for o in outages],
    }
    medians = {name: round(statistics.median(v), 4) for name, v in phases.items() if v}
    dominant = statistics.mode(o.dominated_by for o in outages) if outages else "none (no outage)"
    trend = soak_result(window)  # the soak's memory trend: after the first minute
    result = ChaosResult(
        faults=faults,
        outages=outages,
        resyncs=resyncs,
        recovery_p50_s=_round(statistics.median(recoveries)) if recoveries else None,
        recovery_p90_s=_quantile(recoveries, 0.9),
        recovery_max_s=_round(max(recoveries)) if recoveries else None,
        dominant_phase=dominant,
        phase_medians_s=medians,
        lost_by_symbol=lost,
        trades_unsettled=not settled,
        rss_start_mb=trend.rss_start_mb,
        rss_end_mb=trend.rss_end_mb,
        rss_slope_mb_h=_round(trend.rss_slope_mb_h, 3)
        if trend.rss_slope_mb_h is not None
        else None,
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
        recovery_p90_s=result.recovery_p90_s,
        recovery_max_s=result.recovery_max_s,
        dominant_phase=dominant,
        availability=round(availability, 5),
        trades_lost=sum(lost.values()),
        gaps_injected=gaps_injected,
        gaps_detected=gaps_detected,
    )
    outcome = Outcome(
        samples=samples,
        figures=figures,
        summary=summary,
        cores=cores,
        settings=settings,
        logs=rig.logs(),
        failures=failures,
    )
    outcome.result = result
    outcome.extra = {
        "trades_sent": sum(last - first + 1 for first, last in ids.ranges.values()),
        "trades_processed": sum(a.applied for a in account.symbols.values()),
        "trades_lost": sum(lost.values()),
        "gaps_injected": gaps_injected,
        "gaps_detected": gaps_detected,
        "gaps_undetected": undetected,
        "recoveries_s": [round(r, 4) for r in recoveries],
        "availability": round(availability, 5),
    }
    return outcome


def _round(value: float, digits: int = 4) -> float:
    return round(value, digits)


def _quantile(values: list[float], q: float) -> float | None:
    """Return the ``q`` quantile (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 4)
