"""The stale-stream watchdog: a stream silent far longer than its own usual gap is stale.

A connection can stay open while the venue stops sending (the socket and
its pings are fine, the data is not). Each stream's usual gap between
messages is learned from the stream itself, so a 100 ms depth stream and a
kline stream that speaks every two seconds each get their own threshold:
``max(floor_s, factor × usual gap, 2 × longest recent gap)``. The last term
keeps bursty streams (trades cluster in time) from being called stale in an
ordinary lull; a stream that still caused a reconnect is judged at twice its
threshold until it has spoken a few times again.

Nothing here runs per message. The feed stores each stream's last receive
time (one dict store, :attr:`tickhawk.venues.binance.feed.BinanceFeed.last_seen`);
:meth:`StaleWatch.check` samples those times from a timer. The usual gap is
a moving average of the gaps seen between samples: a busy stream looks one
sampling period apart, so the session samples at least every
``floor_s / factor / 2`` and such a stream is judged by the floor.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

__all__ = ["Stale", "StaleWatch"]

_NS = 1_000_000_000
#: A stream is not stale before this many times its longest recent gap.
_BURST = 2.0


class Stale(msgspec.Struct, frozen=True):
    """A stream that went silent: for how long, against what threshold."""

    stream: str
    silent_s: float
    threshold_s: float
    usual_gap_s: float


class StaleWatch:
    """Find the streams of one connection that have been silent too long.

    ``last_seen`` maps a stream name (bytes) to the ``perf_counter_ns`` of its
    last message; it is written by the feed and only read here. A stream is
    watched once ``min_gaps`` gaps have been seen (a stream that never spoke
    has no rate to judge it by). ``alpha`` weighs the newest gap in the
    moving average; the longest recent gap fades by ``decay`` per gap seen.
    """

    def __init__(
        self,
        streams: list[str],
        last_seen: Mapping[bytes, int],
        *,
        floor_s: float = 5.0,
        factor: float = 10.0,
        min_gaps: int = 3,
        alpha: float = 0.1,
        decay: float = 0.98,
    ) -> None:
        if not floor_s > 0 or not factor > 0:
            raise ValueError("the stale watchdog needs floor_s > 0 and factor > 0")
        self.streams = list(streams)
        self._names = [stream.encode() for stream in streams]
        self.last_seen = last_seen
        self.floor_ns = int(floor_s * _NS)
        self.factor = factor
        self.min_gaps = min_gaps
        self.alpha = alpha
        self.decay = decay
        count = len(streams)
        self._seen: list[int] = [-1] * count  # last sampled receive time, -1: none yet
        self._mean_gap: list[float] = [0.0] * count  # ns
        self._gaps: list[int] = [0] * count
        self._long_gap: list[float] = [0.0] * count  # ns, fading
        self._penalty: list[float] = [1.0] * count  # ×2 per stale reconnect, back to 1 as it speaks
        self._since = 0  # silence counts from here at the earliest (the connect)
        self._fresh: list[bool] = [True] * count

    def reset(self, now_ns: int) -> None:
        """Start counting silence from ``now_ns`` (a new connection); keep the learned gaps."""
        self._since = now_ns
        self._fresh = [True] * len(self._names)

    def usual_gap_s(self, stream: str) -> float:
        """Return the learned usual gap of ``stream`` in seconds (0 while unknown)."""
        index = self.streams.index(stream)
        return self._mean_gap[index] / _NS if self._gaps[index] else 0.0

    def threshold_s(self, stream: str) -> float:
        """Return how long ``stream`` may be silent before it is stale."""
        index = self.streams.index(stream)
        return self._threshold(index) / _NS

    def _threshold(self, index: int) -> float:
        learned = max(self.factor * self._mean_gap[index], _BURST * self._long_gap[index])
        return self._penalty[index] * max(self.floor_ns, learned)

    def check(self, now_ns: int) -> Stale | None:
        """Sample every stream; return the most overdue stale one, or None."""
        last_seen = self.last_seen
        seen = self._seen
        mean_gap = self._mean_gap
        gaps = self._gaps
        fresh = self._fresh
        alpha = self.alpha
        since = self._since
        worst: tuple[float, int] | None = None
        for index, name in enumerate(self._names):
            value = last_seen.get(name, -1)
            previous = seen[index]
            if value != previous:
                seen[index] = value
                if value < since:
                    continue  # a message of the previous connection
                if fresh[index]:
                    fresh[index] = False  # the first since the connect: a gap across it is no gap
                elif previous >= 0:
                    gap = value - previous
                    count = gaps[index]
                    mean_gap[index] = (
                        gap if count == 0 else mean_gap[index] + alpha * (gap - mean_gap[index])
                    )
                    gaps[index] = count + 1
                    self._long_gap[index] = max(gap, self._long_gap[index] * self.decay)
                    if self._penalty[index] > 1.0:
                        self._penalty[index] = max(1.0, self._penalty[index] * 0.9)
                continue
            if gaps[index] < self.min_gaps:
                continue
            silent = now_ns - max(previous, since)
            overdue = silent / self._threshold(index)
            if overdue > 1.0 and (worst is None or overdue > worst[0]):
                worst = (overdue, index)
        if worst is None:
            return None
        index = worst[1]
        silent = now_ns - max(seen[index], since)
        return Stale(
            self.streams[index],
            silent / _NS,
            self._threshold(index) / _NS,
            mean_gap[index] / _NS,
        )

    def penalize(self, stream: str) -> None:
        """Double ``stream``'s threshold after it caused a reconnect.

        A stream that has merely gone quiet (a market at night) is then judged
        at 2×, 4×, … the threshold instead of forcing a reconnect every time;
        each gap seen afterwards shrinks the penalty by 10 % (down to none).
        """
        index = self.streams.index(stream)
        self._penalty[index] *= 2.0
