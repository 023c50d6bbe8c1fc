"""Configuration: typed, validated at start, one clear line on any mistake.

A configuration file is TOML or YAML with these tables (all optional)::

    [venue]            # where data comes from
    name = "binance"
    market = "spot"    # or "usdm" (USD-M futures)
    symbols = ["BTCUSDT", "ETHUSDT"]
    streams = ["trade", "bookTicker", "depth@100ms"]
    # ws_url / rest_url default to Binance's real endpoints for the market

    [engine]
    intervals = ["1m", "5m"]   # time bars aggregated from trades
    trade_capacity = 4096      # trades kept per symbol
    bar_history = 1000         # closed bars kept per symbol and interval
    peek = true                # forming-bar indicator values on every trade

    [indicators."1m"]          # per interval: alias = { fn = TA-Lib name, params }
    ema = { fn = "EMA", timeperiod = 21 }

    [strategies.momentum]
    interval = "1m"

Errors raise :class:`ConfigError` whose message names the key and what is allowed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from tickhawk.indicators.features import FeaturesConfig
from tickhawk.indicators.streams import IndicatorError, IndicatorSpec, specs_from_mapping
from tickhawk.indicators.warmup import WarmupConfig
from tickhawk.model import parse_interval
from tickhawk.strategy.breakout import BreakoutConfig
from tickhawk.strategy.builtin import strategy_problems
from tickhawk.strategy.checks import CheckContext
from tickhawk.strategy.imbalance import BookImbalanceConfig
from tickhawk.strategy.momentum import MomentumConfig
from tickhawk.strategy.surge import VolumeSurgeConfig

__all__ = [
    "BINANCE_ENDPOINTS",
    "BookConfig",
    "Config",
    "ConfigError",
    "EngineConfig",
    "StrategiesConfig",
    "VenueConfig",
    "load_config",
    "parse_config",
]

#: Binance's real public market-data endpoints, by market.
BINANCE_ENDPOINTS = {
    "spot": ("wss://stream.binance.com:9443", "https://api.binance.com"),
    "usdm": ("wss://fstream.binance.com", "https://fapi.binance.com"),
}


class ConfigError(ValueError):
    """A configuration that cannot run; the message says what to change."""


class VenueConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where market data comes from."""

    name: Literal["binance"] = "binance"
    market: Literal["spot", "usdm"] = "spot"
    symbols: list[str] = msgspec.field(default_factory=lambda: ["BTCUSDT"])
    streams: list[str] = msgspec.field(default_factory=lambda: ["trade", "bookTicker"])
    ws_url: str | None = None
    rest_url: str | None = None

    def endpoints(self) -> tuple[str, str]:
        """Return the WebSocket and REST base URLs, defaulting to the real venue."""
        ws_default, rest_default = BINANCE_ENDPOINTS[self.market]
        return (self.ws_url or ws_default).rstrip("/"), (self.rest_url or rest_default).rstrip("/")

    def stream_names(self) -> list[str]:
        """Return every ``<symbol>@<stream>`` name to subscribe to."""
        return [f"{s.lower()}@{kind}" for s in self.symbols for kind in self.streams]


class EngineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-symbol state sizes and bar intervals."""

    intervals: list[str] = msgspec.field(default_factory=lambda: ["1m"])
    trade_capacity: int = 4096
    bar_history: int = 1000
    peek: bool = True


class BookConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Order books (kept when a ``depth`` stream is subscribed and ``enabled``)."""

    enabled: bool = True
    max_levels: int = 5000
    snapshot_limit: int = 1000
    stale_after_s: float = 10.0
    buffer_limit: int = 10_000


class StrategiesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Built-in strategies, configured rather than coded (one field per strategy)."""

    momentum: MomentumConfig | None = None
    breakout: BreakoutConfig | None = None
    volume_surge: VolumeSurgeConfig | None = None
    book_imbalance: BookImbalanceConfig | None = None


def _default_indicators() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "1m": {
            "ema": {"fn": "EMA", "timeperiod": 21},
            "rsi": {"fn": "RSI", "timeperiod": 14},
            "macd": {"fn": "MACD"},
            "bb": {"fn": "BBANDS", "timeperiod": 20},
            "atr": {"fn": "ATR", "timeperiod": 14},
            "vwap": {"fn": "VWAP"},
        }
    }


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole configuration."""

    venue: VenueConfig = msgspec.field(default_factory=VenueConfig)
    engine: EngineConfig = msgspec.field(default_factory=EngineConfig)
    book: BookConfig = msgspec.field(default_factory=BookConfig)
    indicators: dict[str, dict[str, dict[str, Any]]] = msgspec.field(
        default_factory=_default_indicators
    )
    strategies: StrategiesConfig = msgspec.field(
        default_factory=lambda: StrategiesConfig(momentum=MomentumConfig())
    )
    features: FeaturesConfig = msgspec.field(default_factory=FeaturesConfig)
    warmup: WarmupConfig = msgspec.field(default_factory=WarmupConfig)

    def indicator_specs(self) -> dict[int, list[IndicatorSpec]]:
        """Return the indicator specs by interval in ns (validated)."""
        out: dict[int, list[IndicatorSpec]] = {}
        for label, table in self.indicators.items():
            out[parse_interval(label)] = specs_from_mapping(table)
        return out


