"""Configuration files: the examples load; mistakes end in one line naming the key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tickhawk.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["binance-spot.toml", "binance-usdm.yaml"])
def test_examples_load(name: str) -> None:
    config = load_config(ROOT / "examples" / name)
    ws_url, rest_url = config.venue.endpoints()
    assert ws_url.startswith("wss://") and "binance" in ws_url and rest_url.startswith("https://")
    assert config.strategies.momentum is not None


def test_default_endpoints_are_binance() -> None:
    from tickhawk.config import parse_config

    assert parse_config({}).venue.endpoints() == (
        "wss://stream.binance.com:9443",
        "https://api.binance.com",
    )
    usdm = parse_config({"venue": {"market": "usdm"}})
    assert usdm.venue.endpoints() == ("wss://fstream.binance.com", "https://fapi.binance.com")


@pytest.mark.parametrize(
    "text,suffix,message",
    [
        ("[engine]\npeek = 3\n", ".toml", "engine.peek: Expected `bool`, got `int`"),
        (
            "[venue]\nmarket = 'coin'\n",
            ".toml",
            "venue.market: Invalid enum value 'coin' (allowed: spot, usdm)",
        ),
        ("venue: [1, 2]\n", ".yaml", "venue: Expected `object`, got `array`"),
        ("[engine\n", ".toml", "not valid toml"),
        ("- 1\n- 2\n", ".yaml", "the top level must be a table"),
        (
            "[venue]\nmarket = 'usdm'\n[book]\nsnapshot_limit = 2000\n",
            ".toml",
            "book.snapshot_limit: Binance USD-M serves 5, 10, 20, 50, 100, 500 or 1000 levels",
        ),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, suffix: str, message: str) -> None:
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_run_with_a_bad_config_prints_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[engine]\nintervals = ['1x']\n")
    result = subprocess.run(
        [sys.executable, "-m", "tickhawk.cli", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tickhawk run: engine.intervals[0]: bad interval '1x': use a positive whole number "
        "and a unit s, m, h or d (e.g. 1s, 1m, 5m, 1h)"
    )
