"""``tickhawk profile``: a CPU and memory profile of the running pipeline.

Runs the demo (the simulator and the engine in this process, over loopback
WebSocket) or replays a capture, and profiles a window of ``--seconds``
once it runs: the CPU with cProfile (or pyinstrument, when installed) and the
heap with tracemalloc (started before anything is built, so the report shows
what holds memory as well as what grew during the window). Prints the top
functions by own and cumulative time, the engine's own functions apart, and
the top allocation sites; writes ``profile.pstats`` (for ``python -m pstats``,
snakeviz, gprof2dot), ``profile.txt`` and ``memory.txt`` to ``--out``.

Both profilers slow the pipeline down (cProfile about 2×, tracemalloc more):
compare functions with each other, not the rates with unprofiled runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Protocol

import psutil

__all__ = ["add_arguments", "run"]

MB = 1 << 20
CPU_PROFILERS = ("cprofile", "pyinstrument")
#: tracemalloc's own work and the import machinery are noise in an allocation report.
_MEMORY_NOISE = (tracemalloc.__file__, "<frozen importlib._bootstrap>", "<unknown>")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``profile``'s arguments."""
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="length of the profiled window (default 10)"
    )
    parser.add_argument(
        "--target",
        nargs="+",
        default=["demo"],
        metavar="TARGET",
        help="demo (default: simulator + engine in process) or replay PATH (a capture)",
    )
    parser.add_argument("--top", type=int, default=25, help="rows per table (default 25)")
    parser.add_argument(
        "--out",
        default="tickhawk-profile",
        help="directory for the files (default ./tickhawk-profile)",
    )
    parser.add_argument(
        "--cpu", default="cprofile", help="cprofile (default) or pyinstrument (if installed)"
    )
    parser.add_argument("--symbols", type=int, default=5, help="demo: simulated symbols (5)")
    parser.add_argument("--rate", type=float, default=2000.0, help="demo: total msg/s (2000)")


