"""The engine over loopback WebSocket from the simulator at a steady rate, as two processes.

Starts ``tickhawk sim`` and ``tickhawk run`` (the engine on trade, bookTicker
and depth@100ms of every simulated symbol, 1-second preset with the momentum
strategy), samples the engine process's CPU time and RSS every second with
psutil, and returns delivered msg/s, engine CPU % of one core, peak and final
RSS, receive→signal latency p50/p99 from the engine's own stage stamps, and
the number of signals they come from. The first ``warmup`` seconds are left
out of the CPU figure (imports, connection).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
import yaml

from tickhawk.presets import fast_config_data

__all__ = ["SYMBOLS", "config_text", "free_port", "run_once", "start_sim", "symbol_names"]

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT"]


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_text(
    ws_url: str, rest_url: str, symbols: list[str], overrides: Sequence[str] = ()
) -> str:
    """Return the engine's configuration: the 1-second preset, more signals for latency samples.

    ``overrides`` are ``SECTION.KEY=VALUE`` settings applied last (VALUE read as YAML).
    """
    data = fast_config_data(
        symbols, ["trade", "bookTicker", "depth@100ms"], ws_url=ws_url, rest_url=rest_url
    )
    data["strategies"]["momentum"]["cooldown_s"] = 0.5
    for override in overrides:
        key, sep, raw = override.partition("=")
        *path, last = key.strip().split(".")
        if not sep or not path or not last:
            raise ValueError(f"--engine {override!r}: use SECTION.KEY=VALUE")
        table = data
        for part in path:
            table = table.setdefault(part, {})
        table[last] = yaml.safe_load(raw)
    return yaml.safe_dump(data)


def symbol_names(n: int) -> list[str]:
    """Return ``n`` symbol names: real ones first, then ``SYM0001USDT`` …"""
    names = list(SYMBOLS[:n])
    names += [f"SYM{i:04d}USDT" for i in range(1, n - len(names) + 1)]
    return names


def start_sim(
    symbols: list[str], rate: float, batch_ms: float = 2.0
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start ``tickhawk sim`` on free loopback ports; return it once it listens."""
    ws_port, rest_port = free_port(), free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "tickhawk.cli", "sim", "--symbols", ",".join(symbols),
         "--rate", str(rate), "--seed", "1", "--ws-port", str(ws_port),
         "--rest-port", str(rest_port), "--batch-ms", str(batch_ms)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", ws_port), timeout=1).close()
            return sim, ws_port, rest_port
        except OSError:
            if time.monotonic() > deadline or sim.poll() is not None:
                sim.kill()
                raise SystemExit("the simulator did not start") from None
            time.sleep(0.1)


def run_once(
    rate: float,
    seconds: float,
    n_symbols: int,
    warmup: float,
    overrides: Sequence[str] = (),
    batch_ms: float = 2.0,
) -> dict[str, float]:
    """Run the simulator and the engine for ``warmup + seconds``; return the engine's figures."""
    symbols = symbol_names(n_symbols)
    sim, ws_port, rest_port = start_sim(symbols, rate, batch_ms)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "loopback.yaml"
            cfg.write_text(
                config_text(
                    f"ws://127.0.0.1:{ws_port}",
                    f"http://127.0.0.1:{rest_port}",
                    symbols,
                    overrides,
                )
            )
            engine = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tickhawk.cli",
                    "run",
                    str(cfg),
                    "--duration",
                    str(seconds + warmup),
                    "--json",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            proc = psutil.Process(engine.pid)
            time.sleep(warmup)
            cpu0 = sum(proc.cpu_times()[:2])
            t0 = time.monotonic()
            rss: list[float] = []
            cpu1, t1 = cpu0, t0
            while engine.poll() is None:
                try:
                    rss.append(proc.memory_info().rss / 2**20)
                    cpu1, t1 = sum(proc.cpu_times()[:2]), time.monotonic()
                except psutil.NoSuchProcess:
                    break
                time.sleep(1.0)
            out, _ = engine.communicate(timeout=60)
            summary = json.loads(out.strip().splitlines()[-1])
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    return {
        "delivered_msgs_per_s": summary["msgs_per_s"],
        "engine_cpu_pct": 100.0 * (cpu1 - cpu0) / (t1 - t0),
        "rss_peak_mb": max(rss),
        "rss_final_mb": rss[-1],
        "latency_p50_us": summary["latency_p50_us"],
        "latency_p99_us": summary["latency_p99_us"],
        "signals": summary["signals"],
        "messages": summary["messages"],
        "rejected": summary["rejected"],
    }
