"""The engine: per-symbol state built from the configuration, the router, signal sinks.

The engine is plain synchronous code: a venue feed (``venues/binance/feed.py``)
decodes frames and calls the symbol states the engine owns; signals go to the
sinks. The same engine runs live, against the simulator, and in replay.
"""

from __future__ import annotations

from collections.abc import Callable

from tickhawk.book.sync import BookEvent, BookSync
from tickhawk.config import Config
from tickhawk.indicators.features import Features
from tickhawk.indicators.streams import IndicatorSet
from tickhawk.metrics.probe import StageProbe
from tickhawk.model import Signal, parse_interval
from tickhawk.rejects import Rejects
from tickhawk.state import SymbolState
from tickhawk.strategy.api import Strategy
from tickhawk.strategy.builtin import build_strategies
from tickhawk.venues.binance.feed import BinanceFeed

__all__ = ["Engine", "SignalSink"]

SignalSink = Callable[[Signal], None]


def _ignore(symbol: str) -> None:
    """Default snapshot request: nothing fetches (replay takes the capture's snapshot)."""


def _strategies(config: Config) -> list[Strategy]:
    return build_strategies(config.strategies)


def _features(config: Config, symbol: str) -> Features | None:
    if not config.features.enabled:
        return None
    return Features(config.features.for_symbol(symbol))


class Engine:
    """Own the symbol states, route events to them, fan signals out to sinks.

    ``strategy_factory`` (optional) returns extra strategy instances for a
    symbol, beside the configured built-in ones.
    """

    def __init__(
        self,
        config: Config,
        *,
        rejects: Rejects | None = None,
        strategy_factory: Callable[[str], list[Strategy]] | None = None,
    ) -> None:
        self.config = config
        self.rejects = rejects or Rejects()
        self.sinks: list[SignalSink] = []
        self.signals = 0
        #: Called with a symbol whose book needs a REST snapshot (the live app fetches it).
        self.request_snapshot: Callable[[str], None] = _ignore
        #: Receive every book state transition.
        self.book_listeners: list[Callable[[BookEvent], None]] = []
        with_books = config.book.enabled and any(
            stream.startswith("depth") for stream in config.venue.streams
        )
        specs = config.indicator_specs()
        intervals = [parse_interval(label) for label in config.engine.intervals]
        self.states: dict[str, SymbolState] = {}
        for symbol in config.venue.symbols:
            symbol = symbol.upper()
            strategies = _strategies(config)
            if strategy_factory is not None:
                strategies += strategy_factory(symbol)
            self.states[symbol] = SymbolState(
                symbol,
                bar_intervals=intervals,
                indicators={ns: IndicatorSet(list(s)) for ns, s in specs.items()},
                strategies=strategies,
                emit=self._emit,
                trade_capacity=config.engine.trade_capacity,
                bar_history=config.engine.bar_history,
                peek=config.engine.peek,
                book=self._book_sync(symbol) if with_books else None,
                features=_features(config, symbol),
            )

    def _book_sync(self, symbol: str) -> BookSync:
        book = self.config.book
        return BookSync(
            symbol,
            futures=self.config.venue.market == "usdm",
            max_levels=book.max_levels,
            buffer_limit=book.buffer_limit,
            stale_after_s=book.stale_after_s,
            request_snapshot=lambda s: self.request_snapshot(s),
            on_event=self._book_event,
        )

    def _book_event(self, event: BookEvent) -> None:
        for listener in self.book_listeners:
            listener(event)

    def feed(
        self, streams: list[str] | None = None, *, probe: StageProbe | None = None
    ) -> BinanceFeed:
        """Return a Binance decoder routing ``streams`` (default: the configured ones).

        ``probe`` times a sample of the messages stage by stage (metrics).
        """
        names = streams if streams is not None else self.config.venue.stream_names()
        return BinanceFeed(dict(self.states), names, self.rejects, probe=probe)

    def _emit(self, signal: Signal) -> None:
        self.signals += 1
        for sink in self.sinks:
            sink(signal)

    # -- totals ----------------------------------------------------------------

    @property
    def trades(self) -> int:
        """Return the trades applied over every symbol."""
        return sum(state.trades.count for state in self.states.values())

    @property
    def bars(self) -> int:
        """Return the bars closed over every symbol and interval."""
        return sum(state.bar_count for state in self.states.values())
