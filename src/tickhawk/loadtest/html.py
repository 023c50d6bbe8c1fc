"""``DIR/report.html``: one self-contained page (inline CSS and SVG) from a :class:`Report`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

import msgspec

from tickhawk.loadtest.report import Report
from tickhawk.loadtest.samples import Sample
from tickhawk.loadtest.svg import Series, line_chart

__all__ = ["render", "write_html"]

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:960px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border:1px solid #ddd;
text-align:left;font-variant-numeric:tabular-nums}th{background:#f5f5f5}
.pass{color:#176b1c;font-weight:bold}.fail{color:#b00020;font-weight:bold}.na{color:#777}
.banner{padding:8px 12px;font-size:16px;display:inline-block;border-radius:4px}
.banner.pass{background:#e3f4e4}.banner.fail{background:#fbe3e6}
svg{display:block;margin:10px 0}.note{color:#666}
"""


def _cell(value: Any) -> str:
    if value is None:
        return '<span class="na">–</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1_000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], raw: bool = False) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else _cell(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return '<span class="na">n/a</span>'
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def _slo(report: Report) -> str:
    rows = [
        (
            escape(row.name),
            escape(row.target),
            f"{_cell(row.measured)} {escape(row.unit) if row.measured is not None else ''}",
            _verdict(row.passed),
            escape(row.note),
        )
        for row in report.slo
    ]
    return "<h2>SLOs</h2>" + _table(
        ["objective", "target", "measured", "result", "note"], rows, raw=True
    )


def _bands(samples: list[Sample]) -> list[tuple[float, float, str]]:
    bands: list[tuple[float, float, str]] = []
    for sample in samples:
        if bands and bands[-1][2] == sample.phase:
            bands[-1] = (bands[-1][0], sample.t, sample.phase)
        else:
            start = bands[-1][1] if bands else sample.t
            bands.append((start, sample.t, sample.phase))
    return bands if len(bands) > 1 else []


def _charts(samples: list[Sample]) -> str:
    def points(name: str, scale: float = 1.0) -> list[tuple[float, float | None]]:
        out: list[tuple[float, float | None]] = []
        for s in samples:
            value = getattr(s, name)
            out.append((s.t, value * scale if value is not None else None))
        return out

    bands = _bands(samples)
    charts = [
        line_chart(
            "receive → signal latency per second",
            [
                Series("p50", points("signal_p50_us")),
                Series("p99", points("signal_p99_us")),
                Series("p99.9", points("signal_p999_us")),
                Series("WebSocket handling p99", points("ws_p99_us"), dashed=True),
            ],
            y_label="µs (log)",
            log_y=True,
            bands=bands,
        ),
        line_chart(
            "message rate",
            [
                Series("delivered (engine)", points("delivered")),
                Series("sent (simulator)", points("sent"), dashed=True),
                Series("asked", points("asked"), color="#999", dashed=True),
            ],
            y_label="msg/s",
            bands=bands,
        ),
        line_chart(
            "CPU (and waiting for a core: other work on the machine)",
            [
                Series("engine", points("cpu_pct")),
                Series("simulator", points("sim_cpu_pct")),
                Series("engine waiting", points("wait_pct"), dashed=True),
                Series("simulator waiting", points("sim_wait_pct"), dashed=True),
            ],
            y_label="% of one core",
            bands=bands,
        ),
        line_chart(
            "memory (RSS)",
            [Series("engine", points("rss_mb")), Series("simulator", points("sim_rss_mb"))],
            y_label="MB",
            bands=bands,
        ),
        line_chart(
            "GC pauses",
            [
                Series("longest pause", points("gc_pause_max_ms")),
                Series("total pause per second", points("gc_pause_ms"), dashed=True),
            ],
            y_label="ms",
            bands=bands,
        ),
        line_chart(
            "backlog (receive time − exchange event time)",
            [
                Series("backlog", points("backlog_ms")),
                Series("simulator lag", points("sim_lag_ms"), dashed=True),
            ],
            y_label="ms",
            bands=bands,
        ),
        line_chart(
            "bytes waiting in the loopback sockets",
            [
                Series("unread by the engine", points("engine_rx_kb")),
                Series("held at the simulator", points("sim_tx_kb"), dashed=True),
            ],
            y_label="KB",
            bands=bands,
        ),
    ]
    return "<h2>Over time</h2>" + "".join(charts)


