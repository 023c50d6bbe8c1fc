"""The data benchmarks run on: the real captures and klines of ``../shared/data``, and sets
derived from them (messages by kind, aggTrade and kline payloads, trades, book diffs).

Every set is built on first use, so a run of a few cases reads only what they need.
"""

from __future__ import annotations

import gzip
import itertools
import random
from functools import cached_property
from pathlib import Path

import msgspec

from tickhawk.capture import load_capture, parse_capture
from tickhawk.model import Bar, BookUpdate, Quote, Trade
from tickhawk.rejects import Rejects
from tickhawk.sim.encode import agg_trade_json, kline_json
from tickhawk.venues.binance.feed import BinanceFeed, stream_kind
from tickhawk.venues.binance.schema import DepthEnvelope, DepthSnapshot

__all__ = [
    "KLINES",
    "SNAPSHOT_PREFIX",
    "SPOT",
    "USDM",
    "BenchData",
    "DataError",
    "Levels",
    "NullSink",
    "as_agg_trades",
    "by_stream",
    "data_file",
    "depth_items",
    "kline_bars",
    "kline_payloads",
    "read_capture",
    "synthetic_diffs",
]

USDM = "binance/usdm_btcusdt_20240808.gz"
SPOT = "binance/spot_btcusdt_20240808.gz"
KLINES = "klines/btc-perp-20211231-20220201_1m.csv"
SNAPSHOT_PREFIX = b'{"lastUpdateId"'
_PREFIX = b'{"stream":"'

Levels = list[tuple[float, float]]
Diffs = list[tuple[Levels, Levels]]


class DataError(Exception):
    """A data file the benchmarks need is missing; the message says where it was looked for."""


def data_file(data_dir: Path, relative: str) -> Path:
    """Return ``data_dir / relative``; raise :class:`DataError` if it does not exist."""
    path = data_dir / relative
    if not path.exists():
        raise DataError(
            f"{path} is missing: the benchmarks read the real captures of ../shared/data "
            "(run from a tickhawk checkout with shared/ beside it, or pass --data DIR)"
        )
    return path


class NullSink:
    """Accept decoded events and drop them: the sink of a decode-only loop."""

    def on_trade(self, trade: Trade, t_recv: int, t_decoded: int) -> None:
        pass

    def on_quote(self, quote: Quote, t_recv: int, t_decoded: int) -> None:
        pass

    def on_book(self, update: BookUpdate, t_recv: int, t_decoded: int) -> None:
        pass

    def on_venue_bar(self, bar: Bar) -> None:
        pass

    def on_book_invalid(self, update_id: int, ts_recv: int) -> None:
        pass


class _TradeSink(NullSink):
    def __init__(self) -> None:
        self.trades: list[Trade] = []

    def on_trade(self, trade: Trade, t_recv: int, t_decoded: int) -> None:
        self.trades.append(trade)


def read_capture(path: Path, limit: int | None = None) -> list[tuple[int, bytes]]:
    """Return a capture's messages, or only its first ``limit`` lines.

    Reading a prefix matters under valgrind, where gunzipping the whole file
    costs more than the workload measured.
    """
    if limit is None:
        return load_capture(path)
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        lines = gzip.GzipFile(fileobj=raw) if gzipped else raw
        return parse_capture(b"".join(itertools.islice(lines, limit)))


def by_stream(messages: list[tuple[int, bytes]]) -> dict[str, list[bytes]]:
    """Group a capture's combined-stream payloads by stream name (decodable streams only)."""
    out: dict[str, list[bytes]] = {}
    start = len(_PREFIX)
    for _, payload in messages:
        if payload.startswith(_PREFIX):
            name = payload[start : payload.find(b'"', start)].decode()
            group = out.get(name)
            if group is None:
                try:
                    stream_kind(name)
                except ValueError:
                    continue
                group = out[name] = []
            group.append(payload)
    return out


class _TradeText(msgspec.Struct, frozen=True):
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


class _TradeEnvelopeText(msgspec.Struct, frozen=True):
    stream: str
    data: _TradeText


