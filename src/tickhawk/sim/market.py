"""The synthetic market: order books, trades and their stream messages, step by step.

Plain synchronous code: :meth:`MarketModel.advance_to` runs fixed steps of
simulated time and appends the payloads of the streams somebody wants to
:attr:`MarketModel.outbox` as ``(stream id, JSON text)``, in event order.
The model state (books, ids, trade history, bars) advances identically
whatever is subscribed, so a seed fixes the whole market.

Each step, per symbol: the fair price moves (:mod:`tickhawk.sim.process`);
if it has left the spread, an informed taker sweeps the stale side up to the
fair price; then the step's events run, each a taker order (walks the book,
trades at the touch, one aggTrade per level), a maker add or a maker cancel.
Every book event carries one update id; bookTicker is sent when the top of
book changed, with that id.
"""

from __future__ import annotations

import math
import time

import numpy as np

from tickhawk.sim.bars import BarStore
from tickhawk.sim.book import SimBook, seed_levels
from tickhawk.sim.depth import DepthStreams
from tickhawk.sim.encode import agg_trade_json, book_ticker_json, trade_json
from tickhawk.sim.klines import KlineDesk
from tickhawk.sim.process import Drivers, ProcessParams
from tickhawk.sim.streams import StreamKey
from tickhawk.sim.symbols import E8, SymbolSpec
from tickhawk.sim.tape import TradeTape

__all__ = ["MSGS_PER_EVENT", "MarketModel"]

# Mean trade + aggTrade + bookTicker messages per market event with the
# default parameters: the starting point of the rate control (_calibrate).
MSGS_PER_EVENT = 1.4
_TAKER = 0.2  # event shares: taker orders, maker adds, the rest cancels
_ADD = 0.45
_MIN_LEVELS = 3  # never cancel a side below this many levels
_WALK = 5  # levels a random taker order may walk
_SWEEP = 10  # levels an informed sweep may take in one step
_DRAWS = 5  # uniforms per event


