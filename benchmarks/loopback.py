"""The engine over loopback WebSocket from the simulator at a steady rate.

    python benchmarks/loopback.py [--rate 11800] [--seconds 60] [--symbols 50] [--runs 1]

Starts ``tickhawk sim`` and ``tickhawk run`` as separate processes (the engine
on the configured streams of every simulated symbol, 1-second preset with the
momentum strategy), samples the engine process's CPU time and RSS every second
with psutil, and prints: delivered msg/s, engine CPU % of one core, peak and
final RSS, receive→signal latency p50/p99 (from the engine's own stage
stamps), and the number of signals the percentiles come from. The first
``--warmup`` seconds are left out of the CPU figure (imports, connection).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from tickhawk.presets import fast_config_data

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_text(ws_url: str, rest_url: str, symbols: list[str]) -> str:
    """Return the engine's configuration: the 1-second preset, more signals for latency samples."""
    data = fast_config_data(
        symbols, ["trade", "bookTicker", "depth@100ms"], ws_url=ws_url, rest_url=rest_url
    )
    data["strategies"]["momentum"]["cooldown_s"] = 0.5
    return yaml.safe_dump(data)


def symbol_names(n: int) -> list[str]:
    names = list(SYMBOLS[:n])
    names += [f"SYM{i:04d}USDT" for i in range(1, n - len(names) + 1)]
    return names


def start_sim(symbols: list[str], rate: float) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start ``tickhawk sim`` on free loopback ports; return it once it listens."""
    ws_port, rest_port = free_port(), free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "tickhawk.cli", "sim", "--symbols", ",".join(symbols),
         "--rate", str(rate), "--seed", "1", "--ws-port", str(ws_port),
         "--rest-port", str(rest_port)],
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


def run_once(rate: float, seconds: float, n_symbols: int, warmup: float) -> dict[str, float]:
    symbols = symbol_names(n_symbols)
    sim, ws_port, rest_port = start_sim(symbols, rate)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "loopback.yaml"
            cfg.write_text(
                config_text(f"ws://127.0.0.1:{ws_port}", f"http://127.0.0.1:{rest_port}", symbols)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rate",
        type=float,
        default=11_800.0,
        help="the simulator's model rate (trade + aggTrade + bookTicker of every symbol); "
        "11,800 delivers about 10,000 msg/s of trade + bookTicker + depth@100ms",
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [
        run_once(args.rate, args.seconds, args.symbols, args.warmup) for _ in range(args.runs)
    ]
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    if args.json:
        print(json.dumps({"runs": results, "median": median}))
        return
    print(
        f"loopback: sim --rate {args.rate:,.0f}, {args.symbols} symbols, {args.seconds:.0f} s, "
        f"{args.runs} run(s), medians:"
    )
    print(f"  delivered           {median['delivered_msgs_per_s']:>10,.0f} msg/s")
    print(f"  engine CPU          {median['engine_cpu_pct']:>10.2f} % of one core")
    print(f"  RSS peak / final    {median['rss_peak_mb']:>10.1f} / {median['rss_final_mb']:.1f} MB")
    print(f"  receive→signal p50  {median['latency_p50_us']:>10.1f} µs")
    print(
        f"  receive→signal p99  {median['latency_p99_us']:>10.1f} µs "
        f"(over {median['signals']:,.0f} signals)"
    )
    print(f"  rejected            {median['rejected']:>10,.0f}")


if __name__ == "__main__":
    main()
