"""``tickhawk replay`` on the real captures: output kinds, totals, bad lines."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tickhawk.capture import load_capture, parse_capture
from tickhawk.rejects import Rejects


def tickhawk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickhawk.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_replay_emits_every_trade_bar_and_signal(usdm_capture: Path) -> None:
    result = tickhawk("replay", str(usdm_capture), "--emit", "trades,bars,signals")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    trades = [x for x in lines if x["type"] == "trade"]
    bars = [x for x in lines if x["type"] == "bar"]
    signals = [x for x in lines if x["type"] == "signal"]
    assert len(trades) == 21313
    ids = [t["id"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # contiguous in the capture
    assert set(trades[0]) >= {"symbol", "id", "price", "qty", "ts"}
    minute = [b for b in bars if b["interval"] == "1m"]
    assert len(minute) == 5  # 23:54:14-23:59:59: 23:54 .. 23:58 closed, 23:59 still forming
    assert [b["open_time"] % 60000 for b in minute] == [0] * 5
    for bar in bars:
        assert set(bar) >= {
            "symbol",
            "interval",
            "open_time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "trades",
        }
        assert (
            bar["low"]
            <= min(bar["open"], bar["close"])
            <= max(bar["open"], bar["close"])
            <= bar["high"]
        )
    assert sum(b["trades"] for b in minute) == len(
        [t for t in trades if t["ts"] < minute[-1]["open_time"] + 60000]
    )
    assert signals and all(s["direction"] in (1, -1) and 0 <= s["score"] <= 1 for s in signals)


def test_replay_json_summary(spot_capture: Path) -> None:
    result = tickhawk("replay", str(spot_capture), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["messages"] == 41249
    assert summary["trades"] == 9757 and summary["rejected"] == 0
    for key in ("load_s", "wall_s", "cpu_s", "msgs_per_s", "bars", "signals"):
        assert summary[key] > 0
    assert summary["msgs_per_s"] == pytest.approx(summary["messages"] / summary["wall_s"], rel=0.01)


def test_capture_lines_that_do_not_parse_are_counted(tmp_path: Path, spot_capture: Path) -> None:
    good = gzip.decompress(spot_capture.read_bytes()).split(b"\n")[:200]
    bad = [
        b"garbage",
        b"123",
        b'abc {"stream":1}',
        b"17 {not json",
        b'18 {"stream":"btcusdt@trade","data":{}}',
    ]
    path = tmp_path / "mixed.gz"
    path.write_bytes(gzip.compress(b"\n".join(good[:100] + bad + good[100:])))
    rejects = Rejects()
    assert len(load_capture(path, rejects)) == 200 + 2  # two bad lines still look like messages
    assert rejects.counts == {"capture_line": 3}
    result = tickhawk("replay", str(path), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rejects"] == {"capture_line": 3, "not_json": 1, "schema": 1}


def test_replay_user_errors_are_one_line(tmp_path: Path) -> None:
    result = tickhawk("replay", str(tmp_path / "nope.gz"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "capture not found" in result.stderr
    (tmp_path / "c.txt").write_text("1 {}\n")
    result = tickhawk("replay", str(tmp_path / "c.txt"), "--emit", "candles")
    assert result.returncode == 2 and "--emit candles is not a kind" in result.stderr
    assert "Traceback" not in result.stderr


def test_parse_capture_plain_text() -> None:
    assert parse_capture(b'1 {"a":1}\n\n2 {"b":2}\n') == [(1, b'{"a":1}'), (2, b'{"b":2}')]
