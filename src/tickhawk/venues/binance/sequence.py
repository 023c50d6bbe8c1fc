"""Where a message stands in its stream: the key that orders a Binance stream's messages.

A rotation (:mod:`tickhawk.net.rotation`) merges two connections carrying the
same streams (:mod:`tickhawk.net.handover`); it needs, for each message, its
stream and a number that grows along the stream and is the same on both
connections (a :class:`~tickhawk.net.handover.SequenceKey`). For Binance: the
trade id (``trade``), the aggregate id (``aggTrade``), the last update id
(``depth``, ``bookTicker``) and, for klines, the bar's open time (×2, +1 once
the bar is closed: the closed bar is the one the engine uses). Only messages
of a rotation's overlap are keyed, never the steady stream.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

__all__ = ["BinanceSequence"]

_PREFIX = b'{"stream":"'
_PREFIX_LEN = len(_PREFIX)
_MAX_CACHED = 4096


class _TradeData(msgspec.Struct):
    t: int


class _AggTradeData(msgspec.Struct):
    a: int


class _UpdateData(msgspec.Struct):
    u: int


class _Kline(msgspec.Struct):
    t: int
    x: bool


class _KlineData(msgspec.Struct):
    k: _Kline


class _Trade(msgspec.Struct):
    data: _TradeData


class _AggTrade(msgspec.Struct):
    data: _AggTradeData


class _Update(msgspec.Struct):
    data: _UpdateData


class _KlineEnvelope(msgspec.Struct):
    data: _KlineData


class _StreamOnly(msgspec.Struct):
    stream: str = ""


def _trade_key() -> Callable[[bytes], int]:
    decode = msgspec.json.Decoder(_Trade).decode
    return lambda payload: decode(payload).data.t


def _agg_trade_key() -> Callable[[bytes], int]:
    decode = msgspec.json.Decoder(_AggTrade).decode
    return lambda payload: decode(payload).data.a


def _update_key() -> Callable[[bytes], int]:
    decode = msgspec.json.Decoder(_Update).decode
    return lambda payload: decode(payload).data.u


def _kline_key() -> Callable[[bytes], int]:
    decode = msgspec.json.Decoder(_KlineEnvelope).decode

    def key(payload: bytes) -> int:
        kline = decode(payload).data.k
        return kline.t * 2 + kline.x

    return key


def _key_for(stream: str) -> Callable[[bytes], int] | None:
    kind = stream.partition("@")[2].split("@", 1)[0]
    if kind == "trade":
        return _trade_key()
    if kind == "aggTrade":
        return _agg_trade_key()
    if kind in ("depth", "bookTicker"):
        return _update_key()
    if kind.startswith("kline_"):
        return _kline_key()
    return None


class BinanceSequence:
    """Key Binance combined-stream messages (``{"stream":…,"data":…}``) by their stream order."""

    def __init__(self) -> None:
        self._keys: dict[bytes, Callable[[bytes], int] | None] = {}
        self._stream = msgspec.json.Decoder(_StreamOnly)

    def __call__(self, payload: bytes) -> tuple[bytes, int] | None:
        """Return ``(stream name, key)``; None for replies, garbage and unknown streams."""
        if payload.startswith(_PREFIX):
            name = payload[_PREFIX_LEN : payload.find(b'"', _PREFIX_LEN)]
        else:
            try:
                name = self._stream.decode(payload).stream.encode()
            except msgspec.DecodeError:
                return None
            if not name:
                return None
        try:
            key = self._keys[name]
        except KeyError:
            key = _key_for(name.decode("utf-8", "replace"))
            if len(self._keys) < _MAX_CACHED:  # names come from the venue: bound the cache
                self._keys[name] = key
        if key is None:
            return None
        try:
            return name, key(payload)
        except msgspec.DecodeError:
            return None
