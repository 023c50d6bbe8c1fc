"""Binance frame decoding and routing: raw JSON bytes in, domain events out.

The hot path: :meth:`BinanceFeed.on_message` reads the stream name from the
combined-stream envelope without decoding it, finds the route built for that
stream at subscription time, decodes the payload with the one typed decoder of
that message kind, validates it, converts it to a domain event and hands it to
the symbol's state. All synchronous; no allocation beyond the decoded message
and the event. Bad input is counted by reason in :class:`~tickhawk.rejects.Rejects`
and skipped.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Iterable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from tickhawk.model import BUY, SELL, Bar, BookUpdate, Quote, Trade, interval_label, parse_interval
from tickhawk.rejects import Rejects
from tickhawk.venues.binance.schema import (
    AggTradeEnvelope,
    AggTradeMsg,
    BookTickerEnvelope,
    BookTickerMsg,
    DepthEnvelope,
    DepthMsg,
    Envelope,
    KlineEnvelope,
    KlineMsg,
    MethodReply,
    TradeEnvelope,
    TradeMsg,
)

if TYPE_CHECKING:
    from tickhawk.metrics.probe import StageProbe

__all__ = ["STREAM_KINDS", "BinanceFeed", "FeedSink", "stream_kind"]

_MS = 1_000_000
_INF = math.inf
#: Ids and times beyond these do not fit the int64 columns of the trade ring.
_MAX_ID = 2**63
_MAX_MS = (2**63 - 1) // _MS
_PREFIX = b'{"stream":"'
_PREFIX_LEN = len(_PREFIX)

#: Stream suffixes tickhawk decodes, by kind.
STREAM_KINDS = ("trade", "aggTrade", "depth", "bookTicker", "kline")

Handler = Callable[[bytes, int, int], None]


class FeedSink(Protocol):
    """Where decoded events go: the engine's per-symbol state."""

    def on_trade(self, trade: Trade, t_recv: int, t_decoded: int) -> None: ...
    def on_quote(self, quote: Quote, t_recv: int, t_decoded: int) -> None: ...
    def on_book(self, update: BookUpdate, t_recv: int, t_decoded: int) -> None: ...
    def on_venue_bar(self, bar: Bar) -> None: ...
    def on_book_invalid(self, update_id: int, ts_recv: int) -> None: ...


def stream_kind(stream: str) -> str:
    """Return the kind (``trade``, ``depth``, ``kline`` ...) of a stream name.

    ``btcusdt@depth@100ms`` is ``depth``; ``btcusdt@kline_1m`` is ``kline``.
    Raise ``ValueError`` for a stream tickhawk does not decode.
    """
    _, _, rest = stream.partition("@")
    kind = rest.split("@", 1)[0]
    if kind.startswith("kline_"):
        kind = "kline"
    if kind not in STREAM_KINDS:
        raise ValueError(
            f"unsupported stream {stream!r}: use <symbol>@trade, @aggTrade, @depth[@100ms], "
            "@bookTicker or @kline_<interval>"
        )
    return kind


def _bad_price(price: float) -> bool:
    return not 0.0 < price < _INF