def _profile_section(report: Report) -> str:
    parts: list[str] = []
    if report.stress is not None:
        stress = report.stress
        parts.append(
            "<h2>Stress steps</h2>"
            f"<p>Highest sustainable delivered rate: <b>{_cell(stress.max_sustainable_msgs)}"
            f" msg/s</b>; limit: {escape(stress.limit)}.</p>"
        )
        parts.append(
            _table(
                [
                    "asked",
                    "delivered",
                    "sent",
                    "signal p99 µs",
                    "ws p99 µs",
                    "backlog max ms",
                    "engine socket KB",
                    "engine CPU %",
                    "engine wait %",
                    "sim CPU %",
                    "verdict",
                    "why",
                ],
                [
                    (
                        s.asked,
                        s.delivered,
                        s.sent,
                        s.signal_p99_us,
                        s.ws_p99_us,
                        s.backlog_max_ms,
                        s.engine_rx_kb,
                        s.cpu_pct,
                        s.wait_pct,
                        s.sim_cpu_pct,
                        s.verdict,
                        "; ".join(s.reasons),
                    )
                    for s in stress.steps
                ],
            )
        )
    for name in ("spike", "soak"):
        result = getattr(report, name)
        if result is not None:
            parts.append(f"<h2>{name.title()}</h2>")
            parts.append(_table(["figure", "value"], msgspec.structs.asdict(result).items()))
    if report.volume is not None:
        parts.append("<h2>Volume: symbols against memory and latency</h2>")
        parts.append(
            _table(
                [
                    "symbols",
                    "book levels",
                    "bar history",
                    "trades kept",
                    "ceiling MB",
                    "startup s",
                    "engine RSS peak MB",
                    "RSS final MB",
                    "sim RSS MB",
                    "signal p99 µs",
                    "ws p99 µs",
                    "engine CPU %",
                    "engine wait %",
                    "delivered msg/s",
                    "reconnects (stale)",
                    "error",
                ],
                [
                    (
                        p.symbols,
                        p.book_max_levels,
                        p.bar_history,
                        p.trade_capacity,
                        p.ceiling_mb,
                        p.startup_s,
                        p.rss_peak_mb,
                        p.rss_final_mb,
                        p.sim_rss_mb,
                        p.signal_p99_us,
                        p.ws_p99_us,
                        p.cpu_pct,
                        p.wait_pct,
                        p.delivered,
                        None if p.reconnects is None else f"{p.reconnects} ({p.stale_reconnects})",
                        p.error,
                    )
                    for p in report.volume
                ],
            )
        )
    if report.chaos is not None:
        parts.append(_chaos(report))
    return "".join(parts)


def _chaos(report: Report) -> str:
    chaos = report.chaos
    assert chaos is not None
    head = [
        ("trades sent", report.trades_sent),
        ("trades processed", report.trades_processed),
        ("trades lost", report.trades_lost),
        ("gaps injected", report.gaps_injected),
        ("gaps detected", report.gaps_detected),
        ("availability", report.availability),
        ("recoveries (s)", ", ".join(f"{r:.3f}" for r in report.recoveries_s or [])),
        (
            "recovery p50 / p90 / max (s)",
            f"{_cell(chaos.recovery_p50_s)} / {_cell(chaos.recovery_p90_s)} / "
            f"{_cell(chaos.recovery_max_s)}",
        ),
        ("dominant phase", chaos.dominant_phase),
        ("phase medians (s)", ", ".join(f"{k} {v:.3f}" for k, v in chaos.phase_medians_s.items())),
        (
            "engine RSS after the first minute, at the end (MB)",
            f"{_cell(chaos.rss_start_mb)}, {_cell(chaos.rss_end_mb)}",
        ),
        ("engine RSS slope (MB/h)", chaos.rss_slope_mb_h),
    ]
    faults = _table(
        [
            "t (s)",
            "fault",
            "engine live",
            "gaps injected",
            "detected",
            "outages",
            "recovery s",
            "book resyncs",
        ],
        [
            (
                f.t,
                f.kind,
                f.engine_live,
                f.gaps_injected,
                f.gaps_detected,
                f.outages,
                f.recovery_s,
                f.resyncs,
            )
            for f in chaos.faults
        ],
    )
    outages = _table(
        [
            "recovery s",
            "reconnect s",
            "books s (from live)",
            "backfill s (from live)",
            "drops",
            "dominated by",
        ],
        [
            (o.seconds, o.reconnect_s, o.books_s, o.backfill_s, o.drops, o.dominated_by)
            for o in chaos.outages
        ],
    )
    return (
        "<h2>Chaos</h2>"
        + _table(["figure", "value"], head)
        + "<h3>Faults</h3>"
        + faults
        + "<h3>Outages (timed by the engine)</h3>"
        + outages
    )


def render(report: Report) -> str:
    """Return the report as one HTML page."""
    verdict = "pass" if report.passed else "fail"
    failures = "".join(f"<li>{escape(text)}</li>" for text in report.failures)
    parameters = {
        k: v for k, v in msgspec.structs.asdict(report.parameters).items() if v is not None
    }
    parameters["targets"] = ", ".join(
        f"{k}={v:g}" for k, v in msgspec.structs.asdict(report.parameters.targets).items()
    )
    machine = msgspec.structs.asdict(report.machine)
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>tickhawk load test: {escape(report.profile)}</title><style>{_CSS}</style>"
        "</head><body>"
        f"<h1>tickhawk load test: {escape(report.profile)}</h1>"
        f'<p><span class="banner {verdict}">{"PASS" if report.passed else "FAIL"}</span> '
        f"started {escape(report.started)}, {report.wall_s:,.0f} s, tickhawk "
        f"{escape(report.tickhawk)}</p>"
        + (f"<ul>{failures}</ul>" if failures else "")
        + _slo(report)
        + "<h2>Summary</h2>"
        + _table(["figure", "value"], report.summary.items())
        + _profile_section(report)
        + _charts(report.samples)
        + "<h2>Parameters</h2>"
        + _table(["parameter", "value"], parameters.items())
        + (
            "<h2>Engine configuration</h2>"
            + _table(["setting", "value"], msgspec.structs.asdict(report.engine).items())
            if report.engine is not None
            else ""
        )
        + "<h2>Machine</h2>"
        + _table(["", ""], machine.items())
        + '<p class="note">Per-second samples are in report.json.</p>'
        + "</body></html>\n"
    )


def write_html(report: Report, directory: Path) -> Path:
    """Write ``directory/report.html``; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.html"
    path.write_text(render(report), encoding="utf-8")
    return path
