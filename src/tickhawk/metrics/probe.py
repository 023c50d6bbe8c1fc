"""Per-message stage timings from a random sample of the messages a feed handles.

Timing every message would cost more than the 5 % budget allows (a histogram
record is ~0.3 µs; a message is ~3 µs of work), so the feed times one message
in about N: after each timed message it draws the gap to the next uniformly
from ``1 … 2N-1`` (mean N). A random gap cannot lock onto a periodic pattern
in the stream (a round-robin over symbols, a burst every 100 ms) the way
"every N-th" could, and each timed message is recorded with the weight of the
gap it closed, so the histograms count every message and their percentiles
are unbiased estimates of the per-message distribution even while N changes.
The feed pays one integer comparison per message; the timed message pays ~2 µs.

The feed routes a sampled message through handlers built over
:class:`ProbedSink`, which stamps the moment the symbol state returns.
"""

from __future__ import annotations

import random
from time import perf_counter_ns
from typing import Any

from tickhawk.metrics.histogram import SlidingHistogram
from tickhawk.model import BookUpdate, Quote, Trade

__all__ = ["ProbedSink", "StageProbe"]


class StageProbe:
    """Record ``event_to_recv``, ``recv_to_decoded``, ``decoded_to_state``, ``recv_to_handled``.

    ``mean_gap`` is N (1 times every message); the metrics task adapts it
    to the message rate. The feed calls :meth:`next_gap` to place the next
    sample and :meth:`handled` after a sampled message.
    """

    __slots__ = (
        "_decoded_to_state",
        "_event_to_recv",
        "_randrange",
        "_recv_to_decoded",
        "_recv_to_handled",
        "_t_decoded",
        "_t_state",
        "_ts_event",
        "_ts_recv",
        "_weight",
        "mean_gap",
        "sampled",
    )

    def __init__(
        self,
        *,
        event_to_recv: SlidingHistogram,
        recv_to_decoded: SlidingHistogram,
        decoded_to_state: SlidingHistogram,
        recv_to_handled: SlidingHistogram,
        mean_gap: int = 16,
        seed: int | None = None,
    ) -> None:
        self._event_to_recv = event_to_recv
        self._recv_to_decoded = recv_to_decoded
        self._decoded_to_state = decoded_to_state
        self._recv_to_handled = recv_to_handled
        self._randrange = random.Random(seed).randrange
        self.mean_gap = max(1, mean_gap)
        self.sampled = 0
        self._weight = 1
        self._t_decoded = 0
        self._t_state = 0
        self._ts_event = 0
        self._ts_recv = 0

    def next_gap(self) -> int:
        """Return how many messages on the next sampled one is (and remember it as its weight)."""
        mean = self.mean_gap
        gap = 1 if mean <= 1 else self._randrange(1, 2 * mean)
        self._weight = gap
        return gap

    def wrap(self, sink: Any) -> ProbedSink:
        """Return ``sink`` wrapped to stamp when the symbol state is done with an event."""
        return ProbedSink(sink, self)

    def reached(self, ts_event: int, ts_recv: int, t_decoded: int, t_state: int) -> None:
        """Note the stamps of a sampled event the symbol state has applied."""
        self._ts_event = ts_event
        self._ts_recv = ts_recv
        self._t_decoded = t_decoded
        self._t_state = t_state

    def handled(self, t_recv: int) -> None:
        """Record the sampled message received at ``t_recv`` (perf ns) now that it is handled."""
        weight = self._weight
        self.sampled += 1
        t_state = self._t_state
        if t_state:
            t_decoded = self._t_decoded
            self._recv_to_decoded.record(t_decoded - t_recv, weight)
            self._decoded_to_state.record(t_state - t_decoded, weight)
            self._recv_to_handled.record(t_state - t_recv, weight)
            if self._ts_event:  # spot bookTicker carries no event time
                self._event_to_recv.record(self._ts_recv - self._ts_event, weight)
            self._t_state = 0
        else:  # rejected, a control reply, a venue kline: handled, but no state stage
            self._recv_to_handled.record(perf_counter_ns() - t_recv, weight)


class ProbedSink:
    """A symbol state as the feed sees it, stamping when each event has been applied.

    Anything else the feed asks of the sink is the wrapped sink's own.
    """

    __slots__ = ("_probe", "_sink")

    def __init__(self, sink: Any, probe: StageProbe) -> None:
        self._sink = sink
        self._probe = probe

    def on_trade(self, trade: Trade, t_recv: int, t_decoded: int) -> None:
        self._sink.on_trade(trade, t_recv, t_decoded)
        self._probe.reached(trade.ts_event, trade.ts_recv, t_decoded, perf_counter_ns())

    def on_quote(self, quote: Quote, t_recv: int, t_decoded: int) -> None:
        self._sink.on_quote(quote, t_recv, t_decoded)
        self._probe.reached(quote.ts_event, quote.ts_recv, t_decoded, perf_counter_ns())

    def on_book(self, update: BookUpdate, t_recv: int, t_decoded: int) -> None:
        self._sink.on_book(update, t_recv, t_decoded)
        self._probe.reached(update.ts_event, update.ts_recv, t_decoded, perf_counter_ns())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)