class BinanceFeed:
    """Decode Binance messages and route them to per-symbol sinks.

    ``sinks`` maps an upper-case symbol to its state. ``streams`` are the
    stream names this feed accepts (``btcusdt@trade`` ...); a message of any
    other stream is rejected as ``unknown_stream``. ``on_control`` receives
    replies to subscription methods (default: a refused request is rejected
    as ``subscription_rejected`` with the venue's message, the rest ignored).
    ``probe`` (optional) times a random
    sample of the messages stage by stage (``metrics/probe.py``).
    """

    def __init__(
        self,
        sinks: dict[str, FeedSink],
        streams: Iterable[str],
        rejects: Rejects,
        *,
        on_control: Callable[[MethodReply], None] | None = None,
        probe: StageProbe | None = None,
    ) -> None:
        self.rejects = rejects
        self.messages = 0
        self._sinks = sinks
        self._routes: dict[bytes, Handler] = {}
        #: Stream name → ``t_recv`` (perf ns) of its last message, for the stale-stream watchdog.
        self.last_seen: dict[bytes, int] = {}
        self._probe = probe
        self._probed_routes: dict[bytes, Handler] = {}
        # The message number to time next; 0 never comes (numbers start at 1).
        self._sample_at = probe.next_gap() if probe is not None else 0
        self._on_control = on_control or self._refused
        self._envelope = msgspec.json.Decoder(Envelope)
        self._control = msgspec.json.Decoder(MethodReply)
        for stream in streams:
            self.add_stream(stream)

    # -- routes ---------------------------------------------------------------

    def add_stream(self, stream: str) -> None:
        """Build the route for one stream name; raise ``ValueError`` if unknown."""
        kind = stream_kind(stream)
        symbol = stream.split("@", 1)[0].upper()
        sink = self._sinks.get(symbol)
        if sink is None:
            raise ValueError(f"stream {stream!r} names symbol {symbol} that is not configured")
        make = _MAKERS[kind]
        self._routes[stream.encode()] = make(symbol, sink, self.rejects, stream)
        if self._probe is not None:
            probed = self._probe.wrap(sink)
            self._probed_routes[stream.encode()] = make(symbol, probed, self.rejects, stream)

    def raw_handler(self, stream: str) -> Handler:
        """Return the handler of a raw (``/ws/<stream>``) payload for ``stream``."""
        kind = stream_kind(stream)
        symbol = stream.split("@", 1)[0].upper()
        return _RAW_MAKERS[kind](symbol, self._sinks[symbol], self.rejects, stream)

    @property
    def streams(self) -> list[str]:
        """Return the stream names this feed routes."""
        return [name.decode() for name in self._routes]

    # -- hot path -------------------------------------------------------------

    def on_message(self, payload: bytes, t_recv: int, ts_recv: int) -> None:
        """Decode and route one combined-stream message (``{"stream":…,"data":…}``).

        Nothing raises out of here: an exception from further down (a state, a
        strategy) is counted as ``exception`` and the message skipped.
        """
        number = self.messages + 1
        self.messages = number
        try:  # free in Python 3.11 until something raises
            if number == self._sample_at:
                self._timed(payload, t_recv, ts_recv)
                return
            if payload.startswith(_PREFIX):
                end = payload.find(b'"', _PREFIX_LEN)
                name = payload[_PREFIX_LEN:end]
                handler = self._routes.get(name)
                if handler is not None:
                    self.last_seen[name] = t_recv
                    handler(payload, t_recv, ts_recv)
                    return
            self._slow_path(payload, t_recv, ts_recv)
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self.rejects.reject(
                "exception",
                f"{type(exc).__name__}: {exc} at {where.filename}:{where.lineno} "
                f"on {payload[:80].decode('utf-8', 'replace')}",
            )

    def _timed(self, payload: bytes, t_recv: int, ts_recv: int) -> None:
        """Handle one sampled message through the probed routes, then record its stages."""
        probe = self._probe
        assert probe is not None
        handler = None
        if payload.startswith(_PREFIX):
            end = payload.find(b'"', _PREFIX_LEN)
            name = payload[_PREFIX_LEN:end]
            handler = self._probed_routes.get(name)
            if handler is not None:
                self.last_seen[name] = t_recv
        if handler is not None:
            handler(payload, t_recv, ts_recv)
        else:
            self._slow_path(payload, t_recv, ts_recv)
        probe.handled(t_recv)
        self._sample_at = self.messages + probe.next_gap()

    def _slow_path(self, payload: bytes, t_recv: int, ts_recv: int) -> None:
        """Handle what the fast prefix check did not: reordered keys, control, garbage."""
        try:
            stream = self._envelope.decode(payload).stream
        except msgspec.ValidationError as exc:
            self.rejects.reject("schema", str(exc))
            return
        except (msgspec.DecodeError, UnicodeDecodeError):
            self.rejects.reject("not_json", payload[:80].decode("utf-8", "replace"))
            return
        if stream:
            name = stream.encode()
            handler = self._routes.get(name)
            if handler is None:
                self.rejects.reject("unknown_stream", stream)
            else:
                self.last_seen[name] = t_recv
                handler(payload, t_recv, ts_recv)
            return
        try:
            reply = self._control.decode(payload)
        except (msgspec.DecodeError, UnicodeDecodeError):
            reply = None
        if reply is not None and (reply.id is not None or reply.error is not None):
            self._on_control(reply)
            return
        self.rejects.reject("no_stream", payload[:80].decode("utf-8", "replace"))

    def _refused(self, reply: MethodReply) -> None:
        """Count a request the venue refused: the streams it asked for get no data."""
        error = reply.error
        if error is not None:
            self.rejects.reject(
                "subscription_rejected",
                f"the venue refused request {reply.id} ({error.get('msg', '')}, code "
                f"{error.get('code')}): the streams it asked for get no data",
            )


