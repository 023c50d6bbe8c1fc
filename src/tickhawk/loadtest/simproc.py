"""The simulator child of a load test: ``python -m tickhawk.loadtest.simproc SPEC_JSON``.

Serves a synthetic market on free loopback ports, writes :class:`SimReady`,
then a :class:`SimTick` every second on stdout, and obeys command lines on
stdin (:class:`SimCommand`): change the model rate, inject a fault, pause
the market (everything generated is sent, nothing more), report trade ids,
stop. End of stdin (the runner went away) stops it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time

import msgspec

from tickhawk.app.live import install_event_loop
from tickhawk.loadtest.wire import SimCommand, SimIds, SimReady, SimSpec, SimTick
from tickhawk.sim import SimConfig, Simulator, parse_fault

__all__ = ["main"]

_log = logging.getLogger("tickhawk.loadtest.sim")
_encoder = msgspec.json.Encoder()
_commands = msgspec.json.Decoder(SimCommand)


def _write(message: msgspec.Struct) -> None:
    sys.stdout.buffer.write(_encoder.encode(message) + b"\n")
    sys.stdout.buffer.flush()


def _tick(sim: Simulator) -> SimTick:
    stats = sim.stats
    model = sim.model
    return SimTick(
        mono=time.monotonic(),
        messages_sent=stats.messages_sent,
        by_kind=stats.by_kind,
        trades_sent=sum(stats.trades_sent.values()),
        rate=model.rate if model is not None else 0.0,
        lag_ms=stats.lag_ms,
        behind_ms=time.time() * 1_000 - stats.sim_time_ms,
        connections=stats.connections,
        slow_disconnects=stats.slow_disconnects,
        faults=stats.faults,
    )


def _ids(sim: Simulator, paused: bool) -> SimIds:
    ranges: dict[str, tuple[int, int]] = {}
    for symbol in sim.symbols:
        sent = sim.trade_ids_sent(symbol)
        if sent:
            ranges[symbol] = (sent[0][0], sent[-1][1])
    return SimIds(ranges=ranges, paused=paused)


async def _commands_from(stdin: asyncio.StreamReader, sim: Simulator, stop: asyncio.Event) -> None:
    paused = False
    while not stop.is_set():
        line = await stdin.readline()
        if not line:
            break  # the runner closed our stdin: it is gone or done
        try:
            command = _commands.decode(line)
        except msgspec.DecodeError as error:
            _log.error("bad command %r: %s", line[:80], error)
            continue
        try:
            if command.cmd == "rate":
                sim.set_rate(command.value)
            elif command.cmd == "fault":
                sim.faults.inject(parse_fault(command.spec).fault)
            elif command.cmd == "pause":
                if not paused:
                    await sim.pause()
                    paused = True
                _write(_ids(sim, paused))
            elif command.cmd == "ids":
                _write(_ids(sim, paused))
            elif command.cmd == "stop":
                break
            else:
                _log.error("unknown command %r", command.cmd)
        except ValueError as error:
            _log.error("command %r failed: %s", command.cmd, error)
    stop.set()


async def _serve(spec: SimSpec) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    stop = asyncio.Event()
    config = SimConfig(n_symbols=spec.n_symbols, rate=spec.rate, seed=spec.seed)
    async with Simulator(config) as sim, asyncio.TaskGroup() as group:
        _write(SimReady(ws_url=sim.ws_url, rest_url=sim.rest_url, symbols=sim.symbols))
        commands = group.create_task(_commands_from(stdin, sim, stop))
        next_tick = time.monotonic() + 1.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_tick - time.monotonic()))
            next_tick += 1.0
            _write(_tick(sim))
        commands.cancel()


def main(argv: list[str] | None = None) -> int:
    """Run the simulator child; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("picows").setLevel(logging.ERROR)
    spec = msgspec.json.decode(argv[0], type=SimSpec)
    install_event_loop()
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        asyncio.run(_serve(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
