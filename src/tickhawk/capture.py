"""Read market-data captures: ``<receive time ns> <raw JSON>`` per line, gzip or plain.

This is the format of ``shared/data/binance/*.gz``: one WebSocket message (or,
once, the REST depth snapshot) per line, prefixed by the local receive time.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from tickhawk.rejects import Rejects

__all__ = ["CaptureError", "load_capture", "parse_capture"]


class CaptureError(Exception):
    """A capture file cannot be read at all (missing, not gzip, empty)."""


def load_capture(path: str | Path, rejects: Rejects | None = None) -> list[tuple[int, bytes]]:
    """Return the capture's messages as ``(receive time ns, raw JSON bytes)``, in file order.

    Lines that do not parse are counted in ``rejects`` (reason
    ``capture_line``) and skipped. Raise :class:`CaptureError` with a one-line
    reason if the file cannot be read.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CaptureError(f"capture not found: {path}") from None
    except OSError as exc:
        raise CaptureError(f"cannot read capture {path}: {exc.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise CaptureError(f"capture {path} is not a valid gzip file: {exc}") from None
    return parse_capture(raw, rejects)


def parse_capture(data: bytes, rejects: Rejects | None = None) -> list[tuple[int, bytes]]:
    """Split capture text into ``(receive time ns, raw JSON bytes)`` pairs."""
    out: list[tuple[int, bytes]] = []
    append = out.append
    for line in data.split(b"\n"):
        if not line:
            continue
        space = line.find(b" ")
        stamp = line[:space] if space > 0 else b""
        body = line[space + 1 :].strip()
        if not stamp.isdigit() or not body.startswith(b"{"):
            if rejects is not None:
                rejects.reject("capture_line", line[:80].decode("utf-8", "replace"))
            continue
        append((int(stamp), body))
    return out
