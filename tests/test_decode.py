"""Decoding real Binance lines from the shared captures into domain events."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tickhawk.capture import load_capture
from tickhawk.model import BUY, SELL, Bar, BookUpdate, Quote, Trade
from tickhawk.rejects import Rejects
from tickhawk.venues.binance.feed import BinanceFeed, stream_kind


class Recorder:
    """A feed sink that keeps everything it is given."""

    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.quotes: list[Quote] = []
        self.books: list[BookUpdate] = []
        self.bars: list[Bar] = []
        self.invalid: list[int] = []

    def on_trade(self, trade: Trade, t_recv: int, t_decoded: int) -> None:
        assert t_decoded >= t_recv
        self.trades.append(trade)

    def on_quote(self, quote: Quote, t_recv: int, t_decoded: int) -> None:
        self.quotes.append(quote)

    def on_book(self, update: BookUpdate, t_recv: int, t_decoded: int) -> None:
        self.books.append(update)

    def on_venue_bar(self, bar: Bar) -> None:
        self.bars.append(bar)

    def on_book_invalid(self, update_id: int, ts_recv: int) -> None:
        self.invalid.append(update_id)


def _feed(streams: list[str]) -> tuple[BinanceFeed, Recorder, Rejects]:
    sink = Recorder()
    rejects = Rejects()
    return BinanceFeed({"BTCUSDT": sink}, streams, rejects), sink, rejects


def _lines(path: Path, stream: str, n: int) -> list[tuple[int, bytes]]:
    out = [
        (ts, p) for ts, p in load_capture(path) if p.startswith(b'{"stream":"' + stream.encode())
    ]
    return out[:n]


def test_trade_lines_decode_to_trades(usdm_capture: Path) -> None:
    feed, sink, rejects = _feed(["btcusdt@trade"])
    lines = _lines(usdm_capture, "btcusdt@trade", 500)
    for ts, payload in lines:
        feed.on_message(payload, 1, ts)
    assert rejects.total == 0
    assert len(sink.trades) == 500
    for (ts, payload), trade in zip(lines, sink.trades, strict=True):
        data = json.loads(payload)["data"]
        assert trade.symbol == "BTCUSDT"
        assert trade.id == data["t"]
        assert trade.price == float(data["p"])
        assert trade.qty == float(data["q"])
        assert trade.side == (SELL if data["m"] else BUY)
        assert trade.ts_event == data["T"] * 1_000_000
        assert trade.ts_recv == ts


def test_book_ticker_lines_decode_to_quotes(usdm_capture: Path) -> None:
    feed, sink, rejects = _feed(["btcusdt@bookTicker"])
    lines = _lines(usdm_capture, "btcusdt@bookTicker", 500)
    for ts, payload in lines:
        feed.on_message(payload, 1, ts)
    assert rejects.total == 0
    for (_, payload), quote in zip(lines, sink.quotes, strict=True):
        data = json.loads(payload)["data"]
        assert (quote.update_id, quote.bid, quote.bid_qty) == (
            data["u"],
            float(data["b"]),
            float(data["B"]),
        )
        assert (quote.ask, quote.ask_qty) == (float(data["a"]), float(data["A"]))
        assert quote.bid < quote.ask


@pytest.mark.parametrize(
    "capture,stream", [("usdm", "btcusdt@depth@0ms"), ("spot", "btcusdt@depth@100ms")]
)
def test_depth_lines_decode_to_book_updates(
    capture: str, stream: str, usdm_capture: Path, spot_capture: Path
) -> None:
    path = usdm_capture if capture == "usdm" else spot_capture
    feed, sink, rejects = _feed([stream])
    lines = _lines(path, stream, 200)
    for ts, payload in lines:
        feed.on_message(payload, 1, ts)
    assert rejects.total == 0 and len(sink.books) == len(lines) > 0
    for (_, payload), update in zip(lines, sink.books, strict=True):
        data = json.loads(payload)["data"]
        assert (update.first_id, update.last_id) == (data["U"], data["u"])
        assert update.prev_last_id == data.get("pu", -1)
        assert update.bids == [(float(p), float(q)) for p, q in data["b"]]
        assert update.asks == [(float(p), float(q)) for p, q in data["a"]]
    if capture == "usdm":  # futures diffs chain through pu
        for prev, cur in zip(sink.books, sink.books[1:], strict=False):
            assert cur.prev_last_id == prev.last_id


def test_raw_stream_payloads_decode() -> None:
    sink = Recorder()
    feed = BinanceFeed({"BTCUSDT": sink}, [], Rejects())
    handler = feed.raw_handler("btcusdt@trade")
    handler(
        b'{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"100.5","q":"2","T":5,"m":true,"M":true}', 0, 0
    )
    assert sink.trades == [Trade("BTCUSDT", 7, 100.5, 2.0, SELL, 5_000_000, 0)]


def test_closed_kline_becomes_venue_bar() -> None:
    feed, sink, rejects = _feed(["btcusdt@kline_1m"])
    k = {
        "t": 60000,
        "T": 119999,
        "s": "BTCUSDT",
        "i": "1m",
        "f": 1,
        "L": 2,
        "o": "1",
        "c": "2",
        "h": "3",
        "l": "0.5",
        "v": "10",
        "n": 2,
        "x": True,
        "q": "15",
        "V": "5",
        "Q": "7",
        "B": "0",
    }
    msg = {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1, "s": "BTCUSDT", "k": k}}
    feed.on_message(json.dumps(msg, separators=(",", ":")).encode(), 0, 0)
    k["x"] = False
    feed.on_message(json.dumps(msg, separators=(",", ":")).encode(), 0, 0)
    assert rejects.total == 0
    assert sink.bars == [Bar("BTCUSDT", "1m", 60_000_000_000, 1.0, 3.0, 0.5, 2.0, 10.0, 2)]


def test_reordered_envelope_keys_take_the_slow_path() -> None:
    feed, sink, rejects = _feed(["btcusdt@trade"])
    payload = (
        b'{"data":{"e":"trade","t":1,"p":"1","q":"1","T":1,"m":false},"stream":"btcusdt@trade"}'
    )
    feed.on_message(payload, 0, 0)
    assert rejects.total == 0 and len(sink.trades) == 1


def test_stream_kinds() -> None:
    assert stream_kind("btcusdt@depth@100ms") == "depth"
    assert stream_kind("btcusdt@kline_5m") == "kline"
    assert stream_kind("btcusdt@aggTrade") == "aggTrade"
    with pytest.raises(ValueError, match="unsupported stream"):
        stream_kind("btcusdt@markPrice")


BAD_INPUT = [
    (b"not json at all", "not_json"),
    (b'{"stream":"btcusdt@trade","data":{"t":1,"p":"1","q":"1","T":1}}', "schema"),  # no m
    (b'{"stream":"btcusdt@trade","data":{"t":"x","p":"1","q":"1","T":1,"m":true}}', "schema"),
    (b'{"stream":"btcusdt@trade","data":{"t":1,"p":"NaN","q":"1","T":1,"m":true}}', "bad_price"),
    (b'{"stream":"btcusdt@trade","data":{"t":1,"p":"0","q":"1","T":1,"m":true}}', "bad_price"),
    (b'{"stream":"btcusdt@trade","data":{"t":1,"p":"-5","q":"1","T":1,"m":true}}', "bad_price"),
    (b'{"stream":"btcusdt@trade","data":{"t":1,"p":"5","q":"-1","T":1,"m":true}}', "bad_qty"),
    (b'{"stream":"ethusdt@trade","data":{"t":1,"p":"5","q":"1","T":1,"m":true}}', "unknown_stream"),
    (b'{"stream":"btcusdt@trade","data":{"t":1,"p":"5","q":"1","T":1,"m":true}', "not_json"),
    (
        b'{"stream":"btcusdt@bookTicker","data":{"u":1,"b":"nan","B":"1","a":"2","A":"1"}}',
        "bad_price",
    ),
    (b'{"stream":"btcusdt@depth","data":{"E":1,"U":1,"u":2,"b":[["1","-1"]],"a":[]}}', "bad_level"),
    (b'{"stream":"btcusdt@depth","data":{"E":1,"U":1,"u":2,"b":[["1"]],"a":[]}}', "schema"),
    (b'{"hello":"world"}', "no_stream"),
    (b"[1,2,3]", "schema"),
    (b"", "not_json"),
]


@pytest.mark.parametrize("payload,reason", BAD_INPUT)
def test_bad_input_is_counted_by_reason_and_skipped(payload: bytes, reason: str) -> None:
    feed, sink, rejects = _feed(["btcusdt@trade", "btcusdt@bookTicker", "btcusdt@depth"])
    feed.on_message(payload, 0, 0)
    assert rejects.counts == {reason: 1}
    assert not (sink.trades or sink.quotes or sink.books)
    good = b'{"stream":"btcusdt@trade","data":{"t":2,"p":"5","q":"1","T":1,"m":true}}'
    feed.on_message(good, 0, 0)  # the feed goes on
    assert len(sink.trades) == 1


def test_rejects_log_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0]
    rejects = Rejects(clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="tickhawk.rejects"):
        for _ in range(100):
            rejects.reject("not_json", "x")
        now[0] += 1_000_000_000
        rejects.reject("not_json", "x")
        rejects.reject("schema", "y")
    assert rejects.counts == {"not_json": 101, "schema": 1}
    assert len(caplog.records) == 3


def test_subscription_replies_go_to_control() -> None:
    replies = []
    feed = BinanceFeed({}, [], Rejects(), on_control=replies.append)
    feed.on_message(b'{"result":null,"id":1}', 0, 0)
    feed.on_message(b'{"result":["btcusdt@trade"],"id":3}', 0, 0)
    assert [r.id for r in replies] == [1, 3]
    assert replies[1].result == ["btcusdt@trade"]
    assert not math.isnan(0.0)
