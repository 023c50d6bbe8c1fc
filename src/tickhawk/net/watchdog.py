"""The stale-stream watchdog: a connection whose data stops while its socket stays open.

A connection can stay open while the venue stops sending (the socket and
its pings are fine, the data is not), for all of its streams or for one.
Each stream's rhythm is learned from the stream itself, and so is the
connection's as a whole (its newest message over every stream). Two things
are stale:

- **the whole connection silent** for ``max(floor_s, factor × its usual
  gap, 2 × its longest recent gap)``;
- **a busy stream silent** for ``floor_s``: a stream is busy when, after at
  least ``busy_gaps`` gaps, ``factor ×`` its usual gap and five times its
  longest recent gap are both within ``floor_s`` (silence for the floor is
  far beyond anything it did lately). A stalled depth stream of a liquid
  symbol is caught within the floor while the connection's other streams
  go on.

A quiet stream (an illiquid symbol's trades, clustered in time: seconds or
minutes apart) is never judged on its own: with a thousand symbols on a
connection some quiet stream is always in a lull longer than any threshold
its history suggests, and reconnecting would resync a third of the books
for nothing. Its data is not lost when it resumes (trade ids and book
sequence numbers show any gap), and its book is marked stale by the book's
own ``book.stale_after_s``.

The longest recent gap fades with time (half of it is forgotten every
``memory_s``), so a stream that had a long lull a minute ago is not busy.
What caused a reconnect (the connection, or a stream) is then judged at
twice its threshold, 10 % less per gap it shows afterwards.

Nothing here runs per message. The feed stores each stream's last receive
time (one dict store, :attr:`tickhawk.venues.binance.feed.BinanceFeed.last_seen`);
:meth:`StaleWatch.check` samples those times from a timer. A gap is the
time between two samples' newest messages: a busy stream looks one sampling
period apart, so the session samples at least every ``floor_s / factor / 2``.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

__all__ = ["Stale", "StaleWatch"]

_NS = 1_000_000_000
#: A stream is not stale before this many times its longest recent gap.
_BURST = 2.0
#: A stream is busy (judged alone, at the floor) when the floor is this many times its
#: longest recent gap.
_BUSY_BURST = 5.0


class Stale(msgspec.Struct, frozen=True):
    """What went silent (a stream, or every stream of the connection): how long, against what."""

    stream: str  # the stream, or "all N streams" when ``whole``
    silent_s: float
    threshold_s: float
    usual_gap_s: float
    whole: bool = False  # the whole connection was silent


class _Rhythm:
    """The learned gaps of one stream (or of the whole connection), in ns."""

    __slots__ = ("alone", "fresh", "gaps", "longest", "mean", "penalty", "seen")

    def __init__(self) -> None:
        self.seen = -1  # newest receive time sampled, -1: none yet
        self.mean = 0.0  # moving average of the gaps
        self.gaps = 0
        self.longest = 0.0  # the longest recent gap, fading with time
        self.penalty = 1.0  # ×2 per stale reconnect, back to 1 as it speaks
        self.fresh = True  # nothing since the connect yet: a gap across it is no gap
        self.alone = False  # busy: judged on its own (kept by StaleWatch.check)

    def observe(self, value: int, alpha: float, memory_ns: float) -> None:
        """Learn from a newer message received at ``value`` (already at or after the connect)."""
        previous, self.seen = self.seen, value
        if self.fresh:
            self.fresh = False
            return
        if previous < 0:
            return
        gap = value - previous
        self.mean = gap if self.gaps == 0 else self.mean + alpha * (gap - self.mean)
        self.gaps += 1
        self.longest = max(gap, self.longest * 0.5 ** (gap / memory_ns))
        if self.penalty > 1.0:
            self.penalty = max(1.0, self.penalty * 0.9)

    def learned(self, factor: float) -> float:
        """Return how long silence is ordinary for it: ``factor`` usual gaps, twice its longest."""
        return max(factor * self.mean, _BURST * self.longest)

    def busy(self, factor: float, floor: float, gaps: int) -> bool:
        """Return whether silence for ``floor`` would be far beyond anything it did recently."""
        return (
            self.gaps >= gaps
            and factor * self.mean <= floor
            and _BUSY_BURST * self.longest <= floor
        )


class StaleWatch:
    """Find what has been silent too long on one connection.

    ``last_seen`` maps a stream name (bytes) to the ``perf_counter_ns`` of its
    last message; it is written by the feed and only read here. The
    connection is judged once ``min_gaps`` gaps have been seen (a connection
    that never spoke has no rate to judge it by), a stream once it has shown
    ``busy_gaps`` and is busy. ``alpha`` weighs the newest gap in the moving
    average; the longest recent gap halves every ``memory_s``.
    """

    def __init__(
        self,
        streams: list[str],
        last_seen: Mapping[bytes, int],
        *,
        floor_s: float = 5.0,
        factor: float = 10.0,
        min_gaps: int = 3,
        busy_gaps: int = 100,
        alpha: float = 0.1,
        memory_s: float = 600.0,
    ) -> None:
        if not floor_s > 0 or not factor > 0 or not memory_s > 0:
            raise ValueError("the stale watchdog needs floor_s, factor and memory_s > 0")
        self.streams = list(streams)
        self._names = [stream.encode() for stream in streams]
        self.last_seen = last_seen
        self.floor_ns = int(floor_s * _NS)
        self.factor = factor
        self.min_gaps = min_gaps
        self.busy_gaps = busy_gaps
        self.alpha = alpha
        self.memory_ns = memory_s * _NS
        self._rhythms = [_Rhythm() for _ in streams]
        self._connection = _Rhythm()
        self._since = 0  # silence counts from here at the earliest (the connect)

    def reset(self, now_ns: int) -> None:
        """Start counting silence from ``now_ns`` (a new connection); keep the learned gaps."""
        self._since = now_ns
        self._connection.fresh = True
        for rhythm in self._rhythms:
            rhythm.fresh = True

    def _rhythm(self, stream: str | None) -> _Rhythm:
        return self._connection if stream is None else self._rhythms[self.streams.index(stream)]

    def usual_gap_s(self, stream: str | None = None) -> float:
        """Return the usual gap of ``stream`` (None: the connection's) in s (0: unknown)."""
        rhythm = self._rhythm(stream)
        return rhythm.mean / _NS if rhythm.gaps else 0.0

    def threshold_s(self, stream: str | None = None) -> float:
        """Return how long ``stream`` (None: the whole connection) may be silent before it is stale.

        A stream that is not busy has no threshold of its own (infinity): only
        the connection's silence judges it.
        """
        if stream is None:
            return self._threshold(self._connection) / _NS
        rhythm = self._rhythm(stream)
        return self._threshold(rhythm) / _NS if self.busy(stream) else float("inf")

    def busy(self, stream: str) -> bool:
        """Return whether ``stream`` is judged on its own (enough gaps, all far below the floor)."""
        return self._rhythm(stream).busy(self.factor, self.floor_ns, self.busy_gaps)

    def _threshold(self, rhythm: _Rhythm) -> float:
        return rhythm.penalty * max(self.floor_ns, rhythm.learned(self.factor))

    def check(self, now_ns: int) -> Stale | None:
        """Sample every stream; return the most overdue stale one (or the connection), or None."""
        last_seen = self.last_seen
        since = self._since
        alpha = self.alpha
        memory = self.memory_ns
        floor = self.floor_ns
        factor = self.factor
        busy_gaps = self.busy_gaps
        newest = -1
        worst: tuple[float, int] | None = None
        for index, name in enumerate(self._names):
            rhythm = self._rhythms[index]
            value = last_seen.get(name, -1)
            if value != rhythm.seen:
                if value < since:
                    rhythm.seen = value  # a message of the previous connection
                    continue
                rhythm.observe(value, alpha, memory)
                rhythm.alone = rhythm.busy(factor, floor, busy_gaps)
                newest = max(newest, value)
                continue
            if not rhythm.alone:
                continue  # not busy: only the connection's silence judges it
            silent = now_ns - max(value, since)
            overdue = silent / (rhythm.penalty * floor)
            if overdue > 1.0 and (worst is None or overdue > worst[0]):
                worst = (overdue, index)
        connection = self._connection
        if newest > connection.seen:
            connection.observe(newest, alpha, memory)
        elif connection.gaps >= self.min_gaps:
            silent = now_ns - max(connection.seen, since)
            threshold = self._threshold(connection)
            if silent > threshold and (worst is None or silent / threshold > worst[0]):
                return Stale(
                    self.streams[0]
                    if len(self.streams) == 1
                    else f"all {len(self.streams)} streams",
                    silent / _NS,
                    threshold / _NS,
                    connection.mean / _NS,
                    whole=True,
                )
        if worst is None:
            return None
        rhythm = self._rhythms[worst[1]]
        return Stale(
            self.streams[worst[1]],
            (now_ns - max(rhythm.seen, since)) / _NS,
            self._threshold(rhythm) / _NS,
            rhythm.mean / _NS,
        )

    def penalize(self, stale: Stale) -> None:
        """Double the threshold of what was ``stale`` after it caused a reconnect.

        A stream or connection that has merely gone quiet (a market at night)
        is then judged at 2×, 4×, … its threshold instead of forcing a
        reconnect every time; each gap seen afterwards shrinks the penalty by
        10 % (down to none).
        """
        rhythm = self._connection if stale.whole else self._rhythm(stale.stream)
        rhythm.penalty *= 2.0
