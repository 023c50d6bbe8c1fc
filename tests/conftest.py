"""Shared fixtures: the real exchange data in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def data_file(relative: str) -> Path:
    """Return a file of ../shared/data; fail (not skip) with a clear message if missing."""
    path = DATA / relative
    if not path.exists():
        pytest.fail(
            f"test data {path} is missing: clone the project with shared/ beside it "
            "(the real exchange captures live in ../shared/data)"
        )
    return path


@pytest.fixture(scope="session")
def usdm_capture() -> Path:
    return data_file("binance/usdm_btcusdt_20240808.gz")


@pytest.fixture(scope="session")
def spot_capture() -> Path:
    return data_file("binance/spot_btcusdt_20240808.gz")


@pytest.fixture(scope="session")
def shared_data() -> object:
    """Return :func:`data_file`, to find any file of ../shared/data."""
    return data_file
