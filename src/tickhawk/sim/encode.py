"""Binance spot payload text, formatted directly with f-strings.

Prices and quantities arrive as text already (``fixed8``); times are epoch ms.
Field order follows Binance's own messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from tickhawk.sim.symbols import fixed8

__all__ = [
    "agg_trade_json",
    "book_ticker_json",
    "depth_update_json",
    "error_json",
    "kline_json",
    "levels_json",
    "reply_json",
    "trade_json",
]


def trade_json(
    time_ms: int, symbol: str, trade_id: int, price: str, qty: str, buyer_maker: bool
) -> str:
    """Return a ``trade`` payload."""
    maker = "true" if buyer_maker else "false"
    return (
        f'{{"e":"trade","E":{time_ms},"s":"{symbol}","t":{trade_id},"p":"{price}",'
        f'"q":"{qty}","T":{time_ms},"m":{maker},"M":true}}'
    )


def agg_trade_json(
    time_ms: int,
    symbol: str,
    agg_id: int,
    price: str,
    qty: str,
    first: int,
    last: int,
    buyer_maker: bool,
) -> str:
    """Return an ``aggTrade`` payload."""
    maker = "true" if buyer_maker else "false"
    return (
        f'{{"e":"aggTrade","E":{time_ms},"s":"{symbol}","a":{agg_id},"p":"{price}",'
        f'"q":"{qty}","f":{first},"l":{last},"T":{time_ms},"m":{maker},"M":true}}'
    )


def book_ticker_json(
    update_id: int, symbol: str, bid: str, bid_qty: str, ask: str, ask_qty: str
) -> str:
    """Return a spot ``bookTicker`` payload (no event type or time, as on Binance spot)."""
    return (
        f'{{"u":{update_id},"s":"{symbol}","b":"{bid}","B":"{bid_qty}",'
        f'"a":"{ask}","A":"{ask_qty}"}}'
    )


def levels_json(levels: Sequence[tuple[int, int]], price_e8: int, qty_e8: int) -> str:
    """Return ``[["price","qty"],...]`` for levels in ticks and lots."""
    return (
        "["
        + ",".join(
            f'["{fixed8(price * price_e8)}","{fixed8(qty * qty_e8)}"]' for price, qty in levels
        )
        + "]"
    )


def depth_update_json(
    time_ms: int,
    symbol: str,
    first_id: int,
    last_id: int,
    bids: str,
    asks: str,
) -> str:
    """Return a ``depthUpdate`` payload; ``bids``/``asks`` come from :func:`levels_json`."""
    return (
        f'{{"e":"depthUpdate","E":{time_ms},"s":"{symbol}","U":{first_id},"u":{last_id},'
        f'"b":{bids},"a":{asks}}}'
    )


def kline_json(
    time_ms: int,
    symbol: str,
    interval: str,
    open_ms: int,
    close_ms: int,
    fields: Sequence[str],
    first: int,
    last: int,
    trades: int,
    closed: bool,
) -> str:
    """Return a ``kline`` payload; ``fields`` = open, close, high, low, volume, quote volume,
    taker buy volume, taker buy quote volume (text)."""
    o, c, h, lo, v, q, bv, bq = fields
    final = "true" if closed else "false"
    return (
        f'{{"e":"kline","E":{time_ms},"s":"{symbol}","k":{{"t":{open_ms},"T":{close_ms},'
        f'"s":"{symbol}","i":"{interval}","f":{first},"L":{last},"o":"{o}","c":"{c}",'
        f'"h":"{h}","l":"{lo}","v":"{v}","n":{trades},"x":{final},"q":"{q}",'
        f'"V":"{bv}","Q":"{bq}","B":"0"}}}}'
    )


def reply_json(request_id: str, result: str = "null") -> str:
    """Return a live-method reply; ``request_id`` is already JSON text."""
    return f'{{"result":{result},"id":{request_id}}}'


def error_json(code: int, message: str, request_id: str = "null") -> str:
    """Return a live-method error reply; ``request_id`` is already JSON text."""
    text = message.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{"error":{{"code":{code},"msg":"{text}"}},"id":{request_id}}}'
