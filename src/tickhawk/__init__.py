"""tickhawk: a real-time crypto market-data and trading-signal engine."""

from tickhawk.model import Bar, BookUpdate, Quote, Signal, Trade

__all__ = ["Bar", "BookUpdate", "Quote", "Signal", "Trade", "__version__"]

__version__ = "0.1.0"
