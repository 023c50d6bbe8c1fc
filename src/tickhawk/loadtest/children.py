"""The runner's handle on one child process: pipes, stderr, CPU and memory, pinning.

Children are ``python -m tickhawk.loadtest.simproc|engineproc SPEC_JSON``:
JSON lines out on stdout, command lines in on stdin, logs on stderr (the
last 2,000 lines are kept for ``DIR/<name>.log`` and for error messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections import deque

import msgspec
import psutil

from tickhawk.loadtest.samples import Usage

__all__ = ["Child", "LoadtestError", "choose_cores", "spawn"]

_encoder = msgspec.json.Encoder()


class LoadtestError(Exception):
    """A load test could not run (a child failed to start or died); the message says why.

    ``logs`` holds the children's last stderr lines (filled on the way out of a rig).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.logs: dict[str, list[str]] = {}


def choose_cores(pin: bool) -> tuple[int | None, int | None]:
    """Return (simulator core, engine core), or Nones when not pinning or with one core."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return cores[0], cores[-1]


class Child:
    """One child process: its pipes, its last stderr lines, its CPU and memory."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.errors: deque[str] = deque(maxlen=2_000)  # its stderr, the last lines
        self.ps = psutil.Process(process.pid)
        self._cpu = self._cpu_s()
        self._waited = self._wait_s()
        self._at = time.monotonic()

    def _cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def _wait_s(self) -> float | None:
        """Return the seconds the main thread waited on a run queue (Linux), else None."""
        try:
            with open(f"/proc/{self.process.pid}/schedstat", encoding="ascii") as file:
                return int(file.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return None

    def usage(self) -> Usage:
        """Return CPU and run-queue wait % of one core since the last call, and RSS now."""
        try:
            cpu, now = self._cpu_s(), time.monotonic()
            rss = self.ps.memory_info().rss / 2**20
        except psutil.Error:
            return Usage(0.0, 0.0)
        waited = self._wait_s()
        elapsed = max(now - self._at, 1e-3)
        pct = 100.0 * (cpu - self._cpu) / elapsed
        wait = None
        if waited is not None and self._waited is not None:
            wait = 100.0 * (waited - self._waited) / elapsed
        self._cpu, self._at, self._waited = cpu, now, waited
        return Usage(pct, rss, wait)

    def pin(self, core: int | None) -> None:
        if core is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.process.pid, {core})

    async def send(self, message: msgspec.Struct) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            return
        stdin.write(_encoder.encode(message) + b"\n")
        with contextlib.suppress(ConnectionError):
            await stdin.drain()

    async def read_errors(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        while line := await stream.readline():
            self.errors.append(line.decode(errors="replace").rstrip())

    def failure(self) -> str:
        """Return why the child failed, for a one-line error."""
        status = self.process.returncode
        last = next((line for line in reversed(self.errors) if line.strip()), "")
        tail = f": {last}" if last else ""
        return f"the {self.name} process exited (status {status}){tail}"

    async def stop(self, command: msgspec.Struct, timeout: float) -> None:
        if self.process.returncode is None:
            await self.send(command)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()


async def spawn(module: str, spec: msgspec.Struct, name: str) -> Child:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        _encoder.encode(spec).decode(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=16 * 2**20,  # an account line of 2,000 symbols is long
    )
    return Child(name, process)
