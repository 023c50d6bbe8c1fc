"""Bad input at every boundary: the Binance frame decoders, the REST decoders, the config loader.

Hypothesis feeds arbitrary bytes, mutated real frames (the captures in
``../shared/data``, and the simulator's encoders for the kinds the captures
lack: aggTrade, kline), wrong types, missing fields, NaN/inf/negative/huge
numbers and truncated JSON to :meth:`BinanceFeed.on_message` with the
engine's real symbol states behind it, spot and USD-M. No exception may
escape, and every message ends in exactly one outcome: an event handed to a
symbol's state, a control reply, a forming kline skipped (Binance's open bar
is not a bar), or a rejection counted by reason. Valid frames still decode.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import DATA, ROOT, data_file
from tickhawk.config import Config, ConfigError, load_config, parse_config
from tickhawk.engine import Engine
from tickhawk.model import Bar, BookUpdate, Quote, Trade
from tickhawk.presets import fast_config
from tickhawk.rejects import Rejects
from tickhawk.sim.encode import agg_trade_json, kline_json
from tickhawk.state import SymbolState
from tickhawk.venues.binance.feed import BinanceFeed
from tickhawk.venues.binance.rest import (
    RestError,
    decode_agg_trades,
    decode_depth,
    decode_klines,
    decode_trades,
)
from tickhawk.venues.binance.schema import KlineEnvelope, MethodReply

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
REASONS = {
    "not_json",
    "schema",
    "bad_price",
    "bad_qty",
    "bad_level",
    "bad_time",
    "unknown_stream",
    "no_stream",
}  # not "exception": the feed's safety net counts a bug there, and a bug fails these tests


# -- real frames ---------------------------------------------------------------------


@cache
def capture_lines(market: str) -> tuple[list[bytes], list[bytes]]:
    """Return (stream frames, REST snapshots) of a real capture, a sample of each kind."""
    data_file(f"binance/{market}_btcusdt_20240808.gz")
    path = DATA / "binance" / f"{market}_btcusdt_20240808.gz"
    per_kind: dict[bytes, list[bytes]] = {}
    snapshots = []
    with gzip.open(path, "rb") as lines:
        for line in lines:
            payload = line.split(b" ", 1)[1].rstrip(b"\n")
            if payload.startswith(b'{"lastUpdateId"'):
                snapshots.append(payload)
                continue
            stream = payload[11 : payload.index(b'"', 11)]
            kept = per_kind.setdefault(stream, [])
            if len(kept) < 400:
                kept.append(payload)
    return [frame for frames in per_kind.values() for frame in frames], snapshots


def simulator_frames() -> list[bytes]:
    """Frames of the kinds the captures lack, from the simulator's Binance encoders."""
    frames = []
    for number in range(50):
        agg = agg_trade_json(
            1_723_161_600_000 + number, "BTCUSDT", 900 + number, "61800.10", "0.00100000",
            2_000 + 2 * number, 2_001 + 2 * number, number % 2 == 0,
        )  # fmt: skip
        frames.append(f'{{"stream":"btcusdt@aggTrade","data":{agg}}}'.encode())
        fields = ["61800.1", "61810.0", "61820.5", "61790.0", "12.5", "772500.0", "6.1", "377000"]
        kline = kline_json(
            1_723_161_660_000, "BTCUSDT", "1m", 1_723_161_600_000 + 60_000 * number,
            1_723_161_659_999 + 60_000 * number, fields, 10, 40, 31, number % 3 != 0,
        )  # fmt: skip
        frames.append(f'{{"stream":"btcusdt@kline_1m","data":{kline}}}'.encode())
    return frames


REPLIES = [b'{"result":null,"id":1}', b'{"result":["btcusdt@trade"],"id":"x"}',
           b'{"error":{"code":2,"msg":"Invalid request"},"id":3}']  # fmt: skip


def all_frames() -> list[bytes]:
    return capture_lines("spot")[0] + capture_lines("usdm")[0] + simulator_frames() + REPLIES


# -- the feed under test -----------------------------------------------------------------


