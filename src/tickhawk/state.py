"""Per-symbol state: the trade ring, time bars, indicators, book seam and strategies.

Everything here runs synchronously inside the frame callback. A trade goes:
ring → bar aggregators (a closed bar commits indicators and calls ``on_bar``)
→ forming-bar indicator peeks → ``on_trade`` hooks. A decision becomes a
:class:`~tickhawk.model.Signal` stamped with every stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import perf_counter_ns

from tickhawk.bars.time_bars import TimeBars
from tickhawk.book.l2 import L2Book
from tickhawk.book.sync import BookSync
from tickhawk.indicators.features import Features
from tickhawk.indicators.streams import IndicatorSet
from tickhawk.model import Bar, BookUpdate, Quote, Signal, Trade
from tickhawk.ring import TradeRing
from tickhawk.strategy.api import Decision, Strategy, overrides
from tickhawk.venues.binance.schema import DepthSnapshot

__all__ = ["SymbolState"]

#: Skipped trade ids remembered per symbol (a venue's ids are contiguous).
_MAX_MISSING = 10_000

#: A live trade waiting for a backfill: (trade, t_recv, t_decoded).
HeldTrade = tuple[Trade, int, int]


def _held_id(item: HeldTrade) -> int:
    return item[0].id


class SymbolState:
    """The live state of one symbol, fed by the venue decoder.

    ``bars`` maps an interval label (``"1m"``) to its aggregator;
    ``indicators`` maps an interval label to its indicator set, whose
    ``values`` hold intra-bar values after every trade when ``peek`` is on.
    """

    def __init__(
        self,
        symbol: str,
        *,
        bar_intervals: list[int],
        indicators: dict[int, IndicatorSet],
        strategies: list[Strategy],
        emit: Callable[[Signal], None],
        trade_capacity: int = 4096,
        bar_history: int = 1000,
        peek: bool = True,
        book: BookSync | None = None,
        features: Features | None = None,
    ) -> None:
        self.symbol = symbol
        #: Trade ids: the highest seen, the skipped ones not yet seen, repeats dropped.
        self.last_trade_id = -1
        self.missing_trade_ids: set[int] = set()
        self.duplicate_trades = 0
        self.trade_gaps = 0
        #: The backfill seam (``app/backfill.py``): while ``held`` is a list, live trades
        #: wait in it instead of being applied; at ``hold_limit`` all are released at once.
        self.held: list[HeldTrade] | None = None
        self.hold_limit = 20_000
        self.hold_overflows = 0
        #: Called on a jump in trade ids with (state, first skipped id, last skipped id);
        #: a list returned (``hold()``) holds the trade that showed it, for a backfill.
        self.on_trade_gap: Callable[[SymbolState, int, int], list[HeldTrade] | None] | None = None
        #: Order-flow and book features (``features.values``); None when disabled.
        self.features = features
        self._flow = features.flow.on_trade if features is not None else None
        self._quote_features = features.quote_hook if features is not None else None
        #: The order-book sync (None when no depth stream is configured).
        self.book_sync = book
        self.trades = TradeRing(symbol, trade_capacity)
        self.last_price = 0.0
        self.quote: Quote | None = None
        self.last_book: BookUpdate | None = None
        self.venue_bars: dict[str, Bar] = {}
        self.book_updates = 0
        self.quotes = 0
        self.bar_count = 0
        self.signal_count = 0
        self.last_signal: Signal | None = None
        self._emit_signal = emit
        #: Called with every applied trade / closed bar (replay output, recorders).
        self.trade_listeners: list[Callable[[Trade], None]] = []
        self.bar_listeners: list[Callable[[Bar], None]] = []
        self.book_listeners: list[Callable[[BookUpdate, L2Book], None]] = []
        if features is not None and features.depth_hook is not None:
            self.book_listeners.append(features.depth_hook)
        self.bars: dict[str, TimeBars] = {}
        self.indicators: dict[str, IndicatorSet] = {}
        self._aggregators: list[TimeBars] = []
        # Indicator sets, not their feed functions: those are replaced when streams open.
        self._peeks: list[tuple[IndicatorSet, TimeBars]] = []
        self._bar_indicators: dict[str, IndicatorSet] = {}
        for interval_ns in sorted(set(bar_intervals) | set(indicators)):
            bars = TimeBars(symbol, interval_ns, self._on_bar, history_size=bar_history)
            self.bars[bars.interval] = bars
            self._aggregators.append(bars)
            indicator_set = indicators.get(interval_ns)
            if indicator_set is not None:
                self.indicators[bars.interval] = indicator_set
                self._bar_indicators[bars.interval] = indicator_set
                if peek:
                    self._peeks.append((indicator_set, bars))
        self.strategies = strategies
        self._trade_hooks = [s for s in strategies if overrides(s, "on_trade")]
        self._bar_hooks = [s for s in strategies if overrides(s, "on_bar")]
        self._book_hook_list = [s for s in strategies if overrides(s, "on_book")]
        # Stage stamps of the message being processed, for signals raised deep inside.
        self._t_recv = 0
        self._t_decoded = 0
        self._ts_recv = 0

    # -- feed sink -------------------------------------------------------------

    def on_trade(self, trade: Trade, t_recv: int, t_decoded: int) -> None:
        """Apply one trade (once: a repeated id is dropped); run the trade hooks.

        While a backfill runs for this symbol the trade waits in ``held``.
        """
        held = self.held
        if held is not None:
            held.append((trade, t_recv, t_decoded))
            if len(held) >= self.hold_limit:
                self.hold_overflows += 1
                self.release()  # trades are never dropped: the backfill is given up
            return
        trade_id = trade.id
        last_id = self.last_trade_id
        if trade_id == last_id + 1:
            self.last_trade_id = trade_id
        elif trade_id > last_id:
            if self._note_gap(last_id, trade, t_recv, t_decoded):
                return  # held until the skipped ids are back-filled
        elif trade_id in self.missing_trade_ids:
            self.missing_trade_ids.discard(trade_id)  # a late trade filling a hole
        else:
            self.duplicate_trades += 1
            return
        self._t_recv = t_recv
        self._t_decoded = t_decoded
        self._ts_recv = trade.ts_recv
        self.trades.append(trade)
        price = trade.price
        self.last_price = price
        qty = trade.qty
        ts = trade.ts_event
        for bars in self._aggregators:
            bars.add(price, qty, ts)
        for indicator_set, bars in self._peeks:
            indicator_set.peek(bars)
        if self._flow is not None:
            self._flow(price, qty, trade.side, ts)
        if self.trade_listeners:
            for listener in self.trade_listeners:
                listener(trade)
        if self._trade_hooks:
            t_state = perf_counter_ns()
            for strategy in self._trade_hooks:
                decision = strategy.on_trade(self, trade)
                if decision is not None:
                    self._signal(strategy, decision, price, ts, t_state)

    def _note_gap(self, last_id: int, trade: Trade, t_recv: int, t_decoded: int) -> bool:
        """Handle the ids skipped before ``trade``; return True if it is held for a backfill.

        Otherwise remember the skipped ids, so that a late one is still taken once.
        """
        trade_id = trade.id
        if last_id >= 0:
            self.trade_gaps += 1
            hook = self.on_trade_gap
            if hook is not None:
                held = hook(self, last_id + 1, trade_id - 1)
                if held is not None:
                    held.append((trade, t_recv, t_decoded))
                    return True
        self.last_trade_id = trade_id
        if last_id < 0:
            return False  # the first trade seen
        missing = self.missing_trade_ids
        if trade_id - last_id - 1 > _MAX_MISSING or len(missing) > _MAX_MISSING:
            missing.clear()  # too many to track: later stragglers count as duplicates
            return False
        missing.update(range(last_id + 1, trade_id))
        return False

    # -- backfill (driven by app/backfill.py) ------------------------------------------

    def hold(self) -> list[HeldTrade]:
        """Hold live trades from now on (a backfill starts); return the list they wait in."""
        if self.held is None:
            self.held = []
        return self.held

    def apply_backfill(self, trades: Iterable[Trade]) -> int:
        """Apply trades fetched from REST (oldest first) while live ones stay held.

        They take the normal path, so a repeated id is dropped; return how many
        were applied. Ids they skip are remembered as missing, not held.
        """
        held, hook = self.held, self.on_trade_gap
        self.held = None
        self.on_trade_gap = None
        before = self.trades.count
        now = perf_counter_ns()
        try:
            for trade in trades:
                self.on_trade(trade, now, now)
        finally:
            self.held, self.on_trade_gap = held, hook
        return self.trades.count - before

    def release(self) -> None:
        """Stop holding: apply the held trades in id order (the backfill ended)."""
        held = self.held
        if held is None:
            return
        self.held = None
        held.sort(key=_held_id)  # trades that arrived reordered come out in order
        for index, (trade, t_recv, t_decoded) in enumerate(held):
            self.on_trade(trade, t_recv, t_decoded)
            if self.held is not None:  # a jump in ids started another backfill
                self.held.extend(held[index + 1 :])
                return

    def on_quote(self, quote: Quote, t_recv: int, t_decoded: int) -> None:
        """Apply a best bid/ask update; run the book hooks."""
        self.quote = quote
        self.quotes += 1
        if self._quote_features is not None:
            self._quote_features(quote)
        if self._book_hook_list:
            self._book_hooks(quote, quote.ts_event, quote.ts_recv, t_recv, t_decoded)

    def on_book(self, update: BookUpdate, t_recv: int, t_decoded: int) -> None:
        """Apply an L2 diff through the book sync; run the book hooks on a LIVE book."""
        self.last_book = update
        self.book_updates += 1
        sync = self.book_sync
        if sync is not None:
            if not sync.on_diff(update):
                return  # buffered, dropped or out of sync: nobody sees this book
            if self.book_listeners:
                for listener in self.book_listeners:
                    listener(update, sync.book)
        if self._book_hook_list:
            self._book_hooks(update, update.ts_event, update.ts_recv, t_recv, t_decoded)

    def on_book_invalid(self, update_id: int, ts_recv: int) -> None:
        """A diff of this symbol had a bad level and was skipped: the book must resync."""
        if self.book_sync is not None:
            self.book_sync.invalidate("invalid_level", update_id, ts_recv)

    def on_snapshot(
        self, snapshot: DepthSnapshot, ts_recv: int = 0, limit: int | None = None
    ) -> None:
        """Hand a REST depth snapshot (requested with ``limit``; None: unknown) to the book sync."""
        if self.book_sync is not None:
            self.book_sync.on_snapshot(snapshot, ts_recv, limit)

    @property
    def book(self) -> L2Book | None:
        """Return the L2 book when it is LIVE, else ``None`` (never a book out of sync)."""
        sync = self.book_sync
        if sync is not None and sync.live:
            return sync.book
        return None

    def on_venue_bar(self, bar: Bar) -> None:
        """Keep the venue's own closed kline (bars used by indicators come from trades)."""
        self.venue_bars[bar.interval] = bar

    def advance(self, ts_event: int) -> None:
        """Close bars whose end exchange time ``ts_event`` has passed (a timer calls this)."""
        self._t_recv = self._t_decoded = perf_counter_ns()
        for bars in self._aggregators:
            bars.advance(ts_event)
        if self.features is not None:
            self.features.advance(ts_event)

    # -- internals -------------------------------------------------------------

    def _book_hooks(
        self, update: BookUpdate | Quote, ts: int, ts_recv: int, t_recv: int, t_decoded: int
    ) -> None:
        self._t_recv = t_recv
        self._t_decoded = t_decoded
        self._ts_recv = ts_recv
        t_state = perf_counter_ns()
        for strategy in self._book_hook_list:
            decision = strategy.on_book(self, update)
            if decision is not None:
                self._signal(strategy, decision, self.last_price, ts, t_state)

    def _on_bar(self, bar: Bar) -> None:
        self.bar_count += 1
        indicator_set = self._bar_indicators.get(bar.interval)
        if indicator_set is not None:
            indicator_set.update(bar)
        if self.bar_listeners:
            for listener in self.bar_listeners:
                listener(bar)
        if self._bar_hooks:
            t_state = perf_counter_ns()
            for strategy in self._bar_hooks:
                if strategy.interval is None or strategy.interval == bar.interval:
                    decision = strategy.on_bar(self, bar)
                    if decision is not None:
                        self._signal(strategy, decision, bar.close, bar.open_time, t_state)

    def _signal(
        self, strategy: Strategy, decision: Decision, price: float, ts_event: int, t_state: int
    ) -> None:
        t_strategy = perf_counter_ns()
        signal = Signal(
            self.symbol,
            strategy.name,
            decision.direction,
            decision.score,
            price,
            decision.reason,
            decision.features,
            ts_event,
            self._ts_recv,
            self._t_recv,
            self._t_decoded,
            t_state,
            t_strategy,
            perf_counter_ns(),
        )
        self.signal_count += 1
        self.last_signal = signal
        self._emit_signal(signal)
