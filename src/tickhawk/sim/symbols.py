"""Instruments the simulator lists: names, base prices, tick and step sizes.

Prices and quantities are integers everywhere in the simulator: a price is a
number of ticks, a quantity a number of lots (steps). Both sizes are powers of
ten, so the decimal text Binance sends (8 decimals) is exact integer formatting.
"""

from __future__ import annotations

import math
import re

import msgspec
import numpy as np

__all__ = [
    "E8",
    "SymbolSpec",
    "fixed8",
    "make_specs",
    "symbol_names",
]

E8 = 100_000_000

# Majors with a plausible base price (USDT); further symbols are SYM0001USDT ...
_MAJORS: dict[str, float] = {
    "BTCUSDT": 60_000.0,
    "ETHUSDT": 3_000.0,
    "BNBUSDT": 550.0,
    "SOLUSDT": 150.0,
    "XRPUSDT": 0.55,
    "DOGEUSDT": 0.11,
    "ADAUSDT": 0.38,
    "AVAXUSDT": 28.0,
    "LINKUSDT": 13.0,
    "DOTUSDT": 5.2,
    "TRXUSDT": 0.13,
    "LTCUSDT": 65.0,
    "MATICUSDT": 0.45,
    "SHIBUSDT": 0.000014,
    "UNIUSDT": 7.5,
    "ATOMUSDT": 6.2,
}
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "TRY", "EUR")
_NAME = re.compile(r"^[A-Z0-9]{2,20}$")


def fixed8(value_e8: int) -> str:
    """Return an integer amount in units of 1e-8 as Binance's 8-decimal text."""
    return f"{value_e8 // E8}.{value_e8 % E8:08d}"


class SymbolSpec(msgspec.Struct, frozen=True):
    """One instrument: ``tick = 10**tick_exp``, ``step = 10**step_exp`` (exponents may be < 0)."""

    name: str
    base_asset: str
    quote_asset: str
    price: float
    tick_exp: int
    step_exp: int
    activity: float = 1.0

    @property
    def price_e8(self) -> int:
        """Return how many 1e-8 units one tick is."""
        return int(10 ** (self.tick_exp + 8))

    @property
    def qty_e8(self) -> int:
        """Return how many 1e-8 units one lot is."""
        return int(10 ** (self.step_exp + 8))

    @property
    def tick_size(self) -> str:
        """Return the tick size as Binance text."""
        return fixed8(self.price_e8)

    @property
    def step_size(self) -> str:
        """Return the lot step size as Binance text."""
        return fixed8(self.qty_e8)

    @property
    def price_ticks(self) -> int:
        """Return the base price in ticks."""
        return max(1, round(self.price / 10.0**self.tick_exp))

    def price_text(self, ticks: int) -> str:
        """Return a price in ticks as Binance text."""
        return fixed8(ticks * self.price_e8)

    def qty_text(self, lots: int) -> str:
        """Return a quantity in lots as Binance text."""
        return fixed8(lots * self.qty_e8)


def split_name(name: str) -> tuple[str, str]:
    """Return ``(base, quote)`` for a symbol such as ``BTCUSDT``."""
    for quote in _QUOTES:
        if name.endswith(quote) and len(name) > len(quote):
            return name[: -len(quote)], quote
    return name[:-3], name[-3:]


def symbol_names(count: int) -> list[str]:
    """Return ``count`` symbol names: the majors first, then ``SYM0001USDT`` ..."""
    majors = list(_MAJORS)
    names = majors[:count]
    names += [f"SYM{index:04d}USDT" for index in range(1, count - len(names) + 1)]
    return names


def _base_price(name: str, rng: np.random.Generator) -> float:
    known = _MAJORS.get(name)
    if known is not None:
        return known
    # Log-uniform between 0.01 and 2,000 USDT, 4 significant digits.
    price = float(10.0 ** rng.uniform(-2.0, math.log10(2_000.0)))
    digits = 3 - math.floor(math.log10(price))
    return round(price, digits)


def make_specs(names: list[str], seed: int) -> list[SymbolSpec]:
    """Return one :class:`SymbolSpec` per name, deterministic for ``seed``.

    The tick is about 1e-4 of the price and the step about 0.1 quote units, so
    one lot is worth cents and the price moves a few ticks per second.
    Raise ``ValueError`` for a name that is not 2-20 upper-case letters/digits.
    """
    rng = np.random.default_rng([seed, 0x5EC5])
    specs: list[SymbolSpec] = []
    for rank, name in enumerate(names):
        if not _NAME.match(name):
            raise ValueError(
                f"bad symbol {name!r}: use 2-20 upper-case letters or digits, e.g. BTCUSDT"
            )
        price = _base_price(name, rng)
        magnitude = math.floor(math.log10(price))
        base, quote = split_name(name)
        specs.append(
            SymbolSpec(
                name=name,
                base_asset=base,
                quote_asset=quote,
                price=price,
                tick_exp=max(-8, magnitude - 4),
                step_exp=min(8, max(-8, -(magnitude + 1))),
                # Zipf-like activity: the first symbols trade the most.
                activity=1.0 / (rank + 1) ** 0.8,
            )
        )
    return specs
