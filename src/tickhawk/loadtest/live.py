"""Where a load test is, while it runs: one updating line on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tickhawk.loadtest.samples import Sample

__all__ = ["LiveLine", "describe"]


def _ms(us: float | None) -> str:
    return f"{us / 1_000:.2f} ms" if us is not None else "–"


def describe(sample: Sample) -> str:
    """Return one sample as a status line."""
    backlog = f"{sample.backlog_ms:.0f} ms" if sample.backlog_ms is not None else "–"
    asked = f"/{sample.asked:,.0f}" if sample.asked else ""
    return (
        f"{sample.t:6.0f} s {sample.phase:<14} {sample.delivered:>9,.0f}{asked} msg/s  "
        f"p99 {_ms(sample.signal_p99_us)}  cpu {sample.cpu_pct:4.0f} %"
        f"{f' (waits {sample.wait_pct:.0f} %)' if (sample.wait_pct or 0) >= 10 else ''}  "
        f"rss {sample.rss_mb:5.0f} MB  backlog {backlog}  "
        f"books {sample.books_live}/{sample.books_total} {sample.sessions}"
    )


class LiveLine:
    """Show samples: rewrite one line on a terminal, else print one every ``every`` seconds."""

    def __init__(
        self, out: TextIO | None = None, *, every: float = 5.0, quiet: bool = False
    ) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.every = every
        self.quiet = quiet
        self._last = 0.0
        self._width = 0

    def on_sample(self, sample: Sample) -> None:
        """Show one sample."""
        if self.quiet:
            return
        line = describe(sample)
        if self.tty:
            self.out.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.out.flush()
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            print(line, file=self.out, flush=True)

    def note(self, text: str) -> None:
        """Print a line that stays (a phase change, a fault)."""
        if self.quiet:
            return
        if self.tty and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self._width = 0
        print(text, file=self.out, flush=True)

    def close(self) -> None:
        """End the updating line."""
        if self.tty and self._width and not self.quiet:
            self.out.write("\n")
            self._width = 0
