"""``tickhawk indicators``: kline CSV in, a column per indicator output, equal to TA-Lib's batch."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import talib

from tickhawk.cli import main

KLINES = (
    Path(__file__).resolve().parent.parent.parent
    / "shared/data/klines/btc-perp-20211231-20220201_1m.csv"
)


def shared_lines(n: int) -> list[str]:
    if not KLINES.exists():
        pytest.fail(f"test data {KLINES} is missing: clone the shared data beside the repo")
    return KLINES.read_text().splitlines()[: n + 1]


def binance_csv(path: Path, n: int) -> list[list[float]]:
    """Write ``n`` rows of Binance's 12-column kline CSV, no header; return o h l c v count."""
    rows = []
    with path.open("w") as out:
        for i, line in enumerate(shared_lines(n)[1:]):
            _, o, h, low, c, v = line.split(",")
            open_ms = 1_640_991_660_000 + i * 60_000
            count = 3 + i % 50
            out.write(f"{open_ms},{o},{h},{low},{c},{v},{open_ms + 59_999},0,{count},0,0,0\n")
            rows.append([float(o), float(h), float(low), float(c), float(v), float(count)])
    return rows


def read(path: Path) -> list[list[str]]:
    with path.open(newline="") as source:
        return list(csv.reader(source))


def cell(text: str) -> float:
    return math.nan if text == "" else float(text)


def test_binance_csv_outputs_equal_talib_batch(tmp_path: Path) -> None:
    source = tmp_path / "klines.csv"
    rows = np.array(binance_csv(source, 400))
    out = tmp_path / "out.csv"
    specs = ["rsi=RSI(timeperiod=14)", "bb=BBANDS(timeperiod=20)", "mavp=MAVP(periods=trades)"]
    argv = ["indicators", str(source), "--out", str(out)]
    assert main([*argv, *[x for spec in specs for x in ("--spec", spec)]]) == 0
    table = read(out)
    assert table[0] == [
        "open_time",
        "rsi",
        "bb.upperband",
        "bb.middleband",
        "bb.lowerband",
        "mavp",
    ]
    assert len(table) == 401 and table[1][0] == "1640991660000"
    c, count = rows[:, 3], rows[:, 5]
    expected = [
        talib.RSI(c, 14),
        *talib.BBANDS(c, 20),
        talib.MAVP(c, count),
    ]
    for column, series in enumerate(expected, start=1):
        got = np.array([cell(row[column]) for row in table[1:]])
        np.testing.assert_array_equal(got, series)  # exact: values are written with repr
    assert table[14][1] == "" and table[15][1] != ""  # empty until RSI(14) has a value


def test_headed_csv_with_iso_times_and_candle_integers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "klines.csv"
    source.write_text("\n".join(shared_lines(300)) + "\n")
    assert main(["indicators", str(source), "--spec", "CDLENGULFING", "--spec", "m=MACD"]) == 0
    table = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert table[0] == ["timestamp", "cdlengulfing", "m.macd", "m.macdsignal", "m.macdhist"]
    assert table[1][0] == "2021-12-31 23:01:00.000000"
    candles = {row[1] for row in table[4:]}
    assert candles <= {"0", "80", "-80", "100", "-100"} and "0" in candles
    assert table[33][2] == "" and table[34][2] != ""  # MACD(12, 26, 9): 34 bars


@pytest.mark.parametrize(
    ("content", "spec", "message"),
    [
        ("timestamp,open,high,low,close,volume\nx,1,2,0.5,abc,3\n", "RSI", "line 2: close 'abc'"),
        ("time,open,high,low,volume\n", "RSI", "the header has no close column"),
        ("1,2,3\n", "RSI", "line 1: 3 columns; a headerless file must be Binance's kline CSV"),
        ("timestamp,open,high,low,close,volume\nx,1,2,0.5,nan,3\n", "RSI", "is not finite"),
        ("", "RSI", "the file is empty"),
        ("timestamp,open,high,low,close,volume\n", "x=RSY(timeperiod=3)", "did you mean RSI"),
        ("timestamp,open,high,low,close,volume\n", "RSI(period=3)", "no parameter 'period'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    spec: str,
    message: str,
) -> None:
    source = tmp_path / "klines.csv"
    source.write_text(content)
    assert main(["indicators", str(source), "--spec", spec]) == 2
    error = capsys.readouterr().err
    assert error.startswith("tickhawk indicators: ") and message in error
    assert error.count("\n") == 1


def test_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["indicators", str(tmp_path / "none.csv"), "--spec", "RSI"]) == 2
    assert "cannot read" in capsys.readouterr().err
