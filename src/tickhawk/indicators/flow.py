"""Order-flow features from trades: O(1) per trade, fixed memory, no drift.

One :class:`TradeFlow` per symbol keeps, from the trades it is given:

- a sliding **flow window** of ``window_ns`` made of ``buckets`` time buckets
  (aligned to the epoch; the window is the current bucket and the
  ``buckets - 1`` before it): aggressor buy and sell volume, trade count,
  notional and large-trade count;
- a **volume baseline**: the volume of each of the last ``baseline`` whole
  windows (aligned slots of ``window_ns``; the first, partly observed slot is
  left out; slots without trades count as zero);
- **realized volatility** sampled every ``sample_ns``: the last price of each
  sample (carried over samples without trades), log returns between them,
  and the root of the sum of the last ``samples`` squared returns of
  completed samples (it changes when a sample completes).

A trade older than the current bucket counts in the current bucket. Totals
are recomputed from the buckets when a bucket rolls (a few dozen additions,
at most once per bucket), so floating-point sums never drift. Outputs, in
:attr:`TradeFlow.values` (shared with the other features of the symbol):

``flow_imbalance``  (buy − sell) / (buy + sell) volume in the window, in [-1, 1]
``trade_intensity`` trades per second in the window
``vwap``            volume-weighted price in the window
``vwap_dev_bps``    (price − vwap) / vwap in basis points
``volume_z``        (window volume − baseline mean) / baseline standard deviation
``realized_vol``    √Σ r² over the volatility window (not annualised)
``large_trade``     the latest trade's signed quantity if it is large, else 0
``large_count``     large trades in the window

A trade is large when its quantity is at least ``large_mult`` × the mean
trade size in the window's completed buckets, and at least ``large_min_qty``
(with no completed trade in the window: at least ``large_min_qty``, and never
when that is 0).
"""

from __future__ import annotations

import math
from array import array

__all__ = ["FLOW_KEYS", "TradeFlow"]

FLOW_KEYS = (
    "flow_imbalance",
    "trade_intensity",
    "vwap",
    "vwap_dev_bps",
    "volume_z",
    "realized_vol",
    "large_trade",
    "large_count",
)
_NAN = math.nan
_log = math.log