class CpuProfiler(Protocol):
    """A CPU profiler that can be switched on and off around the window."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def save(self, pstats_path: Path) -> None: ...


class _CProfile:
    def __init__(self) -> None:
        self._profile = cProfile.Profile()

    def start(self) -> None:
        self._profile.enable()

    def stop(self) -> None:
        self._profile.disable()

    def save(self, pstats_path: Path) -> None:
        self._profile.dump_stats(pstats_path)


class _Pyinstrument:
    def __init__(self) -> None:
        from pyinstrument import Profiler

        # The hot path is synchronous inside frame callbacks: sample the thread, not tasks.
        self._profiler = Profiler(interval=0.001, async_mode="disabled")

    def start(self) -> None:
        self._profiler.start()

    def stop(self) -> None:
        self._profiler.stop()

    def save(self, pstats_path: Path) -> None:
        from pyinstrument.renderers import PstatsRenderer

        text = self._profiler.output(PstatsRenderer())
        pstats_path.write_bytes(text.encode("utf-8", "surrogateescape"))
        tree = self._profiler.output_text(unicode=True, color=False)
        pstats_path.with_name("pyinstrument.txt").write_text(tree)


def _cpu_profiler(name: str) -> CpuProfiler:
    if name == "pyinstrument":
        return _Pyinstrument()
    return _CProfile()


class Window:
    """The profiled window: CPU profiler and heap snapshots, RSS and messages at both ends."""

    def __init__(self, cpu: CpuProfiler) -> None:
        self.cpu = cpu
        self.process = psutil.Process()
        self.rss = [0, 0]
        self.snapshots: list[tracemalloc.Snapshot] = []
        self.seconds = 0.0
        self._t0 = 0.0

    def start(self) -> None:
        self.snapshots.append(tracemalloc.take_snapshot())
        self.rss[0] = self.process.memory_info().rss
        self._t0 = time.perf_counter()
        self.cpu.start()

    def stop(self) -> None:
        self.cpu.stop()
        self.seconds = time.perf_counter() - self._t0
        self.rss[1] = self.process.memory_info().rss
        self.snapshots.append(tracemalloc.take_snapshot())


# -- targets ---------------------------------------------------------------------------


async def _demo(window: Window, seconds: float, symbols: int, rate: float) -> tuple[int, str]:
    """Profile the demo for ``seconds`` once the engine is live; return messages and a label."""
    from tickhawk.app.demo import DEMO_STREAMS
    from tickhawk.app.live import LiveApp
    from tickhawk.presets import fast_config
    from tickhawk.sim import SimConfig, Simulator

    async with Simulator(SimConfig(n_symbols=symbols, rate=rate, seed=1)) as sim:
        config = fast_config(
            list(sim.symbols), DEMO_STREAMS, ws_url=sim.ws_url, rest_url=sim.rest_url
        )
        app = LiveApp(config)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            running = group.create_task(app.run(stop=stop))
            try:
                await app.wait_live(60)
                first = app.messages
                window.start()
                await asyncio.sleep(seconds)  # the window itself, not a wait for a condition
                window.stop()
                count = app.messages - first
            finally:
                stop.set()
        await running
    return count, f"demo ({symbols} symbols, {rate:,.0f} msg/s simulated)"


def _replay(window: Window, seconds: float, path: str) -> tuple[int, str]:
    """Profile whole passes of a capture through new engines until ``seconds`` pass."""
    from tickhawk.app.replay import market_of, replay, streams_in
    from tickhawk.capture import load_capture
    from tickhawk.presets import fast_config

    messages = load_capture(path)
    tracemalloc.start()  # after loading: the capture is input, not the pipeline
    streams = streams_in(messages)
    if not streams:
        raise _Refused(f"no Binance stream messages in {path}")
    symbols = sorted({s.split("@", 1)[0].upper() for s in streams})
    kinds = sorted({s.split("@", 1)[1] for s in streams})
    config = fast_config(symbols, kinds, market=market_of(streams))
    count = passes = 0
    window.start()
    deadline = time.perf_counter() + seconds
    while not passes or time.perf_counter() < deadline:
        count += replay(messages, config, streams=streams)[3]
        passes += 1
    window.stop()
    return count, f"replay of {path} ({passes} pass{'es' if passes > 1 else ''})"


class _Refused(Exception):
    """A target that cannot be profiled; the message says why in one line."""


# -- reports -------------------------------------------------------------------------------


def _where(filename: str, line: int, function: str) -> str:
    """Return ``tickhawk/state.py:120 on_trade``: paths from the package, not the disk."""
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/src/", "/lib/python3."):
        if marker in path:
            path = path.rsplit(marker, 1)[1]
            if marker == "/lib/python3.":
                path = path.split("/", 1)[-1]
            break
    if path == "~":
        return function  # a built-in: cProfile names it in the function
    return f"{path}:{line} {function}"


def _is_engine(filename: str) -> bool:
    path = filename.replace("\\", "/")
    return "/tickhawk/" in path and "/tickhawk/sim/" not in path and "/app/profile" not in path


def _cpu_tables(stats: pstats.Stats, top: int) -> str:
    rows: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]

    def table(title: str, keys: list[Any]) -> list[str]:
        out = [title, f"  {'calls':>10} {'own s':>8} {'own %':>6} {'cum s':>8}  function"]
        for key in keys[:top]:
            _, calls, own, cumulative, _ = rows[key]
            counted = f"{calls:,}" if calls >= 0 else "-"  # pyinstrument samples, never counts
            out.append(
                f"  {counted:>10} {own:>8.3f} {100 * own / total:>5.1f}% {cumulative:>8.3f}  "
                f"{_where(*key)}"
            )
        return out

    by_own = sorted(rows, key=lambda k: -rows[k][2])
    by_cumulative = sorted(rows, key=lambda k: -rows[k][3])
    engine = [k for k in by_own if _is_engine(k[0])]
    lines = table(f"top {top} functions by own time (of {total:.2f} s profiled):", by_own)
    lines += table(f"top {top} by cumulative time:", by_cumulative)
    lines += table(
        f"top {top} engine functions (tickhawk, simulator excluded) by own time:", engine
    )
    return "\n".join(lines)


def _held(stat: tracemalloc.Statistic) -> str:
    frame = stat.traceback[0]
    where = _where(frame.filename, frame.lineno, "")
    return f"  {stat.size / MB:>8.2f} MB {stat.count:>9,} blocks  {where}"


def _memory_report(window: Window, top: int) -> str:
    filters = [tracemalloc.Filter(False, pattern) for pattern in _MEMORY_NOISE]
    start, end = (s.filter_traces(filters) for s in window.snapshots)
    current, peak = tracemalloc.get_traced_memory()
    rss0, rss1 = window.rss
    lines = [
        f"memory: traced by tracemalloc {current / MB:.1f} MB now, peak {peak / MB:.1f} MB; "
        f"RSS {rss0 / MB:.1f} → {rss1 / MB:.1f} MB over the window",
        f"top {top} allocation sites by size held at the end:",
    ]
    lines += [_held(stat) for stat in end.statistics("lineno")[:top]]
    lines.append(
        f"top {top} engine allocation sites (tickhawk, simulator excluded) held at the end:"
    )
    engine = [s for s in end.statistics("lineno") if _is_engine(s.traceback[0].filename)]
    lines += [_held(stat) for stat in engine[:top]]
    lines.append(f"top {top} allocation sites by growth over the window:")
    for diff in end.compare_to(start, "lineno")[:top]:
        frame = diff.traceback[0]
        lines.append(
            f"  {diff.size_diff / MB:>+8.2f} MB {diff.count_diff:>+9,} blocks  "
            f"{_where(frame.filename, frame.lineno, '')}"
        )
    return "\n".join(line.rstrip() for line in lines)


# -- command -------------------------------------------------------------------------------


def _problems(args: argparse.Namespace) -> list[str]:
    problems = []
    if not args.seconds > 0:
        problems.append("--seconds must be a positive number of seconds")
    if args.top < 1:
        problems.append("--top must be at least 1")
    target = args.target
    if target[0] == "demo":
        if len(target) > 1:
            problems.append("--target demo takes no path")
        if not 1 <= args.symbols <= 2000:
            problems.append("--symbols must be between 1 and 2000")
        if not args.rate > 0:
            problems.append("--rate must be a positive number of messages per second")
    elif target[0] == "replay":
        if len(target) != 2:
            problems.append("--target replay needs one capture: --target replay PATH")
    else:
        problems.append(f"--target {target[0]!r}: use demo or replay PATH")
    if args.cpu not in CPU_PROFILERS:
        problems.append(f"--cpu {args.cpu!r}: use cprofile or pyinstrument")
    elif args.cpu == "pyinstrument":
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            problems.append("--cpu pyinstrument: it is not installed (pip install pyinstrument)")
    return problems


def run(args: argparse.Namespace) -> int:
    """Run ``tickhawk profile``; return the exit status."""
    problems = _problems(args)
    out = Path(args.out)
    if not problems:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problems.append(f"--out {out}: cannot create it ({exc.strerror})")
    if problems:
        print(f"tickhawk profile: {'; '.join(problems)}", file=sys.stderr)
        return 2
    from tickhawk.app.live import install_event_loop
    from tickhawk.capture import CaptureError
    from tickhawk.config import ConfigError

    window = Window(_cpu_profiler(args.cpu))
    try:
        if args.target[0] == "demo":
            install_event_loop()
            tracemalloc.start()  # before anything is built: what holds memory shows too
            count, label = asyncio.run(_demo(window, args.seconds, args.symbols, args.rate))
        else:
            count, label = _replay(window, args.seconds, args.target[1])
    except (CaptureError, ConfigError, _Refused) as exc:
        print(f"tickhawk profile: {exc}", file=sys.stderr)
        return 2
    finally:
        memory = _memory_report(window, args.top) if len(window.snapshots) == 2 else ""
        tracemalloc.stop()
    pstats_path = out / "profile.pstats"
    window.cpu.save(pstats_path)
    cpu = _cpu_tables(pstats.Stats(str(pstats_path)), args.top)
    head = (
        f"profile: {label}, {window.seconds:.1f} s window, {count:,} messages "
        f"({count / max(window.seconds, 1e-9):,.0f}/s under the profilers), CPU by {args.cpu}"
    )
    full = io.StringIO()
    pstats.Stats(str(pstats_path), stream=full).sort_stats("cumulative").print_stats(4 * args.top)
    (out / "profile.txt").write_text(f"{head}\n\n{cpu}\n\n{full.getvalue()}")
    (out / "memory.txt").write_text(f"{head}\n\n{memory}\n")
    written = ["profile.pstats", "profile.txt", "memory.txt"]
    if args.cpu == "pyinstrument":
        written.append("pyinstrument.txt")
    print(head)
    print(cpu)
    print(memory)
    print(f"wrote {', '.join(str(out / name) for name in written)}")
    return 0
