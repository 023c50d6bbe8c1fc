"""Order-book cost: per level change, per depthUpdate, and replay throughput with books.

    python benchmarks/book.py [--runs 5]

1. A synthetic 1,000-level book (per side): random changes drawn like a live
   diff stream (most near the top; updates, inserts and deletes), applied in
   diffs of 20 levels. Reported per level change, with the same changes on a
   bare ``dict`` (the floor of any Python book) in the same run.
2. The real USD-M capture's 6,551 depthUpdates, pre-decoded, through the
   Binance sync (``BookSync.on_diff``): per message and per level.
3. ``tickhawk replay`` of the capture with books on and off (``[book] enabled``),
   alternately in fresh processes: the throughput cost of keeping the book.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import yaml

from tickhawk.book.l2 import L2Book
from tickhawk.book.sync import BookSync
from tickhawk.capture import load_capture
from tickhawk.model import BookUpdate
from tickhawk.presets import fast_config_data
from tickhawk.venues.binance.schema import DepthEnvelope, DepthSnapshot

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT.parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"
Levels = list[tuple[float, float]]


Diffs = list[tuple[Levels, Levels]]


def synthetic_diffs(
    levels: int, diffs: int, per_diff: int, seed: int = 1
) -> tuple[Levels, Levels, Diffs]:
    """Return a snapshot of ``levels`` per side and diffs that keep it about that deep."""
    rng = random.Random(seed)
    tick = 0.1
    bids = [(10_000.0 - tick * i, 1.0) for i in range(1, levels + 1)]
    asks = [(10_000.0 + tick * i, 1.0) for i in range(levels)]
    out = []
    for _ in range(diffs):
        diff_bids: Levels = []
        diff_asks: Levels = []
        for _ in range(per_diff):
            depth = min(int(rng.expovariate(1 / 30)), levels + 50)  # near the top, mostly
            side, sign, base = (
                (diff_bids, -1, 10_000.0 - tick) if rng.random() < 0.5 else (diff_asks, 1, 10_000.0)
            )
            price = round(base + sign * tick * depth, 1)
            roll = rng.random()
            qty = 0.0 if roll < 0.3 else round(rng.uniform(0.001, 5.0), 3)
            side.append((price, qty))
        out.append((diff_bids, diff_asks))
    return bids, asks, out


def time_book(bids: Levels, asks: Levels, diffs: list[tuple[Levels, Levels]]) -> float:
    book = L2Book(max_levels=5000)
    book.load(bids, asks)
    start = time.perf_counter_ns()
    for diff_bids, diff_asks in diffs:
        book.apply(diff_bids, diff_asks)
    return time.perf_counter_ns() - start


def time_dict(bids: Levels, asks: Levels, diffs: list[tuple[Levels, Levels]]) -> float:
    bid_side = dict(bids)
    ask_side = dict(asks)
    start = time.perf_counter_ns()
    for diff_bids, diff_asks in diffs:
        for side, changes in ((bid_side, diff_bids), (ask_side, diff_asks)):
            for price, qty in changes:
                if qty:
                    side[price] = qty
                elif price in side:
                    del side[price]
    return time.perf_counter_ns() - start


def capture_updates() -> tuple[list[tuple[str, object]], int, int]:
    depth = msgspec.json.Decoder(DepthEnvelope, strict=False)
    snapshot = msgspec.json.Decoder(DepthSnapshot, strict=False)
    items: list[tuple[str, object]] = []
    for ts, payload in load_capture(CAPTURE):
        if payload.startswith(b'{"lastUpdateId"'):
            items.append(("snapshot", snapshot.decode(payload)))
        elif b"@depth" in payload[:40]:
            d = depth.decode(payload).data
            items.append(("diff", BookUpdate("BTCUSDT", d.U, d.u, d.pu, d.b, d.a, d.E, ts)))
    diffs = [x for kind, x in items if kind == "diff"]
    levels = sum(len(u.bids) + len(u.asks) for u in diffs)  # type: ignore[attr-defined]
    return items, len(diffs), levels


def time_sync(items: list[tuple[str, object]]) -> float:
    sync = BookSync("BTCUSDT", futures=True)
    start = time.perf_counter_ns()
    for kind, item in items:
        if kind == "diff":
            sync.on_diff(item)  # type: ignore[arg-type]
        else:
            sync.on_snapshot(item)  # type: ignore[arg-type]
    elapsed = time.perf_counter_ns() - start
    assert sync.live, sync.transitions
    return elapsed


def replay_rate(config: Path | None) -> float:
    cmd = [sys.executable, "-m", "tickhawk.cli", "replay", str(CAPTURE), "--json"]
    if config is not None:
        cmd += ["--config", str(config)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.splitlines()[-1])["msgs_per_s"])


def replay_config(books: bool) -> str:
    """Return the replay's configuration: the 1-second preset, books on or off."""
    data = fast_config_data(["BTCUSDT"], ["depth@0ms", "trade", "bookTicker"], market="usdm")
    data["book"] = {"enabled": books}
    return yaml.safe_dump(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    bids, asks, diffs = synthetic_diffs(1000, 20_000, 20)
    changes = sum(len(b) + len(a) for b, a in diffs)
    book_ns = [time_book(bids, asks, diffs) / changes for _ in range(args.runs)]
    dict_ns = [time_dict(bids, asks, diffs) / changes for _ in range(args.runs)]
    print(f"1,000-level book, {changes:,} level changes in diffs of 20, median of {args.runs}:")
    print(f"  L2Book.apply          {statistics.median(book_ns):7.1f} ns per level change")
    print(f"  bare dict (floor)     {statistics.median(dict_ns):7.1f} ns per level change")
    print(f"  book ÷ dict           {statistics.median(book_ns) / statistics.median(dict_ns):7.2f}")

    items, n_diffs, levels = capture_updates()
    sync_ns = [time_sync(items) for _ in range(args.runs)]
    median = statistics.median(sync_ns)
    per_message = levels / n_diffs
    print(
        f"real capture, {n_diffs:,} depthUpdates, {levels:,} level changes ({per_message:.0f}/msg):"
    )
    print(f"  BookSync.on_diff      {median / n_diffs / 1000:7.2f} µs per depthUpdate")
    print(f"                        {median / levels:7.1f} ns per level change")

    with tempfile.TemporaryDirectory() as tmp:
        on, off = Path(tmp) / "on.yaml", Path(tmp) / "off.yaml"
        on.write_text(replay_config(books=True))
        off.write_text(replay_config(books=False))
        rates_on, rates_off = [], []
        for _ in range(args.runs):
            rates_on.append(replay_rate(on))
            rates_off.append(replay_rate(off))
    r_on, r_off = statistics.median(rates_on), statistics.median(rates_off)
    print(f"replay of the capture, full pipeline, median of {args.runs}:")
    print(f"  books on              {r_on:>10,.0f} msg/s")
    print(f"  books off             {r_off:>10,.0f} msg/s")
    print(f"  cost of books         {100 * (1 - r_on / r_off):7.1f} % of throughput")


if __name__ == "__main__":
    main()
