"""The performance regression gate: its comparison on fixed numbers, and that it fails on a
real slowdown measured on real data (``tickhawk bench --gate``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import DATA
from tickhawk.app.bench import select
from tickhawk.bench.baseline import BaselineError, read_baseline, write_baseline
from tickhawk.bench.cases import build
from tickhawk.bench.data import BenchData, NullSink, as_agg_trades, kline_payloads
from tickhawk.bench.gate import THRESHOLDS, compare, quantities, report_lines
from tickhawk.bench.instructions import count_instructions
from tickhawk.bench.measure import Result, measure
from tickhawk.cli import main
from tickhawk.model import Bar, Trade
from tickhawk.rejects import Rejects
from tickhawk.venues.binance.feed import BinanceFeed

# -- the comparison, on fixed numbers -----------------------------------------------------


def test_only_growth_beyond_the_threshold_is_a_regression() -> None:
    baseline = {"ratio.a": 2.0, "ratio.b": 1.0, "ratio.c": 3.0, "ratio.d": 4.0}
    now = {"ratio.a": 2.29, "ratio.b": 1.2, "ratio.c": 2.0, "ratio.d": 4.6}
    limits = {"ratio.a": 0.15, "ratio.b": 0.15, "ratio.c": 0.15, "ratio.d": 0.15}
    verdicts = {v.name: v for v in compare(baseline, now, limits)}
    assert verdicts["ratio.a"].status == "ok"  # +14.5 %
    assert verdicts["ratio.b"].status == "regression"  # +20 %
    assert verdicts["ratio.c"].status == "ok"  # faster is never a regression
    assert verdicts["ratio.d"].status == "ok"  # exactly at the limit passes
    assert verdicts["ratio.b"].change == pytest.approx(0.2)


def test_what_cannot_be_compared_is_skipped_with_the_reason() -> None:
    limits = {"ratio.new": 0.1, "ratio.gone": 0.1, "instructions.ratio": 0.02, "ratio.x": 0.1}
    verdicts = {
        v.name: v
        for v in compare(
            {"ratio.gone": 1.0, "instructions.ratio": 1.7, "ratio.x": 1.0},
            {"ratio.new": 1.0, "instructions.ratio": 9.9, "ratio.x": 5.0},
            limits,
            {"instructions.ratio": "valgrind is not installed"},
        )
    }
    assert verdicts["ratio.new"].status == "skipped"
    assert "--update-baseline" in verdicts["ratio.new"].note
    assert verdicts["ratio.gone"].status == "skipped"
    assert verdicts["instructions.ratio"].status == "skipped"
    assert verdicts["instructions.ratio"].note == "valgrind is not installed"
    assert verdicts["ratio.x"].status == "regression"  # the rest still counts


def test_a_regression_line_names_the_quantity_both_values_and_the_threshold() -> None:
    verdicts = compare(
        {"ratio.book.apply": 2.0}, {"ratio.book.apply": 2.5}, {"ratio.book.apply": 0.1}
    )
    (line,) = report_lines(verdicts)
    assert line.startswith("REGRESSION")
    assert "ratio.book.apply" in line
    assert "baseline 2," in line and "now 2.5" in line
    assert "+25.0%" in line and "threshold +10%" in line


def test_quantities_are_the_ratios_and_instruction_counts() -> None:
    results = {
        "a": Result("a", "msg", 10, 5.0, "ref", 2.0, 2.5),
        "b": Result("b", "msg", 10, 5.0),  # no reference: nothing to gate
    }
    assert quantities(results, None) == {"ratio.a": 2.5}
    every_case = {f"ratio.{name}" for name in select(None)}
    assert every_case <= set(THRESHOLDS)  # every case's ratio has a threshold


def test_select_takes_names_and_prefixes() -> None:
    assert select("strategy.on_trade") == ["strategy.on_trade"]
    assert select("decode")[0] == "decode.trade" and len(select("decode")) == 5
    assert select("pipeline,pipeline.usdm") == ["pipeline.usdm", "pipeline.spot"]
    with pytest.raises(ValueError, match="matches no case"):
        select("decoder")


# -- real measurements --------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> BenchData:
    if not DATA.exists():
        pytest.fail(f"{DATA} is missing: the benchmarks read the real captures there")
    return BenchData(DATA, klines=2_000)


def test_a_threefold_slowdown_measured_for_real_fails_the_gate(data: BenchData) -> None:
    names = ["strategy.on_trade"]
    before = {r.name: r for r in measure(build(data, names), 3, parts=4)}
    slowed = {
        r.name: r
        for r in measure(build(data, names, slowdown={"strategy.on_trade": 3}), 3, parts=4)
    }
    name = "ratio.strategy.on_trade"
    (verdict,) = compare(
        quantities(before, None), quantities(slowed, None), {name: THRESHOLDS[name]}
    )
    assert verdict.status == "regression", verdict
    assert verdict.change is not None and verdict.change > 1.0  # about +200 %, not noise


def test_the_gate_command_exits_1_on_a_slowed_case(
    data: BenchData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    common = ["bench", "--cases", "bar.update", "--reps", "3", "--no-instructions"]
    common += ["--data", str(DATA), "--baseline", str(baseline)]
    assert main([*common, "--update-baseline"]) == 0
    recorded = json.loads(baseline.read_text())
    assert recorded["cases"]["bar.update"]["ratio"] > 1.0
    assert {"cpu", "cores", "python"} <= set(recorded["machine"])
    capsys.readouterr()
    assert main([*common, "--gate", "--slowdown", "bar.update=3"]) == 1
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("REGRESSION")]
    assert "ratio.bar.update" in line and "threshold +" in line
    assert "gate: 1 regression(s)" in out


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instruction_counts_are_exact_and_see_a_slowdown() -> None:
    capture = DATA / "binance" / "usdm_btcusdt_20240808.gz"
    normal = count_instructions(capture, 1_000)
    slowed = count_instructions(capture, 1_000, slowdown=2)
    # Two pipelines per message cost twice the instructions; decode-only is untouched.
    assert slowed.pipeline_per_msg == pytest.approx(2 * normal.pipeline_per_msg, rel=0.05)
    assert slowed.decode_per_msg == pytest.approx(normal.decode_per_msg, rel=0.01)
    name = "instructions.pipeline_per_msg"
    (verdict,) = compare(
        {name: normal.pipeline_per_msg}, {name: slowed.pipeline_per_msg}, {name: 0.02}
    )
    assert verdict.status == "regression"


# -- the command's errors and the baseline file -------------------------------------------


def test_errors_a_user_can_cause_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.json"
    assert main(["bench", "--gate", "--baseline", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--update-baseline" in err
    assert main(["bench", "--cases", "nothing"]) == 2
    assert "matches no case" in capsys.readouterr().err
    no_data = ["bench", "--cases", "bar.update", "--reps", "1", "--data", str(tmp_path)]
    assert main([*no_data, "--baseline", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--data DIR" in err
    assert main(["bench", "--slowdown", "bar.update=x", "--cases", "bar.update"]) == 2
    assert "CASE=K" in capsys.readouterr().err


def test_baseline_round_trip_and_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    result = Result("book.apply", "level", 100, 280.0, "bare dict", 125.0, 2.24)
    written = write_baseline(
        path, [result], reps=7, command="test", instructions=None, loopback=None
    )
    read = read_baseline(path)
    assert read.cases["book.apply"] == result
    assert read.machine == written.machine and read.recorded == written.recorded
    path.write_text("{not json")
    with pytest.raises(BaselineError, match="cannot read the baseline"):
        read_baseline(path)


def test_the_stored_baseline_covers_every_gated_quantity() -> None:
    stored = read_baseline(Path(__file__).resolve().parent.parent / "benchmarks/baseline.json")
    present = quantities(stored.cases, stored.instructions)
    assert set(THRESHOLDS) <= set(present), set(THRESHOLDS) - set(present)


# -- the derived data the cases and the cryptofeed peer run on -----------------------------


class _Collect(NullSink):
    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.bars: list[Bar] = []

    def on_trade(self, trade: Trade, t_recv: int, t_decoded: int) -> None:
        self.trades.append(trade)

    def on_venue_bar(self, bar: Bar) -> None:
        self.bars.append(bar)


def test_trades_rewritten_as_agg_trades_decode_to_the_same_trades(data: BenchData) -> None:
    original = data.trades[:500]
    agg = [p for _, p in as_agg_trades(data.usdm) if b"@aggTrade" in p[:40]][:500]
    sink = _Collect()
    feed = BinanceFeed({"BTCUSDT": sink}, ["btcusdt@aggTrade"], Rejects())
    for payload in agg:
        feed.on_message(payload, 0, 0)
    assert feed.rejects.total == 0
    assert [(t.id, t.price, t.qty, t.side, t.ts_event) for t in sink.trades] == [
        (t.id, t.price, t.qty, t.side, t.ts_event) for t in original
    ]


def test_kline_payloads_are_closed_bars_of_the_csv(data: BenchData) -> None:
    payloads = kline_payloads(DATA / "klines/btc-perp-20211231-20220201_1m.csv", 3)
    sink = _Collect()
    feed = BinanceFeed({"BTCUSDT": sink}, ["btcusdt@kline_1m"], Rejects())
    for payload in payloads:
        feed.on_message(payload, 0, 0)
    assert feed.rejects.total == 0
    got = [(b.open, b.high, b.low, b.close, b.volume) for b in sink.bars]
    assert got == [(b.open, b.high, b.low, b.close, b.volume) for b in data.bars[:3]]