# -- per-kind route makers ----------------------------------------------------
# Each maker returns a closure over the symbol's sink and one decoder: the
# cheapest dispatch Python offers. ``raw`` decoders take the payload without
# the combined-stream envelope.


def _trade_route(
    symbol: str, sink: FeedSink, rejects: Rejects, stream: str, raw: bool = False
) -> Handler:
    decode: Callable[[bytes], Any] = msgspec.json.Decoder(
        TradeMsg if raw else TradeEnvelope, strict=False
    ).decode
    on_trade = sink.on_trade
    reject = rejects.reject

    def handle(payload: bytes, t_recv: int, ts_recv: int) -> None:
        try:
            msg: TradeMsg = decode(payload) if raw else decode(payload).data
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
            reject("schema" if isinstance(exc, msgspec.ValidationError) else "not_json", str(exc))
            return
        price = msg.p
        qty = msg.q
        if not 0.0 < price < _INF:
            reject("bad_price", f"{stream} trade {msg.t} price {price}")
            return
        if not 0.0 < qty < _INF:
            reject("bad_qty", f"{stream} trade {msg.t} qty {qty}")
            return
        if not (0 <= msg.t < _MAX_ID and 0 <= msg.T <= _MAX_MS):
            reject("bad_time", f"{stream} trade id {msg.t} time {msg.T}")
            return
        trade = Trade(symbol, msg.t, price, qty, SELL if msg.m else BUY, msg.T * _MS, ts_recv)
        on_trade(trade, t_recv, perf_counter_ns())

    return handle


def _agg_trade_route(
    symbol: str, sink: FeedSink, rejects: Rejects, stream: str, raw: bool = False
) -> Handler:
    decode: Callable[[bytes], Any] = msgspec.json.Decoder(
        AggTradeMsg if raw else AggTradeEnvelope, strict=False
    ).decode
    on_trade = sink.on_trade
    reject = rejects.reject

    def handle(payload: bytes, t_recv: int, ts_recv: int) -> None:
        try:
            msg: AggTradeMsg = decode(payload) if raw else decode(payload).data
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
            reject("schema" if isinstance(exc, msgspec.ValidationError) else "not_json", str(exc))
            return
        price = msg.p
        qty = msg.q
        if not 0.0 < price < _INF:
            reject("bad_price", f"{stream} aggTrade {msg.a} price {price}")
            return
        if not 0.0 < qty < _INF:
            reject("bad_qty", f"{stream} aggTrade {msg.a} qty {qty}")
            return
        if not (0 <= msg.a < _MAX_ID and 0 <= msg.T <= _MAX_MS):
            reject("bad_time", f"{stream} aggTrade id {msg.a} time {msg.T}")
            return
        trade = Trade(symbol, msg.a, price, qty, SELL if msg.m else BUY, msg.T * _MS, ts_recv)
        on_trade(trade, t_recv, perf_counter_ns())

    return handle


def _levels_ok(levels: list[tuple[float, float]]) -> bool:
    for price, qty in levels:
        if not 0.0 < price < _INF or not 0.0 <= qty < _INF:
            return False
    return True


