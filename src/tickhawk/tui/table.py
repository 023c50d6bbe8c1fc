"""A table drawn line by line from fixed-width columns: cheap to redraw twice a second.

textual's DataTable renders every cell through rich on its own: redrawing the
dashboard's few hundred cells twice a second that way cost the engine 26
points of a core more than the plain view (one run of
benchmarks/dashboard_cost.py, 160×48 terminal). Here a table keeps its lines
as (text, style) pieces and hands textual one strip per line (its "line API").
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from tickhawk.tui.panels import Cell

__all__ = ["Column", "TextTable", "render_table"]

#: (header, width, alignment): ``"<"`` left, ``">"`` right.
Column = tuple[str, int, Literal["<", ">"]]
#: One line: pieces of text and the style each is drawn in ("" for none).
Line = list[tuple[str, str]]

_GAP = "  "


@lru_cache(maxsize=64)
def _style(name: str) -> Style:
    return Style.parse(name) if name else Style()


def _fit(text: str, width: int, align: str) -> str:
    length = cell_len(text)
    if length > width:
        return text[: max(0, width - 1)] + "…"
    pad = " " * (width - length)
    return pad + text if align == ">" else text + pad


def _line(columns: Sequence[Column], cells: Sequence[Cell], style: str = "") -> Line:
    pieces: Line = []
    for number, (cell, (_, width, align)) in enumerate(zip(cells, columns, strict=False)):
        if number:
            pieces.append((_GAP, ""))
        if isinstance(cell, Text):
            pieces.append((_fit(cell.plain, width, align), str(cell.style) or style))
        else:
            pieces.append((_fit(cell, width, align), style))
    return pieces


def render_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> list[str]:
    """Return the header and the rows as plain lines, each cell cut or padded to its column."""
    lines = [_line(columns, [c[0] for c in columns])] + [_line(columns, row) for row in rows]
    return ["".join(text for text, _ in line) for line in lines]


class TextTable(Widget):
    """Rows under a header; ``rows`` is what it shows."""

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(id=id, classes="panel")
        self.columns = tuple(columns)
        self.rows: list[tuple[Cell, ...]] = []
        self._header = _line(self.columns, [c[0] for c in self.columns], "bold")
        self._lines: list[Line] = [self._header]
        self._strips: dict[tuple[int, int], Strip] = {}
        self._base: Style | None = None

    @property
    def row_count(self) -> int:
        """Return how many rows it shows."""
        return len(self.rows)

    @property
    def visible_rows(self) -> int:
        """Return how many rows fit under the header (0 before the first layout)."""
        return max(0, self.content_size.height - 1)

    def column(self, index: int) -> list[str]:
        """Return one column's cells as plain text."""
        return [str(row[index]) for row in self.rows]

    def text(self) -> str:
        """Return what it draws, as plain text."""
        return "\n".join("".join(text for text, _ in line) for line in self._lines)

    def set_rows(self, rows: Sequence[tuple[Cell, ...]]) -> None:
        """Show ``rows`` (a repaint of this widget; the layout does not change)."""
        self.rows = list(rows)
        self._lines = [self._header] + [_line(self.columns, row) for row in self.rows]
        self._strips.clear()
        self._base = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        """Return line ``y`` of the table, cut or padded to the widget's width."""
        width = self.size.width
        strip = self._strips.get((y, width))
        if strip is not None:
            return strip
        if self._base is None:  # the widget's colours: computed once per redraw, not per line
            self._base = self.rich_style
        base = self._base
        if y >= len(self._lines):
            strip = Strip.blank(width, base)
        else:
            segments = [Segment(text, base + _style(name)) for text, name in self._lines[y]]
            strip = Strip(segments).crop_extend(0, width, base)
        self._strips[(y, width)] = strip
        return strip
