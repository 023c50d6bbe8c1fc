"""``tickhawk replay``: feed a capture through the live pipeline on the capture's clock."""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from time import perf_counter_ns
from typing import IO

import msgspec

from tickhawk.book.l2 import L2Book
from tickhawk.budget import capture_bytes
from tickhawk.budget import check as check_budget
from tickhawk.capture import CaptureError, load_capture
from tickhawk.config import Config, ConfigError, load_config
from tickhawk.engine import Engine
from tickhawk.model import Bar, BookUpdate, Signal, Trade
from tickhawk.presets import fast_config
from tickhawk.rejects import Rejects
from tickhawk.venues.binance.feed import stream_kind
from tickhawk.venues.binance.schema import DepthSnapshot

__all__ = ["ReplayResult", "add_arguments", "market_of", "replay", "run", "streams_in"]

EMIT_KINDS = ("trades", "bars", "signals", "book")
_MS = 1_000_000


class ReplayResult(msgspec.Struct):
    """What a replay did; ``--json`` prints it."""

    path: str
    messages: int
    load_s: float
    wall_s: float
    cpu_s: float
    msgs_per_s: float
    trades: int
    bars: int
    signals: int
    rejected: int
    rejects: dict[str, int]
    symbols: list[str]
    speed: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``replay``'s arguments."""
    parser.add_argument("path", help="capture file: '<receive ns> <JSON>' per line, gzip or plain")
    parser.add_argument(
        "--speed", default="max", help="max (as fast as possible) or a factor, 1 = original pace"
    )
    parser.add_argument(
        "--emit",
        default="",
        help="comma-separated: trades,bars,signals,book (JSON lines on stdout)",
    )
    parser.add_argument("--json", action="store_true", help="print a final JSON summary")
    parser.add_argument("--config", help="TOML/YAML configuration (default: 1 s bars preset)")


def streams_in(messages: list[tuple[int, bytes]]) -> list[str]:
    """Return the decodable stream names found in a capture, in first-seen order."""
    seen: dict[str, None] = {}
    prefix = b'{"stream":"'
    for _, payload in messages:
        if payload.startswith(prefix):
            name = payload[len(prefix) : payload.find(b'"', len(prefix))].decode()
            if name not in seen:
                try:
                    stream_kind(name)
                except ValueError:
                    continue
                seen[name] = None
    return list(seen)


def market_of(streams: list[str]) -> str:
    return "usdm" if any(s.endswith("@0ms") for s in streams) else "spot"


def replay(
    messages: list[tuple[int, bytes]],
    config: Config,
    *,
    streams: list[str],
    speed: float | None = None,
    rejects: Rejects | None = None,
    on_trade: Callable[[Trade], None] | None = None,
    on_bar: Callable[[Bar], None] | None = None,
    on_signal: Callable[[Signal], None] | None = None,
    on_book: Callable[[BookUpdate, L2Book], None] | None = None,
) -> tuple[Engine, float, float, int]:
    """Run ``messages`` through a new engine; return it with pipeline wall and CPU seconds.

    ``speed`` ``None`` replays as fast as possible; otherwise messages are paced
    by their receive times divided by ``speed``.
    """
    engine = Engine(config, rejects=rejects)
    feed = engine.feed(streams)
    for state in engine.states.values():
        if on_trade is not None:
            state.trade_listeners.append(on_trade)
        if on_bar is not None:
            state.bar_listeners.append(on_bar)
        if on_book is not None:
            state.book_listeners.append(on_book)
    if on_signal is not None:
        engine.sinks.append(on_signal)
    on_message = feed.on_message
    snapshot_prefix = b'{"lastUpdateId"'
    take_snapshot = _snapshot_taker(engine)
    snapshots = 0
    cpu0 = time.process_time()
    wall0 = perf_counter_ns()
    if speed is None:
        for ts_recv, payload in messages:
            if payload.startswith(snapshot_prefix):
                snapshots += 1
                take_snapshot(payload, ts_recv)
                continue
            on_message(payload, perf_counter_ns(), ts_recv)
    else:
        start_capture = messages[0][0] if messages else 0
        for ts_recv, payload in messages:
            due = wall0 + (ts_recv - start_capture) / speed
            delay = due - perf_counter_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            if payload.startswith(snapshot_prefix):
                snapshots += 1
                take_snapshot(payload, ts_recv)
                continue
            on_message(payload, perf_counter_ns(), ts_recv)
    wall = (perf_counter_ns() - wall0) / 1e9
    cpu = time.process_time() - cpu0
    return engine, wall, cpu, feed.messages + snapshots


def _snapshot_taker(engine: Engine) -> Callable[[bytes, int], None]:
    """Return what a capture's REST snapshot line goes to: the one symbol with a book.

    The snapshot line carries no symbol, so it can only be placed in a capture
    of one symbol with a depth stream; otherwise it is counted and skipped.
    """
    decode = msgspec.json.Decoder(DepthSnapshot, strict=False).decode
    with_book = [s for s in engine.states.values() if s.book_sync is not None]
    rejects = engine.rejects

    def take(payload: bytes, ts_recv: int) -> None:
        if len(with_book) != 1:
            rejects.reject(
                "snapshot_symbol", "a snapshot line needs exactly one symbol with a book"
            )
            return
        try:
            snapshot = decode(payload)
        except msgspec.DecodeError as exc:
            rejects.reject("schema", f"depth snapshot: {exc}")
            return
        with_book[0].on_snapshot(snapshot, ts_recv)

    return take


