"""``tickhawk sim`` arguments and runs (through add_arguments/run, as cli.py will call them)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from tickhawk.sim import cli


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tickhawk sim")
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--n-symbols", "0"], "1 to 2000 symbols"),
        (["--n-symbols", "2001"], "1 to 2000 symbols"),
        (["--symbols", "BTCUSDT,btc-usdt"], "bad symbol"),
        (["--symbols", ","], "at least one symbol"),
        (["--rate", "-5"], "rate must be a positive"),
        (["--speed", "2"], "--speed applies to --replay"),
        (["--replay", "/nonexistent/capture.gz"], "cannot read --replay"),
        (["--replay", "x.gz", "--speed", "fast"], "--speed must be a number"),
        (["--ws-port", "70000"], "ws_port must be between"),
        (["--duration", "0"], "--duration must be a positive"),
        (["--fault", "gap symbl=BTCUSDT"], "--fault: fault 'gap symbl=BTCUSDT': gap has no option"),
        (["--fault", "every=0s drop"], "every must be a positive duration"),
        (["--fault", "rest_error status=404"], "status must be 429, 418 or 500-599"),
        (["--faults", "/nonexistent/faults.txt"], "cannot read --faults"),
        (["--batch-ms", "0"], "--batch-ms must be from 0.1 to 1000 ms"),
        (["--batch-ms", "nan"], "--batch-ms must be from 0.1 to 1000 ms"),
        (["--batch-ms", "5000"], "--batch-ms must be from 0.1 to 1000 ms"),
    ],
)
def test_bad_arguments_end_in_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err


def test_batch_ms_reaches_the_simulator_config() -> None:
    parser = argparse.ArgumentParser(prog="tickhawk sim")
    cli.add_arguments(parser)
    assert cli._config(parser.parse_args([])).batch_ms == 2.0
    assert cli._config(parser.parse_args(["--batch-ms", "7.5"])).batch_ms == 7.5


def test_runs_for_a_duration_and_reports(tmp_path: Path) -> None:
    script = (
        "import argparse, sys\n"
        "from tickhawk.sim import cli\n"
        "parser = argparse.ArgumentParser()\n"
        "cli.add_arguments(parser)\n"
        "sys.exit(cli.run(parser.parse_args(sys.argv[1:])))\n"
    )
    argv = [
        "--n-symbols", "3", "--duration", "1.2", "--status-interval", "0.4",
        "--ws-port", "0", "--rest-port", "0",
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("sim: WebSocket ws://127.0.0.1:") and "/stream?streams=" in out[0]
    assert out[1].startswith("sim: REST      http://127.0.0.1:")
    status = [line for line in out[2:] if "msg/s" in line]
    assert len(status) >= 2 and "connections" in status[0]
    assert done.stderr == ""


def test_a_bad_line_in_a_fault_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = tmp_path / "faults.txt"
    schedule.write_text("# chaos\nat=1s gap symbol=BTCUSDT\n\nevery=2s drop mode=abrupt\n")
    assert _run(["--faults", str(schedule)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--faults {schedule}: line 4: fault 'every=2s drop" in err


def test_runs_a_fault_schedule_and_reports_faults(tmp_path: Path) -> None:
    schedule = tmp_path / "faults.txt"
    schedule.write_text("every=200ms drop   # no client: each drop is counted as missed\n")
    script = (
        "import argparse, sys\n"
        "from tickhawk.sim import cli\n"
        "parser = argparse.ArgumentParser()\n"
        "cli.add_arguments(parser)\n"
        "sys.exit(cli.run(parser.parse_args(sys.argv[1:])))\n"
    )
    argv = [
        "--n-symbols", "1", "--duration", "1.2", "--status-interval", "0.5",
        "--ws-port", "0", "--rest-port", "0", "--faults", str(schedule),
        "--fault", "at=100ms gap symbol=BTCUSDT",
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[2] == "sim: 2 faults scheduled: at=100ms gap symbol=BTCUSDT; every=200ms drop"
    status = [line for line in out if "msg/s" in line]
    assert "faults missed=" in status[-1]
