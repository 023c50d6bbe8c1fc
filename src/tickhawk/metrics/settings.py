"""The ``[metrics]`` and ``[alerts]`` configuration tables, and ``HOST:PORT`` parsing."""

from __future__ import annotations

import ipaddress

import msgspec

__all__ = [
    "DEFAULT_HOST",
    "RULES",
    "AlertsConfig",
    "LeakConfig",
    "MetricsConfig",
    "RuleConfig",
    "RuleDefaults",
    "parse_listen",
]

#: The exporter binds here unless told otherwise: metrics are not for the world.
DEFAULT_HOST = "127.0.0.1"


def parse_listen(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1; ``[::1]:PORT`` for IPv6).

    Raise ``ValueError`` with a message saying what is allowed.
    """
    usage = f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9464, :9464 or 0.0.0.0:9464)"
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host, port_text = "", text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(usage) from None
    elif ":" in host or any(c.isspace() for c in host):
        raise ValueError(usage)
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{usage}: the port must be a number from 0 to 65535")
    return host or DEFAULT_HOST, int(port_text)


class LeakConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Leak detection on RSS (and the traced heap when tracemalloc is on).

    The slope threshold is the ``leak`` alert rule's (``[alerts.rules.leak]``).
    """

    warmup_s: float = 600.0
    window_s: float = 3600.0
    sustain_s: float = 900.0
    every_s: float = 10.0


class MetricsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Stage histograms, samplers and the Prometheus/JSON exporter."""

    listen: str | None = None  # HOST:PORT of /metrics and /snapshot.json; off when unset
    window_s: int = 60  # sliding window of the latency percentiles
    samples_per_s: float = 1000.0  # messages timed per second, at most (1 in N)
    sample_every: int | None = None  # fixed N instead (1: time every message)
    symbol_labels: int = 50  # per-symbol Prometheus series only up to this many symbols
    uss_every_s: float = 10.0
    leak: LeakConfig = msgspec.field(default_factory=LeakConfig)

    def problems(self) -> list[str]:
        """Return what is wrong, as ``key: message`` lines."""
        out = []
        if self.listen is not None:
            try:
                parse_listen(self.listen)
            except ValueError as exc:
                out.append(f"listen: {exc}")
        if not 1 <= self.window_s <= 3600:
            out.append("window_s: must be 1 to 3600 seconds")
        if not self.samples_per_s > 0:
            out.append("samples_per_s: must be a positive number")
        if self.sample_every is not None and not 1 <= self.sample_every <= 1_000_000:
            out.append("sample_every: must be a whole number from 1 to 1000000")
        if self.symbol_labels < 0:
            out.append("symbol_labels: must not be negative")
        if not self.uss_every_s > 0:
            out.append("uss_every_s: must be a positive number of seconds")
        leak = self.leak
        for name in ("warmup_s", "sustain_s"):
            if getattr(leak, name) < 0:
                out.append(f"leak.{name}: must not be negative")
        if not 0 < leak.every_s < leak.window_s:
            out.append("leak.every_s: must be positive and shorter than leak.window_s")
        return out


class RuleDefaults(msgspec.Struct, frozen=True):
    """What a rule does unless configured: the user's targets."""

    threshold: float
    unit: str
    severity: str
    for_s: float
    clear_s: float
    meaning: str


#: Every alert rule, with its defaults (the targets tickhawk was built to).
RULES: dict[str, RuleDefaults] = {
    "signal_latency": RuleDefaults(
        threshold=50.0,
        unit="ms",
        severity="critical",
        for_s=10.0,
        clear_s=30.0,
        meaning="receive→signal p99 over the latency window",
    ),
    "ws_handling": RuleDefaults(
        threshold=10.0,
        unit="ms",
        severity="warning",
        for_s=10.0,
        clear_s=30.0,
        meaning="WebSocket handling (frame received → symbol state updated) p99",
    ),
    "rss": RuleDefaults(
        threshold=512.0,
        unit="MB",
        severity="critical",
        for_s=30.0,
        clear_s=60.0,
        meaning="resident memory",
    ),
    "cpu": RuleDefaults(
        threshold=25.0,
        unit="%",
        severity="warning",
        for_s=60.0,
        clear_s=60.0,
        meaning="CPU time as a percentage of one core",
    ),
    "recovery": RuleDefaults(
        threshold=5.0,
        unit="s",
        severity="warning",
        for_s=0.0,
        clear_s=300.0,
        meaning="the last recovery (drop → live and synced) took longer than this",
    ),
    "stale_feed": RuleDefaults(
        threshold=10.0,
        unit="s",
        severity="critical",
        for_s=5.0,
        clear_s=30.0,
        meaning="no message for this long, a connection not live, or a book stale",
    ),
    "leak": RuleDefaults(
        threshold=10.0,
        unit="MB/h",
        severity="warning",
        for_s=0.0,
        clear_s=900.0,
        meaning="memory growth (its lower confidence bound) stayed above this ([metrics.leak])",
    ),
}


class RuleConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Overrides for one rule; unset keys keep the rule's default."""

    enabled: bool = True
    threshold: float | None = None
    for_s: float | None = None
    clear_s: float | None = None
    severity: str | None = None


class AlertsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Alert rules over the engine's snapshot, and where alert events go."""

    enabled: bool = True
    webhook_url: str | None = None  # POST each alert event as JSON here
    webhook_timeout_s: float = 5.0
    rules: dict[str, RuleConfig] = msgspec.field(default_factory=dict)

    def problems(self) -> list[str]:
        """Return what is wrong, as ``key: message`` lines."""
        out = []
        url = self.webhook_url
        if url is not None and not url.startswith(("http://", "https://")):
            out.append(f"webhook_url: {url!r} must be an http:// or https:// URL")
        if not self.webhook_timeout_s > 0:
            out.append("webhook_timeout_s: must be a positive number of seconds")
        for name, rule in self.rules.items():
            if name not in RULES:
                out.append(f"rules.{name}: no such rule; rules are {', '.join(RULES)}")
                continue
            for key in ("for_s", "clear_s"):
                value = getattr(rule, key)
                if value is not None and value < 0:
                    out.append(f"rules.{name}.{key}: must not be negative")
            if rule.severity is not None and rule.severity not in ("info", "warning", "critical"):
                out.append(f"rules.{name}.severity: use info, warning or critical")
        return out
