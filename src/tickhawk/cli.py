"""Command line: ``tickhawk demo|run|sim|replay|indicators``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from tickhawk import __version__

__all__ = ["main"]


def _commands() -> dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], str]]:
    # (help, add_arguments, "module:function" run) — modules import lazily so
    # that `tickhawk --help` stays fast.
    from tickhawk.app import demo, indicators, live, replay
    from tickhawk.sim import cli as sim_cli

    return {
        "demo": ("simulator + engine + live view, no network", demo.add_arguments, "demo"),
        "run": ("the engine against a configured venue", live.add_arguments, "live"),
        "sim": ("a Binance-dialect exchange simulator", sim_cli.add_arguments, "sim"),
        "replay": ("feed a capture through the pipeline", replay.add_arguments, "replay"),
        "indicators": (
            "TA-Lib indicators over a kline CSV",
            indicators.add_arguments,
            "indicators",
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the ``tickhawk`` command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="tickhawk", description="Real-time crypto market-data and trading-signal engine."
    )
    parser.add_argument("--version", action="version", version=f"tickhawk {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log connections and other detail"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = _commands()
    for name, (help_text, add_arguments, _) in commands.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
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
    from tickhawk.app import demo, indicators, live, replay
    from tickhawk.sim import cli as sim_cli

    runners: dict[str, Callable[[argparse.Namespace], int]] = {
        "demo": demo.run,
        "run": live.run,
        "sim": sim_cli.run,
        "replay": replay.run,
        "indicators": indicators.run,
    }
    try:
        return runners[args.command](args)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away (`tickhawk replay … | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
