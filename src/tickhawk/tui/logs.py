"""Keep log records off the terminal while the dashboard draws on it.

A log handler writing to the terminal would scribble over the dashboard, so
while it runs the handlers that write to a terminal are set aside and records
go to a bounded buffer the dashboard shows; when it stops, the handlers come
back and the buffered records are written through them, so nothing said
during the run is lost from the terminal.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["LogBuffer", "captured_logs"]


class LogBuffer(logging.Handler):
    """Keep the last ``capacity`` records; count every record seen."""

    def __init__(self, capacity: int = 200) -> None:
        super().__init__()
        self.records: deque[logging.LogRecord] = deque(maxlen=capacity)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record (the deque drops the oldest)."""
        self.records.append(record)
        self.count += 1

    def lines(self, limit: int) -> list[str]:
        """Return the newest ``limit`` records as short lines, newest last."""
        tail = list(self.records)[-limit:] if limit > 0 else []
        return [
            f"{time.strftime('%H:%M:%S', time.localtime(r.created))} {r.levelname.lower()} "
            f"{r.name}: {r.getMessage()}"
            for r in tail
        ]


def _terminal_handlers(logger: logging.Logger) -> list[logging.StreamHandler[TextIO]]:
    found = []
    for handler in logger.handlers:
        if type(handler) is not logging.StreamHandler:  # files and the like stay
            continue
        try:
            if handler.stream.isatty():
                found.append(handler)
        except (AttributeError, ValueError):  # no stream, or a closed one
            continue
    return found


@contextmanager
def captured_logs(capacity: int = 200) -> Iterator[LogBuffer]:
    """Route the root logger's terminal output into a :class:`LogBuffer` meanwhile."""
    root = logging.getLogger()
    displaced = _terminal_handlers(root)
    buffer = LogBuffer(capacity)
    for handler in displaced:
        root.removeHandler(handler)
    root.addHandler(buffer)
    try:
        yield buffer
    finally:
        root.removeHandler(buffer)
        for handler in displaced:
            root.addHandler(handler)
        dropped = buffer.count - len(buffer.records)
        for handler in displaced:
            if dropped:
                handler.stream.write(f"({dropped} earlier log records not kept)\n")
            for record in buffer.records:
                handler.handle(record)