class Counted:
    """A symbol's real state behind the feed; counts every event handed to it."""

    def __init__(self, state: SymbolState) -> None:
        self.state = state
        self.events = 0
        self.invalid = 0

    def on_trade(self, trade: Trade, t_recv: int, t_decoded: int) -> None:
        self.events += 1
        self.state.on_trade(trade, t_recv, t_decoded)

    def on_quote(self, quote: Quote, t_recv: int, t_decoded: int) -> None:
        self.events += 1
        self.state.on_quote(quote, t_recv, t_decoded)

    def on_book(self, update: BookUpdate, t_recv: int, t_decoded: int) -> None:
        self.events += 1
        self.state.on_book(update, t_recv, t_decoded)

    def on_venue_bar(self, bar: Bar) -> None:
        self.events += 1
        self.state.on_venue_bar(bar)

    def on_book_invalid(self, update_id: int, ts_recv: int) -> None:
        self.invalid += 1
        self.state.on_book_invalid(update_id, ts_recv)


class FeedUnderTest:
    """The Binance feed of a real engine (spot or USD-M), with its outcomes counted."""

    def __init__(self, market: str) -> None:
        depth = "depth@100ms" if market == "spot" else "depth@0ms"
        config = fast_config(["BTCUSDT"], ["trade", "bookTicker", depth, "kline_1m"], market=market)
        self.engine = Engine(config)
        self.sink = Counted(self.engine.states["BTCUSDT"])
        self.replies: list[MethodReply] = []
        self.rejects = Rejects(log_interval_s=3600.0)
        streams = [f"btcusdt@{kind}" for kind in ("trade", "aggTrade", "bookTicker", "kline_1m")]
        streams += ["btcusdt@depth@100ms", "btcusdt@depth@0ms"]
        self.feed = BinanceFeed(
            {"BTCUSDT": self.sink}, streams, self.rejects, on_control=self.replies.append
        )
        self.time = 1_723_161_600_000_000_000

    def outcomes(self) -> int:
        return self.rejects.total + self.sink.events + len(self.replies)

    def feed_one(self, payload: bytes) -> int:
        """Feed one message; return its number of outcomes (must be 0 or 1)."""
        before = self.outcomes()
        invalid = self.sink.invalid
        bad_level = self.rejects.counts.get("bad_level", 0)
        self.time += 1_000_000
        self.feed.on_message(payload, self.time, self.time)  # must not raise
        count = self.outcomes() - before
        assert set(self.rejects.counts) <= REASONS, self.rejects.counts
        # A bad depth level is rejected *and* invalidates the book (it must resync).
        assert self.sink.invalid - invalid == self.rejects.counts.get("bad_level", 0) - bad_level
        if count == 0:
            assert forming_kline(payload), f"no outcome for {payload[:200]!r}"
        assert count <= 1, f"{count} outcomes for {payload[:200]!r}"
        return count


_kline = msgspec.json.Decoder(KlineEnvelope, strict=False)


def forming_kline(payload: bytes) -> bool:
    try:
        return (
            payload.startswith(b'{"stream":"btcusdt@kline_1m"')
            and not _kline.decode(payload).data.k.x
        )
    except msgspec.DecodeError:
        return False


@pytest.fixture(scope="module", params=["spot", "usdm"])
def market(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- valid frames ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["spot", "usdm"])
def test_every_real_frame_decodes_without_a_rejection(name: str) -> None:
    under = FeedUnderTest(name)
    frames = capture_lines(name)[0] + simulator_frames() + REPLIES
    forming = sum(forming_kline(frame) for frame in frames)
    for frame in frames:
        under.feed_one(frame)
    assert under.rejects.total == 0
    assert under.sink.events + len(under.replies) == len(frames) - forming
    assert len(under.replies) == len(REPLIES) and 0 < forming < 50
    state = under.sink.state
    assert state.trades.count > 0 and state.quotes > 0 and state.book_updates > 0
    assert "1m" in state.venue_bars


# -- bad frames --------------------------------------------------------------------------

FIELDS = ["t", "a", "p", "q", "T", "m", "E", "U", "u", "pu", "b", "a", "B", "A", "k", "x", "i"]

bad_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64, -(2**63), 10**19]),
    st.sampled_from(["NaN", "nan", "Infinity", "-Infinity", "inf", "1e400", "-1", "0", "", "x"]),
    st.sampled_from(["1e-400", "-0", "0x10", "61800.1.2", " 1", "1_000"]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.lists(st.sampled_from(["1", "2", "NaN", "-1", 1, None]), max_size=3),
    st.dictionaries(st.sampled_from(["k", "x", "t"]), st.integers(), max_size=2),
)


