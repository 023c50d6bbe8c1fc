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
from tickhawk.presets import SIZES, fast_config, fast_config_data, memory_goal_mb

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


def defaults(n: int, **resources: Any) -> Config:
    """The configuration defaults (sizes that do not depend on the symbol count), with books."""
    return parse_config(
        {
            "venue": {"symbols": symbols(n), "streams": STREAMS, "ws_url": "ws://127.0.0.1:9"},
            "engine": {"intervals": ["1s", "1m"]},
            "resources": resources,
        }
    )


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
    one = estimate(defaults(1))
    base = one.parts[0].bytes
    per_symbol = one.total - base
    for n in (10, 100, 1000):
        result = estimate(defaults(n))
        assert result.total - base == n * per_symbol
        parts = {p.name: p.bytes for p in result.parts}
        assert parts["trades"] == n * 2048 * 41  # the ring's exact bytes per trade
        assert parts["bars"] == n * 2 * 1000 * 56  # two intervals of exact 56-byte slots
    # each setting moves only its own part
    data = {
        "venue": {"symbols": symbols(10), "streams": STREAMS},
        "engine": {"intervals": ["1s", "1m"], "trade_capacity": 512},
    }
    small = estimate(parse_config(data))
    big = estimate(defaults(10))
    by_name = {p.name: p.bytes for p in small.parts}
    assert {p.name: p.bytes for p in big.parts}["trades"] == 4 * by_name["trades"]
    assert {p.name: p.bytes for p in big.parts}["books"] == by_name["books"]


def test_the_demo_preset_meets_the_memory_goals() -> None:
    """DESIGN.md: 100 MB at 50 symbols, 256 MB at 1,000; sizes shrink as symbols grow."""
    assert memory_goal_mb(1) == memory_goal_mb(50) == 100.0 and memory_goal_mb(1000) == 256.0
    kept = []
    for n in (1, 50, 51, 100, 200, 500, 1000, 2000):
        config = preset(n)
        assert estimate(config).total_mb <= memory_goal_mb(n), n
        sizes = (
            config.engine.trade_capacity,
            config.engine.bar_history,
            config.book.max_levels,
            config.book.snapshot_limit,
        )
        assert sizes in SIZES
        kept.append(SIZES.index(sizes))
    assert kept == sorted(kept) and kept[0] == 0 and kept[-1] == len(SIZES) - 1
    # one symbol (a replay of a capture) keeps the largest sizes: books of 5,000 levels
    assert preset(1).book.max_levels == 5000 and preset(1000).book.max_levels == 200
    # without books the same goal leaves room for more of the rest
    trades_only = fast_config(symbols(1000), ["trade"])
    assert trades_only.engine.bar_history > preset(1000).engine.bar_history


@pytest.mark.parametrize("entries", [0, 1, 5, 6, 100, 1099, 5500, 43_690, 43_691, 200_000])
def test_dict_table_bytes_mirrors_cpython(entries: int) -> None:
    built = dict.fromkeys(float(i) for i in range(entries))
    assert dict_table_bytes(entries) == sys.getsizeof(built)


def test_refusal_names_the_overshoot_and_settings_that_fit() -> None:
    config = defaults(1200)
    result = estimate(config)
    assert result.over > 0  # the default books at 1,200 symbols exceed 512 MB (compiled or not)
    with pytest.raises(BudgetError) as caught:
        check(config)
    message = str(caught.value)
    assert "\n" not in message
    assert f"needs about {result.total_mb:,.0f} MB" in message
    assert f"{-(-result.over // MB):,} MB over resources.memory_budget_mb = 512" in message
    # the first suggestion is the biggest part; applying it alone makes the configuration fit
    found = re.search(r"lower book\.max_levels \(2,000 → ([\d,]+) saves", message)
    assert found is not None, message
    lowered = int(found.group(1).replace(",", ""))
    book = msgspec.structs.replace(config.book, max_levels=lowered)
    assert estimate(msgspec.structs.replace(config, book=book)).over <= 0
    fits = re.search(r"venue\.symbols \(1,200 → ([\d,]+)\)", message)
    assert fits is not None, message
    fit = int(fits.group(1).replace(",", ""))
    assert estimate(defaults(fit)).over <= 0
    assert estimate(defaults(fit + 1)).over > 0


def test_live_app_refuses_before_building_the_engine() -> None:
    config = defaults(2000)
    with pytest.raises(BudgetError, match=r"over resources\.memory_budget_mb = 512"):
        LiveApp(config)
    roomy = preset(3, memory_budget_mb=4096)
    assert LiveApp(roomy).budget.total < 4096 * MB


def test_tickhawk_run_refuses_an_oversized_config_in_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path / "big.yaml", defaults(500, memory_budget_mb=256))
    done = tickhawk("run", str(path), "--duration", "5")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tickhawk run: the configuration needs about ")
    assert "MB over resources.memory_budget_mb = 256: lower book.max_levels (2,000 → " in lines[0]
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
    over = write_config(tmp_path / "over.yaml", defaults(50, memory_budget_mb=90))
    done = tickhawk("run", str(over), "--check")
    assert done.returncode == 2
    assert "MB over)" in done.stdout and len(done.stderr.strip().splitlines()) == 1


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
    levels = preset(20).book.max_levels
    assert result["levels"] == [2 * (levels + levels // 10)]  # both sides full, 10 % slack
    assert estimated > 10
    assert 0.85 * estimated < measured < 1.10 * estimated, result
    # every part measured alone is near its estimate (parts under 1 MB are allocator noise)
    for name, part in result["parts_mb"].items():
        if name != "base" and part > 1.0:
            assert 0.8 * part < result["measured_parts_mb"][name] < 1.25 * part, (name, result)
