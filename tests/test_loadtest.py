"""``tickhawk loadtest``: real runs of the simulator and engine child processes, and the logic.

The real runs are short and slow-paced (a few seconds at a few thousand msg/s),
over real loopback WebSocket between separate processes; the SLO evaluation,
the stress search, the step verdicts and the rate controller are checked on
synthetic samples.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from pathlib import Path

import aiohttp
import msgspec
import numpy as np
import pytest

from tickhawk.cli import main
from tickhawk.loadtest.chaos import trades_lost
from tickhawk.loadtest.control import RateController, StressSearch
from tickhawk.loadtest.histogram import LogHistogram
from tickhawk.loadtest.profiles import drained_at, soak_result
from tickhawk.loadtest.samples import Sample, SampleLog
from tickhawk.loadtest.slo import Figures, Targets, evaluate, parse_target, passed
from tickhawk.loadtest.sockets import socket_queues
from tickhawk.loadtest.stress import judge_step
from tickhawk.loadtest.wire import EngineAccount, SimIds, SymbolAccount
from tickhawk.sim import SimConfig, Simulator

SLOW = ["--symbols", "4", "--warmup", "1", "--quiet"]


def _report(directory: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((directory / "report.json").read_text())
    return data


# -- real runs --------------------------------------------------------------------------


def test_steady_run_measures_every_second_and_writes_both_reports(tmp_path: Path) -> None:
    # The CPU target is loosened: this run is about the pipeline, on a shared machine.
    argv = ["loadtest", "--profile", "steady", "--rate", "2000", "--duration", "4"]
    status = main([*argv, *SLOW, "--slo", "cpu_pct=90", "--report", str(tmp_path)])
    report = _report(tmp_path)
    assert status == 0, report["failures"]
    assert report["profile"] == "steady" and report["passed"] is True
    samples = report["samples"]
    assert isinstance(samples, list)
    measured = [s for s in samples if s["phase"] == "steady"]
    assert len(measured) >= 4
    for sample in measured:
        assert sample["delivered"] > 0 and sample["sent"] > 0
        assert 0 < sample["rss_mb"] < 512 and sample["cpu_pct"] > 0
        assert sample["books_live"] == sample["books_total"] == 4
        assert sample["sessions"] == "live"
    summary = report["summary"]
    assert isinstance(summary, dict)
    # The controller steers the simulator so the engine gets the asked rate (±15 % here:
    # four symbols of clustered arrivals swing more than fifty).
    assert 1_700 < summary["delivered_mean_msgs"] < 2_300
    assert summary["signals"] > 0 and summary["signal_p99_us"] > 0
    slo = {row["name"]: row for row in report["slo"]}  # type: ignore[attr-defined]
    assert slo["memory (engine RSS, peak)"]["passed"] is True
    assert slo["throughput (delivered, mean)"]["passed"] is None  # 2,000 < 10,000 asked
    assert slo["recovery (worst)"]["passed"] is None
    machine = report["machine"]
    assert isinstance(machine, dict) and machine["cores"] >= 1
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "memory (engine RSS, peak)" in html and "receive → signal latency" in html
    assert '<span class="pass">pass</span>' in html


def test_a_failing_slo_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["loadtest", "--profile", "steady", "--rate", "1000", "--duration", "2"]
    status = main([*argv, *SLOW, "--slo", "memory_mb=1", "--report", str(tmp_path)])
    assert status == 1
    report = _report(tmp_path)
    assert report["passed"] is False
    assert any("memory" in failure for failure in report["failures"])  # type: ignore[attr-defined]
    assert "FAIL" in (tmp_path / "report.html").read_text()
    assert "FAIL  memory (engine RSS, peak)" in capsys.readouterr().out


def test_chaos_accounts_for_every_trade_and_gap(tmp_path: Path) -> None:
    argv = ["loadtest", "--profile", "chaos", "--rate", "3000", "--duration", "12"]
    options = ["--fault-every", "3", "--faults", "drop_reset,gap", "--seed", "3"]
    # Timing is not judged here (the machine is shared; the chaos profile's own runs are):
    # trades held during a backfill make the few signals of a 12 s run slow at p99.
    loose = ["cpu_pct=90", "recovery_s=30", "signal_p99_ms=60000", "ws_p99_ms=60000"]
    slo = [arg for value in loose for arg in ("--slo", value)]
    status = main([*argv, *options, *SLOW, *slo, "--report", str(tmp_path)])
    report = _report(tmp_path)
    assert status == 0, report["failures"]
    for key in ("trades_sent", "trades_processed", "gaps_injected", "gaps_detected"):
        assert isinstance(report[key], int), key
    assert report["trades_sent"] == report["trades_processed"] > 1_000
    assert report["trades_lost"] == 0
    chaos = report["chaos"]
    assert isinstance(chaos, dict)
    kinds = [fault["kind"] for fault in chaos["faults"]]
    assert "drop_reset" in kinds and "gap" in kinds
    assert report["gaps_injected"] == report["gaps_detected"] >= 1
    recoveries = report["recoveries_s"]
    assert isinstance(recoveries, list)
    assert len(recoveries) == len(chaos["outages"]) >= kinds.count("drop_reset")
    assert all(0 < seconds < 30 for seconds in recoveries)
    assert 0.5 < report["availability"] <= 1.0  # type: ignore[operator]
    assert "Chaos" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--profile", "burst"], "--profile 'burst': choose one of steady"),
        (["--profile", "steady", "--rate", "-5"], "--rate must be a number above 0"),
        (["--profile", "steady", "--rate", "fast"], "--rate must be a number"),
        (["--profile", "steady", "--counts", "5,10"], "--counts applies to --profile volume"),
        (["--profile", "steady", "--slo", "latency=3"], "--slo 'latency=3': use NAME=VALUE"),
        (["--profile", "chaos", "--faults", "meteor"], "--faults 'meteor': choose among"),
        (["--profile", "volume", "--symbols", "5000"], "--symbols must be between 1 and 2,000"),
        (["--profile", "steady", "--engine", "book.max_levels=-1"], "--engine: book.max_levels"),
    ],
)
def test_bad_arguments_end_in_one_line_and_status_2(
    arguments: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["loadtest", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


def test_the_simulator_serves_historical_trades_for_backfill() -> None:
    async def scenario() -> None:
        async with Simulator(SimConfig(symbols=["BTCUSDT"], rate=2_000.0)) as sim:
            model = sim.model
            assert model is not None
            while len(model.tapes[0].window()) < 50:
                await asyncio.sleep(0.05)
            url = f"{sim.rest_url}/api/v3/historicalTrades?symbol=BTCUSDT"
            async with aiohttp.ClientSession() as http:
                latest = await (await http.get(url + "&limit=5")).json()
                first = latest[0]["id"] - 20
                page = await (await http.get(f"{url}&fromId={first}&limit=10")).json()
                ahead = await (await http.get(f"{url}&fromId={latest[-1]['id'] + 10**6}")).json()
        assert [row["id"] for row in page] == list(range(first, first + 10))
        assert ahead == []

    asyncio.run(asyncio.wait_for(scenario(), 30))


# -- logic on synthetic samples ------------------------------------------------------------


def test_slo_table_judges_each_target_and_marks_what_was_not_measured() -> None:
    figures = Figures(
        rss_peak_mb=600.0,
        cpu_mean_pct=12.0,
        signal_p99_us=450.0,
        ws_p99_us=12_000.0,
        delivered_mean=10_050.0,
        asked=10_000.0,
        recovery_max_s=None,
    )
    rows = {row.name.split(" ")[0]: row for row in evaluate(Targets(), figures)}
    assert rows["memory"].passed is False and rows["memory"].measured == 600.0
    assert rows["CPU"].passed is True
    assert rows["signal"].passed is True and rows["signal"].measured == 0.45  # ms
    assert rows["WebSocket"].passed is False
    assert rows["throughput"].passed is True
    assert rows["recovery"].passed is None
    assert not passed(list(rows.values()))
    short = evaluate(Targets(), msgspec.structs.replace(figures, delivered_mean=9_990.0))
    assert [r.passed for r in short if r.name.startswith("throughput")] == [False]
    asked_less = evaluate(Targets(), msgspec.structs.replace(figures, asked=5_000.0))
    assert [r.passed for r in asked_less if r.name.startswith("throughput")] == [None]
    relaxed = parse_target(parse_target(Targets(), "memory_mb=1024"), "ws_p99_ms=20")
    assert passed(evaluate(relaxed, figures))


def test_stress_search_ramps_retries_once_then_narrows_between_pass_and_fail() -> None:
    limit = 31_000.0  # the engine passes below this
    search = StressSearch(10_000.0, factor=1.25, retries=1, refine=2)
    tried = []
    while (rate := search.next_rate()) is not None:
        tried.append(rate)
        search.record(rate, "pass" if rate < limit else "fail")
    assert tried[:6] == [10_000.0, 12_500.0, 15_625.0, 19_531.25, 24_414.0625, 30_517.578125]
    assert tried[6] == tried[7] == 38_146.97265625  # a failure is repeated once
    # Then two bisections, both above the limit: each failure is repeated too.
    assert tried[8] == tried[9] == math.sqrt(tried[5] * tried[6])
    assert tried[10] == tried[11] == math.sqrt(tried[5] * tried[8])
    assert len(tried) == 12
    assert search.best is not None and search.failed is not None
    assert search.best < limit <= search.failed and search.failed / search.best < 1.25
    assert not search.sim_limited


def test_stress_search_stops_when_the_simulator_is_the_limit() -> None:
    search = StressSearch(10_000.0, retries=1)
    search.record(10_000.0, "pass")
    search.record(12_500.0, "sim_limit")
    assert search.next_rate() == 12_500.0  # once more: the machine is shared
    search.record(12_500.0, "sim_limit")
    assert search.next_rate() is None and search.sim_limited and search.best == 10_000.0
    nothing = StressSearch(10_000.0, retries=0)
    nothing.record(10_000.0, "fail")
    assert nothing.next_rate() is None and nothing.best is None
    with pytest.raises(ValueError, match="factor"):
        StressSearch(10_000.0, factor=1.0)


def _log(rows: list[dict[str, float]], latency_us: float = 100.0) -> SampleLog:
    log = SampleLog()
    for second, row in enumerate(rows):
        values = {
            "t": float(second),
            "phase": "step",
            "symbols": 50,
            "asked": 20_000.0,
            "model_rate": 24_000.0,
            "sent": 20_000.0,
            "delivered": 20_000.0,
            "signals": 10,
            "cpu_pct": 40.0,
            "rss_mb": 90.0,
            "sim_cpu_pct": 50.0,
            "sim_rss_mb": 80.0,
            "gc_collections": 0,
            "gc_pause_max_ms": 0.0,
            "gc_pause_ms": 0.0,
            "backlog_ms": 5.0,
            "sim_lag_ms": 0,
            "rejects": 0,
            "drops": 0,
            "reconnects": 0,
            "sessions": "live",
            "books_live": 50,
            "books_total": 50,
            "book_gaps": 0,
            "trades_missing": 0,
        }
        values.update(row)
        log.samples.append(Sample(**values))  # type: ignore[arg-type]
        histogram = LogHistogram()
        for _ in range(10):
            histogram.add(latency_us)
        log.signal_hists.append(histogram.take())
        log.state_hists.append(({0: 10}, 1.0))
    return log


def test_a_step_passes_fails_or_blames_the_simulator_for_the_right_reasons() -> None:
    targets = Targets()
    steady = judge_step(_log([{}] * 4).window(0), 20_000.0, targets)
    assert steady.verdict == "pass" and steady.reasons == []
    growing = _log([{"backlog_ms": 100.0 + 80 * i} for i in range(4)]).window(0)
    step = judge_step(growing, 20_000.0, targets)
    assert step.verdict == "fail" and "backlog growing" in step.reasons[0]
    slow = judge_step(_log([{}] * 4, latency_us=80_000.0).window(0), 20_000.0, targets)
    assert slow.verdict == "fail" and slow.reasons[0].startswith("signal p99 80")
    short = _log([{"delivered": 12_000.0, "sent": 12_000.0}] * 4).window(0)
    step = judge_step(short, 20_000.0, targets)
    assert step.verdict == "fail" and step.reasons == ["delivered 12,000 of 20,000 msg/s"]
    # The simulator starved of CPU (lagging) while the engine's socket fills: the engine's fault.
    unread = [{"sim_lag_ms": 900, "engine_rx_kb": 2_048.0, "delivered": 15_000.0}] * 4
    step = judge_step(_log(unread).window(0), 20_000.0, targets)
    assert step.verdict == "fail" and "2,048 KB unread" in step.reasons[0]
    starved = _log([{"sent": 15_000.0, "delivered": 15_000.0, "sim_lag_ms": 900}] * 4)
    step = judge_step(starved.window(0), 20_000.0, targets)
    assert step.verdict == "sim_limit" and "the simulator sent 15,000" in step.reasons[0]
    dropped = _log([{"sent": 15_000.0, "delivered": 15_000.0, "sim_lag_ms": 900, "drops": 1}])
    assert judge_step(dropped.window(0), 20_000.0, targets).verdict == "fail"


def test_rate_controller_delivers_the_asked_mean_despite_noise_and_an_unknown_ratio() -> None:
    rng = random.Random(5)
    controller = RateController(10_000.0)
    model = controller.model_rate
    sent_total = 0.0
    for second in range(40):
        # The plant: the simulator sends 0.62 of its model rate, ±15 % per second.
        sent = 0.62 * model * rng.uniform(0.85, 1.15)
        if second >= 10:
            sent_total += sent
        wanted = controller.update(model, sent, lag_ms=0.0)
        if wanted is not None:
            model = wanted
        if second == 9:
            controller.restart()  # the measured window starts
    assert math.isclose(controller.ratio, 0.62, rel_tol=0.08)
    assert 10_000.0 <= sent_total / 30 < 10_600.0
    # A lagging simulator says nothing about the ratio.
    assert controller.update(model, 1_000.0, lag_ms=900.0) is None


def test_histogram_percentiles_are_within_one_bucket_of_numpy() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(mean=4.0, sigma=1.0, size=20_000)
    histogram = LogHistogram()
    halves = [LogHistogram(), LogHistogram()]
    for index, value in enumerate(values.tolist()):
        histogram.add(value)
        halves[index % 2].add(value)
    merged = LogHistogram()
    for half in halves:
        merged.merge(*half.take())
    for q in (50, 90, 99, 99.9):
        exact = float(np.percentile(values, q))
        assert exact <= histogram.percentile(q) <= exact * 1.021  # type: ignore[operator]
        assert merged.percentile(q) == histogram.percentile(q)
    assert histogram.percentile(100) == float(values.max())
    assert LogHistogram().percentile(99) is None


def test_trades_are_lost_when_the_engine_holds_fewer_ids_than_the_market_published() -> None:
    ids = SimIds(ranges={"BTCUSDT": (100, 199), "ETHUSDT": (5, 9)}, paused=True)
    whole = EngineAccount(
        symbols={
            "BTCUSDT": SymbolAccount(199, 100, 0, 3, 0),
            "ETHUSDT": SymbolAccount(9, 5, 0, 0, 1),
        }
    )
    assert trades_lost(ids, whole) == {}
    holes = EngineAccount(
        symbols={
            "BTCUSDT": SymbolAccount(199, 97, 3, 0, 0),  # three ids never filled
            "ETHUSDT": SymbolAccount(7, 3, 0, 0, 0),  # the last two never arrived
        }
    )
    assert trades_lost(ids, holes) == {"BTCUSDT": 3, "ETHUSDT": 2}


def test_socket_queues_split_engine_and_simulator_sides(tmp_path: Path) -> None:
    # /proc/net/tcp lines: local, remote, state 01 (established), tx:rx queues.
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
    rows = [
        "0: 0100007F:1F90 0100007F:C350 01 00001000:00000000 00:00000000 00000000 0",  # sim side
        "1: 0100007F:C350 0100007F:1F90 01 00000000:00020000 00:00000000 00000000 0",  # engine
        "2: 0100007F:C351 0100007F:1F90 0A 00000000:00FF0000 00:00000000 00000000 0",  # listen
        "3: 0100007F:AAAA 0100007F:BBBB 01 00000000:00000400 00:00000000 00000000 0",  # other
    ]
    table = tmp_path / "tcp"
    table.write_text(header + "\n".join(rows) + "\n")
    queues = socket_queues(0x1F90, (table,))
    assert queues.engine_rx == 0x20000 and queues.sim_tx == 0x1000
    missing = socket_queues(0x1F90, (tmp_path / "absent",))
    assert missing.engine_rx is None and missing.sim_tx is None


def test_drain_time_is_when_the_backlog_stays_under_the_threshold() -> None:
    fine = [(t / 10, 5.0) for t in range(0, 100)]  # 10 s at 5 ms
    fine += [(10 + t / 10, 400.0 - 20 * t) for t in range(20)]  # a burst draining in 2 s
    fine += [(12 + t / 10, 3.0) for t in range(30)]
    assert drained_at(fine, 10.0, 20.0) == pytest.approx(12.0)  # 11.9 s is still at 20 ms
    assert drained_at(fine[:-25], 10.0, 20.0) is None  # under a second of evidence
    spiky = [*fine, (15.5, 50.0), (15.6, 3.0)]
    assert drained_at(spiky, 10.0, 20.0) is None  # it came back: not drained for good


def test_soak_trend_leaves_out_the_first_minute_and_fits_the_slope() -> None:
    log = _log([{"rss_mb": 100.0 + (0.0 if t < 60 else (t - 60) / 3_600)} for t in range(600)])
    # 1 MB/h after a first minute of filling: the filling is not read as a leak.
    for sample in log.samples[:60]:
        sample.rss_mb = 50.0 + sample.t
    trend = soak_result(log.window(0))
    assert trend.skipped_s == 60
    assert trend.rss_slope_mb_h == pytest.approx(1.0, rel=1e-6)
    assert trend.latency_drift_us == 0.0
