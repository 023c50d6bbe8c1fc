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
    trade_capacity = 2048      # trades kept per symbol
    bar_history = 1000         # closed bars kept per symbol and interval
    peek = true                # forming-bar indicator values on every trade

    [indicators."1m"]          # per interval: alias = { fn = TA-Lib name, params }
    ema = { fn = "EMA", timeperiod = 21 }

    [strategies.momentum]
    interval = "1m"

    [resources]                # see tickhawk.resources and tickhawk.budget
    memory_budget_mb = 512

    [connection]               # reconnects, heartbeats, watchdog, rotation (tickhawk.net)
    backoff_cap_s = 5.0

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
from tickhawk.metrics.settings import AlertsConfig, MetricsConfig
from tickhawk.model import parse_interval
from tickhawk.net.options import ConnectionOptions as ConnectionConfig
from tickhawk.strategy.breakout import BreakoutConfig
from tickhawk.strategy.builtin import strategy_problems
from tickhawk.strategy.checks import CheckContext
from tickhawk.strategy.imbalance import BookImbalanceConfig
from tickhawk.strategy.momentum import MomentumConfig
from tickhawk.strategy.surge import VolumeSurgeConfig
from tickhawk.venues.binance.schema import USDM_DEPTH_LIMITS

__all__ = [
    "BINANCE_ENDPOINTS",
    "BackfillConfig",
    "BookConfig",
    "Config",
    "ConfigError",
    "ConnectionConfig",
    "EngineConfig",
    "ResourcesConfig",
    "RestConfig",
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
    trade_capacity: int = 2048  # 1,000 symbols × 4,096 trades alone would take 160 MB
    bar_history: int = 1000
    peek: bool = True


class BookConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Order books (kept when a ``depth`` stream is subscribed and ``enabled``)."""

    enabled: bool = True
    # Twice the snapshot: on Binance's BTCUSDT captures the top stays $340+ from the
    # horizon through a $250 move (1,000 runs out; see docs/operations.md).
    max_levels: int = 2000
    snapshot_limit: int = 1000
    stale_after_s: float = 10.0
    buffer_limit: int = 10_000


class BackfillConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Trades missed in a disconnect or a jump in ids, fetched from REST (``[backfill]``)."""

    enabled: bool = True
    buffer: int = 20_000  # live trades held per symbol while its backfill runs
    timeout_s: float = 10.0  # a backfill not done by then is given up and its gap reported


class RestConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The venue's REST API: timeout, retries, request-weight budget (``[rest]``)."""

    timeout_s: float = 10.0
    retries: int = 3
    weight_budget: int | None = None  # per minute; None: 80 % of the venue's limit


class ResourcesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Process resources: cores, priority, garbage collector, memory ceiling (``[resources]``)."""

    cpu_affinity: list[int] = msgspec.field(default_factory=list)
    nice: int | None = None
    gc_thresholds: list[int] = msgspec.field(default_factory=list)
    gc_freeze_after_warmup: bool = True
    memory_budget_mb: int = 512


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
    backfill: BackfillConfig = msgspec.field(default_factory=BackfillConfig)
    rest: RestConfig = msgspec.field(default_factory=RestConfig)
    resources: ResourcesConfig = msgspec.field(default_factory=ResourcesConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    connection: ConnectionConfig = msgspec.field(default_factory=ConnectionConfig)

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
    if config.venue.market == "usdm" and config.book.snapshot_limit not in USDM_DEPTH_LIMITS:
        # Another limit is refused or answered with fewer levels than asked, which would
        # make a cut snapshot look whole (the book's exact region would be wrong).
        raise ConfigError(
            "book.snapshot_limit: Binance USD-M serves 5, 10, 20, 50, 100, 500 or 1000 levels"
        )
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
    _check_recovery(config)
    _check_resources(config.resources)
    for problem in config.connection.problems():
        raise ConfigError(f"connection.{problem}")
    for problem in config.metrics.problems():
        raise ConfigError(f"metrics.{problem}")
    for problem in config.alerts.problems():
        raise ConfigError(f"alerts.{problem}")
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


def _check_recovery(config: Config) -> None:
    """Check ``[backfill]``, ``[rest]`` and that one trade stream kind feeds the trades."""
    if config.backfill.buffer < 1:
        raise ConfigError("backfill.buffer: must be a positive number of trades")
    if not 0 < config.backfill.timeout_s < 3600:
        raise ConfigError("backfill.timeout_s: must be a number of seconds above 0, below 3600")
    if not 0 < config.rest.timeout_s < 3600:
        raise ConfigError("rest.timeout_s: must be a number of seconds above 0, below 3600")
    if config.rest.retries < 0:
        raise ConfigError("rest.retries: must not be negative")
    if config.rest.weight_budget is not None and config.rest.weight_budget < 1:
        raise ConfigError("rest.weight_budget: must be a positive weight per minute")
    kinds = {stream.split("@", 1)[0] for stream in config.venue.streams}
    if {"trade", "aggTrade"} <= kinds:
        raise ConfigError(
            "venue.streams: trade and aggTrade both feed a symbol's trades with different "
            "ids; subscribe to one of them"
        )


def _check_resources(resources: ResourcesConfig) -> None:
    """Check ``[resources]`` as far as it can be without the machine (see tickhawk.resources)."""
    cores = resources.cpu_affinity
    if any(core < 0 for core in cores) or len(set(cores)) != len(cores):
        raise ConfigError("resources.cpu_affinity: list distinct core numbers from 0, e.g. [1]")
    if resources.nice is not None and not -20 <= resources.nice <= 19:
        raise ConfigError("resources.nice: use a niceness from -20 (first) to 19 (last)")
    thresholds = resources.gc_thresholds
    if len(thresholds) > 3 or any(t < 0 for t in thresholds):
        raise ConfigError(
            "resources.gc_thresholds: up to three whole numbers >= 0 (gen 0, 1, 2), "
            "e.g. [50000, 20, 100]"
        )
    if resources.memory_budget_mb <= 0:
        raise ConfigError("resources.memory_budget_mb: must be a positive number of MB")


def parse_config(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from plain data (a parsed file)."""
    try:
        config = msgspec.convert(data, Config)
        return _check(config)
    except msgspec.ValidationError as exc:
        raise ConfigError(_one_line(_readable(str(exc)))) from None
    except ConfigError as exc:
        if "\n" not in str(exc) and "\r" not in str(exc):
            raise
        raise ConfigError(_one_line(str(exc))) from None


def _one_line(message: str) -> str:
    """Escape line breaks (a key from the file may hold one): an error is one line."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


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
