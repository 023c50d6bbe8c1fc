"""The exporter end to end: the simulator, the live app over loopback, a real scrape."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from polling import poll
from tickhawk.app.live import LiveApp
from tickhawk.cli import main
from tickhawk.config import parse_config
from tickhawk.metrics.alerts import AlertEvent
from tickhawk.metrics.monitor import Monitor
from tickhawk.metrics.prometheus import ListenError, SnapshotCollector
from tickhawk.metrics.settings import MetricsConfig
from tickhawk.metrics.snapshot import STAGES, Snapshot
from tickhawk.presets import fast_config_data
from tickhawk.sim import SimConfig, Simulator

Samples = dict[str, list[tuple[dict[str, str], float]]]

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "tickhawk.json"
#: Series that exist only in some runs (tracemalloc on, a trend fitted, a recovery seen).
CONDITIONAL = {
    "tickhawk_tracemalloc_bytes",
    "tickhawk_rss_slope_mb_per_hour",
    "tickhawk_rss_slope_low_mb_per_hour",
    "tickhawk_last_recovery_seconds",
}


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def declared(text: str) -> set[str]:
    """Return every series name the exposition declares, with or without samples."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names.add(name)
        names.update(name + suffix for suffix in suffixes.get(kind, []))
    return names


def value(samples: Samples, name: str, **labels: str) -> float:
    rows = [v for ls, v in samples[name] if all(ls.get(k) == w for k, w in labels.items())]
    assert len(rows) == 1, (name, labels, samples.get(name))
    return rows[0]


async def _receiver() -> tuple[web.AppRunner, str, list[bytes]]:
    received: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received


