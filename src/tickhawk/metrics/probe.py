"""Per-message stage timings from a random sample of the messages a feed handles.

Timing every message would cost more than the 5 % budget allows, so the feed
times one message in about N: after each timed message it draws the gap to
the next uniformly from ``1 … 2N-1`` (mean N). A random gap cannot lock onto
a periodic pattern in the stream (a round-robin over symbols, a burst every
100 ms) the way "every N-th" could, and each timed message is recorded with
the weight of the gap it closed, so the histograms count every message and
their percentiles are unbiased estimates of the per-message distribution even
while N changes. The metrics task sets N from the message rate (about 1,000
timed messages a second); within a second, a burst that spends the sample
budget doubles N at once, so a quiet market turning busy cannot make the
probe time every message for the rest of the second.

Costs: the feed pays one integer comparison per message. A timed message goes
through handlers built over :class:`ProbedSink`, which stamps the moment the
symbol state returns; its six stamps are appended to a flat buffer, and
:meth:`StageProbe.flush` bins the buffer into the histograms with numpy when
the metrics task (or a reader) asks, or when it holds ``capacity`` samples.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

import numpy as np

from tickhawk.metrics.histogram import SlidingHistogram
from tickhawk.model import BookUpdate, Quote, Trade

__all__ = ["ProbedSink", "StageProbe"]

#: Stamps kept per timed message, flat in the buffer: t_recv, t_decoded, t_state,
#: ts_event, ts_recv, weight (t_decoded 0: the message reached no symbol state).
_STAMPS = 6


class StageProbe:
    """Record ``event_to_recv``, ``recv_to_decoded``, ``decoded_to_state``, ``recv_to_handled``.

    ``mean_gap`` is N (1 times every message). The feed calls
    :meth:`next_gap` to place the next sample and :meth:`handled` after a
    sampled message; :meth:`flush` moves the buffered samples into the
    histograms.
    """

    __slots__ = (
        "_decoded_to_state",
        "_event_to_recv",
        "_pending",
        "_rng",
        "_t_decoded",
        "_t_state",
        "_ts_event",
        "_ts_recv",
        "_uniform",
        "_weight",
        "budget",
        "capacity",
        "max_gap",
        "mean_gap",
        "recv_to_decoded",
        "recv_to_handled",
        "sampled",
        "spent",
    )

    def __init__(
        self,
        *,
        event_to_recv: SlidingHistogram,
        recv_to_decoded: SlidingHistogram,
        decoded_to_state: SlidingHistogram,
        recv_to_handled: SlidingHistogram,
        mean_gap: int = 16,
        capacity: int = 4096,
        budget: int = 0,
        max_gap: int = 4096,
        seed: int | None = None,
    ) -> None:
        self._event_to_recv = event_to_recv
        self.recv_to_decoded = recv_to_decoded
        self._decoded_to_state = decoded_to_state
        self.recv_to_handled = recv_to_handled
        self._rng = np.random.default_rng(seed)
        self._uniform: list[float] = []
        self.mean_gap = max(1, mean_gap)
        self.capacity = capacity
        #: Samples allowed before N doubles (0: N never changes here); refilled by the
        #: metrics task each second and after each doubling.
        self.budget = budget
        self.spent = 0
        self.max_gap = max_gap
        self.sampled = 0
        self._pending: list[int] = []
        self._weight = 1
        self._t_decoded = 0
        self._t_state = 0
        self._ts_event = 0
        self._ts_recv = 0

    def next_gap(self) -> int:
        """Return how many messages on the next sampled one is (and remember it as its weight)."""
        if self.budget:
            self.spent += 1
            if self.spent >= self.budget and self.mean_gap < self.max_gap:
                self.mean_gap = min(2 * self.mean_gap, self.max_gap)
                self.spent = 0
        mean = self.mean_gap
        if mean <= 1:
            gap = 1
        else:
            uniform = self._uniform
            if not uniform:
                uniform.extend(self._rng.random(1024).tolist())
            gap = 1 + int(uniform.pop() * (2 * mean - 1))
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
        """Keep the stamps of the sampled message received at ``t_recv`` (perf ns)."""
        self.sampled += 1
        t_state = self._t_state
        pending = self._pending
        if t_state:
            pending += (
                t_recv,
                self._t_decoded,
                t_state,
                self._ts_event,
                self._ts_recv,
                self._weight,
            )
            self._t_state = 0
        else:  # rejected, a control reply, a venue kline: handled, but no state stage
            pending += (t_recv, 0, perf_counter_ns(), 0, 0, self._weight)
        if len(pending) >= self.capacity * _STAMPS:
            self.flush()

    def flush(self) -> None:
        """Bin the buffered samples into the stage histograms."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        table = np.array(pending, dtype=np.int64).reshape(-1, _STAMPS)
        t_recv, t_decoded, t_state, ts_event, ts_recv, weight = table.T
        self.recv_to_handled.record_many(t_state - t_recv, weight)
        staged = t_decoded != 0
        if not staged.all():
            t_recv, t_decoded, t_state = t_recv[staged], t_decoded[staged], t_state[staged]
            ts_event, ts_recv, weight = ts_event[staged], ts_recv[staged], weight[staged]
        self.recv_to_decoded.record_many(t_decoded - t_recv, weight)
        self._decoded_to_state.record_many(t_state - t_decoded, weight)
        timed = ts_event != 0  # spot bookTicker carries no event time
        self._event_to_recv.record_many((ts_recv - ts_event)[timed], weight[timed])


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
