"""Alert rules over the engine's snapshot, with hysteresis, as events.

Each rule turns a :class:`~tickhawk.metrics.snapshot.Snapshot` into a
condition (is it bad now?), a value and a message. A rule *fires* only after
its condition has held for ``for_s`` and *clears* only after it has been
clear for ``clear_s``: a value hovering at the threshold cannot make an
alert flap. Firing and clearing are :class:`AlertEvent` s: logged (warning /
info), kept in a short history, listed in ``Snapshot.alerts`` while firing,
and optionally POSTed as JSON to a webhook by :class:`WebhookSender`, which
never blocks the engine (a bounded queue; failures counted and logged).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

import aiohttp
import msgspec

from tickhawk.metrics.settings import RULES, AlertsConfig, RuleConfig
from tickhawk.metrics.snapshot import AlertState, Snapshot

__all__ = ["AlertEngine", "AlertEvent", "Rule", "WebhookSender", "build_rules"]

_log = logging.getLogger("tickhawk.alerts")

Check = Callable[[Snapshot, float, float], tuple[bool, float, str]]
"""``(snapshot, now monotonic s, threshold) → (bad now, value, message)``."""


class AlertEvent(msgspec.Struct, kw_only=True):
    """An alert starting (``firing``) or ending (``resolved``)."""

    name: str
    state: str
    severity: str
    message: str
    value: float
    threshold: float
    unit: str
    since: float  # epoch s the alert started firing
    ts: float  # epoch s of this event
    source: str = "tickhawk"


class Rule:
    """One alert rule: its check, threshold and hysteresis, and where it stands."""

    def __init__(
        self,
        name: str,
        check: Check,
        *,
        threshold: float,
        unit: str,
        severity: str,
        for_s: float,
        clear_s: float,
    ) -> None:
        self.name = name
        self.check = check
        self.threshold = threshold
        self.unit = unit
        self.severity = severity
        self.for_s = for_s
        self.clear_s = clear_s
        self.firing: AlertState | None = None
        self._bad_since: float | None = None
        self._good_since: float | None = None

    def evaluate(self, snapshot: Snapshot, now: float) -> AlertEvent | None:
        """Advance the rule to ``now`` (monotonic s); return an event if it fired or cleared."""
        bad, value, message = self.check(snapshot, now, self.threshold)
        if bad:
            self._good_since = None
            if self._bad_since is None:
                self._bad_since = now
            if self.firing is not None:
                self.firing.value = value
                self.firing.message = message
                return None
            if now - self._bad_since >= self.for_s:
                self.firing = AlertState(
                    name=self.name,
                    severity=self.severity,
                    message=message,
                    since=snapshot.ts,
                    value=value,
                    threshold=self.threshold,
                )
                return self._event("firing", snapshot.ts)
            return None
        self._bad_since = None
        if self.firing is None:
            return None
        if self._good_since is None:
            self._good_since = now
        if now - self._good_since >= self.clear_s:
            self.firing.value = value
            self.firing.message = message
            event = self._event("resolved", snapshot.ts)
            self.firing = None
            return event
        return None

    def _event(self, state: str, ts: float) -> AlertEvent:
        firing = self.firing
        assert firing is not None
        return AlertEvent(
            name=self.name,
            state=state,
            severity=self.severity,
            message=firing.message,
            value=firing.value,
            threshold=self.threshold,
            unit=self.unit,
            since=firing.since,
            ts=ts,
        )


# -- checks -------------------------------------------------------------------


def _stage_p99(stage: str, what: str) -> Check:
    def check(snapshot: Snapshot, now: float, threshold: float) -> tuple[bool, float, str]:
        stats = snapshot.stages.get(stage)
        if stats is None or stats.count == 0:
            return False, 0.0, f"{what}: no samples"
        value = stats.p99_us / 1000.0
        return value > threshold, value, f"{what} p99 {value:.2f} ms (limit {threshold:g} ms)"

    return check


def _rss(snapshot: Snapshot, now: float, threshold: float) -> tuple[bool, float, str]:
    value = snapshot.resources.rss_mb
    return value > threshold, value, f"RSS {value:.0f} MB (limit {threshold:g} MB)"


def _cpu(snapshot: Snapshot, now: float, threshold: float) -> tuple[bool, float, str]:
    value = snapshot.resources.cpu_pct
    return value > threshold, value, f"CPU {value:.0f} % of a core (limit {threshold:g} %)"


def _leak(snapshot: Snapshot, now: float, threshold: float) -> tuple[bool, float, str]:
    resources = snapshot.resources
    low = resources.rss_slope_low_mb_h or 0.0
    slope = resources.rss_slope_mb_h or 0.0
    return (
        resources.leak_suspected,
        low,
        f"memory grows {slope:.1f} MB/h (at least {low:.1f} MB/h; limit {threshold:g} MB/h)",
    )


class _Recovery:
    """Bad at the moment a recovery longer than the threshold is reported."""

    def __init__(self) -> None:
        self._seen = 0
        self._last = 0.0

    def __call__(self, snapshot: Snapshot, now: float, threshold: float) -> tuple[bool, float, str]:
        recoveries = snapshot.recoveries_s
        new = recoveries[self._seen :]
        self._seen = len(recoveries)
        slow = [r for r in new if r > threshold]
        if slow:
            self._last = max(slow)
        message = f"a recovery took {self._last:.1f} s (limit {threshold:g} s)"
        return bool(slow), self._last, message


class _StaleFeed:
    """Bad while no message arrived for ``threshold`` s, a session is down or a book stale."""

    def __init__(self) -> None:
        self._messages = -1
        self._changed = 0.0

    def __call__(self, snapshot: Snapshot, now: float, threshold: float) -> tuple[bool, float, str]:
        if snapshot.messages != self._messages:
            self._messages = snapshot.messages
            self._changed = now
        quiet = now - self._changed
        reasons = []
        if quiet > threshold:
            reasons.append(f"no message for {quiet:.0f} s")
        down = [c.name for c in snapshot.connections if c.state != "live"]
        if down:
            reasons.append(f"{len(down)} connection(s) not live ({down[0]} …)")
        stale = snapshot.books.get("stale", 0)
        if stale:
            reasons.append(f"{stale} book(s) stale")
        return bool(reasons), quiet, "; ".join(reasons) or "feed live"


def build_rules(config: AlertsConfig) -> list[Rule]:
    """Return the enabled rules with their configured thresholds and hysteresis."""
    checks: dict[str, Check] = {
        "signal_latency": _stage_p99("recv_to_signal", "receive→signal"),
        "ws_handling": _stage_p99("recv_to_handled", "WebSocket handling"),
        "rss": _rss,
        "cpu": _cpu,
        "recovery": _Recovery(),
        "stale_feed": _StaleFeed(),
        "leak": _leak,
    }
    rules = []
    for name, defaults in RULES.items():
        override = config.rules.get(name)
        if override is not None and not override.enabled:
            continue

        rule = override or RuleConfig()
        rules.append(
            Rule(
                name,
                checks[name],
                threshold=_pick(rule.threshold, defaults.threshold),
                unit=defaults.unit,
                severity=rule.severity or defaults.severity,
                for_s=_pick(rule.for_s, defaults.for_s),
                clear_s=_pick(rule.clear_s, defaults.clear_s),
            )
        )
    return rules


def _pick(value: float | None, default: float) -> float:
    return default if value is None else float(value)


class AlertEngine:
    """Evaluate the rules once a second; keep the history; hand events to the webhook."""

    def __init__(self, config: AlertsConfig, *, history: int = 200) -> None:
        self.config = config
        self.rules = build_rules(config) if config.enabled else []
        self.history: deque[AlertEvent] = deque(maxlen=history)
        self.events = 0
        self.webhook = (
            WebhookSender(config.webhook_url, timeout_s=config.webhook_timeout_s)
            if config.enabled and config.webhook_url
            else None
        )

    def rule(self, name: str) -> Rule | None:
        """Return the enabled rule called ``name``."""
        return next((r for r in self.rules if r.name == name), None)

    def evaluate(self, snapshot: Snapshot, now: float | None = None) -> list[AlertEvent]:
        """Run every rule on ``snapshot`` at ``now`` (monotonic s); return the events."""
        now = time.monotonic() if now is None else now
        events = []
        for rule in self.rules:
            event = rule.evaluate(snapshot, now)
            if event is None:
                continue
            events.append(event)
            self.history.append(event)
            self.events += 1
            if event.state == "firing":
                _log.warning("alert %s firing: %s", event.name, event.message)
            else:
                _log.info("alert %s resolved: %s", event.name, event.message)
            if self.webhook is not None:
                self.webhook.offer(event)
        return events

    def firing(self) -> list[AlertState]:
        """Return the alerts firing now (copies)."""
        return [
            msgspec.structs.replace(rule.firing) for rule in self.rules if rule.firing is not None
        ]


class WebhookSender:
    """POST alert events as JSON to ``url``, one at a time, off the engine's path.

    :meth:`offer` never blocks: beyond ``queue_size`` waiting events the new
    one is dropped and counted. A failed POST (unreachable, timeout, HTTP
    status ≥ 400) is counted and logged (at most once per 10 s), not retried.
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0, queue_size: int = 64) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.queue_size = queue_size
        self.sent = 0
        self.failures = 0
        self.dropped = 0
        self._queue: deque[AlertEvent] = deque()
        self._ready: asyncio.Event | None = None
        self._logged_at = -float("inf")

    @property
    def depth(self) -> int:
        """Return the events waiting to be sent."""
        return len(self._queue)

    def offer(self, event: AlertEvent) -> None:
        """Queue ``event`` for sending (dropped and counted when the queue is full)."""
        if len(self._queue) >= self.queue_size:
            self.dropped += 1
            self._warn(f"alert webhook queue full; dropped {event.name} {event.state}")
            return
        self._queue.append(event)
        if self._ready is not None:
            self._ready.set()

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._logged_at >= 10.0:
            self._logged_at = now
            _log.warning("%s (%d failures, %d dropped so far)", text, self.failures, self.dropped)

    async def run(self) -> None:
        """Send queued events until cancelled."""
        self._ready = asyncio.Event()
        encode = msgspec.json.Encoder().encode
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if not self._queue:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                event = self._queue.popleft()
                try:
                    async with session.post(
                        self.url,
                        data=encode(event),
                        headers={"Content-Type": "application/json"},
                    ) as response:
                        if response.status >= 400:
                            raise aiohttp.ClientResponseError(
                                response.request_info,
                                (),
                                status=response.status,
                                message=response.reason or "",
                            )
                    self.sent += 1
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    self.failures += 1
                    self._warn(f"alert webhook {self.url} failed: {exc or type(exc).__name__}")
