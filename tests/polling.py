"""Wait for a condition with a deadline (tests poll; they never sleep for a fixed time)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Return once ``condition()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