def as_agg_trades(messages: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Return the capture with each ``trade`` message rewritten as the ``aggTrade`` of that trade.

    Prices and quantities keep their exact text. Other messages are unchanged.
    Binance's ``aggTrade`` is the trade stream most clients (cryptofeed among
    them) subscribe to; the captures hold ``trade``.
    """
    decode = msgspec.json.Decoder(_TradeEnvelopeText).decode
    out = []
    for ts_recv, payload in messages:
        if payload.startswith(_PREFIX) and b"@trade" in payload[:40]:
            msg = decode(payload)
            d = msg.data
            body = agg_trade_json(d.T, d.s, d.t, d.p, d.q, d.t, d.t, d.m)
            stream = msg.stream.replace("@trade", "@aggTrade")
            payload = f'{{"stream":"{stream}","data":{body}}}'.encode()
        out.append((ts_recv, payload))
    return out


def kline_bars(path: Path, count: int) -> list[Bar]:
    """Return the first ``count`` one-minute bars of a ``timestamp,open,high,low,close,volume`` CSV.

    ``open_time`` is the bar's index: the indicators read prices, not times.
    """
    bars = []
    with path.open() as lines:
        for i, line in enumerate(itertools.islice(lines, 1, count + 1)):
            _, o, h, low, c, v = line.split(",")[:6]
            bars.append(Bar("BTC", "1m", i, float(o), float(h), float(low), float(c), float(v), 1))
    return bars


def kline_payloads(path: Path, count: int, symbol: str = "BTCUSDT") -> list[bytes]:
    """Return ``count`` closed-kline combined-stream payloads built from the kline CSV's rows."""
    out = []
    start_ms = 1_640_991_660_000  # 2021-12-31 23:01 UTC, the file's first bar
    with path.open() as lines:
        for i, line in enumerate(itertools.islice(lines, 1, count + 1)):
            _, o, h, low, c, v = line.strip().split(",")[:6]
            open_ms = start_ms + 60_000 * i
            fields = (o, c, h, low, v, "0", "0", "0")
            body = kline_json(
                open_ms + 60_000, symbol, "1m", open_ms, open_ms + 59_999, fields,
                i * 100, i * 100 + 99, 100, True,
            )  # fmt: skip
            stream = f"{symbol.lower()}@kline_1m"
            out.append(f'{{"stream":"{stream}","data":{body}}}'.encode())
    return out


def depth_items(
    messages: list[tuple[int, bytes]], symbol: str = "BTCUSDT"
) -> list[DepthSnapshot | BookUpdate]:
    """Return a capture's REST snapshot and depth diffs, decoded, in file order."""
    depth = msgspec.json.Decoder(DepthEnvelope, strict=False).decode
    snapshot = msgspec.json.Decoder(DepthSnapshot, strict=False).decode
    items: list[DepthSnapshot | BookUpdate] = []
    for ts, payload in messages:
        if payload.startswith(SNAPSHOT_PREFIX):
            items.append(snapshot(payload))
        elif b"@depth" in payload[:40]:
            d = depth(payload).data
            items.append(BookUpdate(symbol, d.U, d.u, d.pu, d.b, d.a, d.E, ts))
    return items


def synthetic_diffs(
    levels: int, diffs: int, per_diff: int, seed: int = 1
) -> tuple[Levels, Levels, Diffs]:
    """Return a snapshot of ``levels`` per side and diffs that keep it about that deep.

    Changes are drawn like a live diff stream: most near the top; 30 % deletes,
    the rest updates or inserts.
    """
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


class BenchData:
    """The benchmarks' data under ``data_dir`` (``../shared/data``), each set read on first use."""

    def __init__(self, data_dir: Path, *, klines: int = 20_000) -> None:
        self.data_dir = data_dir
        self.klines = klines

    def path(self, relative: str) -> Path:
        """Return a file of the data directory; raise :class:`DataError` if missing."""
        return data_file(self.data_dir, relative)

    @cached_property
    def usdm(self) -> list[tuple[int, bytes]]:
        """Return the USD-M BTCUSDT capture (93,954 messages)."""
        return load_capture(self.path(USDM))

    @cached_property
    def spot(self) -> list[tuple[int, bytes]]:
        """Return the spot BTCUSDT capture (41,249 messages)."""
        return load_capture(self.path(SPOT))

    @cached_property
    def payloads(self) -> dict[str, list[bytes]]:
        """Return payloads per message kind: the USD-M capture's, aggTrades made from its
        trades, and closed klines made from the kline CSV."""
        streams = by_stream(self.usdm)
        out = {stream_kind(name): group for name, group in streams.items()}
        out["aggTrade"] = by_stream(as_agg_trades(self.usdm))["btcusdt@aggTrade"]
        out["kline"] = kline_payloads(self.path(KLINES), self.klines)
        return out

    @cached_property
    def trades(self) -> list[Trade]:
        """Return the USD-M capture's trades, decoded by the engine's own feed."""
        sink = _TradeSink()
        feed = BinanceFeed({"BTCUSDT": sink}, ["btcusdt@trade"], Rejects())
        for payload in self.payloads["trade"]:
            feed.on_message(payload, 0, 0)
        return sink.trades

    @cached_property
    def bars(self) -> list[Bar]:
        """Return real one-minute bars from the kline CSV (``klines`` of them)."""
        return kline_bars(self.path(KLINES), self.klines)

    @cached_property
    def depth(self) -> list[DepthSnapshot | BookUpdate]:
        """Return the USD-M capture's snapshot and 6,551 depth diffs, decoded."""
        return depth_items(self.usdm)
