"""What the live dashboard costs the engine at 10,000 msg/s.

    python benchmarks/dashboard_cost.py [--rate 11800] [--seconds 30] [--runs 3] [--symbols 50]
    python benchmarks/dashboard_cost.py --capture docs/dashboard-capture.txt

For each run, twice, in alternating order: starts ``tickhawk sim`` in its own
process and ``tickhawk run`` (same configuration as ``benchmarks/loopback.py``)
on a pseudo-terminal of ``--size`` that this script reads and discards, once
with ``--view plain`` (a status line every 5 s) and once with the dashboard
(``--view dashboard``, drawing to that terminal at its default rate). Both
variants run on a terminal, so the only difference is the view. Samples the
engine process's CPU time (and RSS) with psutil after ``--warmup`` seconds and reads
receive→signal p50/p99 from the engine's summary line. Prints medians of each
variant and of the per-run difference (dashboard − plain, percentage points of
one core).

``--capture FILE`` instead runs the engine in this process against a simulator
process for ``--seconds``, drives the dashboard headless with textual's pilot
and writes what the screen shows as plain text.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import io
import json
import os
import pty
import re
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

import psutil
import yaml

from tickhawk.bench.loopback import config_text, start_sim, symbol_names

VARIANTS = ("plain", "dashboard")
_SUMMARY = re.compile(
    r"summary: .*?\(([\d,]+)/s\).*?receive→signal p50 ([\d.]+) µs p99 ([\d.]+) µs"
)
_ESCAPE = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]")


def _terminal(columns: int, lines: int) -> tuple[int, int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    return master, slave


def _drain(fd: int, sink: bytearray, done: threading.Event) -> None:
    """Read the engine's terminal until it closes; keep only the tail."""
    while not done.is_set():
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            return
        if not chunk:
            return
        sink += chunk
        if len(sink) > 1 << 20:
            del sink[: len(sink) - (1 << 18)]


def run_once(variant: str, args: argparse.Namespace, size: tuple[int, int]) -> dict[str, float]:
    """Run the engine once with ``variant``'s view; return CPU % and latency."""
    symbols = symbol_names(args.symbols)
    sim, ws_port, rest_port = start_sim(symbols, args.rate)
    master, slave = _terminal(*size)
    output = bytearray()
    done = threading.Event()
    reader = threading.Thread(target=_drain, args=(master, output, done), daemon=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "dashboard.yaml"
            cfg.write_text(
                config_text(f"ws://127.0.0.1:{ws_port}", f"http://127.0.0.1:{rest_port}", symbols)
            )
            env = {**os.environ, "TERM": "xterm-256color"}
            engine = subprocess.Popen(
                [sys.executable, "-m", "tickhawk.cli", "run", str(cfg),
                 "--duration", str(args.seconds + args.warmup), "--view", variant],
                stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
            )  # fmt: skip
            os.close(slave)
            reader.start()
            proc = psutil.Process(engine.pid)
            time.sleep(args.warmup)
            cpu0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
            cpu1, t1 = cpu0, t0
            rss: list[float] = []
            while engine.poll() is None:
                try:
                    cpu1, t1 = sum(proc.cpu_times()[:2]), time.monotonic()
                    rss.append(proc.memory_info().rss / 2**20)
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.5)
            engine.wait(timeout=60)
            reader.join(timeout=10)
    finally:
        done.set()
        os.close(master)
        sim.terminate()
        sim.wait(timeout=30)
    text = _ESCAPE.sub("", output.decode(errors="replace"))
    match = _SUMMARY.search(text)
    if engine.returncode != 0 or match is None:
        raise SystemExit(
            f"{variant}: the engine failed (exit {engine.returncode}):\n{text[-2000:]}"
        )
    return {
        "engine_cpu_pct": 100.0 * (cpu1 - cpu0) / (t1 - t0),
        "rss_peak_mb": max(rss),
        "delivered_msgs_per_s": float(match.group(1).replace(",", "")),
        "latency_p50_us": float(match.group(2)),
        "latency_p99_us": float(match.group(3)),
    }


def capture(args: argparse.Namespace, size: tuple[int, int], path: Path) -> None:
    """Run the engine and the dashboard here, headless, and write its screen as text."""
    from rich.console import Console

    from tickhawk.app.live import LiveApp, install_event_loop
    from tickhawk.config import parse_config
    from tickhawk.tui import Dashboard

    symbols = symbol_names(args.symbols)
    sim, ws_port, rest_port = start_sim(symbols, args.rate)

    async def main() -> str:
        data = yaml.safe_load(
            config_text(f"ws://127.0.0.1:{ws_port}", f"http://127.0.0.1:{rest_port}", symbols)
        )
        app = LiveApp(parse_config(data))
        run = asyncio.create_task(app.run())
        dashboard = Dashboard(app)
        async with dashboard.run_test(size=size) as pilot:
            await asyncio.sleep(args.seconds)
            await pilot.pause()
            console = Console(
                width=size[0], height=size[1], file=io.StringIO(), record=True,
                force_terminal=True, color_system="truecolor",
            )  # fmt: skip
            # What export_screenshot() draws as SVG, as text (textual has no public text export).
            console.print(dashboard.screen._compositor.render_update(full=True))
            await pilot.press("q")
        await run
        return console.export_text()

    install_event_loop()
    try:
        text = asyncio.run(main())
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    path.write_text("\n".join(line.rstrip() for line in text.splitlines()) + "\n")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=11_800.0, help="simulator model rate")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--size", default="160x48", help="terminal COLUMNSxLINES")
    parser.add_argument("--capture", type=Path, help="write a text capture here instead")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    columns, lines = (int(n) for n in args.size.split("x"))
    if args.capture is not None:
        capture(args, (columns, lines), args.capture)
        return
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for number in range(args.runs):
        order = VARIANTS if number % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            results[variant].append(run_once(variant, args, (columns, lines)))
    median = {
        v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in results.items()
    }
    extra = statistics.median(
        d["engine_cpu_pct"] - p["engine_cpu_pct"]
        for d, p in zip(results["dashboard"], results["plain"], strict=True)
    )
    if args.json:
        print(json.dumps({"runs": results, "median": median, "dashboard_extra_cpu_pct": extra}))
        return
    print(
        f"dashboard cost: sim --rate {args.rate:,.0f}, {args.symbols} symbols, "
        f"{args.seconds:.0f} s × {args.runs} run(s) per view, terminal {args.size}, medians:"
    )
    print(f"  {'':24}{'plain':>12}{'dashboard':>12}")
    for key, label, unit in (
        ("delivered_msgs_per_s", "delivered msg/s", ",.0f"),
        ("engine_cpu_pct", "engine CPU % of a core", ".2f"),
        ("rss_peak_mb", "engine RSS peak MB", ".1f"),
        ("latency_p50_us", "receive→signal p50 µs", ".1f"),
        ("latency_p99_us", "receive→signal p99 µs", ".1f"),
    ):
        print(f"  {label:<24}{median['plain'][key]:>12{unit}}{median['dashboard'][key]:>12{unit}}")
    print(f"  dashboard − plain CPU   {extra:>+12.2f} percentage points of one core")


if __name__ == "__main__":
    main()
