"""The memory budget's estimate against real engines filled to capacity.

    python benchmarks/memory_budget.py [--symbols 50,1000] [--runs 3] [--config FILE|lean] [--json]
    python benchmarks/memory_budget.py --calibrate       # re-measure budget.py's constants

For each symbol count, a fresh interpreter imports what ``tickhawk run``
imports, reads its RSS, builds an engine from the configuration (default: the
1-second preset of ``tickhawk demo`` on trade + bookTicker + depth@100ms,
sized by :mod:`tickhawk.presets` for that many symbols; ``--config lean``: 1 m
bars, 1,024 trades, 120 bars, 200 levels) and fills everything the
configuration bounds, part by part: every trade ring slot, every bar history
slot (distinct bars), every indicator stream open, every feature window full,
every book side to ``max_levels`` + 10 % slack with its ordered near keys
full. It prints the estimate of :mod:`tickhawk.budget` beside the measured RSS
growth, and the error (estimate − measured) / measured; then each part,
estimated/measured (rings and histories are allocated when the engine is
built: they are charged their exact bytes, and "symbols" the rest of the
build, indicator and feature objects included); then the time of a full
collection before and after ``gc.freeze()`` (what
``resources.gc_freeze_after_warmup`` does); medians of ``--runs``.

``--calibrate`` measures each per-item constant of ``budget.py`` alone (RSS
over thousands of items in a fresh interpreter), what whole engines of the
demo preset (at their least sizes) need beyond the sum of their parts, with
and without their strategy (``SYMBOL_BYTES``, ``STRATEGY_BYTES``), and the
base: the peak RSS of ``tickhawk run`` on one symbol against ``tickhawk sim``
for a few seconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

import psutil

MB = 1 << 20
BAR_FIELDS = ("open_time", "open", "high", "low", "close", "volume", "trades")
STREAMS = ["trade", "bookTicker", "depth@100ms"]
#: A configuration for many symbols: 1 m bars only, shorter rings, books and histories.
LEAN: dict[str, Any] = {
    "venue": {"streams": STREAMS},
    "engine": {"intervals": ["1m"], "trade_capacity": 1024, "bar_history": 120},
    "book": {"max_levels": 200, "snapshot_limit": 100},
}


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def names(n: int) -> list[str]:
    return [f"SYM{i:04d}USDT" for i in range(n)]


def load_config(path: str | None, symbols: int) -> Any:
    """Return the configuration at ``symbols`` symbols (the file's, or the demo preset)."""
    import msgspec

    from tickhawk.config import load_config as read
    from tickhawk.config import parse_config
    from tickhawk.presets import fast_config

    if path is None:
        config = fast_config(names(symbols), STREAMS)
    elif path == "lean":
        config = parse_config({**LEAN, "venue": {**LEAN["venue"], "symbols": names(symbols)}})
    else:
        config = read(path)
        venue = msgspec.structs.replace(config.venue, symbols=names(symbols))
        config = msgspec.structs.replace(config, venue=venue)
    resources = msgspec.structs.replace(config.resources, memory_budget_mb=1 << 20)
    return msgspec.structs.replace(config, resources=resources)


def fill_trades(state: Any, base: float) -> None:
    from tickhawk.model import Trade

    ring = state.trades
    for i in range(ring.capacity):
        ring.append(Trade(state.symbol, i, base + i * 0.01, 1.0 + i, 1, i, i))


def fill_bars(state: Any, base: float) -> None:
    from tickhawk.model import Bar

    for bars in state.bars.values():
        step = bars.interval_ns
        history = bars.history
        for i in range(history.maxlen or 0):
            price = base + i * 0.001
            history.append(
                Bar(state.symbol, bars.interval, i * step, price, price + 1.0,
                    price - 1.0, price + 0.5, 10.0 + i, 100 + i)
            )  # fmt: skip


def fill_indicators(state: Any, base: float) -> None:
    for label, indicator_set in state.indicators.items():
        closed = list(state.bars[label].history)
        for bar in closed[: indicator_set.bars_needed + 5] or []:
            indicator_set.update(bar)
        if closed:
            indicator_set.peek(closed[-1])


def fill_features(state: Any, base: float) -> None:
    if state.features is None:
        return
    config = state.features.config
    flow = state.features.flow
    span_ns = int(
        max(config.flow_window_s * (config.volume_baseline + 2), config.rv_window_s * 2) * 1e9
    )
    step_ns = int(min(config.flow_window_s / config.flow_buckets, config.rv_sample_s) * 1e9)
    for j, ts in enumerate(range(0, span_ns, step_ns)):
        flow.on_trade(base + j * 1e-4, 1.0 + j * 1e-3, 1 if j % 2 else -1, ts)


def fill_books(state: Any, base: float) -> None:
    if state.book_sync is not None:
        fill_book(state.book_sync.book, base)


#: What ``fill`` fills, in order, named as :func:`tickhawk.budget.estimate`'s parts.
FILLS = {
    "trades": fill_trades,
    "bars": fill_bars,
    "indicators": fill_indicators,
    "features": fill_features,
    "books": fill_books,
}


def fill(engine: Any, on_part: Any = None) -> None:
    """Fill every bounded structure of ``engine`` to its capacity, through its own APIs.

    ``on_part(name)`` is called after each part is full in every symbol.
    """
    for name, fill_part in FILLS.items():
        for s, state in enumerate(engine.states.values()):
            fill_part(state, 100.0 + s)
        if on_part is not None:
            on_part(name)


def preallocated(engine: Any) -> dict[str, int]:
    """Return the exact bytes of the columns allocated in full at build: rings and histories."""
    trades = bars = 0
    for state in engine.states.values():
        ring = state.trades
        trades += sum(
            column.buffer_info()[1] * column.itemsize
            for column in (ring.price, ring.qty, ring.ts_event, ring.ts_recv, ring.id, ring.side)
        )
        for aggregator in state.bars.values():
            # A history of Bar objects (a deque, before columns) has none: it grows as filled.
            columns = [getattr(aggregator.history, field, None) for field in BAR_FIELDS]
            bars += sum(c.buffer_info()[1] * c.itemsize for c in columns if isinstance(c, array))
    return {"trades": trades, "bars": bars}


def fill_book(book: Any, mid: float) -> None:
    """Fill both sides to the most levels the book keeps, near keys included."""
    cap = book.max_levels
    near = 255
    tick = 0.0001
    loaded = max(cap - near, 1)
    book.load(
        [(mid - (near + 1 + i) * tick, 1.0 + i) for i in range(loaded)],
        [(mid + (near + 1 + i) * tick, 1.0 + i) for i in range(loaded)],
    )
    better = min(near, cap)  # each goes into the ordered near keys
    far = cap // 10
    book.apply(
        [(mid - (1 + i) * tick, 2.0) for i in range(better)]
        + [(mid - (near + 1 + loaded + i) * tick, 3.0) for i in range(far)],
        [(mid + (1 + i) * tick, 2.0) for i in range(better)]
        + [(mid + (near + 1 + loaded + i) * tick, 3.0) for i in range(far)],
    )


def one(symbols: int, config_path: str | None) -> dict[str, Any]:
    """Measure one engine in this (fresh) interpreter."""
    import tickhawk.app.live  # noqa: F401  (what `tickhawk run` imports)
    from tickhawk.budget import estimate
    from tickhawk.engine import Engine

    config = load_config(config_path, symbols)
    before = rss()
    engine = Engine(config)
    engine.feed()
    built = rss()
    # Rings and histories are allocated when the engine is built: charge their exact
    # bytes to their parts, the rest of the build to "symbols"; other parts grow as filled.
    measured = {
        "symbols": float(built - before),
        **{k: float(v) for k, v in preallocated(engine).items()},
    }
    measured["symbols"] -= measured["trades"] + measured["bars"]
    last = [built]

    def on_part(name: str) -> None:
        now = rss()
        measured[name] = measured.get(name, 0.0) + now - last[0]
        last[0] = now

    fill(engine, on_part)
    after = last[0]
    collect_ms = full_collection_ms()
    objects = len(gc.get_objects())
    gc.freeze()  # what resources.gc_freeze_after_warmup does once warm-up is over
    frozen_ms = full_collection_ms()
    gc.unfreeze()
    result = estimate(config)
    base = next(p.bytes for p in result.parts if p.name == "base")
    return {
        "symbols": symbols,
        "rss_imports_mb": before / MB,
        "rss_filled_mb": after / MB,
        "measured_growth_mb": (after - before) / MB,
        "estimated_growth_mb": (result.total - base) / MB,
        "estimated_total_mb": result.total_mb,
        "parts_mb": {p.name: round(p.bytes / MB, 2) for p in result.parts},
        "measured_parts_mb": {k: round(v / MB, 2) for k, v in measured.items()},
        "levels": [len(s.book_sync.book) for s in engine.states.values() if s.book_sync][:1],
        "gc_objects": objects,
        "gc_full_ms": collect_ms,
        "gc_full_frozen_ms": frozen_ms,
    }


def full_collection_ms(times: int = 7) -> float:
    """Return the median time of a full collection (the pause a generation-2 one makes)."""
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        gc.collect()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# -- calibration ---------------------------------------------------------------------


def item_cost(what: str, n: int) -> float:
    """Return bytes per item of ``what`` over ``n`` items (run in a fresh interpreter)."""
    import msgspec

    import tickhawk.app.live  # noqa: F401
    from tickhawk.bars.history import BarHistory
    from tickhawk.book.l2 import L2Book
    from tickhawk.budget import dict_table_bytes
    from tickhawk.config import parse_config
    from tickhawk.engine import Engine
    from tickhawk.indicators.features import Features, FeaturesConfig
    from tickhawk.indicators.streams import IndicatorSet, parse_spec
    from tickhawk.model import Bar

    keep: list[Any] = []
    before = rss()
    if what == "bar":  # many histories, as an engine has: their objects count too
        size = 1000
        for h in range(n // size):
            history = BarHistory("X", "1m", size)
            for i in range(size):
                p = 100.0 + h + i * 0.001
                history.append(Bar("X", "1m", i, p, p + 1, p - 1, p + 0.5, 10.0 + i, 100 + i))
            keep.append(history)
        return (rss() - before) / n
    if what == "side":  # one full side of an n-level book, beyond its dict's own table
        books = max(40, 400_000 // n)
        for b in range(books):
            book = L2Book(n)
            fill_book(book, 100.0 + b)
            keep.append(book)
        levels = len(keep[0].bids)
        return (rss() - before) / (2 * books) - dict_table_bytes(levels)
    if what.startswith("indicators:"):
        specs = [parse_spec(s) for s in what.split(":", 1)[1].split(";")]
        bars = [
            Bar("X", "1m", i, 100.0 + i % 7, 102.0 + i % 5, 98.0, 100.5, 5.0, 9) for i in range(300)
        ]
        before = rss()
        for _ in range(n):
            indicator_set = IndicatorSet(specs)
            for bar in bars:
                indicator_set.update(bar)
            indicator_set.peek(bars[0])
            keep.append(indicator_set)
        return (rss() - before) / n
    if what == "features":
        config = FeaturesConfig()
        slots = 5 * config.flow_buckets + config.volume_baseline + 60
        before = rss()
        for s in range(n):
            features = Features(config)
            for j in range(1500):
                features.flow.on_trade(100.0 + s + j * 1e-4, 1.0 + j * 1e-3, 1, j * 500_000_000)
            keep.append(features)
        return (rss() - before) / n - slots * 32
    if what in ("preset", "preset_bare"):  # the demo preset whole; its sizes the least
        from tickhawk.budget import estimate
        from tickhawk.config import StrategiesConfig

        config = load_config(None, n)
        engine_sizes = msgspec.structs.replace(config.engine, trade_capacity=16, bar_history=10)
        book_sizes = msgspec.structs.replace(config.book, max_levels=20)
        config = msgspec.structs.replace(config, engine=engine_sizes, book=book_sizes)
        if what == "preset_bare":
            config = msgspec.structs.replace(config, strategies=StrategiesConfig())
        before = rss()
        engine = Engine(config)
        engine.feed()
        fill(engine)
        keep.append(engine)
        measured = rss() - before
        estimated = estimate(config)
        return (measured - (estimated.total - estimated.parts[0].bytes)) / n  # what it misses
    data: dict[str, Any] = {
        "venue": {"symbols": names(n), "streams": ["trade"]},
        "engine": {"intervals": ["1m"], "trade_capacity": 1, "bar_history": 1},
        "indicators": {},
        "strategies": {},
        "features": {"enabled": False},
        "resources": {"memory_budget_mb": 1 << 20},
    }
    variants = {
        "symbol": lambda d: None,
        "stream": lambda d: d["venue"].update(streams=["trade", "bookTicker", "kline_1m"]),
        "interval": lambda d: d["engine"].update(intervals=["1s", "1m", "5m"]),
        "book": lambda d: (d["venue"].update(streams=["trade", "depth"]),
                           d.update(book={"max_levels": 1})),
    }  # fmt: skip
    variants[what](data)
    config = parse_config(data)
    before = rss()
    engine = Engine(config)
    engine.feed()
    keep.append(engine)
    return (rss() - before) / n


def calibrate() -> None:
    from tickhawk import budget

    def cost(what: str, n: int) -> float:
        return float(child(["--item", what, "--n", str(n)])["bytes"])

    symbol = cost("symbol", 2000)
    # Whole engines of the demo preset (its sizes the least) against the estimate, per
    # symbol: what the parts miss without the strategy (wiring, allocator slack) is the
    # symbol's; what they miss with it, beyond that, the strategy's.
    missed = cost("preset", 1000)
    missed_bare = cost("preset_bare", 1000)
    strategy = budget.STRATEGY_BYTES + missed - missed_bare
    stream = (cost("stream", 2000) - symbol) / 2
    interval = (cost("interval", 2000) - symbol) / 2
    book = cost("book", 2000) - symbol - stream  # the depth stream replaces none
    ema1 = cost("indicators:a=EMA(timeperiod=21)", 2000)
    ema6 = cost("indicators:" + ";".join(f"e{k}=EMA(timeperiod={20 + k})" for k in range(6)), 1000)
    indicator = (ema6 - ema1) / 5
    multi = cost("indicators:m=MACD();b=BBANDS(timeperiod=20);s=STOCH()", 1000)
    output = (multi - (ema1 - indicator) - 3 * indicator) / 5  # 3 + 3 + 2 outputs: 5 extra
    # A full side holds max_levels + 10 % slack; per level (its floats, its share of the
    # ordered near keys and of the allocator's pools) the most of a shallow to a deep book.
    level = max(cost("side", cap) / (cap + cap // 10) for cap in (200, 1000, 5000))
    rows = [
        ("(symbol alone)", symbol - stream - interval, 0),
        ("SYMBOL_BYTES", budget.SYMBOL_BYTES + missed_bare, budget.SYMBOL_BYTES),
        ("STRATEGY_BYTES", strategy, budget.STRATEGY_BYTES),
        ("STREAM_BYTES", stream, budget.STREAM_BYTES),
        ("INTERVAL_BYTES", interval, budget.INTERVAL_BYTES),
        ("BAR_BYTES", cost("bar", 200_000), budget.BAR_BYTES),
        ("BOOK_BYTES", book, budget.BOOK_BYTES),
        ("LEVEL_BYTES", level, budget.LEVEL_BYTES),
        ("INDICATOR_SET_BYTES", ema1 - indicator, budget.INDICATOR_SET_BYTES),
        ("INDICATOR_BYTES", indicator, budget.INDICATOR_BYTES),
        ("OUTPUT_BYTES", output, budget.OUTPUT_BYTES),
        ("FEATURES_BYTES", cost("features", 2000), budget.FEATURES_BYTES),
    ]
    print(f"{'constant':<22}{'measured':>12}{'budget.py':>12}  bytes")
    for name, measured, used in rows:
        print(f"{name:<22}{measured:>12,.0f}{used:>12,}")
    print(f"{'BASE_BYTES':<22}{base_rss() / MB:>11.1f}M{budget.BASE_BYTES / MB:>11.1f}M")


def base_rss() -> float:
    """Return the peak RSS of `tickhawk run` on one symbol for a few seconds (near-empty state)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from loopback import config_text, start_sim

    symbols = ["BTCUSDT"]
    sim, ws_port, rest_port = start_sim(symbols, 200.0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "one.yaml"
            path.write_text(
                config_text(f"ws://127.0.0.1:{ws_port}", f"http://127.0.0.1:{rest_port}", symbols)
            )
            engine = subprocess.Popen(
                [sys.executable, "-m", "tickhawk.cli", "run", str(path), "--duration", "6",
                 "--json"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            process = psutil.Process(engine.pid)
            peak = 0
            while engine.poll() is None:
                try:
                    peak = max(peak, process.memory_info().rss)
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.2)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    return float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", default="50,1000", help="comma-separated symbol counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--config", help="a configuration file (default: the demo's preset)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--item", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.config)))
        return
    if args.item is not None:
        print(json.dumps({"bytes": item_cost(args.item, args.n)}))
        return
    if args.calibrate:
        calibrate()
        return
    report = []
    for symbols in (int(s) for s in args.symbols.split(",")):
        extra = ["--config", args.config] if args.config else []
        runs = [child(["--one", str(symbols), *extra]) for _ in range(args.runs)]
        measured = statistics.median(r["measured_growth_mb"] for r in runs)
        first = runs[0]
        row = {
            **{k: first[k] for k in ("symbols", "estimated_growth_mb", "estimated_total_mb")},
            "parts_mb": first["parts_mb"],
            "measured_parts_mb": {
                name: statistics.median(r["measured_parts_mb"].get(name, 0.0) for r in runs)
                for name in first["measured_parts_mb"]
            },
            "rss_imports_mb": statistics.median(r["rss_imports_mb"] for r in runs),
            "rss_filled_mb": statistics.median(r["rss_filled_mb"] for r in runs),
            "measured_growth_mb": measured,
            "error_pct": 100.0 * (first["estimated_growth_mb"] - measured) / measured,
            "gc_objects": first["gc_objects"],
            "gc_full_ms": statistics.median(r["gc_full_ms"] for r in runs),
            "gc_full_frozen_ms": statistics.median(r["gc_full_frozen_ms"] for r in runs),
            "runs": args.runs,
        }
        report.append(row)
        if not args.json:
            print(
                f"{symbols:>6,} symbols: estimate {row['estimated_growth_mb']:8.1f} MB of state "
                f"(ceiling {row['estimated_total_mb']:.1f} MB with base), measured growth "
                f"{measured:8.1f} MB (RSS {row['rss_imports_mb']:.1f} → "
                f"{row['rss_filled_mb']:.1f} MB), error {row['error_pct']:+.1f} %"
            )
            measured_parts = row["measured_parts_mb"]
            parts = ", ".join(
                f"{k} {v:.1f}/{measured_parts[k]:.1f}" if k in measured_parts else f"{k} {v:.1f}"
                for k, v in row["parts_mb"].items()
            )
            print(f"        parts, estimated/measured (MB): {parts}")
            print(
                f"        full collection of {row['gc_objects']:,} tracked objects: "
                f"{row['gc_full_ms']:.1f} ms, after gc.freeze(): {row['gc_full_frozen_ms']:.2f} ms"
            )
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
