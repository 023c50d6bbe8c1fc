"""Instruction counts of the pipeline and of decode-only on a fixed replay, under callgrind.

A count of executed instructions does not depend on the machine's load: the
same code on the same messages with the same interpreter and libraries runs
the same instructions (to a few in 10⁵ here). The child process
(``python -m tickhawk.bench.instructions``) starts under valgrind with
instrumentation off (imports run about five times faster so), reads the first
messages of a capture, warms both loops up and says ``ready``; the parent
turns instrumentation on with ``callgrind_control`` and lets it go. It then
runs each workload inside ``sys.call_tracing``: callgrind collects only inside
that C function (``--toggle-collect``) and writes one dump per call
(``--dump-after``). The engine and the decode-only feed are built before, so
the counts are the messages' alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
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
    control = shutil.which("callgrind_control")
    if valgrind is None or control is None:
        raise InstructionsUnavailable("valgrind is not installed (apt-get install valgrind)")
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [
            valgrind,
            "--tool=callgrind",
            "--instr-atstart=no",
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
        pipe = subprocess.PIPE
        with subprocess.Popen(cmd, env=env, stdin=pipe, stdout=pipe, stderr=pipe) as child:
            try:
                _run_child(child, control, started + timeout)
            finally:
                if child.poll() is None:
                    child.kill()
        pipeline, decode = _total(Path(f"{out}.1")), _total(Path(f"{out}.2"))
    if min(pipeline, decode) <= 0:
        raise InstructionsUnavailable(
            f"callgrind counted nothing inside {_TOGGLE}: this Python's symbols are stripped"
        )
    pipeline_per_msg = pipeline / messages
    decode_per_msg = decode / messages
    return InstructionCount(
        messages,
        round(pipeline_per_msg, 1),
        round(decode_per_msg, 1),
        round(pipeline_per_msg / decode_per_msg, 4),
        round(time.monotonic() - started, 1),
    )


def _run_child(child: subprocess.Popen[bytes], control: str, deadline: float) -> None:
    """Wait for the child's ``ready``, turn instrumentation on, let it run to the end."""
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    ready = child.stdout.readline()
    if ready.strip() != b"ready":
        last = (child.stderr.read().decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise InstructionsUnavailable(f"the callgrind child failed: {last}")
    switched = subprocess.run(
        [control, "--instr=on", str(child.pid)], capture_output=True, text=True, timeout=120
    )
    if switched.returncode != 0:
        raise InstructionsUnavailable(
            f"callgrind_control could not reach the child: {switched.stderr.strip()[-200:]}"
        )
    child.stdin.write(b"go\n")
    child.stdin.close()
    try:
        child.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise InstructionsUnavailable("callgrind took too long") from None
    if child.returncode != 0:
        last = (child.stderr.read().decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise InstructionsUnavailable(f"the callgrind child failed: {last}")


def _total(dump: Path) -> int:
    """Return the instruction total of one callgrind dump (``totals:`` line); 0 if absent."""
    if not dump.exists():
        return 0
    for line in dump.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the child: ``CAPTURE MESSAGES [SLOWDOWN]``, two calls for callgrind to count."""
    from tickhawk.app.replay import streams_in
    from tickhawk.bench.data import read_capture
    from tickhawk.bench.pipeline import decode_only, pipeline, preset_for

    args = sys.argv[1:] if argv is None else argv
    path, count = Path(args[0]), int(args[1])
    slowdown = int(args[2]) if len(args) > 2 else 1
    messages = read_capture(path, count)
    streams = streams_in(messages)
    config = preset_for(streams)
    pipeline(config, streams)(messages)  # warm: imports, compiled indicator feeds, decoders
    decode_only(streams)(messages)
    # Engines and feeds are built before counting: the counts are the messages' alone.
    pipelines = [pipeline(config, streams) for _ in range(slowdown)]
    decode = decode_only(streams)

    def run_pipelines(batch: list[tuple[int, bytes]]) -> None:
        for run in pipelines:
            run(batch)

    print("ready", flush=True)
    sys.stdin.readline()  # the parent turns instrumentation on meanwhile
    sys.call_tracing(run_pipelines, (messages,))
    sys.call_tracing(decode, (messages,))
    return 0


if __name__ == "__main__":
    sys.exit(main())