async def scenario() -> None:
    hook_runner, hook_url, posted = await _receiver()
    async with Simulator(SimConfig(n_symbols=4, rate=3000.0, seed=5)) as sim:
        data = fast_config_data(
            list(sim.symbols),
            ["trade", "bookTicker", "depth@100ms"],
            ws_url=sim.ws_url,
            rest_url=sim.rest_url,
        )
        data["metrics"] = {"listen": "127.0.0.1:0"}
        # an RSS limit every process exceeds: the alert must show everywhere
        data["alerts"] = {"webhook_url": hook_url, "rules": {"rss": {"threshold": 1, "for_s": 0}}}
        app = LiveApp(parse_config(data))
        stop = asyncio.Event()
        run = asyncio.create_task(app.run(stop=stop))
        try:
            await poll(lambda: app.monitor.address is not None, 30, "the exporter")
            assert app.monitor.address is not None
            host, port = app.monitor.address
            assert host == "127.0.0.1"
            base = f"http://127.0.0.1:{port}"
            await app.wait_live(40)
            await poll(
                lambda: app.messages > 3000 and app.monitor.ticks >= 3, 60, "messages and ticks"
            )
            await poll(lambda: bool(posted), 30, "the rss alert at the webhook")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/metrics") as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"].startswith("text/plain")
                    text = await response.text()
                    samples = parse(text)
                async with http.get(f"{base}/snapshot.json") as response:
                    snap = msgspec.json.decode(await response.read(), type=Snapshot)
                async with http.get(f"{base}/snapshot.json?symbols=1") as response:
                    rows = msgspec.json.decode(await response.read(), type=Snapshot).symbols
                async with http.get(f"{base}/alerts.json") as response:
                    history = msgspec.json.decode(await response.read(), type=list[AlertEvent])
                async with http.post(f"{base}/debug/tracemalloc/start") as response:
                    assert (await response.json())["tracing"] is True
                async with http.get(f"{base}/debug/tracemalloc?limit=5") as response:
                    top = (await response.json())["top"]
                async with http.post(f"{base}/debug/tracemalloc/stop") as response:
                    assert (await response.json())["changed"] is True
                async with http.get(f"{base}/debug/tracemalloc?limit=x") as response:
                    assert response.status == 400
            assert 0 < len(top) <= 5
            # --- /metrics
            venue = {"venue": "binance-spot"}
            messages = value(samples, "tickhawk_messages_total", **venue)
            assert 3000 < messages <= app.messages
            assert value(samples, "tickhawk_messages_per_second", **venue) > 500
            trades = value(samples, "tickhawk_trades_total", **venue)
            symbol_trades = sum(v for _, v in samples["tickhawk_symbol_trades_total"])
            assert trades == symbol_trades > 0  # one snapshot: totals and rows agree
            for stage in ("recv_to_decoded", "decoded_to_state", "recv_to_handled"):
                p99 = value(
                    samples, "tickhawk_stage_latency_window_seconds", stage=stage, quantile="0.99"
                )
                assert 0 < p99 < 1.0, stage
                assert value(samples, "tickhawk_stage_latency_seconds_count", stage=stage) > 0
            assert value(samples, "tickhawk_stage_sample_every") >= 1
            assert value(samples, "tickhawk_rss_bytes") > 20 * 2**20
            assert value(samples, "tickhawk_cpu_percent") > 0
            assert {ls["generation"] for ls, _ in samples["tickhawk_gc_collections_total"]} >= {
                "0",
                "1",
                "2",
            }
            assert value(samples, "tickhawk_connection_up", state="live") == 1
            assert value(samples, "tickhawk_books", state="live") == 4
            assert value(samples, "tickhawk_alert_firing", alert="rss", severity="critical") == 1
            assert value(samples, "tickhawk_alerts_firing") >= 1
            assert value(samples, "tickhawk_backlog_seconds") < 5
            # every series the Grafana dashboard draws is exported
            drawn = set(re.findall(r"tickhawk_[a-z_]+", DASHBOARD.read_text()))
            assert drawn - declared(text) - CONDITIONAL == set()
            # --- /snapshot.json
            assert set(snap.stages) == set(STAGES)
            assert snap.stages["recv_to_handled"].count > 0 and snap.msgs_per_s > 0
            assert snap.resources.rss_mb > 20 and snap.resources.cpu_per_core
            assert "rss" in {a.name for a in snap.alerts} and snap.venue == "binance-spot"
            assert snap.queues["book_buffer"].capacity > 0
            assert sorted(r.symbol for r in rows) == sorted(sim.symbols)
            assert all(r.quotes > 0 for r in rows)
            assert [(e.name, e.state) for e in history][:1] == [("rss", "firing")]
            event = msgspec.json.decode(posted[0], type=AlertEvent)
            assert event.name == "rss" and event.value > event.threshold == 1
            # --- the same port cannot be taken twice: one clear line
            other = Monitor(MetricsConfig(listen=f"127.0.0.1:{port}"))
            with pytest.raises(ListenError, match=f"127.0.0.1:{port}: .*choose another port"):
                await other.start(app)
            # --- the label policy: beyond symbol_labels, no per-symbol series
            registry = CollectorRegistry(auto_describe=False)
            registry.register(SnapshotCollector(app, symbols=4, symbol_labels=2))
            few = parse(generate_latest(registry).decode())
            assert "tickhawk_symbol_trades_total" not in few and "tickhawk_messages_total" in few
        finally:
            stop.set()
            await run
            await hook_runner.cleanup()
    assert app.monitor.server is None  # stopped with the app


def test_metrics_endpoint_and_json_snapshot_from_a_live_run() -> None:
    asyncio.run(asyncio.wait_for(scenario(), 180))


def test_bad_metrics_address_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["demo", "--metrics", "localhost:http", "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tickhawk demo: --metrics 'localhost:http' is not HOST:PORT")
    assert "\n" not in err
    config = tmp_path / "c.toml"
    config.write_text('[venue]\nsymbols = ["BTCUSDT"]\n')
    assert main(["run", str(config), "--metrics", "1.2.3.4:99999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tickhawk run: --metrics '1.2.3.4:99999' is not HOST:PORT")
    assert "\n" not in err


def test_a_busy_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status = main(["demo", "--json", "--duration", "5", "--metrics", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err == (
        f"tickhawk demo: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another port"
    )
