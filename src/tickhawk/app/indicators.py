"""``tickhawk indicators``: TA-Lib indicators over a kline CSV, bar by bar like the live engine.

Reads Binance's kline CSV (``open_time,open,high,low,close,volume,close_time,
quote_volume,count,...``, with or without a header) or any CSV with a header
naming ``open high low close volume`` and a time column (``timestamp``,
``open_time``, ``time``, ``date``; else the first column; ISO strings are
fine: the column is copied, not parsed). Each row is committed through
:class:`~tickhawk.indicators.streams.IndicatorSet`, as closed bars are live.
Writes a CSV with the time column and one column per output (``ALIAS``, or
``ALIAS.OUTPUT`` for multi-output functions); cells are empty until an
indicator has a value.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TextIO

from tickhawk.indicators.streams import IndicatorError, IndicatorSet, parse_spec
from tickhawk.model import Bar

__all__ = ["KlineFileError", "add_arguments", "read_klines", "run", "write_indicators"]

_TIME_NAMES = ("open_time", "timestamp", "time", "date", "datetime", "open time")
_PRICE_NAMES = ("open", "high", "low", "close", "volume")
_TRADES_NAMES = ("count", "trades", "number_of_trades")
#: Binance kline CSV column positions (no header).
_BINANCE = {"open": 1, "high": 2, "low": 3, "close": 4, "volume": 5, "trades": 8}
#: Files larger than this show a progress bar on a terminal.
_PROGRESS_BYTES = 2_000_000


class KlineFileError(ValueError):
    """A kline file that cannot be read; the message names the line and the fix."""


class _Layout:
    """Where each field is in a row, and the time column's name."""

    def __init__(self, time_name: str, time: int, columns: dict[str, int]) -> None:
        self.time_name = time_name
        self.time = time
        self.columns = columns
        self.width = max(time, *columns.values()) + 1


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _layout(first: list[str], path: str) -> tuple[_Layout, bool]:
    """Return the layout and whether ``first`` is a header row."""
    if first and _is_number(first[0]):
        columns = {k: v for k, v in _BINANCE.items() if v < len(first)}
        if len(first) < 6:
            raise KlineFileError(
                f"{path} line 1: {len(first)} columns; a headerless file must be Binance's "
                "kline CSV: open_time,open,high,low,close,volume,..."
            )
        return _Layout("open_time", 0, columns), False
    names = [name.strip().lower() for name in first]
    missing = [name for name in _PRICE_NAMES if name not in names]
    if missing:
        raise KlineFileError(
            f"{path}: the header has no {', '.join(missing)} column "
            f"(found: {', '.join(names)}); use open_time,open,high,low,close,volume"
        )
    columns = {name: names.index(name) for name in _PRICE_NAMES}
    trades = next((names.index(n) for n in _TRADES_NAMES if n in names), None)
    if trades is not None:
        columns["trades"] = trades
    time = next((names.index(n) for n in _TIME_NAMES if n in names), 0)
    return _Layout(first[time].strip(), time, columns), True


def read_klines(rows: Iterator[list[str]], path: str) -> tuple[str, Iterator[tuple[str, Bar]]]:
    """Return the time column's name and an iterator of ``(time text, bar)``.

    The first row is read at once, so a bad header fails here; a bad row
    raises :class:`KlineFileError` when it is reached.
    """
    first = next(rows, None)
    if first is None:
        raise KlineFileError(f"{path}: the file is empty")
    layout, header = _layout(first, path)
    return layout.time_name, _bars(first, header, rows, layout, path)


def _bars(
    first: list[str], header: bool, rows: Iterator[list[str]], layout: _Layout, path: str
) -> Iterator[tuple[str, Bar]]:
    line = 1 if header else 0
    for row in itertools.chain([] if header else [first], rows):
        line += 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) < layout.width:
            raise KlineFileError(f"{path} line {line}: {len(row)} columns, expected {layout.width}")
        values = _fields(row, layout, path, line)
        bar = Bar(
            "",
            "",
            line,
            values["open"],
            values["high"],
            values["low"],
            values["close"],
            values["volume"],
            int(values.get("trades", 0.0)),
        )
        yield row[layout.time].strip(), bar


def _fields(row: list[str], layout: _Layout, path: str, line: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, index in layout.columns.items():
        text = row[index].strip()
        try:
            value = float(text)
        except ValueError:
            raise KlineFileError(f"{path} line {line}: {name} {text!r} is not a number") from None
        if not math.isfinite(value):
            raise KlineFileError(f"{path} line {line}: {name} {text!r} is not finite")
        out[name] = value
    return out


def _cell(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "" if value != value else repr(float(value))


def write_indicators(
    time_name: str,
    rows: Iterator[tuple[str, Bar]],
    indicators: IndicatorSet,
    out: IO[str],
    *,
    progress: Callable[[], None] | None = None,
) -> int:
    """Commit each bar to ``indicators`` and write a CSV row; return the bars written."""
    writer = csv.writer(out, lineterminator="\n")
    keys = indicators.keys()
    writer.writerow([time_name, *keys])
    values = indicators.values
    count = 0
    for time_text, bar in rows:
        indicators.update(bar)
        writer.writerow([time_text, *[_cell(values[key]) for key in keys]])
        count += 1
        if progress is not None and count % 1000 == 0:
            progress()
    return count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``indicators``' arguments."""
    parser.add_argument("klines", help="kline CSV: Binance's, or timestamp,open,high,low,close,...")
    parser.add_argument(
        "--spec",
        action="append",
        required=True,
        metavar="ALIAS=NAME(k=v,...)",
        help="an indicator, e.g. rsi=RSI(timeperiod=14) or bb=BBANDS(timeperiod=20); repeatable",
    )
    parser.add_argument("--out", help="output CSV (default: standard output)")


def run(args: argparse.Namespace) -> int:
    """Run ``tickhawk indicators``; return the exit status."""
    try:
        indicators = IndicatorSet([parse_spec(text) for text in args.spec])
    except IndicatorError as exc:
        print(f"tickhawk indicators: {exc}", file=sys.stderr)
        return 2
    path = Path(args.klines)
    try:
        source = path.open(newline="", encoding="utf-8")
        size = path.stat().st_size
    except OSError as exc:
        print(f"tickhawk indicators: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        with source, _output(args.out) as out:
            time_name, rows = read_klines(csv.reader(source), str(path))
            if size > _PROGRESS_BYTES and sys.stderr.isatty():
                _with_progress(time_name, rows, indicators, out, source, size)
            else:
                write_indicators(time_name, rows, indicators, out)
    except (KlineFileError, UnicodeDecodeError, csv.Error) as exc:
        print(f"tickhawk indicators: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"tickhawk indicators: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0


class _output:
    """Open ``--out`` (or use standard output) as a context manager."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.file: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        if self.name is None:
            return sys.stdout
        self.file = open(self.name, "w", newline="", encoding="utf-8")
        return self.file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _with_progress(
    time_name: str,
    rows: Iterator[tuple[str, Bar]],
    indicators: IndicatorSet,
    out: IO[str],
    source: TextIO,
    size: int,
) -> None:
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("indicators", total=size)

        def advance() -> None:
            progress.update(task, completed=source.buffer.tell())

        write_indicators(time_name, rows, indicators, out, progress=advance)
