"""Bytes waiting in the loopback sockets between the simulator and the engine (Linux).

``/proc/net/tcp`` lists every TCP socket with its send and receive queues.
The engine's sockets are the ones whose remote port is the simulator's
WebSocket port: their receive queue holds what arrived and the engine has
not read yet, the one backlog that is the engine's alone (the simulator's
own delays, when its core is busy, never show there). The simulator's
sockets (local port = that port) show in their send queue what the engine's
full receive window holds back.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SocketQueues", "socket_queues"]

_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_ESTABLISHED = "01"


class SocketQueues:
    """Waiting bytes: engine receive queues, simulator send queues (None: not on Linux)."""

    __slots__ = ("engine_rx", "sim_tx")

    def __init__(self, engine_rx: int | None, sim_tx: int | None) -> None:
        self.engine_rx = engine_rx
        self.sim_tx = sim_tx


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def socket_queues(port: int, tables: tuple[Path, ...] = _TABLES) -> SocketQueues:
    """Return the queues of the established connections to and from ``port``."""
    engine_rx = sim_tx = 0
    found = False
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split()
            if len(fields) < 5 or fields[3] != _ESTABLISHED:
                continue
            tx, rx = (int(x, 16) for x in fields[4].split(":"))
            if _port(fields[2]) == port:
                engine_rx += rx
            elif _port(fields[1]) == port:
                sim_tx += tx
    return SocketQueues(engine_rx, sim_tx) if found else SocketQueues(None, None)
