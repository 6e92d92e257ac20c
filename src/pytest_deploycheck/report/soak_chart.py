"""The soak charts of report.html: memory and latency over the soak, from its time series.

A soak's verdict is a slope and a drift; the series shows whether that slope is a
steady leak, one step, or warm-up noise.  Plain inline SVG: no script, no network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..checks.metrics import TIMESERIES_COLUMNS

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 58, 624, 30, 196
COLOURS = {"rss_mb": "#0a5fb4", "heap_mb": "#8250df", "p50_ms": "#0a5fb4", "p95_ms": "#c4610a"}
LABELS = {"rss_mb": "RSS", "heap_mb": "heap", "p50_ms": "p50", "p95_ms": "p95"}
PANELS = (("memory", "MB", ("rss_mb", "heap_mb")), ("latency", "ms", ("p50_ms", "p95_ms")))


@dataclass(frozen=True)
class SoakSeries:
    """One soak check's time series, as the writer hands it to the page."""

    name: str
    rows: Sequence[Sequence[Any]]
    file: str = ""

    def column(self, key: str) -> list[tuple[float, float]]:
        """The (t_s, value) points of *key*, finite values only."""
        t, i = TIMESERIES_COLUMNS.index("t_s"), TIMESERIES_COLUMNS.index(key)
        points = []
        for row in self.rows:
            x, y = (
                _finite(row[t] if len(row) > t else None),
                _finite(row[i] if len(row) > i else None),
            )
            if x is not None and y is not None:
                points.append((x, y))
        return points


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def soak_series(shown: Mapping[str, Any]) -> list[SoakSeries]:
    """The series the writer put beside report.json's content (``soak_series``)."""
    found = []
    for entry in shown.get("soak_series") or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("rows"), Sequence):
            found.append(SoakSeries(str(entry.get("name")), entry["rows"], str(entry.get("file"))))
    return found


def _scale(low: float, high: float, start: float, end: float, value: float) -> float:
    if not high > low:
        return (start + end) / 2
    return start + (value - low) / (high - low) * (end - start)


def panel_svg(series: SoakSeries, title: str, unit: str, keys: Sequence[str], chart_id: str) -> str:
    """One panel: each of *keys* against time, with min/max labels on the axes."""
    lines = {key: series.column(key) for key in keys}
    lines = {key: points for key, points in lines.items() if points}
    if not lines:
        return ""
    xs = [x for points in lines.values() for x, _ in points]
    ys = [y for points in lines.values() for _, y in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(min(ys), 0.0), max(ys)
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img"'
        f' aria-labelledby="{chart_id}-title">',
        f'<title id="{chart_id}-title">{_esc(series.name)}: {title} ({unit}) over the soak</title>',
        f'<line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" stroke="#57606a"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{BOTTOM}" stroke="#57606a"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{y1:.4g}</text>',
        f'<text x="{LEFT - 6}" y="{BOTTOM}" text-anchor="end">{y0:.4g}</text>',
        f'<text x="{LEFT}" y="{BOTTOM + 16}">{x0:.4g} s</text>',
        f'<text x="{RIGHT}" y="{BOTTOM + 16}" text-anchor="end">{x1:.4g} s</text>',
        f'<text x="{LEFT}" y="{TOP - 10}">{title} ({unit})</text>',
    ]
    for n, (key, points) in enumerate(lines.items()):
        path = " ".join(
            f"{_scale(x0, x1, LEFT, RIGHT, x):.1f},{_scale(y0, y1, BOTTOM, TOP, y):.1f}"
            for x, y in points
        )
        colour = COLOURS.get(key, "#57606a")
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(
            f'<text x="{RIGHT - 80 * n}" y="{TOP - 10}" text-anchor="end" fill="{colour}">'
            f"{LABELS.get(key, key)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def soak_section(all_series: Sequence[SoakSeries]) -> str:
    """The "Soak over time" section: memory and latency panels per soak check."""
    figures = []
    for number, series in enumerate(all_series, start=1):
        panels = [
            panel_svg(series, title, unit, keys, f"soak-{number}-{title}")
            for title, unit, keys in PANELS
        ]
        drawn = [panel for panel in panels if panel]
        if not drawn:
            continue
        source = f" Data: {_link(series.file)}." if series.file else ""
        figures.append(
            f'<figure id="soak-{number}">\n' + "\n".join(drawn) + "\n<figcaption><strong>"
            f"{_esc(series.name)}</strong>: memory and latency (p50, p95 per interval)"
            f" over the soak.{source}</figcaption>\n</figure>"
        )
    if not figures:
        return ""
    return "<h2>Soak over time</h2>\n" + "\n".join(figures)


def _link(name: str) -> str:
    return f'<a href="{_esc(name)}">{_esc(name)}</a>'


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)
