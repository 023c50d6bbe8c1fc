"""The stochastic drivers of the synthetic market, vectorized over symbols.

- Event arrivals: a discrete-time Hawkes process per symbol. Each event
  raises the intensity by ``branching / decay_s``; the excitation decays with
  time constant ``decay_s``. Events therefore cluster in time, and the mean
  rate stays ``baseline / (1 - branching)``.
- Fair price: log-normal diffusion whose variance follows a GARCH(1,1)
  recursion on one-second returns, scaled by the current event intensity
  (busy markets move more), plus rare Laplace-sized jumps that also excite
  the event intensity.

The process is stepped in fixed steps of simulated time, drawn in blocks of
steps, so its random draws depend only on the seed and the number of steps:
never on wall-clock timing.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = ["Drivers", "ProcessParams"]

Floats = npt.NDArray[np.float64]
_BLOCK = 8  # steps drawn per batch of random numbers


class ProcessParams(msgspec.Struct, frozen=True):
    """Tunables of the arrival and price processes (defaults give a crypto-like tape)."""

    branching: float = 0.6
    decay_s: float = 0.5
    daily_vol: float = 0.04
    garch_alpha: float = 0.08
    garch_beta: float = 0.90
    jump_rate_per_s: float = 1.0 / 300.0
    jump_sigmas: float = 8.0
    jump_excitation: float = 5.0


class Drivers:
    """Event counts and fair prices of ``len(rates)`` symbols, one step at a time.

    ``rates`` are the mean events per second of each symbol and ``prices``
    the initial fair prices in ticks.
    """

    def __init__(
        self,
        rates: Floats,
        prices: Floats,
        step_ms: int,
        rng: np.random.Generator,
        params: ProcessParams,
    ) -> None:
        if not 0.0 <= params.branching < 1.0:
            raise ValueError("branching must be in [0, 1)")
        self.params = params
        self.rng = rng
        self.step_s = step_ms / 1_000.0
        self.mean_rate = np.maximum(rates.astype(np.float64), 1e-9)
        self.baseline = self.mean_rate * (1.0 - params.branching)
        self.decay = math.exp(-self.step_s / params.decay_s)
        self.kick = params.branching / params.decay_s
        self.excitation = self.mean_rate * params.branching  # start at the stationary mean
        self.variance0 = params.daily_vol**2 / 86_400.0
        self.variance = np.full(len(rates), self.variance0)
        self.log_price = np.log(prices.astype(np.float64))
        self._second_log_price = self.log_price.copy()
        persistence = params.garch_alpha + params.garch_beta
        if persistence >= 1.0:
            raise ValueError("garch_alpha + garch_beta must be < 1")
        self._omega = self.variance0 * (1.0 - persistence)
        self._weights = self.decay ** np.arange(_BLOCK - 1, -1, -1, dtype=np.float64)
        self._paths = self.log_price[np.newaxis, :]
        self._fair = np.exp(self._paths)
        self._counts = np.zeros((1, len(rates)), dtype=np.int64)
        self._row = _BLOCK

    def scale(self, factor: float) -> None:
        """Set the baseline intensity to ``factor`` times its initial value."""
        self.baseline = self.mean_rate * (1.0 - self.params.branching) * factor

    @property
    def intensity(self) -> Floats:
        """Return the current event intensity of every symbol (events/s)."""
        return self.baseline + self.excitation

    def step(self) -> npt.NDArray[np.int64]:
        """Advance one step: move fair prices; return the number of events per symbol."""
        if self._row == _BLOCK:
            self._draw_block()
        row = self._row
        self._row = row + 1
        self.log_price = self._paths[row]
        counts: npt.NDArray[np.int64] = self._counts[row]
        return counts

    def _draw_block(self) -> None:
        """Draw the next ``_BLOCK`` steps at once (numpy calls cost more than their work).

        Within a block the intensity and the volatility stay at their values
        at the block's start; the excitation its events cause applies from the
        next block, ``_BLOCK`` steps later at most.
        """
        rng = self.rng
        params = self.params
        shape = (_BLOCK, len(self.mean_rate))
        intensity = self.baseline + self.excitation
        counts = rng.poisson(intensity * self.step_s, shape)
        activity = intensity / self.mean_rate
        moves = rng.standard_normal(shape) * np.sqrt(self.variance * self.step_s * activity)
        jumps = rng.random(shape) < params.jump_rate_per_s * self.step_s
        excitation = self.excitation * self.decay**_BLOCK + self.kick * (self._weights @ counts)
        if jumps.any():
            rows, columns = np.nonzero(jumps)
            sizes = rng.laplace(0.0, 1.0, len(rows)) * params.jump_sigmas
            moves[rows, columns] += sizes * np.sqrt(self.variance[columns])
            np.add.at(excitation, columns, params.jump_excitation * self.mean_rate[columns])
        self.excitation = excitation
        self._paths = self.log_price + np.cumsum(moves, axis=0)
        self._fair = np.exp(self._paths)
        self._counts = counts
        self._row = 0

    def close_second(self) -> None:
        """Update the GARCH variance from the one-second returns just completed."""
        returns = self.log_price - self._second_log_price
        self.variance = (
            self._omega
            + self.params.garch_alpha * returns * returns
            + self.params.garch_beta * self.variance
        )
        # Keep a runaway jump from freezing the market in extreme volatility.
        np.minimum(self.variance, 400.0 * self.variance0, out=self.variance)
        self._second_log_price = self.log_price.copy()

    def fair_prices(self) -> Floats:
        """Return the fair prices in ticks after the last step."""
        fair: Floats = self._fair[self._row - 1]
        return fair
