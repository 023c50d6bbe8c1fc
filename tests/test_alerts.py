"""Alerts: thresholds from configuration, hysteresis without flapping, webhook POSTs."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import msgspec
import pytest
from aiohttp import web

from polling import poll as _poll
from tickhawk.config import ConfigError, parse_config
from tickhawk.metrics.alerts import AlertEngine, AlertEvent, Rule, WebhookSender, build_rules
from tickhawk.metrics.settings import RULES, AlertsConfig, RuleConfig
from tickhawk.metrics.snapshot import ConnectionStats, Resources, Snapshot, StageStats
from tickhawk.presets import fast_config_data


def snap(
    *,
    t: float = 0.0,
    signal_p99_ms: float | None = None,
    handling_p99_ms: float | None = None,
    rss_mb: float = 80.0,
    cpu_pct: float = 5.0,
    messages: int = 0,
    live: bool = True,
    recoveries: list[float] | None = None,
    stale_books: int = 0,
    leak: bool = False,
) -> Snapshot:
    stages = {}
    if signal_p99_ms is not None:
        stages["recv_to_signal"] = StageStats(count=100, p99_us=signal_p99_ms * 1000)
    if handling_p99_ms is not None:
        stages["recv_to_handled"] = StageStats(count=100, p99_us=handling_p99_ms * 1000)
    return Snapshot(
        ts=1_700_000_000.0 + t,
        uptime_s=t,
        messages=messages,
        stages=stages,
        resources=Resources(
            rss_mb=rss_mb,
            cpu_pct=cpu_pct,
            leak_suspected=leak,
            rss_slope_mb_h=30.0 if leak else None,
            rss_slope_low_mb_h=25.0 if leak else None,
        ),
        connections=[ConnectionStats(name="ws#0", state="live" if live else "backoff")],
        recoveries_s=recoveries or [],
        books={"live": 3, "stale": stale_books} if stale_books else {"live": 3},
    )


def only(name: str, **override: float) -> AlertsConfig:
    """An alerts configuration with every rule but ``name`` switched off."""
    rules = {n: RuleConfig(enabled=False) for n in RULES if n != name}
    rules[name] = RuleConfig(**override)  # type: ignore[arg-type]
    return AlertsConfig(rules=rules)


def drive(
    engine: AlertEngine, make: Callable[[int], Snapshot], seconds: range
) -> list[tuple[int, str]]:
    """Evaluate once a second over ``seconds``; return (second, state) of every event."""
    events = []
    for second in seconds:
        for event in engine.evaluate(make(second), now=float(second)):
            events.append((second, event.state))
    return events


# -- hysteresis --------------------------------------------------------------------


def test_fires_after_for_s_and_clears_after_clear_s() -> None:
    engine = AlertEngine(only("rss", for_s=10, clear_s=30))

    def memory(second: int) -> Snapshot:
        high = 20 <= second < 60
        return snap(t=second, rss_mb=600 if high else 100)

    events = drive(engine, memory, range(0, 120))
    assert events == [(30, "firing"), (90, "resolved")]
    assert not engine.firing() and engine.events == 2
    assert [e.state for e in engine.history] == ["firing", "resolved"]


def test_a_short_spike_never_fires() -> None:
    engine = AlertEngine(only("rss", for_s=10, clear_s=30))
    events = drive(engine, lambda s: snap(t=s, rss_mb=600 if 5 <= s < 14 else 100), range(60))
    assert events == []


def test_a_value_hovering_at_the_threshold_does_not_flap() -> None:
    engine = AlertEngine(only("cpu", for_s=5, clear_s=20))

    # 30 s clearly above, then alternating above/below every second for 5 minutes
    def cpu(second: int) -> Snapshot:
        value = 40.0 if second < 30 else (26.0 if second % 2 else 24.0)
        return snap(t=second, cpu_pct=value)

    events = drive(engine, cpu, range(0, 330))
    assert events == [(5, "firing")]  # fired once, stays firing: no flapping
    firing = engine.firing()
    assert [a.name for a in firing] == ["cpu"] and firing[0].threshold == 25.0
    assert firing[0].since == pytest.approx(1_700_000_005.0)
    events = drive(engine, lambda s: snap(t=s, cpu_pct=3.0), range(330, 400))
    assert events == [(350, "resolved")]


def test_alternating_below_for_s_never_fires() -> None:
    engine = AlertEngine(only("cpu", for_s=5, clear_s=20))
    events = drive(engine, lambda s: snap(t=s, cpu_pct=30.0 if s % 2 else 10.0), range(300))
    assert events == []


# -- the rules ---------------------------------------------------------------------


def test_default_thresholds_are_the_users_targets() -> None:
    rules = {r.name: r for r in build_rules(AlertsConfig())}
    assert rules["signal_latency"].threshold == 50.0  # ms
    assert rules["ws_handling"].threshold == 10.0  # ms
    assert rules["rss"].threshold == 512.0  # MB
    assert rules["cpu"].threshold == 25.0  # % of a core
    assert rules["recovery"].threshold == 5.0  # s
    assert set(rules) == {
        "signal_latency",
        "ws_handling",
        "rss",
        "cpu",
        "recovery",
        "stale_feed",
        "leak",
    }


def test_signal_latency_and_websocket_handling_read_the_stage_p99() -> None:
    engine = AlertEngine(
        AlertsConfig(
            rules={
                n: RuleConfig(enabled=False)
                for n in ("rss", "cpu", "recovery", "stale_feed", "leak")
            }
            | {"signal_latency": RuleConfig(for_s=0), "ws_handling": RuleConfig(for_s=0)}
        )
    )
    quiet = engine.evaluate(snap(signal_p99_ms=40, handling_p99_ms=8), now=0)
    assert quiet == []
    events = engine.evaluate(snap(signal_p99_ms=63.5, handling_p99_ms=12), now=1)
    by_name = {e.name: e for e in events}
    assert by_name["signal_latency"].value == pytest.approx(63.5)
    assert "receive→signal p99 63.50 ms" in by_name["signal_latency"].message
    assert by_name["ws_handling"].severity == "warning" and by_name["ws_handling"].unit == "ms"
    assert engine.evaluate(snap(), now=2) == []  # no samples: not bad, but not cleared yet


def test_stale_feed_on_silence_down_connection_or_stale_book() -> None:
    engine = AlertEngine(only("stale_feed", for_s=5, clear_s=10, threshold=10))
    # messages flow for 20 s, then stop
    events = drive(engine, lambda s: snap(t=s, messages=s * 100 if s < 20 else 2000), range(60))
    assert events == [(36, "firing")]  # last message at 20 s, quiet > 10 s from 31 s, +5 s
    assert "no message for" in engine.history[-1].message
    engine = AlertEngine(only("stale_feed", for_s=5, clear_s=10))
    events = drive(engine, lambda s: snap(t=s, messages=s, live=not 10 <= s < 30), range(60))
    assert events == [(15, "firing"), (40, "resolved")]
    assert "connection(s) not live" in engine.history[0].message
    engine = AlertEngine(only("stale_feed", for_s=0, clear_s=10))
    assert engine.evaluate(snap(messages=1, stale_books=2), now=0)[0].message == "2 book(s) stale"


def test_a_slow_recovery_fires_once_and_clears_later() -> None:
    engine = AlertEngine(only("recovery", clear_s=60))

    def recoveries(second: int) -> Snapshot:
        done = [0.4] + ([7.5] if second >= 10 else []) + ([0.3] if second >= 20 else [])
        return snap(t=second, recoveries=done)

    events = drive(engine, recoveries, range(0, 100))
    assert events == [(10, "firing"), (71, "resolved")]  # clear from 11 s, for 60 s
    assert engine.history[0].value == 7.5 and "7.5 s" in engine.history[0].message


def test_leak_fires_on_the_detectors_verdict() -> None:
    engine = AlertEngine(only("leak"))
    events = drive(engine, lambda s: snap(t=s, leak=s >= 5), range(10))
    assert events == [(5, "firing")]
    assert engine.history[0].value == 25.0  # the slope's lower bound


def test_thresholds_come_from_configuration() -> None:
    data = fast_config_data(["BTCUSDT"], ["trade"])
    data["alerts"] = {
        "rules": {
            "rss": {"threshold": 200, "for_s": 0, "severity": "info"},
            "cpu": {"enabled": False},
        }
    }
    config = parse_config(data)
    engine = AlertEngine(config.alerts)
    assert engine.rule("cpu") is None
    events = engine.evaluate(snap(rss_mb=250, cpu_pct=99), now=0)
    assert [(e.name, e.severity, e.threshold) for e in events] == [("rss", "info", 200.0)]
    data["alerts"] = {"rules": {"rss": {"severity": "loud"}}}
    with pytest.raises(ConfigError, match=r"alerts\.rules\.rss\.severity: use info, warning"):
        parse_config(data)


def test_disabled_alerts_evaluate_nothing() -> None:
    engine = AlertEngine(AlertsConfig(enabled=False))
    assert engine.rules == [] and engine.evaluate(snap(rss_mb=10_000), now=0) == []


def test_events_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    engine = AlertEngine(only("rss", for_s=0, clear_s=0))
    with caplog.at_level(logging.INFO, logger="tickhawk.alerts"):
        engine.evaluate(snap(rss_mb=700), now=0)
        engine.evaluate(snap(rss_mb=70), now=1)
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert records[0][0] == "WARNING" and "alert rss firing: RSS 700 MB" in records[0][1]
    assert records[1][0] == "INFO" and "alert rss resolved" in records[1][1]


def test_rule_objects_can_be_driven_directly() -> None:
    rule = Rule(
        "x",
        lambda s, now, th: (s.messages > th, float(s.messages), "x"),
        threshold=5,
        unit="n",
        severity="info",
        for_s=2,
        clear_s=2,
    )
    states = [
        rule.evaluate(snap(messages=m), float(i)) for i, m in enumerate([9, 9, 9, 1, 9, 1, 1, 1])
    ]
    assert [e.state if e else None for e in states] == [
        None,
        None,
        "firing",
        None,
        None,
        None,
        None,
        "resolved",
    ]


# -- webhook -----------------------------------------------------------------------


async def _receiver(status: int = 200) -> tuple[web.AppRunner, str, list[bytes]]:
    received: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        received.append(await request.read())
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/hook", received


def test_alert_events_are_posted_to_the_webhook() -> None:
    async def scenario() -> None:
        runner, url, received = await _receiver()
        try:
            engine = AlertEngine(
                AlertsConfig(
                    webhook_url=url,
                    rules={n: RuleConfig(enabled=False) for n in RULES if n != "rss"}
                    | {"rss": RuleConfig(for_s=0, clear_s=0)},
                )
            )
            assert engine.webhook is not None
            sender = asyncio.create_task(engine.webhook.run())
            engine.evaluate(snap(rss_mb=900), now=0)
            engine.evaluate(snap(rss_mb=90), now=1)
            await _poll(lambda: len(received) == 2, 20, "two webhook POSTs")
            events = [msgspec.json.decode(body, type=AlertEvent) for body in received]
            assert [(e.name, e.state) for e in events] == [("rss", "firing"), ("rss", "resolved")]
            assert events[0].value == 900 and events[0].threshold == 512 and events[0].unit == "MB"
            assert engine.webhook.sent == 2 and engine.webhook.failures == 0
            sender.cancel()
        finally:
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_webhook_failures_are_counted_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        runner, url, received = await _receiver(status=500)
        with socket.socket() as probe:  # a port with nothing listening
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        try:
            for target in (url, f"http://127.0.0.1:{closed_port}/hook"):
                sender = WebhookSender(target, timeout_s=5)
                task = asyncio.create_task(sender.run())
                event = AlertEvent(
                    name="rss",
                    state="firing",
                    severity="critical",
                    message="m",
                    value=1,
                    threshold=0,
                    unit="MB",
                    since=0,
                    ts=0,
                )
                sender.offer(event)
                await _poll(lambda s=sender: s.failures == 1, 20, "a counted failure")
                assert sender.sent == 0 and not task.done()  # the sender keeps going
                task.cancel()
            assert len(received) == 1  # the 500 reply was a delivery that failed
        finally:
            await runner.cleanup()

    with caplog.at_level(logging.WARNING, logger="tickhawk.alerts"):
        asyncio.run(asyncio.wait_for(scenario(), 60))
    assert any("alert webhook" in r.getMessage() for r in caplog.records)


def test_a_full_webhook_queue_drops_and_counts() -> None:
    sender = WebhookSender("http://127.0.0.1:9/hook", queue_size=3)
    event = AlertEvent(
        name="x",
        state="firing",
        severity="info",
        message="",
        value=0,
        threshold=0,
        unit="",
        since=0,
        ts=0,
    )
    for _ in range(5):
        sender.offer(event)  # nothing sends (no loop): the queue fills
    assert sender.depth == 3 and sender.dropped == 2
