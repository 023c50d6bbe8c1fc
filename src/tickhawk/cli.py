"""Command line: ``tickhawk demo|run|sim|replay|indicators|loadtest|bench|profile``.

Each command lives in a module with ``add_arguments(parser)`` and
``run(args) -> int``; only the module of the command being run is imported,
so ``tickhawk --help`` and every command start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Protocol

from tickhawk import __version__

__all__ = ["COMMANDS", "main"]


class _Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


#: name → (one-line help, module holding add_arguments and run)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("simulator + engine + live view, no network", "tickhawk.app.demo"),
    "run": ("the engine against a configured venue", "tickhawk.app.live"),
    "sim": ("a Binance-dialect exchange simulator", "tickhawk.sim.cli"),
    "replay": ("feed a capture through the pipeline", "tickhawk.app.replay"),
    "indicators": ("TA-Lib indicators over a kline CSV", "tickhawk.app.indicators"),
    "loadtest": ("simulator and engine in separate processes, measured", "tickhawk.loadtest.cli"),
    "bench": ("benchmarks and the performance regression gate", "tickhawk.app.bench"),
    "profile": ("CPU and memory profile of the running pipeline", "tickhawk.app.profile"),
}


def _module(name: str) -> _Command:
    module: _Command = importlib.import_module(COMMANDS[name][1])
    return module


def main(argv: list[str] | None = None) -> int:
    """Run the ``tickhawk`` command line; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="tickhawk", description="Real-time crypto market-data and trading-signal engine."
    )
    parser.add_argument("--version", action="version", version=f"tickhawk {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log connections and other detail"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name, (help_text, _) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _module(name).add_arguments(command_parser)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # picows logs every connection at INFO; tickhawk's own session logs say enough.
        logging.getLogger("picows").setLevel(logging.WARNING)
    try:
        return _module(args.command).run(args)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away (`tickhawk replay … | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