def _replace(value: Any, key: str, new: Any, delete: bool) -> Any:
    """Return ``value`` with every ``key`` (at any depth) set to ``new`` or deleted."""
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            if name == key:
                if not delete:
                    out[name] = new
            else:
                out[name] = _replace(item, key, new, delete)
        return out
    if isinstance(value, list):
        return [_replace(item, key, new, delete) for item in value]
    return value


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A real frame with one field replaced by a bad value or deleted, or the stream renamed."""
    frame = draw(st.sampled_from(all_frames()))
    message = json.loads(frame)
    how = draw(st.sampled_from(["replace", "delete", "stream", "levels"]))
    if how == "stream":
        message["stream"] = draw(
            st.sampled_from(["", "btcusdt@nothing", "ethusdt@trade", "btcusdt", None, 5])
        )
    elif how == "levels" and "b" in message.get("data", {}) and "e" in message["data"]:
        levels = draw(st.lists(st.lists(bad_values, max_size=3), max_size=3))
        message["data"][draw(st.sampled_from(["b", "a"]))] = levels
    else:
        key = draw(st.sampled_from(FIELDS))
        message = _replace(message, key, draw(bad_values), how == "delete")
    return json.dumps(message).encode()


@st.composite
def byte_mutations(draw: st.DrawFn) -> bytes:
    """A real frame truncated, or with bytes flipped, inserted or deleted."""
    frame = bytearray(draw(st.sampled_from(all_frames())))
    for _ in range(draw(st.integers(1, 4))):
        if not frame:
            break
        at = draw(st.integers(0, len(frame) - 1))
        how = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        if how == "truncate":
            del frame[at:]
        elif how == "flip":
            frame[at] = draw(st.integers(0, 255))
        elif how == "insert":
            frame[at:at] = draw(st.binary(min_size=1, max_size=4))
        else:
            del frame[at]
    return bytes(frame)


@FUZZ
@given(payload=st.binary(max_size=400))
@example(b"")
@example(b'{"stream":"btcusdt@trade"')
@example(b'{"stream":"\\ud800","data":{}}')
@example(b'{"stream":"btcusdt@trade","data":{"t":1,"p":"1","q":"1","T":99999999999999999999}}')
def test_arbitrary_bytes(market: str, payload: bytes) -> None:
    under = FeedUnderTest(market)
    under.feed_one(payload)
    under.feed_one(b'{"stream":"btcusdt@trade","data":' + payload)  # the fast path's garbage


@FUZZ
@given(payload=mutated_frames())
@example(
    payload=b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT",'
    b'"t":1,"p":"1","q":"1","T":9223372036854775807,"m":true}}'
)
@example(
    payload=b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT",'
    b'"t":18446744073709551615,"p":"1","q":"1","T":1,"m":true}}'
)
def test_real_frames_with_a_bad_field(market: str, payload: bytes) -> None:
    under = FeedUnderTest(market)
    under.feed_one(payload)


@FUZZ
@given(payload=byte_mutations())
def test_real_frames_with_broken_bytes(market: str, payload: bytes) -> None:
    under = FeedUnderTest(market)
    under.feed_one(payload)


def test_every_prefix_of_a_frame_is_rejected_as_truncated_json() -> None:
    under = FeedUnderTest("spot")
    frames = [f for f in all_frames() if b"@kline" not in f][::97]
    count = 0
    for frame in frames:
        for end in range(0, len(frame)):
            assert under.feed_one(frame[:end]) == 1
            count += 1
    assert under.rejects.counts.get("not_json", 0) + under.rejects.counts.get("no_stream", 0) > 0
    assert under.sink.events == 0 and under.rejects.total == count


def test_a_bad_frame_of_each_kind_is_counted_under_its_reason() -> None:
    under = FeedUnderTest("spot")
    cases = {
        b'{"stream":"btcusdt@trade","data":{"t":1,"p":"NaN","q":"1","T":1,"m":true}}': "bad_price",
        b'{"stream":"btcusdt@aggTrade","data":{"a":1,"p":"1","q":"-2","T":1,"m":true}}': "bad_qty",
        b'{"stream":"btcusdt@trade","data":{"t":-5,"p":"1","q":"1","T":1,"m":true}}': "bad_time",
        b'{"stream":"btcusdt@trade","data":{"t":5,"p":"1","q":"1","T":-1,"m":true}}': "bad_time",
        b'{"stream":"btcusdt@trade","data":{"t":5,"p":"1","q":"1","T":10000000000000,"m":true}}': (
            "bad_time"
        ),
        b'{"stream":"btcusdt@depth@100ms","data":{"E":1,"U":1,"u":2,"b":[["1","inf"]],"a":[]}}': (
            "bad_level"
        ),
        b'{"stream":"btcusdt@bookTicker","data":{"u":1,"b":"0","B":"1","a":"1","A":"1"}}': (
            "bad_price"
        ),
        b'{"stream":"btcusdt@trade","data":{"t":"x","p":"1","q":"1","T":1,"m":true}}': "schema",
        b'{"stream":"btcusdt@trade","data":{"t":1,"p":"1","q":"1","T":1,"m":true': "not_json",
        b'{"stream":"btcusdt@nothing","data":{}}': "unknown_stream",
        b'{"data":{}}': "no_stream",
        b"<html>502 Bad Gateway</html>": "not_json",
        b'{"data":{},"stream":"btc\xfbusdt@trade"}': "not_json",  # not UTF-8: found by fuzzing
        b'{"stream":"btcusdt@kline_1m","data":{"E":1,"k":{"t":1,"i":"1\xfb","o":"1","h":"1",'
        b'"l":"1","c":"1","v":"1","n":1,"x":true}}}': "not_json",
    }
    for payload, reason in cases.items():
        before = under.rejects.counts.get(reason, 0)
        assert under.feed_one(payload) == 1
        assert under.rejects.counts.get(reason, 0) == before + 1, payload
    assert under.sink.events == 0


# -- REST decoders ---------------------------------------------------------------------


@FUZZ
@given(body=st.one_of(st.binary(max_size=300), st.sampled_from([b"[]", b"{}", b"null"])))
def test_rest_decoders_raise_only_rest_error(body: bytes) -> None:
    for decode in (decode_depth, decode_trades, decode_agg_trades):
        try:
            decode(body)
        except RestError:
            pass
    try:
        decode_klines("BTCUSDT", "1m", body)
    except RestError:
        pass


@FUZZ
@given(data=st.data())
def test_a_real_snapshot_with_a_bad_value_is_refused_or_decodes_clean(
    market: str, data: st.DataObject
) -> None:
    snapshot = json.loads(capture_lines(market)[1][0])
    side = data.draw(st.sampled_from(["bids", "asks"]))
    snapshot[side][data.draw(st.integers(0, 9))][data.draw(st.integers(0, 1))] = data.draw(
        bad_values
    )
    if data.draw(st.booleans()):
        snapshot["lastUpdateId"] = data.draw(bad_values)
    try:
        decoded = decode_depth(json.dumps(snapshot).encode())
    except RestError:
        return
    levels = decoded.bids + decoded.asks
    assert all(0 < p < math.inf and 0 <= q < math.inf for p, q in levels)
    assert decoded.lastUpdateId >= 0


def test_real_snapshots_decode() -> None:
    for market in ("spot", "usdm"):
        for body in capture_lines(market)[1]:
            snapshot = decode_depth(body)
            assert snapshot.bids and snapshot.asks and snapshot.lastUpdateId > 0


# -- the config loader ---------------------------------------------------------------------


def _load(text: str, suffix: str) -> Config | None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"tickhawk{suffix}"
        path.write_text(text)
        try:
            return load_config(path)
        except ConfigError as exc:
            message = str(exc)
            assert message and "\n" not in message and "Traceback" not in message
            return None


@FUZZ
@given(text=st.text(max_size=300), suffix=st.sampled_from([".toml", ".yaml"]))
@example(text="[venue\nsymbols = 1", suffix=".toml")
@example(text="venue: [1, 2", suffix=".yaml")
@example(text="venue:\n  symbols: !!python/object:os.system 1", suffix=".yaml")
@example(text="engine: {trade_capacity: 1e400}", suffix=".yaml")
@example(text="? [a, b]\n: 1", suffix=".yaml")
@example(text='"a\\nb" = 1', suffix=".toml")
def test_any_config_text_loads_or_fails_in_one_line(text: str, suffix: str) -> None:
    _load(text, suffix)


def _example_config() -> dict[str, Any]:
    loaded = load_config(ROOT / "examples" / "binance-spot.toml")
    data: dict[str, Any] = msgspec.to_builtins(loaded)
    return data


@FUZZ
@given(data=st.data())
def test_a_real_config_with_a_bad_value_loads_or_fails_in_one_line(data: st.DataObject) -> None:
    config = _example_config()
    table = data.draw(st.sampled_from(sorted(config)))
    if isinstance(config[table], dict) and config[table]:
        key = data.draw(st.sampled_from(sorted(config[table])))
        config[table][key] = data.draw(bad_values)
    else:
        config[table] = data.draw(bad_values)
    try:
        parse_config(config)
    except ConfigError as exc:
        assert "\n" not in str(exc)
