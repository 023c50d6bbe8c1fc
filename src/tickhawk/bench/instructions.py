"""Instruction counts of the pipeline and of decode-only on a fixed replay, under callgrind.

A count of executed instructions does not depend on the machine's load: the
same code on the same messages with the same interpreter and libraries runs
the same instructions (to a few in 10⁵ here). The child process
(``python -m tickhawk.bench.instructions``) reads the first messages of a
capture, warms both loops up, then runs each workload inside
``sys.call_tracing``: callgrind collects only inside that C function
(``--toggle-collect``) and writes one dump per call (``--dump-after``), so
start-up, imports and loading are not counted. Each workload runs once on the
messages and once on none; the difference is the messages' cost alone, without
building the engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

__all__ = ["InstructionCount", "InstructionsUnavailable", "count_instructions", "main"]

#: The C function of ``sys.call_tracing``: collection is on only inside it.
_TOGGLE = "sys_call_tracing"


class InstructionsUnavailable(Exception):
    """Callgrind cannot count here; the message says why."""


class InstructionCount(msgspec.Struct):
    """Instructions per message of the pipeline and of decode-only, on the same messages."""

    messages: int
    pipeline_per_msg: float
    decode_per_msg: float
    ratio: float
    seconds: float


def count_instructions(
    capture: Path, messages: int, *, slowdown: int = 1, timeout: float = 900.0
) -> InstructionCount:
    """Count the instructions of the first ``messages`` of ``capture``; raise if callgrind can't.

    ``slowdown`` runs the pipeline that many times per count (to prove the gate fails).
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise InstructionsUnavailable("valgrind is not installed (apt-get install valgrind)")
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [
            valgrind,
            "--tool=callgrind",
            "--collect-atstart=no",
            f"--toggle-collect={_TOGGLE}",
            f"--dump-after={_TOGGLE}",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "tickhawk.bench.instructions",
            str(capture),
            str(messages),
            str(slowdown),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InstructionsUnavailable(f"callgrind took over {timeout:.0f} s") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise InstructionsUnavailable(f"callgrind run failed: {last}")
        totals = [_total(Path(f"{out}.{i}")) for i in range(1, 5)]
    if min(totals) <= 0:
        raise InstructionsUnavailable(
            f"callgrind counted nothing inside {_TOGGLE}: this Python's symbols are stripped"
        )
    empty_pipeline, pipeline, empty_decode, decode = totals
    pipeline_per_msg = (pipeline - empty_pipeline) / messages
    decode_per_msg = (decode - empty_decode) / messages
    return InstructionCount(
        messages,
        round(pipeline_per_msg, 1),
        round(decode_per_msg, 1),
        round(pipeline_per_msg / decode_per_msg, 4),
        round(time.monotonic() - started, 1),
    )


def _total(dump: Path) -> int:
    """Return the instruction total of one callgrind dump (``totals:`` line); 0 if absent."""
    if not dump.exists():
        return 0
    for line in dump.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the child: ``CAPTURE MESSAGES [SLOWDOWN]``, four calls for callgrind to count."""
    from tickhawk.app.replay import streams_in
    from tickhawk.bench.data import read_capture
    from tickhawk.bench.pipeline import decode_only, pipeline, preset_for

    args = sys.argv[1:] if argv is None else argv
    path, count = Path(args[0]), int(args[1])
    slowdown = int(args[2]) if len(args) > 2 else 1
    messages = read_capture(path, count)
    streams = streams_in(messages)
    config = preset_for(streams)

    def full_pipeline(batch: list[tuple[int, bytes]]) -> None:
        for _ in range(slowdown):
            pipeline(config, streams)(batch)

    def decode(batch: list[tuple[int, bytes]]) -> None:
        decode_only(streams)(batch)

    workloads: list[tuple[Callable[[list[tuple[int, bytes]]], None], list[tuple[int, bytes]]]]
    workloads = [(full_pipeline, []), (full_pipeline, messages), (decode, []), (decode, messages)]
    for work, batch in workloads:
        work(batch)  # warm: imports, compiled indicator feeds, decoders
    for work, batch in workloads:
        sys.call_tracing(work, (batch,))
    return 0


if __name__ == "__main__":
    sys.exit(main())