def _depth_route(
    symbol: str, sink: FeedSink, rejects: Rejects, stream: str, raw: bool = False
) -> Handler:
    decode: Callable[[bytes], Any] = msgspec.json.Decoder(
        DepthMsg if raw else DepthEnvelope, strict=False
    ).decode
    on_book = sink.on_book
    on_invalid = sink.on_book_invalid
    reject = rejects.reject

    def handle(payload: bytes, t_recv: int, ts_recv: int) -> None:
        try:
            msg: DepthMsg = decode(payload) if raw else decode(payload).data
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
            reject("schema" if isinstance(exc, msgspec.ValidationError) else "not_json", str(exc))
            return
        if not (_levels_ok(msg.b) and _levels_ok(msg.a)):
            reject("bad_level", f"{stream} depth {msg.u} has a bad price or quantity")
            on_invalid(msg.u, ts_recv)
            return
        update = BookUpdate(symbol, msg.U, msg.u, msg.pu, msg.b, msg.a, msg.E * _MS, ts_recv)
        on_book(update, t_recv, perf_counter_ns())

    return handle


def _book_ticker_route(
    symbol: str, sink: FeedSink, rejects: Rejects, stream: str, raw: bool = False
) -> Handler:
    decode: Callable[[bytes], Any] = msgspec.json.Decoder(
        BookTickerMsg if raw else BookTickerEnvelope, strict=False
    ).decode
    on_quote = sink.on_quote
    reject = rejects.reject

    def handle(payload: bytes, t_recv: int, ts_recv: int) -> None:
        try:
            msg: BookTickerMsg = decode(payload) if raw else decode(payload).data
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
            reject("schema" if isinstance(exc, msgspec.ValidationError) else "not_json", str(exc))
            return
        bid = msg.b
        ask = msg.a
        if not (0.0 < bid < _INF and 0.0 < ask < _INF):
            reject("bad_price", f"{stream} bookTicker {msg.u} bid {bid} ask {ask}")
            return
        if not (0.0 <= msg.B < _INF and 0.0 <= msg.A < _INF):
            reject("bad_qty", f"{stream} bookTicker {msg.u} has a bad quantity")
            return
        quote = Quote(symbol, msg.u, bid, msg.B, ask, msg.A, msg.E * _MS, ts_recv)
        on_quote(quote, t_recv, perf_counter_ns())

    return handle


def _kline_route(
    symbol: str, sink: FeedSink, rejects: Rejects, stream: str, raw: bool = False
) -> Handler:
    decode: Callable[[bytes], Any] = msgspec.json.Decoder(
        KlineMsg if raw else KlineEnvelope, strict=False
    ).decode
    on_venue_bar = sink.on_venue_bar
    reject = rejects.reject

    def handle(payload: bytes, t_recv: int, ts_recv: int) -> None:
        try:
            msg: KlineMsg = decode(payload) if raw else decode(payload).data
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
            reject("schema" if isinstance(exc, msgspec.ValidationError) else "not_json", str(exc))
            return
        k = msg.k
        if not k.x:
            return  # only closed klines are bars; the forming one comes from trades
        if _bad_price(k.o) or _bad_price(k.h) or _bad_price(k.l) or _bad_price(k.c):
            reject("bad_price", f"{stream} kline {k.t} has a bad price")
            return
        try:
            label = interval_label(parse_interval(k.i)) if k.i[-1:] != "M" else k.i
        except ValueError:
            label = k.i
        on_venue_bar(Bar(symbol, label, k.t * _MS, k.o, k.h, k.l, k.c, k.v, k.n))

    return handle


_Maker = Callable[..., Handler]

_MAKERS: dict[str, _Maker] = {
    "trade": _trade_route,
    "aggTrade": _agg_trade_route,
    "depth": _depth_route,
    "bookTicker": _book_ticker_route,
    "kline": _kline_route,
}


def _raw(maker: _Maker) -> _Maker:
    def make(symbol: str, sink: FeedSink, rejects: Rejects, stream: str) -> Handler:
        return maker(symbol, sink, rejects, stream, True)

    return make


_RAW_MAKERS: dict[str, _Maker] = {kind: _raw(maker) for kind, maker in _MAKERS.items()}
