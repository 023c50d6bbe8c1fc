"""Exchange simulator speaking Binance's public spot market-data dialect.

``Simulator(SimConfig(...))`` serves a synthetic market (books, trades,
klines; deterministic for a seed) or replays a recorded capture, over a
WebSocket port (combined and raw streams, live SUBSCRIBE) and a REST port
(``/api/v3/...``). ``sim.faults`` injects book, connection and input faults
on command or on a schedule. See ``docs/simulator.md``.
"""

from tickhawk.sim.config import SimConfig
from tickhawk.sim.faults import FaultInjector
from tickhawk.sim.faultspec import Fault, ScheduledFault, make_fault, parse_fault
from tickhawk.sim.hub import SendHook
from tickhawk.sim.simulator import SimStats, Simulator

__all__ = [
    "Fault",
    "FaultInjector",
    "ScheduledFault",
    "SendHook",
    "SimConfig",
    "SimStats",
    "Simulator",
    "make_fault",
    "parse_fault",
]
