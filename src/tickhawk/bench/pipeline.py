"""The macro case: a real capture through the full pipeline against a decode-only loop.

The pipeline is ``tickhawk replay``'s: a new :class:`~tickhawk.engine.Engine`
with replay's default configuration, the 1-second preset (bars, six
indicators peeked after every trade, order-flow and quote features, the
momentum strategy, the L2 book), fed message by message with the capture's
snapshot line going to the book. The decode-only loop routes and decodes the
same messages with the same decoders, validation and event construction into
sinks that drop the events. Pipeline ÷ decode-only is what the engine costs
beyond decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from time import perf_counter_ns

from tickhawk.app.replay import _snapshot_taker, market_of, streams_in
from tickhawk.bench.data import SNAPSHOT_PREFIX, NullSink
from tickhawk.bench.measure import Case, parts_over
from tickhawk.config import Config
from tickhawk.engine import Engine
from tickhawk.presets import fast_config
from tickhawk.rejects import Rejects
from tickhawk.venues.binance.feed import BinanceFeed

__all__ = ["Messages", "decode_only", "pipeline", "pipeline_case", "preset_for"]

Messages = Sequence[tuple[int, bytes]]
Loop = Callable[[Messages], None]


def preset_for(streams: list[str]) -> Config:
    """Return ``tickhawk replay``'s default configuration for a capture of ``streams``."""
    symbols = sorted({s.split("@", 1)[0].upper() for s in streams})
    kinds = sorted({s.split("@", 1)[1] for s in streams})
    return fast_config(symbols, kinds, market=market_of(streams))


def _loop(feed: BinanceFeed, take_snapshot: Callable[[bytes, int], None]) -> Loop:
    on_message = feed.on_message
    rejects = feed.rejects

    def run(messages: Messages) -> None:
        for ts_recv, payload in messages:
            if payload.startswith(SNAPSHOT_PREFIX):
                take_snapshot(payload, ts_recv)
                continue
            on_message(payload, perf_counter_ns(), ts_recv)
        if rejects.total:
            # A benchmark that measures the reject path measures the wrong thing.
            raise RuntimeError(f"the benchmark's messages were rejected: {dict(rejects.counts)}")

    return run


def _skip(payload: bytes, ts_recv: int) -> None:
    """Drop the snapshot line: a decode-only loop keeps no book."""


def decode_only(streams: list[str]) -> Loop:
    """Return a loop decoding messages of ``streams`` into null sinks (snapshot lines skipped)."""
    symbols = {s.split("@", 1)[0].upper() for s in streams}
    feed = BinanceFeed({s: NullSink() for s in symbols}, streams, Rejects())
    return _loop(feed, _skip)


def pipeline(config: Config, streams: list[str]) -> Loop:
    """Return a loop feeding messages through a new engine, as ``tickhawk replay`` does."""
    engine = Engine(config)
    return _loop(engine.feed(streams), _snapshot_taker(engine))


def pipeline_case(name: str, messages: Messages) -> Case:
    """Return the case: full pipeline per message, against decode-only on the same messages."""
    streams = streams_in(list(messages))
    config = preset_for(streams)
    return Case(
        name,
        "msg",
        len(messages),
        parts_over(messages, lambda: pipeline(config, streams)),
        parts_over(messages, lambda: decode_only(streams)),
        "decode only, same messages",
    )
