"""The readiness report as one self-contained HTML page: ``report.html``.

Inline CSS and inline SVG only: no script, and no font, stylesheet or image fetched
from anywhere, so the page reads the same offline, from a CI artifact or an archive.
It is built from the report.json document alone and the same document gives the same
page, byte for byte.  Every piece of text from the report is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..checks.metrics import CAPACITY, DRIFT, THROUGHPUT
from ..config.evidence_names import HTML_FILE, REPORT_FILE
from ..config.units import format_value
from .markdown import (
    Doc,
    baseline_text,
    budget_text,
    change_text,
    cheapest_text,
    checks_of,
    command_text,
    extra_of,
    figure_text,
    fit_rows,
    price_text,
    regression_status,
    regressions_by_check,
    run_notes,
    table_rows,
)
from .soak_chart import soak_section, soak_series

MAX_CURVE_POINTS = 400  # points of a drawn CDF; keeps a 20 000-call run's page small
# The x axis never reaches past these (ms): a figure beyond them (a budget of 1e-13 ms,
# a device budget over a latency factor of 1e308) is drawn at the axis' edge.
AXIS_MIN_MS, AXIS_MAX_MS = 1e-9, 1e12
# A budget far from the calls widens the axis at most this many powers of ten past
# them, or the calls would be squeezed into a few pixels.
MAX_EXTRA_DECADES = 3
MAX_LOG_TICKS = 12
NS_PER_MS = 1e6
STATUSES = ("PASS", "FAIL", "INCONCLUSIVE", "INFO")

# Chart geometry, in SVG user units.
WIDTH, HEIGHT = 640, 310
LEFT, RIGHT, TOP, BOTTOM = 58, 624, 46, 260

RUN_COLOUR, BASELINE_COLOUR, BUDGET_COLOUR = "#0a5fb4", "#c4610a", "#c62828"

CSS = """
body{margin:0;background:#f3f4f6;color:#1f2328;
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1100px;margin:0 auto;padding:24px 32px;background:#fff}
h1{font-size:1.6em;margin:0}
h2{font-size:1.2em;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
h3{font-size:1em;margin:20px 0 4px}
.muted,figcaption,.sub{color:#57606a}
.sub{font-size:12px;display:block;overflow-wrap:break-word}
.banner{border-radius:6px;padding:12px 18px;margin:16px 0;color:#fff}
.banner.pass{background:#1a7f37}.banner.fail{background:#cf222e}
.banner strong{font-size:1.25em}
.banner ul{margin:6px 0 0;padding-left:20px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td{overflow-wrap:anywhere}
td.fig{min-width:5em}
summary{cursor:pointer}
td.change{min-width:8em}
.scroll{overflow-x:auto}
tr.target td{font-weight:600}
.status{font-weight:700;white-space:nowrap}
.PASS{color:#1a7f37}.FAIL{color:#cf222e}.INCONCLUSIVE{color:#9a6700}.INFO{color:#57606a}
.declared,.estimated{font-style:italic}
figure{margin:20px 0}
figcaption{font-size:13px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:8px 24px}
svg{max-width:100%;height:auto;font:12px system-ui,sans-serif}
pre{background:#f6f8fa;padding:8px 12px;border-radius:6px;white-space:pre-wrap}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
dt{color:#57606a}dd{margin:0}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# -- scales and axes ------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Maps a data range onto a pixel range, linearly or by powers of ten.

    Safe for any value: one outside the range (infinite, NaN, or not positive on a
    log scale) is drawn at the nearer end, never a math error at the end of a run.
    """

    low: float
    high: float
    start: float
    end: float
    log: bool = False

    def _t(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def __call__(self, value: float) -> float:
        low, high = self._t(self.low), self._t(self.high)
        if not high > low:
            return self.start
        share = (self._t(self.clamp(value)) - low) / (high - low)
        return self.start + share * (self.end - self.start)

    def clamp(self, value: float) -> float:
        """*value* inside [low, high] (NaN at low)."""
        return self.low if math.isnan(value) else min(max(value, self.low), self.high)

    def ticks(self) -> list[float]:
        return log_ticks(self.low, self.high) if self.log else linear_ticks(self.low, self.high)


def linear_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About *count* round numbers (1, 2 or 5 times a power of ten apart) in range."""
    raw = (high - low) / count
    if not (raw > 0 and math.isfinite(raw)):
        return [low] if math.isfinite(low) else []
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10)), key=lambda s: abs(math.log(s / raw)))
    first = math.ceil(low / step)
    return [_round(i * step) for i in range(first, math.floor(high / step) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten in range, with 2 and 5 between them when the range is narrow.

    Over a wide range every n-th power, so that there are at most MAX_LOG_TICKS.
    """
    if not (0 < low < high < math.inf):
        return []
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    steps = (1, 2, 5) if high / low <= 10**2.5 else (1,)
    stride = max(1, math.ceil((last - first + 1) / MAX_LOG_TICKS))
    ticks = [m * 10.0**k for k in range(first, last + 1, stride) for m in steps]
    return [_round(t) for t in ticks if low <= t <= high]


def _round(tick: float) -> float:
    """A tick without float noise (0.6000000000000001), at any magnitude."""
    return float(f"{tick:.12g}")


def latency_scale(values_ms: Sequence[float], extra_ms: Sequence[float] = ()) -> Scale:
    """The x axis: logarithmic when the values span more than a factor of 20.

    *extra_ms* (the budget) widens the axis at most MAX_EXTRA_DECADES powers of ten
    past *values_ms* (the calls); every value is kept within [AXIS_MIN_MS, AXIS_MAX_MS].
    """
    values = [_on_axis(v) for v in values_ms] or [1.0]
    low, high = min(values), max(values)
    reach = 10.0**MAX_EXTRA_DECADES
    for value in map(_on_axis, extra_ms):
        low = min(low, max(value, low / reach))
        high = max(high, min(value, max(high, AXIS_MIN_MS) * reach))
    if low > 0 and high / low > 20:
        return Scale(max(low / 1.25, AXIS_MIN_MS), high * 1.25, LEFT, RIGHT, log=True)
    pad = (high - low) * 0.05 or max(abs(high) * 0.5, 1e-3)
    return Scale(max(low - pad, 0.0), high + pad, LEFT, RIGHT)


def _on_axis(value_ms: float) -> float:
    """*value_ms* within what an axis can show; NaN (no figure) at the low end."""
    if math.isnan(value_ms):
        return AXIS_MIN_MS
    return min(max(value_ms, 0.0), AXIS_MAX_MS)


def tick_label(value: float) -> str:
    return f"{value:g}"


def x_axis(x: Scale, label: str) -> list[str]:
    parts = [f'<line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" stroke="#57606a"/>']
    for tick in x.ticks():
        px = x(tick)
        parts.append(
            f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{BOTTOM + 4}" stroke="#e6e8eb"/>'
            f'<text x="{px:.1f}" y="{BOTTOM + 18}" text-anchor="middle">{tick_label(tick)}</text>'
        )
    mid = (LEFT + RIGHT) / 2
    parts.append(f'<text x="{mid:.1f}" y="{BOTTOM + 40}" text-anchor="middle">{esc(label)}</text>')
    return parts


def y_axis(y: Scale) -> list[str]:
    parts = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{BOTTOM}" stroke="#57606a"/>']
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        py = y(share)
        parts.append(
            f'<line x1="{LEFT - 4}" y1="{py:.1f}" x2="{RIGHT}" y2="{py:.1f}" stroke="#e6e8eb"/>'
            f'<text x="{LEFT - 8}" y="{py + 4:.1f}" text-anchor="end">{share:.0%}</text>'
        )
    mid = (TOP + BOTTOM) / 2
    parts.append(
        f'<text transform="translate(14 {mid:.1f}) rotate(-90)" text-anchor="middle">'
        "calls at or below (%)</text>"
    )
    return parts


# -- the distribution chart ---------------------------------------------------------------


def kept_ranks(n: int, limit: int = MAX_CURVE_POINTS) -> list[int]:
    """Ranks of the sorted samples drawn: all of them, or *limit* evenly spread ones."""
    if n <= limit:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


def ecdf_path(sorted_ms: Sequence[float], x: Scale, y: Scale) -> str:
    """The empirical CDF as a step path; downsampled steps never rise early."""
    n = len(sorted_ms)
    parts = [f"M{x(sorted_ms[0]):.1f},{y(0.0):.1f}"]
    parts += [f"H{x(sorted_ms[r]):.1f}V{y((r + 1) / n):.1f}" for r in kept_ranks(n)]
    parts.append(f"H{RIGHT}")
    return "".join(parts)


def _percentile_ms(samples_ms: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile of a chart's calls, computed as the verdict computes it.

    Imported here, not at the top: the statistics module loads numpy, which a run that
    draws no chart (nothing was timed) should not pay for.
    """
    from ..measure.stats import percentile_nearest_rank

    return percentile_nearest_rank(samples_ms, percentile)


@dataclass(frozen=True)
class Distribution:
    """What one chart shows: the run's calls, the budget, the judged percentile."""

    check_name: str
    samples_ms: list[float]  # sorted
    baseline_ms: list[float]  # sorted; empty without a baseline
    budget_ms: float | None
    percentile: float
    value_ms: float
    per_batch: int | None  # the batch size of a throughput check
    latency_factor: float | None


def distribution(check: Doc, regression: Doc | None) -> Distribution | None:
    """The chart of a check that carries its raw samples, or None."""
    extra = extra_of(check)
    samples = sorted(int(s) / NS_PER_MS for s in extra.get("samples_ns") or [])
    if not samples:
        return None
    baseline = extra_of(regression).get("baseline_samples_ns") if regression else None
    percentile = float(extra.get("percentile") or 95.0)
    factor = float(extra["latency_factor"]) if extra.get("latency_factor") else None
    return Distribution(
        check_name=str(check.get("name")),
        samples_ms=samples,
        baseline_ms=sorted(int(s) / NS_PER_MS for s in baseline or []),
        budget_ms=_host_budget_ms(check, factor),
        percentile=percentile,
        value_ms=float(extra.get("value_ms") or _percentile_ms(samples, percentile)),
        per_batch=extra.get("batch") if check.get("metric") == THROUGHPUT else None,
        latency_factor=factor,
    )


def _host_budget_ms(check: Doc, factor: float | None) -> float | None:
    # The samples are host timings; the budget they were judged on is in host terms too.
    extra = extra_of(check)
    if extra.get("budget_ms") is not None:
        return float(extra["budget_ms"])
    budget = check.get("budget")
    if check.get("unit") == "ms" and isinstance(budget, (int, float)):
        return float(budget) / (factor or 1.0)
    return None


def chart_svg(dist: Distribution, chart_id: str) -> str:
    """An accessible SVG: the CDF of per-call times, the budget and the judged percentile."""
    values = [*dist.samples_ms, *dist.baseline_ms, dist.value_ms]
    x = latency_scale(values, [dist.budget_ms] if dist.budget_ms is not None else [])
    y = Scale(0.0, 1.0, BOTTOM, TOP)
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img"'
        f' aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{esc(chart_title(dist))}</title>',
        f'<desc id="{chart_id}-desc">{esc(describe(dist))}</desc>',
        *y_axis(y),
        *x_axis(x, axis_label(dist, x)),
    ]
    if dist.baseline_ms:
        parts.append(_curve(dist.baseline_ms, x, y, BASELINE_COLOUR, dashed=True))
    parts.append(_curve(dist.samples_ms, x, y, RUN_COLOUR, dashed=False))
    if dist.budget_ms is not None:
        parts += budget_line(x(dist.budget_ms), dist.budget_ms)
    parts += percentile_marker(x(dist.value_ms), y(dist.percentile / 100), dist)
    parts += legend(dist)
    parts.append("</svg>")
    return "\n".join(parts)


def _curve(sorted_ms: Sequence[float], x: Scale, y: Scale, colour: str, *, dashed: bool) -> str:
    dash = ' stroke-dasharray="6 3"' if dashed else ""
    return (
        f'<path d="{ecdf_path(sorted_ms, x, y)}" fill="none" stroke="{colour}"'
        f' stroke-width="2"{dash}/>'
    )


HALO = ' paint-order="stroke" stroke="#fff" stroke-width="4" stroke-linejoin="round"'


def budget_line(px: float, budget_ms: float) -> list[str]:
    """A dashed vertical line, labelled above the plot where no curve can cover it."""
    anchor = "end" if px > RIGHT - 60 else "start" if px < LEFT + 60 else "middle"
    return [
        f'<line class="budget" x1="{px:.1f}" y1="{TOP - 2}" x2="{px:.1f}" y2="{BOTTOM}"'
        f' stroke="{BUDGET_COLOUR}" stroke-width="2" stroke-dasharray="4 3"/>',
        f'<text x="{px:.1f}" y="{TOP - 6}" text-anchor="{anchor}" fill="{BUDGET_COLOUR}">'
        f"budget {esc(format_value(budget_ms, 'ms'))}</text>",
    ]


def percentile_marker(px: float, py: float, dist: Distribution) -> list[str]:
    """The judged percentile: a dot on the curve, labelled below and to its right.

    Below and right of a point on a CDF lies only the part of the curve that is slower
    and rarer, so the label stays clear of it unless the point is at the right edge.
    """
    label = f"p{dist.percentile:g} {format_value(dist.value_ms, 'ms')}"
    anchor, dx = ("end", -8) if px > RIGHT - 110 else ("start", 8)
    return [
        f'<line x1="{LEFT}" y1="{py:.1f}" x2="{px:.1f}" y2="{py:.1f}" stroke="#1f2328"'
        ' stroke-dasharray="2 3"/>',
        f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4.5" fill="#1f2328"/>',
        f'<text x="{px + dx:.1f}" y="{py + 16:.1f}" text-anchor="{anchor}"'
        f' font-weight="600"{HALO}>{esc(label)}</text>',
    ]


def legend(dist: Distribution) -> list[str]:
    entries = [(f"this run (n={len(dist.samples_ms)})", RUN_COLOUR, "")]
    if dist.baseline_ms:
        entries.append((f"baseline (n={len(dist.baseline_ms)})", BASELINE_COLOUR, "6 3"))
    if dist.budget_ms is not None:
        entries.append(("budget", BUDGET_COLOUR, "4 3"))
    parts, left = [], float(LEFT)
    for text, colour, dash in entries:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{left:.1f}" y1="14" x2="{left + 22:.1f}" y2="14" stroke="{colour}"'
            f' stroke-width="2"{dash_attr}/>'
            f'<text x="{left + 28:.1f}" y="18">{esc(text)}</text>'
        )
        left += 40 + 7 * len(text)
    return parts


def chart_title(dist: Distribution) -> str:
    what = f"time per batch of {dist.per_batch}" if dist.per_batch else "latency per call"
    return f"{dist.check_name}: {what}, cumulative distribution"


def axis_label(dist: Distribution, x: Scale) -> str:
    what = f"time per batch of {dist.per_batch}" if dist.per_batch else "latency per call"
    where = " on the host" if dist.latency_factor else ""
    return f"{what}{where} (ms{', log scale' if x.log else ''})"


def describe(dist: Distribution) -> str:
    """The chart in words, for screen readers and the caption."""
    n = len(dist.samples_ms)
    text = (
        f"{n} calls: p{dist.percentile:g} {format_value(dist.value_ms, 'ms')}"
        f", median {format_value(_percentile_ms(dist.samples_ms, 50), 'ms')}"
        f", max {format_value(dist.samples_ms[-1], 'ms')}."
    )
    if dist.budget_ms is not None:
        within = sum(1 for s in dist.samples_ms if s <= dist.budget_ms)
        text += (
            f" {within} of {n} ({within / n:.0%}) at or below the budget of"
            f" {format_value(dist.budget_ms, 'ms')}."
        )
    if dist.latency_factor:
        text += (
            f" Times measured on the host; the budget line is the device budget divided by"
            f" its latency factor {dist.latency_factor:g}."
        )
    if dist.baseline_ms:
        base = dist.baseline_ms
        text += (
            f" Baseline: {len(base)} calls, p{dist.percentile:g}"
            f" {format_value(_percentile_ms(base, dist.percentile), 'ms')}."
        )
    return text


# -- page sections ----------------------------------------------------------------------


def _tag(name: str, body: str, cls: str = "") -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<{name}{attr}>{body}</{name}>"


def table(header: Sequence[str], rows: Iterable[str]) -> str:
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in header)
    return (
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table></div>"
    )


def status_cell(status: object, regression: str = "") -> str:
    """The status, coloured; a failed or unsettled regression gate is named below it."""
    text = str(status)
    extra = f'<span class="sub {regression}">regression {regression}</span>' if regression else ""
    return _tag("td", esc(text) + extra, "status " + (text if text in STATUSES else ""))


def header_section(report: Doc) -> str:
    target = report.get("target") or "no target"
    parts = [_tag("h1", f"Deploy readiness: {esc(target)}")]
    device = report.get("target_device")
    if isinstance(device, Mapping):
        parts.append(_tag("p", esc(device_summary(device)), "muted"))
    return "\n".join(parts)


def device_summary(device: Doc) -> str:
    figures = [
        f"{device['cpus']} CPUs" if device.get("cpus") else "",
        format_value(device.get("memory_mb"), "MB") if device.get("memory_mb") else "",
        format_value(device.get("power_w"), "W") if device.get("power_w") else "",
        {"True": "offline", "False": "online-only"}.get(str(device.get("offline")), ""),
        price_text(device.get("price_usd")),
        ", ".join(device.get("execution_providers") or []),
    ]
    description = f": {device['description']}" if device.get("description") else ""
    return f"Target {device.get('name')}{description} ({', '.join(f for f in figures if f)})"


def verdict_banner(report: Doc) -> str:
    verdict = report.get("verdict") or {}
    candidate = verdict.get("release_candidate") is True
    tally = esc(shown_tally(report))
    reasons = "" if candidate else "".join(_tag("li", esc(r)) for r in verdict.get("reasons") or [])
    reasons += "".join(_tag("li", "⚠ " + esc(c)) for c in verdict.get("caveats") or [])
    body = (
        f"<strong>{'✓' if candidate else '✗'} release_candidate: {candidate}</strong>"
        + (f" <span>— {tally}</span>" if tally else "")
        + (_tag("ul", reasons) if reasons else "")
    )
    return (
        f'<section class="banner {"pass" if candidate else "fail"}" role="status"'
        f' aria-label="verdict">{body}</section>'
    )


def shown_tally(report: Doc) -> str:
    """The rows of the checks table by status: what the banner counts is what it shows.

    The verdict's own counts take every check (a regression check folded into the row
    it compares, identical passing rows merged); metrics.csv lists those one by one.
    """
    rows = table_rows(checks_of(report), report)
    if not rows:
        return ""
    counts: dict[str, int] = {}
    for check, _ in rows:
        status = str(check.get("status", ""))
        counts[status] = counts.get(status, 0) + 1
    by_status = " · ".join(f"{n} {status}" for status, n in counts.items())
    return f"{len(rows)} checks shown: {by_status}"


def checks_section(report: Doc, chart_ids: Mapping[str, str]) -> str:
    rows = table_rows(checks_of(report), report)
    if not rows:
        return _tag("h2", "Checks") + _tag("p", "No readiness check ran.")
    compared = any(regression is not None for _, regression in rows)
    header = ["check", "status", "measured", "budget", "provenance"]
    header += ["baseline", "change"] if compared else []
    body = [check_row(c, r, chart_ids.get(str(c.get("name"))), compared) for c, r in rows]
    return _tag("h2", "Checks") + "\n" + table(header, body)


def check_row(check: Doc, regression: Doc | None, chart_id: str | None, compared: bool) -> str:
    """One check; with a baseline, the regression check that compares it fills the end."""
    name = esc(check.get("name"))
    title = f'<a href="#{chart_id}">{name}</a>' if chart_id else name
    provenance = str(check.get("provenance", "measured"))
    cells = [
        _tag("td", title + _nodeid(check.get("nodeid"))),
        status_cell(check.get("status", ""), regression_status(regression)),
        _tag("td", esc(figure_text(check)) + _sub(check.get("details"))),
        _tag("td", esc(budget_text(check)), "fig"),
        _tag("td", esc(provenance), provenance),
    ]
    if compared:
        words = esc(change_text(regression, check))
        if regression is not None:
            gate = f"{regression.get('name')}: {regression.get('details') or ''}"
            words += _folded("how it was judged", esc(gate))
        cells += [
            _tag("td", esc(baseline_text(regression, check)), "fig"),
            _tag("td", words, "change"),
        ]
    return _tag("tr", "".join(cells))


def _sub(text: object) -> str:
    return f'<span class="sub">{esc(text)}</span>' if text else ""


def _nodeid(nodeid: object) -> str:
    # Break a long test id at its separators, never inside a name.
    breakable = esc(nodeid).replace("::", "::<wbr>").replace("/", "/<wbr>")
    return f'<span class="sub">{breakable}</span>' if nodeid else ""


def _folded(summary: str, body: str) -> str:
    """Text a reader opens when they want it; <details> needs no script."""
    return f'<details class="sub"><summary>{summary}</summary>{body}</details>'


def charts_section(charts: Sequence[tuple[str, Distribution]]) -> str:
    if not charts:
        return ""
    figures = [
        f'<figure id="{chart_id}">\n{chart_svg(dist, chart_id)}\n'
        f"<figcaption><strong>{esc(chart_title(dist))}.</strong> {esc(describe(dist))}"
        "</figcaption>\n</figure>"
        for chart_id, dist in charts
    ]
    return _tag("h2", "Latency distributions") + "\n" + _tag("div", "\n".join(figures), "charts")


def fit_section(groups: Sequence[Doc]) -> str:
    if not groups:
        return ""
    parts = [_tag("h2", "Device fit")]
    for group in groups:
        models = " + ".join(str(m) for m in group.get("models") or [])
        rows = [fit_row(row) for row in fit_rows(group)]
        parts += [
            _tag("h3", esc(models)),
            _tag("p", "Needs " + esc(group.get("needs", "")), "muted"),
            table(["device", "status", "price", "why"], rows),
            _tag("p", esc(cheapest_text(group))),
        ]
    return "\n".join(parts)


def fit_row(row: Doc) -> str:
    status = str(row.get("status") or "")
    device = esc(row.get("device")) + (" (target)" if row.get("is_target") else "")
    cells = [
        _tag("td", device),
        _tag("td", esc(status), "status " + ("PASS" if row.get("fits") else "FAIL")),
        _tag("td", esc(price_text(row.get("price_usd"))), "fig"),
        _tag("td", esc("; ".join(str(d) for d in row.get("details") or []))),
    ]
    return _tag("tr", "".join(cells), "target" if row.get("is_target") else "")


def notes_section(report: Doc) -> str:
    notes = run_notes(report)
    if not notes:
        return ""
    return _tag("h2", "Notes") + _tag("ul", "".join(_tag("li", esc(n)) for n in notes))


def environment_section(report: Doc) -> str:
    env = report.get("environment") or {}
    host = env.get("host") or {}
    packages = env.get("packages") or {}
    entries = [
        ("Python", f"{env.get('python', '?')} ({env.get('python_implementation', '?')})"),
        *((name, version or "not installed") for name, version in packages.items()),
        ("Platform", host.get("platform", "?")),
        (
            "CPU",
            f"{host.get('cpu_model', '?')}, {host.get('usable_cpus', '?')} usable of"
            f" {host.get('logical_cpus', '?')} logical",
        ),
        (
            "Memory",
            format_value(host["memory_total_mb"], "MB") if host.get("memory_total_mb") else "?",
        ),
        ("Time", env.get("timestamp", "?")),
    ]
    items = "".join(_tag("dt", esc(k)) + _tag("dd", esc(v)) for k, v in entries)
    parts = [_tag("h2", "Environment"), _tag("dl", items)]
    if report.get("command_line"):
        parts += [_tag("h3", "Command line"), _tag("pre", _tag("code", esc(command_text(report))))]
    return "\n".join(parts)


def evidence_links(report: Doc) -> str:
    """Relative links to the run's other evidence files, beside this page in the directory."""
    files = [str(f) for f in report.get("evidence_files") or [] if str(f) != HTML_FILE]
    if not files:
        return ""
    items = "".join(
        _tag("li", f'<a href="./{esc(quote(name, safe="/"))}">{esc(name)}</a>') for name in files
    )
    return _tag("h2", "Evidence files") + _tag("ul", items, "files")


# -- the capacity chart -------------------------------------------------------------------
#
# Each step of a ``capacity_over`` search is a point: the offered rate on x, the judged
# percentile of the latency from scheduled arrival on y; steps that held the bound are
# filled dots, steps that did not are crosses, invalid steps hollow rings; the bound is a
# dashed horizontal line.

HOLDS_COLOUR, FAILS_COLOUR, INVALID_COLOUR = "#1a7f37", "#cf222e", "#57606a"


@dataclass(frozen=True)
class Step:
    """One point of the curve."""

    rate: float
    percentile_ms: float | None
    achieved_qps: float
    holds: bool
    valid: bool


@dataclass(frozen=True)
class CapacityCurve:
    """What one capacity chart shows."""

    check_name: str
    steps: list[Step]  # by rate; only the steps with a figure
    unmeasured: int  # steps without a figure (none completed, or never run)
    latency_ms: float
    percentile: float
    capacity_qps: float
    budget_qps: float | None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def capacity_curve(check: Doc) -> CapacityCurve | None:
    """The curve of a capacity check that carries one, or None."""
    if check.get("metric") != CAPACITY:
        return None
    extra = extra_of(check)
    points = [p for p in extra.get("curve") or [] if isinstance(p, Mapping)]
    latency_ms = _number(extra.get("latency_ms"))
    if not points or latency_ms is None:
        return None
    steps = [_step(point) for point in points]
    measured = sorted((s for s in steps if s is not None), key=lambda s: s.rate)
    return CapacityCurve(
        check_name=str(check.get("name")),
        steps=measured,
        unmeasured=len(steps) - len(measured),
        latency_ms=latency_ms,
        percentile=_number(extra.get("percentile")) or 99.0,
        capacity_qps=_number(extra.get("capacity_qps")) or 0.0,
        budget_qps=_number(check.get("budget")),
    )


def _step(point: Mapping[str, object]) -> Step | None:
    rate, value = _number(point.get("rate")), _number(point.get("percentile_ms"))
    if rate is None or rate <= 0 or value is None:
        return None
    return Step(
        rate=rate,
        percentile_ms=value,
        achieved_qps=_number(point.get("achieved_qps")) or 0.0,
        holds=point.get("holds") is True,
        valid=point.get("valid") is not False,
    )


def rate_scale(rates: Sequence[float]) -> Scale:
    """The x axis: logarithmic when the rates span more than a factor of 20."""
    low, high = min(rates), max(rates)
    if high / low > 20:
        return Scale(low / 1.25, high * 1.25, LEFT, RIGHT, log=True)
    pad = (high - low) * 0.05 or high * 0.5
    return Scale(max(low - pad, 0.0), high + pad, LEFT, RIGHT)


def _y_axis(y: Scale, label: str) -> list[str]:
    parts = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{BOTTOM}" stroke="#57606a"/>']
    for tick in y.ticks():
        py = y(tick)
        parts.append(
            f'<line x1="{LEFT - 4}" y1="{py:.1f}" x2="{RIGHT}" y2="{py:.1f}" stroke="#e6e8eb"/>'
            f'<text x="{LEFT - 8}" y="{py + 4:.1f}" text-anchor="end">{tick_label(tick)}</text>'
        )
    mid = (TOP + BOTTOM) / 2
    parts.append(
        f'<text transform="translate(14 {mid:.1f}) rotate(-90)" text-anchor="middle">'
        f"{esc(label)}</text>"
    )
    return parts


def _point(px: float, py: float, step: Step) -> str:
    # A step that holds is drawn as holding even when its generator was late: its
    # latencies count from the schedule (measure.capacity.step_holds).
    if step.holds:
        return f'<circle class="holds" cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{HOLDS_COLOUR}"/>'
    if not step.valid:
        return (
            f'<circle class="invalid" cx="{px:.1f}" cy="{py:.1f}" r="5" fill="none"'
            f' stroke="{INVALID_COLOUR}" stroke-width="2"/>'
        )
    d = 4.5
    return (
        f'<path class="fails" d="M{px - d:.1f},{py - d:.1f}L{px + d:.1f},{py + d:.1f}'
        f'M{px - d:.1f},{py + d:.1f}L{px + d:.1f},{py - d:.1f}" stroke="{FAILS_COLOUR}"'
        ' stroke-width="2.5"/>'
    )


def _bound_line(py: float, curve: CapacityCurve) -> list[str]:
    label = f"bound p{curve.percentile:g} {format_value(curve.latency_ms, 'ms')}"
    return [
        f'<line class="budget" x1="{LEFT}" y1="{py:.1f}" x2="{RIGHT}" y2="{py:.1f}"'
        f' stroke="{BUDGET_COLOUR}" stroke-width="2" stroke-dasharray="4 3"/>',
        f'<text x="{RIGHT - 4}" y="{py - 6:.1f}" text-anchor="end" fill="{BUDGET_COLOUR}"'
        f"{HALO}>{esc(label)}</text>",
    ]


def _legend() -> list[str]:
    return [
        f'<circle cx="{LEFT + 6}" cy="14" r="5" fill="{HOLDS_COLOUR}"/>'
        f'<text x="{LEFT + 16}" y="18">holds</text>',
        f'<path d="M{LEFT + 76},10L{LEFT + 84},18M{LEFT + 76},18L{LEFT + 84},10"'
        f' stroke="{FAILS_COLOUR}" stroke-width="2.5"/>'
        f'<text x="{LEFT + 92}" y="18">fails</text>',
        f'<circle cx="{LEFT + 146}" cy="14" r="5" fill="none" stroke="{INVALID_COLOUR}"'
        ' stroke-width="2"/>'
        f'<text x="{LEFT + 156}" y="18">invalid</text>',
        f'<line x1="{LEFT + 220}" y1="14" x2="{LEFT + 242}" y2="14" stroke="{BUDGET_COLOUR}"'
        ' stroke-width="2" stroke-dasharray="4 3"/>'
        f'<text x="{LEFT + 248}" y="18">latency bound</text>',
    ]


def capacity_title(curve: CapacityCurve) -> str:
    return f"{curve.check_name}: p{curve.percentile:g} latency against the offered rate"


def describe_capacity(curve: CapacityCurve) -> str:
    """The chart in words, for screen readers and the caption."""
    held = sum(step.holds for step in curve.steps)
    text = (
        f"{len(curve.steps)} rates measured, {held} within the bound of"
        f" {format_value(curve.latency_ms, 'ms')} at p{curve.percentile:g};"
        f" capacity {format_value(curve.capacity_qps, 'req/s')}"
    )
    if curve.budget_qps is not None:
        text += f" against a budget of {format_value(curve.budget_qps, 'req/s')}"
    text += "."
    if curve.unmeasured:
        text += f" {curve.unmeasured} steps gave no figure and are not drawn."
    return text


def capacity_svg(curve: CapacityCurve, chart_id: str) -> str:
    """An accessible SVG of the search's steps and the latency bound."""
    x = rate_scale([step.rate for step in curve.steps])
    values = [step.percentile_ms or 0.0 for step in curve.steps]
    x_ms = latency_scale(values, [curve.latency_ms])
    y = Scale(x_ms.low, x_ms.high, BOTTOM, TOP, log=x_ms.log)
    scale_note = ", log scale" if y.log else ""
    path = "".join(
        f"{'M' if i == 0 else 'L'}{x(step.rate):.1f},{y(step.percentile_ms or 0.0):.1f}"
        for i, step in enumerate(curve.steps)
    )
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img"'
        f' aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{esc(capacity_title(curve))}</title>',
        f'<desc id="{chart_id}-desc">{esc(describe_capacity(curve))}</desc>',
        *_y_axis(y, f"p{curve.percentile:g} latency (ms{scale_note})"),
        *x_axis(x, f"offered rate (req/s{', log scale' if x.log else ''})"),
        f'<path d="{path}" fill="none" stroke="{RUN_COLOUR}" stroke-width="1.5"/>',
        *_bound_line(y(curve.latency_ms), curve),
        *(_point(x(step.rate), y(step.percentile_ms or 0.0), step) for step in curve.steps),
        *_legend(),
        "</svg>",
    ]
    return "\n".join(parts)


def capacity_section(curves: Sequence[tuple[str, CapacityCurve]]) -> str:
    """The "Capacity curves" section: one figure per capacity check with a curve."""
    if not curves:
        return ""
    figures = [
        f'<figure id="{chart_id}">\n{capacity_svg(curve, chart_id)}\n'
        f"<figcaption><strong>{esc(capacity_title(curve))}.</strong>"
        f" {esc(describe_capacity(curve))}</figcaption>\n</figure>"
        for chart_id, curve in curves
        if curve.steps
    ]
    if not figures:
        return ""
    return "<h2>Capacity curves</h2>\n" + f'<div class="charts">{"".join(figures)}</div>'


def _capacity_charts(report: Doc) -> list[tuple[str, CapacityCurve]]:
    """The capacity checks' curves that have points, with their chart ids."""
    curves = [capacity_curve(check) for check in checks_of(report)]
    kept = [curve for curve in curves if curve is not None and curve.steps]
    return [(f"capacity-{i}", curve) for i, curve in enumerate(kept, start=1)]


# -- drift ----------------------------------------------------------------------------


def drift_section(report: Doc) -> str:
    """The "Drift" section: per drift check, its sample sizes, what it could detect and
    its most drifted features (the ``top`` of its extra), every name escaped."""
    drifts = [check for check in checks_of(report) if check.get("metric") == DRIFT]
    if not drifts:
        return ""
    parts = [_tag("h2", "Drift")]
    for check in drifts:
        extra = extra_of(check)
        parts += [
            _tag("h3", f"{esc(check.get('name'))} {_status_span(check.get('status'))}"),
            _tag("p", esc(check.get("display")) + _sub(extra.get("detectable")), "muted"),
            table(
                ["feature", "test", "statistic", "Holm p", "PSI", "n", "drifted"],
                [_drift_row(row) for row in extra.get("top") or [] if isinstance(row, Mapping)],
            ),
        ]
    return "\n".join(parts)


def _status_span(status: object) -> str:
    text = esc(status or "")
    return f'<span class="status {text}">{text}</span>'


def _drift_row(row: Mapping[str, Any]) -> str:
    test = "KS D" if row.get("test") == "ks" else f"chi2 ({row.get('detail')})"
    sizes = f"{row.get('n_reference')} / {row.get('n_current')}"
    cells = [
        _tag("td", esc(row.get("name")) + _sub(row.get("reason"))),
        _tag("td", esc(test)),
        _tag("td", esc(format_value(row.get("statistic"))), "fig"),
        _tag("td", esc(format_value(row.get("p_adjusted"))), "fig"),
        _tag("td", esc(format_value(row.get("psi"))), "fig"),
        _tag("td", esc(sizes), "fig"),
        _tag(
            "td", "yes" if row.get("drifted") else "no", "status FAIL" if row.get("drifted") else ""
        ),
    ]
    return _tag("tr", "".join(cells))


def render_html(report: Mapping[str, Any]) -> str:
    """The run's readiness as one HTML page that needs nothing but a browser.

    *report* is the report.json document.  The page holds the verdict and its reasons,
    every check with its budget and provenance, a cumulative-distribution chart for each
    check that carries its per-call samples (with the baseline's when a regression check
    brings them), the device-fit tables, the notes, the environment and the command.
    """
    regressions = regressions_by_check(report)
    charts: list[tuple[str, Distribution]] = []
    for check in checks_of(report):
        dist = distribution(check, regressions.get(str(check.get("name"))))
        if dist is not None:
            charts.append((f"chart-{len(charts) + 1}", dist))
    chart_ids = {dist.check_name: chart_id for chart_id, dist in charts}
    capacity = _capacity_charts(report)
    chart_ids.update({curve.check_name: chart_id for chart_id, curve in capacity})
    soaks = soak_series(report)
    chart_ids.update({series.name: f"soak-{n}" for n, series in enumerate(soaks, start=1)})
    groups = [g for g in report.get("device_fit") or [] if isinstance(g, Mapping)]
    verdict = (
        "release candidate"
        if (report.get("verdict") or {}).get("release_candidate") is True
        else "not a release candidate"
    )
    body = [
        header_section(report),
        verdict_banner(report),
        checks_section(report, chart_ids),
        charts_section(charts),
        capacity_section(capacity),
        drift_section(report),
        soak_section(soaks),
        fit_section(groups),
        notes_section(report),
        evidence_links(report),
        environment_section(report),
        _tag("p", f"Generated by pytest-deploycheck from {REPORT_FILE}.", "muted"),
    ]
    title = f"Deploy readiness: {report.get('target') or 'no target'} — {verdict}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(part for part in body if part)
        + "\n</main>\n</body>\n</html>\n"
    )
