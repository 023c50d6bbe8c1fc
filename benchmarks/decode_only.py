"""Decode-only loop over a capture: the same decoders and routes, no engine state.

The reference the replay benchmark divides by: what the pipeline costs beyond
decoding the same messages. Prints one JSON object like ``tickhawk replay --json``.
"""

from __future__ import annotations

import json
import sys
import time
from time import perf_counter_ns

from tickhawk.app.replay import streams_in
from tickhawk.capture import load_capture
from tickhawk.model import Bar, BookUpdate, Quote, Trade
from tickhawk.rejects import Rejects
from tickhawk.venues.binance.feed import BinanceFeed


class NullSink:
    """Accept events and drop them."""

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


def main(path: str) -> None:
    messages = load_capture(path)
    streams = streams_in(messages)  # the same routes replay builds
    symbols = {s.split("@")[0].upper() for s in streams}
    feed = BinanceFeed({s: NullSink() for s in symbols}, streams, Rejects())
    on_message = feed.on_message
    snapshot = b'{"lastUpdateId"'
    cpu0 = time.process_time()
    t0 = perf_counter_ns()
    for ts_recv, payload in messages:
        if payload.startswith(snapshot):
            continue
        on_message(payload, perf_counter_ns(), ts_recv)
    wall = (perf_counter_ns() - t0) / 1e9
    cpu = time.process_time() - cpu0
    print(
        json.dumps(
            {
                "messages": len(messages),
                "wall_s": wall,
                "cpu_s": cpu,
                "msgs_per_s": len(messages) / wall,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