class MarketModel:
    """Books and trades of ``specs``; ``rate`` is the target trade+aggTrade+bookTicker msgs/s."""

    def __init__(
        self,
        specs: list[SymbolSpec],
        *,
        rate: float,
        seed: int,
        start_ms: int,
        step_ms: int = 1,
        history_trades: int = 100_000,
        bar_seconds: int = 3_600,
        bar_minutes: int = 1_440,
        max_levels: int = 200,
        params: ProcessParams | None = None,
    ) -> None:
        if step_ms < 1:
            raise ValueError("step_ms must be >= 1")
        self.specs = specs
        self.step_ms = step_ms
        self.time_ms = start_ms
        self.start_ms = start_ms
        self.max_levels = max(2 * _MIN_LEVELS, max_levels)
        self.params = params or ProcessParams()
        count = len(specs)
        self.rng = np.random.default_rng([seed, 0x3A4B])
        activity = np.array([spec.activity for spec in specs], dtype=np.float64)
        self.event_rates = (rate / MSGS_PER_EVENT) * activity / activity.sum()
        prices = np.array([spec.price_ticks for spec in specs], dtype=np.float64)
        self.drivers = Drivers(self.event_rates, prices, step_ms, self.rng, self.params)
        self.names = [spec.name for spec in specs]
        self.price_e8 = [spec.price_e8 for spec in specs]
        self.qty_e8 = [spec.qty_e8 for spec in specs]
        lot_value = [spec.price * 10.0**spec.step_exp for spec in specs]
        self.taker_lots = [max(1.0, 20.0 / value) for value in lot_value]
        self.maker_lots = [max(1.0, 60.0 / value) for value in lot_value]
        sigma_ticks = math.sqrt(self.drivers.variance0) * prices
        # Geometric offsets: near the touch, or spread over a few seconds of moves.
        self.far_log = [math.log(1.0 - 1.0 / (1.0 + 3.0 * max(1.0, s))) for s in sigma_ticks]
        self.near_log = math.log(1.0 - 1.0 / 1.6)
        self.books = [SimBook(int(self.rng.integers(1_000_000, 50_000_000))) for _ in range(count)]
        first_ids = self.rng.integers(1_000_000, 500_000_000, count)
        self.tapes = [TradeTape(history_trades, int(first)) for first in first_ids]
        self.next_agg = [int(first) // 2 for first in first_ids]
        for index, book in enumerate(self.books):
            bids, asks = seed_levels(
                self.rng, float(prices[index]), self.maker_lots[index], self.max_levels
            )
            book.load(bids, asks)
        self._best_bid = np.array([book.best_bid for book in self.books], dtype=np.float64)
        self._best_ask = np.array([book.best_ask for book in self.books], dtype=np.float64)
        self._price_text: list[dict[int, str]] = [{} for _ in range(count)]
        # What to emit: stream id per symbol (-1: nobody listens).
        self.outbox: list[tuple[int, str]] = []
        self.trade_stream = [-1] * count
        self.agg_stream = [-1] * count
        self.ticker_stream = [-1] * count
        self._per_event = {
            "trade": self.trade_stream,
            "aggTrade": self.agg_stream,
            "bookTicker": self.ticker_stream,
        }
        self.depth = DepthStreams(specs, self.books)
        self.trade_ranges: list[list[list[int]]] = [[] for _ in range(count)]
        # Rate control: per-event messages depend on the market's state, so the
        # model counts the messages it would send and steers its event rate.
        self.rate = rate
        self.produced = 0
        self._gain = 1.0
        self.bars = BarStore(
            [spec.price_ticks for spec in specs], start_ms, bar_seconds, bar_minutes
        )
        trades_per_s = [rate * _TAKER * 2.0 for rate in self.event_rates.tolist()]
        self.klines = KlineDesk(
            specs,
            self.bars,
            seed=seed,
            daily_vol=self.params.daily_vol,
            trades_per_s=trades_per_s,
            lots_per_trade=[lots * 2.0 for lots in self.taker_lots],
        )

    # -- stepping ------------------------------------------------------------------------

    def advance_to(self, time_ms: int, deadline: float | None = None) -> int:
        """Run whole steps up to simulated ``time_ms``; return the steps run.

        With ``deadline`` (a ``time.perf_counter()`` value), stop after the
        first step that ends past it, so that a caller on an event loop stays
        responsive when the market is busier than the host can simulate.
        """
        steps = 0
        step_ms = self.step_ms
        while self.time_ms + step_ms <= time_ms:
            self._step(self.time_ms + step_ms)
            steps += 1
            if deadline is not None and time.perf_counter() > deadline:
                break
        return steps

    def _step(self, now: int) -> None:
        drivers = self.drivers
        if now // 1_000 != self.time_ms // 1_000:
            drivers.close_second()
            self._calibrate()
        counts = drivers.step()
        fair = drivers.fair_prices()
        crossed = (fair > self._best_ask + 0.5) | (fair < self._best_bid - 0.5)
        active = np.flatnonzero((counts > 0) | crossed)
        self.time_ms = now
        self.bars.roll_to(now)
        if len(active):
            total = int(counts[active].sum()) + int(crossed[active].sum())
            draws: list[float] = self.rng.random(total * _DRAWS).tolist()
            position = 0
            for index, events, price, cross in zip(
                active.tolist(),
                counts[active].tolist(),
                fair[active].tolist(),
                crossed[active].tolist(),
                strict=True,
            ):
                position = self._symbol_events(index, events, price, cross, now, draws, position)
        if self.depth and now % 100 == 0:
            self.depth.flush(now, self.outbox)
        if self.klines.subscribed:
            self.klines.emit(now, self.outbox)

    def set_rate(self, rate: float) -> None:
        """Change the target ``rate`` now: the event intensity jumps by the same factor.

        The rate control alone moves at most 25 % per simulated second; a load
        test's 10× spike must take effect at once.
        """
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of messages per second, not {rate}")
        factor = rate / self.rate
        self.rate = rate
        self._gain = min(50.0, max(0.02, self._gain * factor))
        # Count this second's messages as if produced at the new rate, so the next
        # calibration does not read the change as a shortfall.
        self.produced = int(self.produced * factor)
        self.drivers.scale(self._gain)
        # The self-excited part too: else it takes a few decay times to follow.
        self.drivers.excitation = self.drivers.excitation * factor

    def _calibrate(self) -> None:
        """Once a simulated second: steer the event rate toward ``rate`` messages/s."""
        produced, self.produced = self.produced, 0
        ratio = self.rate / max(produced, 1.0)
        self._gain = min(50.0, max(0.02, self._gain * min(1.25, max(0.8, ratio**0.5))))
        self.drivers.scale(self._gain)

    def _symbol_events(
        self,
        index: int,
        events: int,
        fair: float,
        crossed: bool,
        now: int,
        draws: list[float],
        position: int,
    ) -> int:
        book = self.books[index]
        ticker = self.ticker_stream[index]
        if crossed:
            top = self._top(book) if ticker >= 0 else None
            buy = fair > book.best_ask
            limit = int(fair - 0.5) if buy else math.ceil(fair + 0.5)
            changed = self._take(index, book, buy, 1 << 60, limit, _SWEEP, now, draws[position])
            position += _DRAWS
            if changed:
                update_id = book.commit()
                if top is not None and top != self._top(book):
                    self._emit_ticker(index, book, update_id, ticker)
        for _ in range(events):
            kind, side, size, level, extra = draws[position : position + _DRAWS]
            position += _DRAWS
            top = self._top(book) if ticker >= 0 else None
            if kind < _TAKER:
                mid = (book.best_bid + book.best_ask) * 0.5
                lean = (fair - mid) / (1.0 + abs(fair - mid))
                buy = side < 0.5 + 0.4 * lean
                lots = int(self.taker_lots[index] * size ** (-1.0 / 1.3))
                changed = self._take(index, book, buy, max(1, lots), None, _WALK, now, extra)
            elif kind < _TAKER + _ADD:
                changed = self._add(index, book, side < 0.5, fair, size, level, extra)
            else:
                changed = self._cancel(book, side < 0.5, size, level, extra)
            if changed:
                update_id = book.commit()
                if top is not None and top != self._top(book):
                    self._emit_ticker(index, book, update_id, ticker)
        if len(book.bids) > self.max_levels * 5 // 4 or len(book.asks) > self.max_levels * 5 // 4:
            self._prune(book)
        self._best_bid[index] = book.best_bid
        self._best_ask[index] = book.best_ask
        return position

    @staticmethod
    def _top(book: SimBook) -> tuple[int, int, int, int]:
        return (book.best_bid, book.bids[book.best_bid], book.best_ask, book.asks[book.best_ask])

    # -- events --------------------------------------------------------------------------

    def _take(
        self,
        index: int,
        book: SimBook,
        buy: bool,
        lots: int,
        limit: int | None,
        max_levels: int,
        now: int,
        split: float,
    ) -> bool:
        """Walk the opposite side with a taker order; never empty a side. Return if it traded."""
        side = book.asks if buy else book.bids
        remaining = lots
        levels = 0
        traded = False
        while remaining > 0 and levels < max_levels:
            price = book.best_ask if buy else book.best_bid
            if limit is not None and (price > limit if buy else price < limit):
                break
            available = side[price]
            fill = available if available < remaining else remaining
            if fill == available and len(side) == 1:
                fill = available - 1  # keep the side alive: leave one lot
                if fill <= 0:
                    break
            self._fill(index, price, fill, not buy, now, split)
            if buy:
                book.set_ask(price, available - fill)
            else:
                book.set_bid(price, available - fill)
            traded = True
            remaining -= fill
            levels += 1
        if traded:
            self.produced += 1  # the top of book changed: one bookTicker
        return traded

    def _fill(
        self, index: int, price: int, lots: int, buyer_maker: bool, now: int, split: float
    ) -> None:
        """Record the trades of one taker order at one price (one aggTrade)."""
        chunks = 1 + int(split * split * split * 4.0)
        if chunks > lots:
            chunks = lots
        tape = self.tapes[index]
        first = tape.next_id
        agg = self.next_agg[index]
        self.next_agg[index] = agg + 1
        base, extra = divmod(lots, chunks)
        stream = self.trade_stream[index]
        price_text = self._price(index, price) if stream >= 0 or self.agg_stream[index] >= 0 else ""
        qty_e8 = self.qty_e8[index]
        name = self.names[index]
        outbox = self.outbox
        for chunk in range(chunks):
            qty = base + 1 if chunk < extra else base
            trade_id = tape.add(agg, price, qty, now, buyer_maker)
            if stream >= 0:
                value = qty * qty_e8
                outbox.append(
                    (
                        stream,
                        trade_json(
                            now,
                            name,
                            trade_id,
                            price_text,
                            f"{value // E8}.{value % E8:08d}",
                            buyer_maker,
                        ),
                    )
                )
        last = first + chunks - 1
        self.produced += chunks + 1
        if stream >= 0:
            ranges = self.trade_ranges[index]
            if ranges and ranges[-1][1] == first - 1:
                ranges[-1][1] = last
            else:
                ranges.append([first, last])
        agg_stream = self.agg_stream[index]
        if agg_stream >= 0:
            value = lots * qty_e8
            outbox.append(
                (
                    agg_stream,
                    agg_trade_json(
                        now,
                        name,
                        agg,
                        price_text,
                        f"{value // E8}.{value % E8:08d}",
                        first,
                        last,
                        buyer_maker,
                    ),
                )
            )
        self.bars.add(index, price, lots, chunks, buyer_maker, first)

    def _add(
        self,
        index: int,
        book: SimBook,
        bid: bool,
        fair: float,
        size: float,
        level: float,
        extra: float,
    ) -> bool:
        if extra < 0.95:  # near the touch, or a few seconds of moves away
            scale = self.near_log if extra < 0.7 else self.far_log[index]
            offset = int(math.log(1.0 - level) / scale)
        else:  # deep in the book: keeps it hundreds of levels deep
            offset = int(level * 2 * self.max_levels)
        lots = max(1, int(self.maker_lots[index] * size ** (-1.0 / 1.6)))
        if bid:
            price = math.floor(fair) - offset
            if price >= book.best_ask:
                price = book.best_ask - 1
            if price <= 0:
                return False
            if price >= book.best_bid:
                self.produced += 1
            book.set_bid(price, book.bids.get(price, 0) + lots)
        else:
            price = math.ceil(fair) + offset
            if price <= book.best_bid:
                price = book.best_bid + 1
            if price <= book.best_ask:
                self.produced += 1
            book.set_ask(price, book.asks.get(price, 0) + lots)
        return True

    def _cancel(self, book: SimBook, bid: bool, size: float, level: float, extra: float) -> bool:
        offset = int(math.log(1.0 - level) / self.near_log)
        side = book.bids if bid else book.asks
        price = book.best_bid - offset if bid else book.best_ask + offset
        qty = side.get(price)
        if qty is None:
            return False
        remaining = 0 if extra < 0.5 or qty == 1 else max(1, int(qty * size))
        if remaining == 0 and len(side) <= _MIN_LEVELS:
            return False
        if offset == 0:
            self.produced += 1
        if bid:
            book.set_bid(price, remaining)
        else:
            book.set_ask(price, remaining)
        return True

    def _prune(self, book: SimBook) -> None:
        """Cancel the levels farthest from the touch beyond ``max_levels`` per side (one event)."""
        keep = self.max_levels
        for price in sorted(book.bids, reverse=True)[keep:]:
            book.set_bid(price, 0)
        for price in sorted(book.asks)[keep:]:
            book.set_ask(price, 0)
        book.commit()

    # -- emission ------------------------------------------------------------------------

    def _price(self, index: int, ticks: int) -> str:
        cache = self._price_text[index]
        text = cache.get(ticks)
        if text is None:
            if len(cache) > 4_096:
                cache.clear()
            value = ticks * self.price_e8[index]
            text = cache[ticks] = f"{value // E8}.{value % E8:08d}"
        return text

    def qty_text(self, index: int, lots: int) -> str:
        """Return a quantity of symbol ``index`` as Binance text."""
        value = lots * self.qty_e8[index]
        return f"{value // E8}.{value % E8:08d}"

    def _emit_ticker(self, index: int, book: SimBook, update_id: int, stream: int) -> None:
        self.outbox.append(
            (
                stream,
                book_ticker_json(
                    update_id,
                    self.names[index],
                    self._price(index, book.best_bid),
                    self.qty_text(index, book.bids[book.best_bid]),
                    self._price(index, book.best_ask),
                    self.qty_text(index, book.asks[book.best_ask]),
                ),
            )
        )

    def take_outbox(self) -> list[tuple[int, str]]:
        """Return the messages produced since the last call and start a new outbox."""
        out = self.outbox
        self.outbox = []
        return out

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, stream: int, key: StreamKey, index: int) -> None:
        """Start emitting ``key`` (symbol number ``index``) as stream id ``stream``."""
        per_event = self._per_event.get(key.kind)
        if per_event is not None:
            per_event[index] = stream
        elif key.kind == "depth":
            self.depth.add(stream, index, key.cadence_ms)
        else:
            self.klines.subscribe(stream, index, key.interval)

    def unsubscribe(self, stream: int, key: StreamKey, index: int) -> None:
        """Stop emitting stream id ``stream``."""
        per_event = self._per_event.get(key.kind)
        if per_event is not None:
            per_event[index] = -1
        elif key.kind == "depth":
            self.depth.remove(stream)
        else:
            self.klines.unsubscribe(stream)

    # -- state for REST ------------------------------------------------------------------

    def depth_snapshot(
        self, index: int, limit: int
    ) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """Return ``(lastUpdateId, bids, asks)`` of symbol ``index``, best ``limit`` levels."""
        book = self.books[index]
        bids, asks = book.snapshot(limit)
        return book.update_id, bids, asks

    def trade_ids_sent(self, index: int) -> list[tuple[int, int]]:
        """Return the inclusive trade id ranges emitted on the trade stream of ``index``."""
        return [(first, last) for first, last in self.trade_ranges[index]]