class TradeFlow:
    """The trade-driven order-flow features of one symbol."""

    __slots__ = (
        "_b_buy",
        "_b_large",
        "_b_n",
        "_b_pq",
        "_b_sell",
        "_base",
        "_base_count",
        "_base_mean",
        "_base_next",
        "_base_std",
        "_bucket",
        "_buckets",
        "_end",
        "_first_slot",
        "_large_at",
        "_large_min",
        "_large_mult",
        "_min_baseline",
        "_p_buy",
        "_p_large",
        "_p_n",
        "_p_pq",
        "_p_sell",
        "_per_s",
        "_rv",
        "_rv_close",
        "_rv_end",
        "_rv_next",
        "_rv_prev",
        "_rv_sample",
        "_sample_ns",
        "_slot_volume",
        "_w_buy",
        "_w_large",
        "_w_n",
        "_w_pq",
        "_w_sell",
        "_width",
        "_window_s",
        "values",
    )

    def __init__(
        self,
        values: dict[str, float],
        *,
        window_ns: int,
        buckets: int,
        baseline: int,
        min_baseline: int,
        sample_ns: int,
        samples: int,
        large_mult: float,
        large_min_qty: float,
    ) -> None:
        if buckets < 1 or window_ns < buckets or baseline < 1 or sample_ns < 1 or samples < 2:
            raise ValueError("flow window, buckets and baseline must be positive, samples >= 2")
        self.values = values
        for key in FLOW_KEYS:
            values[key] = _NAN
        self._buckets = buckets
        self._width = window_ns // buckets
        self._window_s = self._width * buckets / 1e9
        self._per_s = 1.0 / self._window_s
        # Windows are arrays, not lists of floats: a list slot would hold a float object of
        # its own once written, and the memory would creep until every slot was (minutes).
        self._b_buy = array("d", bytes(8 * buckets))
        self._b_sell = array("d", bytes(8 * buckets))
        self._b_n = array("q", bytes(8 * buckets))
        self._b_pq = array("d", bytes(8 * buckets))
        self._b_large = array("q", bytes(8 * buckets))
        self._bucket = -1
        self._end = -(1 << 62)  # the first trade rolls
        # Window totals (the current bucket included), and the same over the
        # closed buckets as of the last roll: their difference is the current bucket.
        self._w_buy = self._w_sell = self._w_pq = 0.0
        self._w_n = self._w_large = 0
        self._p_buy = self._p_sell = self._p_pq = 0.0
        self._p_n = self._p_large = 0
        self._base = array("d", bytes(8 * baseline))
        self._base_next = 0
        self._base_count = 0
        self._base_mean = self._base_std = _NAN
        self._min_baseline = max(2, min_baseline)
        self._slot_volume = 0.0
        self._first_slot = -1
        self._sample_ns = sample_ns
        self._rv = array("d", bytes(8 * samples))  # squared returns of completed samples
        self._rv_next = 0
        self._rv_sample = -1
        self._rv_end = -(1 << 62)
        self._rv_close = _NAN  # last price of the forming sample
        self._rv_prev = _NAN  # close of the sample before it
        self._large_mult = large_mult
        self._large_min = large_min_qty
        self._large_at = large_min_qty or math.inf

    @property
    def window_s(self) -> float:
        """Return the window length in seconds (whole buckets)."""
        return self._window_s

    def on_trade(self, price: float, qty: float, side: int, ts: int) -> None:
        """Add one trade (aggressor ``side`` +1 buy / -1 sell) at exchange time ``ts`` (ns)."""
        if ts >= self._end:
            self._roll(ts)
        if ts >= self._rv_end:
            self._roll_sample(ts)
        values = self.values
        if qty >= self._large_at:
            self._w_large += 1
            values["large_count"] = self._w_large
            values["large_trade"] = qty if side > 0 else -qty
        else:
            values["large_trade"] = 0.0
        if side > 0:
            buy = self._w_buy + qty
            self._w_buy = buy
            sell = self._w_sell
        else:
            buy = self._w_buy
            sell = self._w_sell + qty
            self._w_sell = sell
        n = self._w_n + 1
        self._w_n = n
        notional = self._w_pq + price * qty
        self._w_pq = notional
        volume = buy + sell
        values["trade_intensity"] = n * self._per_s
        if volume > 0.0:
            vwap = notional / volume
            values["flow_imbalance"] = (buy - sell) / volume
            values["vwap"] = vwap
            values["vwap_dev_bps"] = (price - vwap) / vwap * 10_000.0
        else:
            values["flow_imbalance"] = values["vwap"] = values["vwap_dev_bps"] = _NAN
        std = self._base_std
        values["volume_z"] = (volume - self._base_mean) / std if std > 0.0 else _NAN
        self._rv_close = price

    def advance(self, ts: int) -> None:
        """Move the windows to exchange time ``ts`` without a trade (a timer calls this).

        Trades that left the window stop counting; values are recomputed at
        the last traded price.
        """
        if self._bucket < 0 or ts < self._end:
            return
        self._roll(ts)
        if ts >= self._rv_end:
            self._roll_sample(ts)
        values = self.values
        buy = self._w_buy
        sell = self._w_sell
        volume = buy + sell
        values["trade_intensity"] = self._w_n * self._per_s
        values["large_count"] = self._w_large
        values["large_trade"] = 0.0
        price = self._rv_close
        if volume > 0.0:
            vwap = self._w_pq / volume
            values["flow_imbalance"] = (buy - sell) / volume
            values["vwap"] = vwap
            values["vwap_dev_bps"] = (price - vwap) / vwap * 10_000.0
        else:
            values["flow_imbalance"] = values["vwap"] = values["vwap_dev_bps"] = _NAN
        std = self._base_std
        values["volume_z"] = (volume - self._base_mean) / std if std > 0.0 else _NAN

    # -- rolls (at most once per bucket / sample) ------------------------------------

    def _roll(self, ts: int) -> None:
        """Move the window to the bucket holding ``ts``; refresh totals and the baseline."""
        buckets = self._buckets
        new = ts // self._width
        old = self._bucket
        if old >= 0:
            pos = old % buckets
            self._b_buy[pos] = self._w_buy - self._p_buy
            self._b_sell[pos] = self._w_sell - self._p_sell
            self._b_n[pos] = self._w_n - self._p_n
            self._b_pq[pos] = self._w_pq - self._p_pq
            self._b_large[pos] = self._w_large - self._p_large
            self._slot_volume += self._b_buy[pos] + self._b_sell[pos]
            self._close_slots(old // buckets, new // buckets)
            for step in range(1, min(new - old, buckets) + 1):
                pos = (old + step) % buckets
                self._b_buy[pos] = self._b_sell[pos] = self._b_pq[pos] = 0.0
                self._b_n[pos] = self._b_large[pos] = 0
        else:
            self._first_slot = new // buckets
        self._bucket = new
        self._end = (new + 1) * self._width
        self._w_buy = self._p_buy = math.fsum(self._b_buy)
        self._w_sell = self._p_sell = math.fsum(self._b_sell)
        self._w_pq = self._p_pq = math.fsum(self._b_pq)
        self._w_n = self._p_n = sum(self._b_n)
        self._w_large = self._p_large = sum(self._b_large)
        self.values["large_count"] = self._w_large
        closed = self._p_n
        at = self._large_mult * (self._p_buy + self._p_sell) / closed if closed else 0.0
        self._large_at = max(at, self._large_min) if closed else self._large_min or math.inf

    def _close_slots(self, old_slot: int, new_slot: int) -> None:
        if new_slot <= old_slot:
            return
        base = self._base
        size = len(base)
        if old_slot > self._first_slot:
            self._push_base(self._slot_volume)
        for _ in range(min(new_slot - old_slot - 1, size)):
            self._push_base(0.0)
        self._slot_volume = 0.0
        count = self._base_count
        if count >= self._min_baseline:
            window = base if count == size else base[:count]
            mean = math.fsum(window) / count
            self._base_mean = mean
            self._base_std = math.sqrt(math.fsum((v - mean) ** 2 for v in window) / count)

    def _push_base(self, volume: float) -> None:
        base = self._base
        base[self._base_next] = volume
        self._base_next = (self._base_next + 1) % len(base)
        if self._base_count < len(base):
            self._base_count += 1

    def _roll_sample(self, ts: int) -> None:
        """Close the forming volatility sample (and empty ones) before the sample of ``ts``."""
        new = ts // self._sample_ns
        old = self._rv_sample
        if old >= 0:
            close = self._rv_close
            prev = self._rv_prev
            ret = _log(close / prev) if prev == prev else 0.0
            self._push_return(ret * ret)
            for _ in range(min(new - old - 1, len(self._rv))):
                self._push_return(0.0)  # no trade: the price did not move
            self._rv_prev = close
            self.values["realized_vol"] = math.sqrt(math.fsum(self._rv))
        self._rv_sample = new
        self._rv_end = (new + 1) * self._sample_ns

    def _push_return(self, squared: float) -> None:
        rv = self._rv
        rv[self._rv_next] = squared
        self._rv_next = (self._rv_next + 1) % len(rv)