def _check(config: Config) -> Config:
    """Validate what the types alone do not; raise ConfigError naming the key."""
    from tickhawk.indicators.streams import StreamIndicator
    from tickhawk.venues.binance.feed import stream_kind

    for i, label in enumerate(config.engine.intervals):
        try:
            parse_interval(label)
        except ValueError as exc:
            raise ConfigError(f"engine.intervals[{i}]: {exc}") from None
    for name in ("trade_capacity", "bar_history"):
        if getattr(config.engine, name) <= 0:
            raise ConfigError(f"engine.{name}: must be a positive whole number")
    for name in ("max_levels", "snapshot_limit", "buffer_limit"):
        if getattr(config.book, name) <= 0:
            raise ConfigError(f"book.{name}: must be a positive whole number")
    if not 1 <= config.book.snapshot_limit <= 5000:
        raise ConfigError("book.snapshot_limit: Binance serves 1 to 5000 levels")
    if not config.book.stale_after_s > 0:
        raise ConfigError("book.stale_after_s: must be a positive number of seconds")
    if not config.venue.symbols:
        raise ConfigError('venue.symbols: list at least one symbol, e.g. ["BTCUSDT"]')
    for i, symbol in enumerate(config.venue.symbols):
        if not symbol.isalnum():
            raise ConfigError(f"venue.symbols[{i}]: {symbol!r} is not a symbol like BTCUSDT")
    for i, stream in enumerate(config.venue.streams):
        try:
            stream_kind(f"x@{stream}")
        except ValueError:
            raise ConfigError(
                f"venue.streams[{i}]: {stream!r} is not supported; use trade, aggTrade, "
                "depth, depth@100ms, bookTicker or kline_<interval>"
            ) from None
    keys: dict[str, frozenset[str]] = {}
    for label, table in config.indicators.items():
        try:
            parse_interval(label)
        except ValueError as exc:
            raise ConfigError(f"indicators.{label}: {exc}") from None
        try:
            built = [StreamIndicator(spec) for spec in specs_from_mapping(table)]
        except (IndicatorError, ValueError, TypeError) as exc:
            raise ConfigError(f"indicators.{label}: {exc}") from None
        keys[label] = frozenset(key for indicator in built for key in indicator.keys)
    _check_features(config)
    context = CheckContext(
        intervals=frozenset(config.engine.intervals) | frozenset(keys),
        keys=keys,
        features=config.features.enabled,
        bar_history=config.engine.bar_history,
        quote_features=config.features.quote,
        depth_features=config.features.depth_levels > 0,
    )
    problems = strategy_problems(config.strategies, context)
    if problems:
        raise ConfigError(problems[0])
    return config


def _check_features(config: Config) -> None:
    """Check ``[features]`` (with every per-symbol override) and ``[warmup]``."""
    features = config.features
    for problem in features.problems():
        raise ConfigError(f"features.{problem}")
    for symbol in features.symbols:
        try:
            merged = features.for_symbol(symbol)
        except msgspec.ValidationError as exc:
            text = _readable(str(exc))
            where = "." if text != str(exc) else ": "
            raise ConfigError(f"features.symbols.{symbol}{where}{text}") from None
        for problem in merged.problems():
            raise ConfigError(f"features.symbols.{symbol}.{problem}")
    if config.warmup.margin_bars < 0:
        raise ConfigError("warmup.margin_bars: must not be negative")
    if config.warmup.concurrency < 1:
        raise ConfigError("warmup.concurrency: must be at least 1")


def parse_config(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from plain data (a parsed file)."""
    try:
        config = msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(_readable(str(exc))) from None
    return _check(config)


_CHOICES = {"venue.market": "spot, usdm", "venue.name": "binance"}


def _readable(message: str) -> str:
    """Turn msgspec's ``... - at `$.engine.peek``` into ``engine.peek: ...``."""
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return message
    key = where.rstrip("`")
    choices = _CHOICES.get(key)
    if choices and text.startswith("Invalid enum value"):
        text += f" (allowed: {choices})"
    return f"{key}: {text}"


def load_config(path: str | Path) -> Config:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) configuration file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {first}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table of settings")
    return parse_config(data)
