"""The memory budget: a ceiling computed from the configuration, refused at start when too big."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from tickhawk.app.live import LiveApp
from tickhawk.budget import MB, BudgetError, check, dict_table_bytes, estimate
from tickhawk.config import Config, parse_config
from tickhawk.presets import fast_config, fast_config_data

ROOT = Path(__file__).resolve().parent.parent
STREAMS = ["trade", "bookTicker", "depth@100ms"]


def symbols(n: int) -> list[str]:
    return [f"SYM{i:04d}USDT" for i in range(n)]


def preset(n: int, **resources: Any) -> Config:
    data = fast_config_data(
        symbols(n), STREAMS, ws_url="ws://127.0.0.1:9", rest_url="http://127.0.0.1:9"
    )
    data["resources"] = resources
    return parse_config(data)


def tickhawk(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickhawk.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def write_config(path: Path, config: Config) -> Path:
    path.write_text(yaml.safe_dump(msgspec.to_builtins(config)))
    return path


def test_estimate_grows_linearly_with_symbols() -> None:
    one = estimate(preset(1))
    base = one.parts[0].bytes
    per_symbol = one.total - base
    for n in (10, 100, 1000):
        result = estimate(preset(n))
        assert result.total - base == n * per_symbol
        parts = {p.name: p.bytes for p in result.parts}
        assert parts["trades"] == n * 4096 * 41  # the ring's exact bytes per trade
    # each setting moves only its own part
    data = fast_config_data(symbols(10), STREAMS)
    data["engine"] = {"intervals": ["1s", "1m"], "trade_capacity": 1024}
    small = estimate(parse_config(data))
    big = estimate(preset(10))
    by_name = {p.name: p.bytes for p in small.parts}
    assert {p.name: p.bytes for p in big.parts}["trades"] == 4 * by_name["trades"]
    assert {p.name: p.bytes for p in big.parts}["books"] == by_name["books"]


@pytest.mark.parametrize("entries", [0, 1, 5, 6, 100, 1099, 5500, 43_690, 43_691, 200_000])
def test_dict_table_bytes_mirrors_cpython(entries: int) -> None:
    built = dict.fromkeys(float(i) for i in range(entries))
    assert dict_table_bytes(entries) == sys.getsizeof(built)


def test_refusal_names_the_overshoot_and_settings_that_fit() -> None:
    config = preset(300)
    result = estimate(config)
    assert result.over > 0  # the preset's books and bars at 300 symbols exceed 512 MB
    with pytest.raises(BudgetError) as caught:
        check(config)
    message = str(caught.value)
    assert "\n" not in message
    assert f"needs about {result.total_mb:,.0f} MB" in message
    assert f"{-(-result.over // MB):,} MB over resources.memory_budget_mb = 512" in message
    # the first suggestion is the biggest part; applying it alone makes the configuration fit
    found = re.search(r"lower book\.max_levels \(5,000 → ([\d,]+) saves", message)
    assert found is not None, message
    lowered = int(found.group(1).replace(",", ""))
    book = msgspec.structs.replace(config.book, max_levels=lowered)
    assert estimate(msgspec.structs.replace(config, book=book)).over <= 0
    fits = re.search(r"venue\.symbols \(300 → ([\d,]+)\)", message)
    assert fits is not None, message
    assert estimate(preset(int(fits.group(1)))).over <= 0
    assert estimate(preset(int(fits.group(1)) + 1)).over > 0


def test_live_app_refuses_before_building_the_engine() -> None:
    config = preset(2000)
    with pytest.raises(BudgetError, match=r"over resources\.memory_budget_mb = 512"):
        LiveApp(config)
    roomy = preset(3, memory_budget_mb=4096)
    assert LiveApp(roomy).budget.total < 4096 * MB


def test_tickhawk_run_refuses_an_oversized_config_in_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path / "big.yaml", preset(500, memory_budget_mb=256))
    done = tickhawk("run", str(path), "--duration", "5")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tickhawk run: the configuration needs about ")
    assert "MB over resources.memory_budget_mb = 256: lower book.max_levels (5,000 → " in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_run_check_prints_the_breakdown(tmp_path: Path) -> None:
    path = write_config(tmp_path / "small.yaml", preset(50))
    done = tickhawk("run", str(path), "--check")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "memory ceiling for 50 symbols:" in out
    for part in ("base", "trades", "bars", "books", "indicators", "features"):
        assert re.search(rf"^  {part} +[\d.]+ MB", out, re.MULTILINE), part
    assert "(resources.memory_budget_mb = 512: fits)" in out
    over = write_config(tmp_path / "over.yaml", preset(50, memory_budget_mb=100))
    done = tickhawk("run", str(over), "--check")
    assert done.returncode == 2
    assert "MB over)" in done.stdout and len(done.stderr.strip().splitlines()) == 1


def test_demo_refuses_too_many_symbols_in_its_own_terms() -> None:
    done = tickhawk("demo", "--symbols", "1500", "--duration", "1")
    assert done.returncode == 2
    fits = estimate(fast_config(symbols(1500), STREAMS)).symbols_that_fit()
    assert done.stderr.strip() == (
        f"tickhawk demo: 1,500 symbols of the demo's preset can grow to about "
        f"{estimate(fast_config(symbols(1500), STREAMS)).total_mb:,.0f} MB, over the default "
        f"memory budget of 512 MB; use --symbols {fits} or fewer"
    )


def test_replay_counts_the_loaded_capture(tmp_path: Path, usdm_capture: Path) -> None:
    data = fast_config_data(["BTCUSDT"], ["trade", "bookTicker", "depth@0ms"], market="usdm")
    data["resources"] = {"memory_budget_mb": 100}  # the engine fits; engine + capture do not
    assert estimate(parse_config(data)).over < 0
    path = tmp_path / "replay.yaml"
    path.write_text(yaml.safe_dump(data))
    done = tickhawk("replay", str(usdm_capture), "--config", str(path))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "over resources.memory_budget_mb = 100" in done.stderr


def test_engine_filled_to_capacity_stays_within_its_estimate() -> None:
    """A real engine, every ring, bar history, book side and window full: RSS vs the estimate."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "memory_budget.py"), "--one", "20"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    estimated, measured = result["estimated_growth_mb"], result["measured_growth_mb"]
    assert result["levels"] == [2 * 5500]  # both sides full: max_levels + 10 % slack
    assert estimated > 30
    assert 0.85 * estimated < measured < 1.10 * estimated, result
