"""Diff depth streams: per-cadence accumulators of book changes, flushed as depthUpdate."""

from __future__ import annotations

from tickhawk.sim.book import DepthAccumulator, SimBook
from tickhawk.sim.encode import depth_update_json, levels_json
from tickhawk.sim.symbols import SymbolSpec

__all__ = ["DepthStreams"]


class DepthStreams:
    """The subscribed ``<symbol>@depth[@100ms]`` streams of a set of books.

    Each stream has its own accumulator hooked into its book, so that the
    100 ms and 1000 ms diffs of one book each carry every change and chain
    their update ids (next ``U`` = previous ``u`` + 1).
    """

    def __init__(self, specs: list[SymbolSpec], books: list[SimBook]) -> None:
        self.specs = specs
        self.books = books
        self._streams: dict[int, tuple[int, DepthAccumulator]] = {}

    def __bool__(self) -> bool:
        return bool(self._streams)

    def add(self, stream: int, index: int, cadence_ms: int) -> None:
        """Start accumulating the changes of book ``index`` for stream id ``stream``."""
        accumulator = DepthAccumulator(cadence_ms)
        self.books[index].accumulators.append(accumulator)
        self._streams[stream] = (index, accumulator)

    def remove(self, stream: int) -> None:
        """Stop stream id ``stream``."""
        entry = self._streams.pop(stream, None)
        if entry is not None:
            self.books[entry[0]].accumulators.remove(entry[1])

    def flush(self, now: int, outbox: list[tuple[int, str]]) -> None:
        """Append the diffs due at ``now`` (a multiple of their cadence) to ``outbox``."""
        for stream, (index, accumulator) in self._streams.items():
            if now % accumulator.cadence_ms:
                continue
            taken = accumulator.take()
            if taken is None:
                continue  # no change in the interval: Binance sends nothing
            first, last, bids, asks = taken
            spec = self.specs[index]
            text = depth_update_json(
                now,
                spec.name,
                first,
                last,
                levels_json(bids, spec.price_e8, spec.qty_e8),
                levels_json(asks, spec.price_e8, spec.qty_e8),
            )
            outbox.append((stream, text))