def _emitter(out: IO[bytes], kinds: set[str]) -> dict[str, Callable[..., None]]:
    encode = msgspec.json.Encoder().encode
    write = out.write

    def trade(t: Trade) -> None:
        write(
            encode(
                {
                    "type": "trade",
                    "symbol": t.symbol,
                    "id": t.id,
                    "price": t.price,
                    "qty": t.qty,
                    "side": "buy" if t.side > 0 else "sell",
                    "ts": t.ts_event // _MS,
                }
            )
            + b"\n"
        )

    def bar(b: Bar) -> None:
        write(
            encode(
                {
                    "type": "bar",
                    "symbol": b.symbol,
                    "interval": b.interval,
                    "open_time": b.open_time // _MS,
                    "open": b.open,
                    "high": b.high,
                    "low": b.low,
                    "close": b.close,
                    "volume": b.volume,
                    "trades": b.trades,
                }
            )
            + b"\n"
        )

    def signal(s: Signal) -> None:
        write(
            encode(
                {
                    "type": "signal",
                    "symbol": s.symbol,
                    "strategy": s.strategy,
                    "direction": s.direction,
                    "score": s.score,
                    "price": s.price,
                    "reason": s.reason,
                    "ts": s.ts_event // _MS,
                    "latency_us": s.latency_ns / 1000,
                    "features": s.features,
                }
            )
            + b"\n"
        )

    def book(update: BookUpdate, l2: L2Book) -> None:
        bid, bid_qty, ask, ask_qty = l2.top()
        write(
            encode(
                {
                    "type": "book",
                    "symbol": update.symbol,
                    "u": update.last_id,
                    "ts": update.ts_event // _MS,
                    "bid": bid,
                    "bid_qty": bid_qty,
                    "ask": ask,
                    "ask_qty": ask_qty,
                }
            )
            + b"\n"
        )

    table: dict[str, Callable[..., None]] = {
        "trades": trade,
        "bars": bar,
        "signals": signal,
        "book": book,
    }
    return {kind: table[kind] for kind in kinds}


def run(args: argparse.Namespace) -> int:
    """Run ``tickhawk replay``; return the exit status."""
    kinds = {k.strip() for k in args.emit.split(",") if k.strip()}
    unknown = kinds - set(EMIT_KINDS)
    if unknown:
        print(
            f"tickhawk replay: --emit {','.join(sorted(unknown))} is not a kind; "
            f"use any of {','.join(EMIT_KINDS)}",
            file=sys.stderr,
        )
        return 2
    speed: float | None = None
    if args.speed != "max":
        try:
            speed = float(args.speed)
            if not speed > 0:
                raise ValueError
        except ValueError:
            print(
                f"tickhawk replay: --speed {args.speed!r}: use max or a positive number",
                file=sys.stderr,
            )
            return 2
    rejects = Rejects()
    load0 = perf_counter_ns()
    try:
        messages = load_capture(args.path, rejects)
    except CaptureError as exc:
        print(f"tickhawk replay: {exc}", file=sys.stderr)
        return 2
    load_s = (perf_counter_ns() - load0) / 1e9
    streams = streams_in(messages)
    if not streams:
        print(f"tickhawk replay: no Binance stream messages in {args.path}", file=sys.stderr)
        return 2
    symbols = sorted({s.split("@", 1)[0].upper() for s in streams})
    try:
        if args.config:
            config = load_config(args.config)
        else:
            kinds_in = sorted({s.split("@", 1)[1] for s in streams})
            config = fast_config(symbols, kinds_in, market=market_of(streams))
        check_budget(config, extra={"capture": capture_bytes(messages)})
    except ConfigError as exc:
        print(f"tickhawk replay: {exc}", file=sys.stderr)
        return 2
    missing = [s for s in symbols if s not in {x.upper() for x in config.venue.symbols}]
    streams = [s for s in streams if s.split("@", 1)[0].upper() not in missing]
    out = sys.stdout.buffer
    emit = _emitter(out, kinds)
    engine, wall, cpu, count = replay(
        messages,
        config,
        streams=streams,
        speed=speed,
        rejects=rejects,
        on_trade=emit.get("trades"),
        on_bar=emit.get("bars"),
        on_signal=emit.get("signals"),
        on_book=emit.get("book"),
    )
    out.flush()
    result = ReplayResult(
        path=str(Path(args.path)),
        messages=count,
        load_s=round(load_s, 4),
        wall_s=round(wall, 4),
        cpu_s=round(cpu, 4),
        msgs_per_s=round(count / wall, 1) if wall > 0 else 0.0,
        trades=engine.trades,
        bars=engine.bars,
        signals=engine.signals,
        rejected=rejects.total,
        rejects=dict(rejects.counts),
        symbols=symbols,
        speed=args.speed,
    )
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    elif not kinds:
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"replayed {count:,} messages in {wall:.3f} s ({result.msgs_per_s:,.0f} msg/s, "
            f"cpu {cpu:.3f} s, load {load_s:.3f} s): {result.trades:,} trades, "
            f"{result.bars:,} bars, {result.signals:,} signals, {rejects.total} rejected; "
            f"max RSS {rss_mb:.0f} MB"
        )
    return 0
