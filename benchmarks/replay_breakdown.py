"""Where replay time goes: the same capture through pipelines with parts switched off, one run.

    python benchmarks/replay_breakdown.py [CAPTURE] [--runs 5]

In-process (no subprocess start-up), alternating variants in each run:
the bare pipeline (decode, state, bars, books; no indicators, features or
strategies), without its L2 depth stream, with the 1 s preset's six
indicators and momentum, with the order-flow and book features, and with ten
indicators (``configs/ten_indicators.toml``). Prints median msg/s and µs/msg.
"""

from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path
from typing import Any

import msgspec

from tickhawk.app.replay import market_of, replay, streams_in
from tickhawk.capture import load_capture
from tickhawk.config import Config, load_config, parse_config
from tickhawk.presets import fast_config
from tickhawk.rejects import Rejects

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"


def changed(config: Config, **tables: Any) -> Config:
    data = msgspec.to_builtins(config)
    data.update(tables)
    return parse_config(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("capture", nargs="?", default=str(DEFAULT))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the depth-less variant rejects depth messages
    messages = load_capture(args.capture)
    streams = streams_in(messages)
    no_depth = [s for s in streams if "@depth" not in s]
    kinds = sorted({s.split("@", 1)[1] for s in streams})
    preset = fast_config(["BTCUSDT"], kinds, market=market_of(streams))
    ten = load_config(ROOT / "benchmarks" / "configs" / "ten_indicators.toml")
    off = {"features": {"enabled": False}}
    variants = {
        "bare pipeline": (changed(preset, indicators={}, strategies={}, **off), streams),
        "bare, no depth stream": (changed(preset, indicators={}, strategies={}, **off), no_depth),
        "6 indicators + momentum": (changed(preset, **off), streams),
        "6 ind. + features (preset)": (preset, streams),
        "10 indicators + momentum": (changed(ten, **off), streams),
        "10 ind. + features": (ten, streams),
        "10 ind. + features, no depth": (ten, no_depth),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, (config, names) in variants.items():
            _, wall, _, _ = replay(messages, config, streams=names, rejects=Rejects())
            rates[name].append(len(messages) / wall)
    print(f"{Path(args.capture).name}: {len(messages):,} messages, median of {args.runs} runs")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:<30} {rate:>10,.0f} msg/s  {1e6 / rate:5.2f} µs/msg")


if __name__ == "__main__":
    main()
