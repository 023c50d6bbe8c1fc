"""Line charts as inline SVG: no JavaScript, no CDN, no plotting library."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Series", "line_chart", "nice_ticks"]

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 44, 36
_BAND_FILLS = ("#f4f1e4", "#e8eff7")


@dataclass(frozen=True)
class Series:
    """One line: ``points`` are (x, y); a None y breaks the line."""

    label: str
    points: Sequence[tuple[float, float | None]]
    color: str = ""
    dashed: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Return about ``count`` round tick values covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first, 10)]
    while ticks[-1] < high - step * 1e-9:  # the last tick is at or above ``high``
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    y_label: str = "",
    log_y: bool = False,
    bands: Sequence[tuple[float, float, str]] = (),
    width: int = 760,
    height: int = 240,
) -> str:
    """Return an ``<svg>`` element plotting ``series`` against time (x in seconds)."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if y is not None and (y > 0 or not log_y)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    if not xs or not ys:
        parts.append(f'<text x="{_LEFT}" y="{height // 2}" font-size="12">no data</text></svg>')
        return "".join(parts)
    x0, x1 = min(xs), max(xs)
    if x1 <= x0:
        x1 = x0 + 1.0
    if log_y:
        y0 = 10 ** math.floor(math.log10(min(ys)))
        y1 = 10 ** math.ceil(math.log10(max(ys)))
        if y1 <= y0:
            y1 = y0 * 10
        ticks = [y0 * 10**k for k in range(round(math.log10(y1 / y0)) + 1)]
    else:
        ticks = nice_ticks(min(0.0, min(ys)), max(ys) * 1.05 if max(ys) > 0 else 1.0)
        y0, y1 = ticks[0], max(ticks[-1], ticks[0] + 1e-9)
    plot_w = width - _LEFT - _RIGHT
    plot_h = height - _TOP - _BOTTOM

    def px(x: float) -> float:
        return _LEFT + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        if log_y:
            fraction = (math.log10(max(y, y0)) - math.log10(y0)) / math.log10(y1 / y0)
        else:
            fraction = (y - y0) / (y1 - y0)
        return _TOP + plot_h - min(1.0, max(0.0, fraction)) * plot_h

    for number, (start, end, label) in enumerate(bands):
        left, right = px(max(start, x0)), px(min(end, x1))
        fill = _BAND_FILLS[number % len(_BAND_FILLS)]
        parts.append(
            f'<rect x="{left:.1f}" y="{_TOP}" width="{max(0.0, right - left):.1f}" '
            f'height="{plot_h}" fill="{fill}"/>'
            f'<text x="{left + 3:.1f}" y="{_TOP + 11}" font-size="10" fill="#777">'
            f"{escape(label)}</text>"
        )
    for tick in ticks:
        y = py(tick)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{width - _RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{_label(tick)}</text>"
        )
    for tick in nice_ticks(x0, x1, 8):
        if x0 <= tick <= x1:
            x = px(tick)
            parts.append(
                f'<text x="{x:.1f}" y="{height - _BOTTOM + 14}" font-size="11" '
                f'text-anchor="middle">{_label(tick)}</text>'
            )
    parts.append(
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="#999"/>'
        f'<text x="{width - _RIGHT}" y="{height - 4}" font-size="11" text-anchor="end">'
        f"time (s)</text>"
        f'<text x="12" y="{_TOP + plot_h / 2:.0f}" font-size="11" '
        f'transform="rotate(-90 12 {_TOP + plot_h / 2:.0f})" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    legend_x = float(_LEFT)
    for number, item in enumerate(series):
        color = item.color or _PALETTE[number % len(_PALETTE)]
        dash = ' stroke-dasharray="5 3"' if item.dashed else ""
        for run in _runs(item.points, log_y):
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"{dash}/>'
            )
        parts.append(
            f'<rect x="{legend_x:.0f}" y="25" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14:.0f}" y="34" font-size="11">{escape(item.label)}</text>'
        )
        legend_x += 24 + 7 * len(item.label)
    parts.append("</svg>")
    return "".join(parts)


def _runs(
    points: Sequence[tuple[float, float | None]], log_y: bool
) -> list[list[tuple[float, float]]]:
    """Split points into unbroken runs (a None, or a non-positive y on a log axis, breaks)."""
    runs: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for x, y in points:
        if y is None or (log_y and y <= 0):
            if current:
                runs.append(current)
            current = []
        else:
            current.append((x, y))
    if current:
        runs.append(current)
    return runs
