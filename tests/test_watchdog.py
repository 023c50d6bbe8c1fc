"""The stale watchdog on the simulator's market: quiet streams are no reason to reconnect.

The simulator's market model (many Zipf-weighted symbols, clustered arrivals)
is stepped in simulated time, a quarter second at a time as the session's
monitor samples, and every message it produces stamps its stream's receive
time as the feed does; no sockets, so a minute of market takes a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterable

from tickhawk.net.watchdog import Stale, StaleWatch
from tickhawk.sim.market import MarketModel
from tickhawk.sim.streams import parse_stream
from tickhawk.sim.symbols import make_specs, symbol_names

START_MS = 1_723_161_600_000
TICK_MS = 250
SECOND = 1_000_000_000
KINDS = ("trade", "bookTicker", "depth@100ms")


class Market:
    """The simulator's market with every stream of every symbol subscribed, in simulated time."""

    def __init__(self, symbols: int, rate: float) -> None:
        self.model = MarketModel(
            make_specs(symbol_names(symbols), 7), rate=rate, seed=7, start_ms=START_MS
        )
        self.streams: list[str] = []
        for index, name in enumerate(self.model.names):
            for kind in KINDS:
                stream = f"{name.lower()}@{kind}"
                self.model.subscribe(len(self.streams), parse_stream(stream), index)
                self.streams.append(stream)
        self._keys = [stream.encode() for stream in self.streams]
        self.last_seen: dict[bytes, int] = {}
        self.now = 0  # ns since the start
        self.messages: dict[str, int] = dict.fromkeys(self.streams, 0)
        self.longest_silence: dict[str, int] = dict.fromkeys(self.streams, 0)

    def run(
        self, seconds: float, watch: StaleWatch, *, silenced: Iterable[str] = ()
    ) -> list[tuple[float, Stale]]:
        """Step ``seconds``, sampling ``watch`` every tick; return what it found stale, when.

        The streams in ``silenced`` stop being delivered (the venue stopped
        sending them); the market goes on.
        """
        muted = {self.streams.index(stream) for stream in silenced}
        found: list[tuple[float, Stale]] = []
        for _ in range(round(seconds * 1000 / TICK_MS)):
            self.now += TICK_MS * 1_000_000
            self.model.advance_to(START_MS + self.now // 1_000_000)
            for stream, _text in self.model.take_outbox():
                if stream in muted:
                    continue
                key = self._keys[stream]
                name = self.streams[stream]
                if self.messages[name]:
                    silence = self.now - self.last_seen[key]
                    self.longest_silence[name] = max(self.longest_silence[name], silence)
                self.messages[name] += 1
                self.last_seen[key] = self.now
            stale = watch.check(self.now)
            if stale is not None:
                found.append((self.now / SECOND, stale))
                watch.penalize(stale)
                watch.reset(self.now)  # as the session does: a new connection
        return found

    def watch(self, streams: list[str] | None = None) -> StaleWatch:
        """Return a watchdog with the session's defaults over ``streams`` (default: all)."""
        watch = StaleWatch(streams or self.streams, self.last_seen, floor_s=5.0, factor=10.0)
        watch.reset(self.now)
        return watch


def test_quiet_streams_of_a_busy_connection_never_force_a_reconnect() -> None:
    # 300 symbols, 2,800 msg/s on one connection: the market of the volume load test, scaled
    market = Market(300, 2_500.0)
    watch = market.watch()
    assert market.run(60, watch) == []
    # it was judged: some streams are busy enough to be watched alone ...
    busy = [stream for stream in market.streams if watch.busy(stream)]
    assert len(busy) >= 20
    assert watch.threshold_s() == 5.0  # ... and the connection as a whole by the floor
    # ... and many others spoke several times yet went silent past the floor, and past
    # ten times their usual gap: a quiet symbol in a lull, not a stale stream
    quiet = [
        stream
        for stream in market.streams
        if market.messages[stream] >= 5
        and market.longest_silence[stream] > 5 * SECOND
        and market.longest_silence[stream] > 10 * watch.usual_gap_s(stream) * SECOND
    ]
    assert len(quiet) >= 50


def test_a_quiet_stream_is_not_judged_alone_even_after_many_gaps() -> None:
    last_seen: dict[bytes, int] = {}
    watch = StaleWatch(["busy@depth", "quiet@trade"], last_seen, floor_s=5.0, factor=10.0)
    watch.reset(0)
    now = 0
    for step in range(1, 2001):  # 500 s: depth every tick, a trade every 2 s
        now = step * SECOND // 4
        last_seen[b"busy@depth"] = now
        if step % 8 == 0:
            last_seen[b"quiet@trade"] = now
        assert watch.check(now) is None
    assert watch.busy("busy@depth") and not watch.busy("quiet@trade")
    for step in range(2001, 2001 + 4 * 120):  # the trades stop for two minutes
        now = step * SECOND // 4
        last_seen[b"busy@depth"] = now
        assert watch.check(now) is None


def test_a_stream_with_a_recent_lull_is_busy_again_only_once_the_lull_fades() -> None:
    last_seen: dict[bytes, int] = {}
    watch = StaleWatch(["a@trade", "b@depth"], last_seen, floor_s=5.0, memory_s=60.0)
    watch.reset(0)
    now = 0

    def speak(seconds: float, *, a: bool = True) -> None:
        nonlocal now
        for _ in range(round(seconds * 4)):
            now += SECOND // 4
            last_seen[b"b@depth"] = now
            if a:
                last_seen[b"a@trade"] = now
            assert watch.check(now) is None

    speak(60)
    assert watch.busy("a@trade")
    speak(3, a=False)  # a 3 s lull: silence for the floor is no longer far beyond it
    speak(1)
    assert not watch.busy("a@trade")
    speak(120)  # two half-lives: the lull counts for 0.75 s, a fifth of the floor is 1 s
    assert watch.busy("a@trade")


def test_a_busy_stream_that_stalls_is_caught_within_the_floor_while_the_others_go_on() -> None:
    market = Market(300, 2_500.0)
    watch = market.watch()
    assert market.run(40, watch) == []
    busy = [stream for stream in market.streams if watch.busy(stream)]
    stalled = next(stream for stream in busy if stream.endswith("@depth@100ms"))
    found = market.run(10, watch, silenced=[stalled])
    assert len(found) == 1
    at, stale = found[0]
    assert stale.stream == stalled and not stale.whole
    assert 5.0 < stale.silent_s <= 5.0 + 2 * TICK_MS / 1000  # the floor and a sampling tick
    assert stale.threshold_s == 5.0
    assert at - 40.0 <= 5.0 + 2 * TICK_MS / 1000


def test_a_connection_of_quiet_streams_that_falls_silent_is_caught() -> None:
    market = Market(300, 2_500.0)
    quiet_symbols = market.streams[-3 * 100 :]  # the 100 least active symbols
    watch = market.watch(quiet_symbols)
    assert market.run(40, watch) == []
    assert not any(watch.busy(stream) for stream in quiet_symbols)  # nothing judged alone
    threshold = watch.threshold_s()
    assert 5.0 <= threshold < 15.0
    found = market.run(threshold + 2, watch, silenced=quiet_symbols)
    assert len(found) == 1
    _at, stale = found[0]
    assert stale.whole and stale.stream == "all 300 streams"
    assert threshold < stale.silent_s <= threshold + 2 * TICK_MS / 1000
