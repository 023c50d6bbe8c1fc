"""The engine's own measurements: stage histograms, rates, queues.

:class:`Metrics` is owned by the live app. The feed times a sample of the
messages through :attr:`Metrics.probe`; every signal passes through
:meth:`Metrics.on_signal` (an engine sink); the metrics task calls
:meth:`Metrics.tick` once a second to close the histograms' current slot and
measure rates over the second that ended. Readers take
:meth:`stage_stats` — nothing here is computed per message beyond what the
probe records.
"""

from __future__ import annotations

from collections.abc import Callable

from tickhawk.metrics.histogram import SlidingHistogram
from tickhawk.metrics.probe import StageProbe
from tickhawk.metrics.snapshot import STAGES, QueueStats, StageStats
from tickhawk.model import Signal

__all__ = ["Metrics"]


class Metrics:
    """Stage latency histograms over a sliding window, message rates and queue readers.

    ``samples_per_s`` is how many messages a second the probe aims to time
    (the sampling gap follows the message rate, at most ``max_gap``);
    ``sample_every`` fixes the gap instead.
    """

    def __init__(
        self,
        *,
        window_s: int = 60,
        samples_per_s: float = 1000.0,
        max_gap: int = 4096,
        sample_every: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.window_s = window_s
        self.samples_per_s = samples_per_s
        self.max_gap = max_gap
        self.sample_every = sample_every
        self.stages: dict[str, SlidingHistogram] = {
            name: SlidingHistogram(window_s) for name in STAGES
        }
        stages = self.stages
        self.probe = StageProbe(
            event_to_recv=stages["event_to_recv"],
            recv_to_decoded=stages["recv_to_decoded"],
            decoded_to_state=stages["decoded_to_state"],
            recv_to_handled=stages["recv_to_handled"],
            mean_gap=sample_every or 16,
            budget=0 if sample_every else max(1, int(2 * samples_per_s)),
            max_gap=max_gap,
            seed=seed,
        )
        self._state_to_strategy = stages["state_to_strategy"]
        self._strategy_to_signal = stages["strategy_to_signal"]
        self._recv_to_signal = stages["recv_to_signal"]
        self.signals_by_strategy: dict[str, int] = {}
        self.msgs_per_s = 0.0
        self.trades_per_s = 0.0
        self._last: tuple[float, int, int] | None = None
        self._queues: dict[str, Callable[[], QueueStats]] = {}

    # -- feeds ---------------------------------------------------------------

    def on_signal(self, signal: Signal) -> None:
        """Record a signal's stages (an engine sink)."""
        self._state_to_strategy.record(signal.t_strategy - signal.t_state)
        self._strategy_to_signal.record(signal.t_emitted - signal.t_strategy)
        self._recv_to_signal.record(signal.t_emitted - signal.t_recv)
        by = self.signals_by_strategy
        by[signal.strategy] = by.get(signal.strategy, 0) + 1

    def register_queue(self, name: str, read: Callable[[], QueueStats]) -> None:
        """Report a bounded queue: ``read`` returns its depth, capacity and drops now."""
        self._queues[name] = read

    def tick(self, now: float, messages: int, trades: int) -> None:
        """Close the second that ended at ``now`` (monotonic s): rotate windows, take rates."""
        self.probe.flush()
        for histogram in self.stages.values():
            histogram.rotate()
        last = self._last
        self._last = (now, messages, trades)
        if last is None:
            return
        elapsed = now - last[0]
        if elapsed <= 0 or messages < last[1] or trades < last[2]:
            return  # a counter went back (a new engine): no rate for this interval
        self.msgs_per_s = (messages - last[1]) / elapsed
        self.trades_per_s = (trades - last[2]) / elapsed
        if self.sample_every is None:
            gap = round(self.msgs_per_s / self.samples_per_s)
            self.probe.mean_gap = min(max(1, gap), self.max_gap)
            self.probe.spent = 0

    # -- readers -------------------------------------------------------------

    def stage_stats(self) -> dict[str, StageStats]:
        """Return every stage's window statistics (zeros for a stage with no sample yet)."""
        self.probe.flush()
        return {name: histogram.stats() for name, histogram in self.stages.items()}

    def queue_stats(self) -> dict[str, QueueStats]:
        """Return every registered queue's figures now."""
        return {name: read() for name, read in self._queues.items()}
