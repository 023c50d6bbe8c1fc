"""``tickhawk profile``: CPU and memory profiles of the demo and of a replay, written to files."""

from __future__ import annotations

import pstats
import subprocess
import sys
from pathlib import Path

import pytest

from tickhawk.cli import main


def profile(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickhawk.cli", "profile", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )


def engine_functions(path: Path) -> set[str]:
    """Return ``module.py:function`` of every tickhawk function in a pstats file."""
    stats = pstats.Stats(str(path))
    return {
        f"{Path(filename).name}:{function}"
        for filename, _, function in stats.stats  # type: ignore[attr-defined]
        if "/tickhawk/" in filename
    }


def section(text: str, title: str) -> str:
    """Return the lines of a report section, up to the next title."""
    start = text.index(title)
    lines = text[start:].splitlines()[1:]
    out = []
    for line in lines:
        if not line.startswith("  "):
            break
        out.append(line)
    return "\n".join(out)


def test_profile_the_demo(tmp_path: Path) -> None:
    out = tmp_path / "prof"
    done = profile("--seconds", "3", "--out", str(out), "--top", "30")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("profile: demo (5 symbols, 2,000 msg/s simulated), 3.")
    engine = section(text, "engine functions (tickhawk, simulator excluded) by own time")
    # the hot path: the frame callback, the feed, the symbol state
    for name in ("venues/binance/feed.py", "state.py", "net/link.py:"):
        assert name in engine, engine
    assert "on_message" in engine and "on_trade" in engine
    assert "tickhawk/sim/" not in engine
    held = section(text, "engine allocation sites (tickhawk, simulator excluded) held at the end")
    assert "tickhawk/ring.py:" in held  # the preallocated trade rings
    assert "allocation sites by growth over the window" in text
    assert text.rstrip().endswith("memory.txt")
    functions = engine_functions(out / "profile.pstats")
    assert {"feed.py:on_message", "state.py:on_trade", "link.py:on_ws_frame"} <= functions
    assert "top 30 by cumulative time" in (out / "profile.txt").read_text()
    assert "allocation sites by size held at the end" in (out / "memory.txt").read_text()


def test_profile_a_replay(tmp_path: Path, spot_capture: Path) -> None:
    out = tmp_path / "replay"
    done = profile("--seconds", "1", "--target", "replay", str(spot_capture), "--out", str(out))
    assert done.returncode == 0, done.stderr
    head = done.stdout.splitlines()[0]
    assert f"replay of {spot_capture}" in head and " messages (" in head
    messages = int(head.split(" s window, ")[1].split(" messages")[0].replace(",", ""))
    assert messages % 41_249 == 0 and messages >= 41_249  # whole passes of the capture
    functions = engine_functions(out / "profile.pstats")
    assert {"feed.py:on_message", "state.py:on_trade", "sync.py:on_diff"} <= functions


def test_profile_with_pyinstrument(tmp_path: Path, spot_capture: Path) -> None:
    pytest.importorskip("pyinstrument")
    out = tmp_path / "pyi"
    done = profile(
        "--seconds", "1", "--target", "replay", str(spot_capture), "--cpu", "pyinstrument",
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "CPU by pyinstrument" in done.stdout
    assert "state.py:on_trade" in engine_functions(out / "profile.pstats")
    assert "on_message" in (out / "pyinstrument.txt").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seconds", "0"], "--seconds must be a positive number of seconds"),
        (["--target", "replay"], "--target replay needs one capture: --target replay PATH"),
        (["--target", "demo", "x"], "--target demo takes no path"),
        (["--target", "live"], "--target 'live': use demo or replay PATH"),
        (["--cpu", "perf"], "--cpu 'perf': use cprofile or pyinstrument"),
        (["--top", "0"], "--top must be at least 1"),
        (["--target", "replay", "/nonexistent.gz"], "capture not found: /nonexistent.gz"),
    ],
)
def test_bad_arguments_end_in_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profile", *args, "--out", str(tmp_path / "p")]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"tickhawk profile: {message}"
    assert captured.out == ""
