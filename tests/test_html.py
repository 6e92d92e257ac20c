"""Unit tests of htmlreport.py: one self-contained, escaped, deterministic HTML page."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.report.html import (
    BASELINE_COLOUR,
    MAX_CURVE_POINTS,
    MAX_EXTRA_DECADES,
    MAX_LOG_TICKS,
    Scale,
    kept_ranks,
    latency_scale,
    linear_ticks,
    log_ticks,
    render_html,
)
from pytest_deploycheck.verdict.decide import decide
from pytest_deploycheck.verdict.run import fit_groups

EVIL = 'evil|<script>alert("x")</script>'
VOID_TAGS = {"meta", "br", "hr", "img", "input", "link", "col", "wbr"}


def ms_samples(*values_ms: float) -> list[int]:
    return [round(v * 1e6) for v in values_ms]


def latency(name: str = "latency_under_80", *, samples_ns: list[int], **fields: Any) -> Check:
    extra = {
        "budget_ms": fields.get("budget", 80.0),
        "percentile": 95.0,
        "value_ms": 61.2,
        "samples_ns": samples_ns,
        **fields.pop("extra", {}),
    }
    defaults = {
        "metric": "latency_p95",
        "value": 61.2,
        "unit": "ms",
        "budget": 80.0,
        "display": "p95 61.2 ms (n=20, 95% CI 59.8\u201363.0)",
    }
    return Check(name=name, **{**defaults, **fields, "extra": extra})


def fit_check(device: str, *, fits: bool, target: bool) -> Check:
    status = "FIT" if fits else "CHECK memory"
    return Check(
        name=f"device_fit[optimized@{device}]",
        metric="device_fit",
        value=status,
        passed=fits,
        provenance="declared",
        gating=target,
        extra={
            "device": device,
            "status": status,
            "fits": fits,
            "details": [] if fits else [f"memory: needs 700 MB, {device} has 512"],
            "price_usd": 60.0 if device == "edge-a" else 120.0,
            "needs": "700 MB (declared), offline",
            "is_target": target,
        },
        models=("optimized",),
    )


def make_report(checks: list[Check]) -> dict[str, Any]:
    """A report.json document as report.writer.report_document builds it."""
    return {
        "schema_version": 1,
        "target": "edge-c",
        "target_device": {"name": "edge-c", "cpus": 4, "memory_mb": 4096.0, "offline": True},
        "verdict": decide(checks, target="edge-c").as_dict(),
        "checks": [c.as_dict() for c in checks],
        "device_fit": [g.as_dict(("edge-a", "edge-c")) for g in fit_groups(checks)],
        "command_line": ["pytest", "--deploy-target", "edge-c"],
        "environment": {
            "python": "3.11.7",
            "python_implementation": "CPython",
            "packages": {"onnxruntime": "1.17.0", "numpy": None},
            "host": {"platform": "Linux", "cpu_model": "AMD EPYC", "usable_cpus": 2},
            "timestamp": "2026-01-02T03:04:05+00:00",
        },
        "evidence_files": ["metrics.csv", "report.json"],
    }


def passing_report() -> dict[str, Any]:
    return make_report(
        [
            latency(samples_ns=ms_samples(*range(50, 70))),
            Check("memory_under_1000", metric="peak_memory", value=700.0, unit="MB",
                  budget=1000.0, provenance="declared"),
            Check("has_failure_cases", metric="evidence_file", value="failure_cases.md",
                  display="failure_cases.md written"),
            fit_check("edge-a", fits=False, target=False),
            fit_check("edge-c", fits=True, target=True),
        ]
    )  # fmt: skip


def failing_report() -> dict[str, Any]:
    return make_report(
        [
            latency(samples_ns=ms_samples(*range(70, 100)), value=98.0, passed=False,
                    extra={"value_ms": 98.0}),
            Check("regression[latency_under_80]", metric="regression", value=25.0, unit="%",
                  budget=10.0, passed=False,
                  display="+25.0% vs baseline (p=0.001)",
                  extra={"kind": "regression", "old": 76.0, "new": 95.0, "change": 25.0,
                         "p_value": 0.001, "baseline_samples_ns": ms_samples(*range(60, 80))}),
            Check(EVIL, metric="custom", value=3.0, unit="ms", budget=2.0, passed=False,
                  details="<img src=x onerror=alert(1)>",
                  notes=("note with <b>markup</b> & |pipes|",)),
        ]
    )  # fmt: skip


class TagBalance(HTMLParser):
    """Records every closing tag that does not close the innermost open tag."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:]}")
        else:
            self.open.pop()


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)


def test_the_verdict_is_a_green_banner_when_the_run_is_a_release_candidate() -> None:
    page = render_html(passing_report())

    assert '<section class="banner pass"' in page
    assert "release_candidate: True" in page
    assert "<title>Deploy readiness: edge-c — release candidate</title>" in page


def test_a_failing_run_is_a_red_banner_with_its_reasons() -> None:
    page = render_html(failing_report())

    assert '<section class="banner fail"' in page
    assert "release_candidate: False" in page
    assert "<li>latency_under_80: 98 ms (budget 80 ms)</li>" in page


def test_every_check_is_in_the_table_with_its_provenance() -> None:
    page = render_html(passing_report())

    for check in passing_report()["checks"]:
        assert f">{check['name']}<" in page
    assert '<td class="declared">declared</td>' in page
    assert '<td class="status PASS">PASS</td>' in page


def test_each_sampled_check_gets_a_chart_with_a_budget_line() -> None:
    report = passing_report()
    report["checks"].append(
        latency("no_budget", samples_ns=ms_samples(1, 2, 3), budget=None, extra={"budget_ms": None})
        .as_dict()
    )  # fmt: skip

    charts = svgs(render_html(report))

    assert len(charts) == 2
    assert 'class="budget"' in charts[0]
    assert "budget 80 ms" in charts[0]
    assert 'class="budget"' not in charts[1]


def test_a_chart_is_described_in_words_and_labelled_with_units() -> None:
    chart = svgs(render_html(passing_report()))[0]

    assert 'role="img" aria-labelledby="chart-1-title chart-1-desc"' in chart
    assert '<title id="chart-1-title">latency_under_80: latency per call' in chart
    assert "20 calls: p95 61.2 ms" in chart
    assert "20 of 20 (100%) at or below the budget of 80 ms" in chart
    assert "latency per call (ms)" in chart
    assert "calls at or below (%)" in chart
    assert "p95 61.2 ms</text>" in chart


def test_the_baseline_distribution_is_drawn_with_a_legend() -> None:
    chart = svgs(render_html(failing_report()))[0]

    assert chart.count("<path") == 2
    assert f'stroke="{BASELINE_COLOUR}"' in chart
    assert "baseline (n=20)" in chart
    assert "Baseline: 20 calls, p95 78 ms." in chart
    assert BASELINE_COLOUR not in svgs(render_html(passing_report()))[0]


def test_the_regression_fills_baseline_and_change_columns() -> None:
    page = render_html(failing_report())

    assert '<th scope="col">baseline</th><th scope="col">change</th>' in page
    assert '<td class="fig">76 ms</td><td class="change">regression: +25.0%' in page
    assert '<span class="sub FAIL">regression FAIL</span>' in page
    assert page.count("<tr>") == 1 + 2  # the regression check is in its check's row
    assert ">baseline</th>" not in render_html(passing_report())


def test_an_estimated_latency_is_drawn_in_host_time_against_the_scaled_budget() -> None:
    check = latency(samples_ns=ms_samples(10, 20, 30), provenance="estimated",
                    extra={"budget_ms": 40.0, "latency_factor": 2.0, "value_ms": 30.0})  # fmt: skip

    chart = svgs(render_html(make_report([check])))[0]

    assert "budget 40 ms" in chart
    assert "latency per call on the host (ms)" in chart
    assert "divided by its latency factor 2" in chart


def test_nothing_is_fetched_and_nothing_runs() -> None:
    for report in (passing_report(), failing_report()):
        page = render_html(report).lower()
        for forbidden in ("http://", "https://", "<script", "<link", "<img", "@import", "url("):
            assert forbidden not in page


def test_injected_text_is_escaped_everywhere() -> None:
    page = render_html(failing_report())

    assert "evil|&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<li>note with &lt;b&gt;markup&lt;/b&gt; &amp; |pipes|</li>" in page
    assert "<b>" not in page


def test_the_page_is_well_formed() -> None:
    for report in (passing_report(), failing_report(), {}):
        page = render_html(report)
        parser = TagBalance()
        parser.feed(page)
        parser.close()

        assert parser.problems == []
        assert parser.open == []
        for chart in svgs(page):
            ET.fromstring(chart)  # each chart is well-formed XML


def test_the_same_report_gives_the_same_page() -> None:
    assert render_html(failing_report()) == render_html(failing_report())


def test_many_samples_are_downsampled_to_keep_the_page_small() -> None:
    many = ms_samples(*(0.05 + (i % 997) / 100 for i in range(20_000)))
    check = latency(samples_ns=many)

    page = render_html(make_report([check]))

    path = re.search(r'<path d="([^"]+)"', page)
    assert path is not None
    assert path.group(1).count("V") == MAX_CURVE_POINTS
    assert len(page) < 40_000


def test_a_drawn_cdf_never_goes_down() -> None:
    page = render_html(passing_report())

    path = re.search(r'<path d="([^"]+)"', page)
    assert path is not None
    heights = [float(v) for v in re.findall(r"V([\d.]+)", path.group(1))]
    assert heights == sorted(heights, reverse=True)  # SVG y grows downwards


def test_kept_ranks_spread_evenly_and_keep_both_ends() -> None:
    assert kept_ranks(5) == [0, 1, 2, 3, 4]
    ranks = kept_ranks(10_000)
    assert len(ranks) == MAX_CURVE_POINTS
    assert (ranks[0], ranks[-1]) == (0, 9_999)


def test_ticks_are_round_numbers() -> None:
    assert linear_ticks(0.0, 1.05) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert linear_ticks(47.5, 71.5) == [50.0, 55.0, 60.0, 65.0, 70.0]
    assert log_ticks(0.07, 120.0) == [0.1, 1.0, 10.0, 100.0]
    assert log_ticks(0.4, 30.0) == [0.5, 1.0, 2.0, 5.0, 10.0, 20.0]


def test_an_empty_report_still_renders() -> None:
    page = render_html({})

    assert "release_candidate: False" in page
    assert "No readiness check ran." in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_a_headless_browser_renders_the_page(tmp_path: Path) -> None:
    page, png = tmp_path / "report.html", tmp_path / "report.png"
    page.write_text(render_html(failing_report()), encoding="utf-8")
    command = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600",
        f"--screenshot={png}", page.as_uri(),
    ]  # fmt: skip

    subprocess.run(command, capture_output=True, timeout=120, check=False)

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


# --------------------------------------------------------------------------- extreme figures

COORDINATES = re.compile(r'\b(?:x|y|x1|x2|y1|y2|cx|cy)="([^"]*)"')


def drawn_at(page: str) -> list[float]:
    """Every coordinate the page's charts place something at."""
    return [float(value) for svg in svgs(page) for value in COORDINATES.findall(svg)]


@pytest.mark.parametrize(
    ("budget_ms", "factor"),
    [
        (10.0, 1e308),  # a device budget over a latency factor of 1e308: 1e-307 ms
        (1e-13, None),
        (1e-13, 1e12),
        (1e300, None),
        (0.0, None),
        (float("inf"), None),
        (float("nan"), None),
    ],
)
def test_a_budget_at_any_distance_from_the_calls_draws_a_finite_chart(
    budget_ms: float, factor: float | None
) -> None:
    # latency_factor = 1e308 and latency_under(1e-13) were a math domain error here, at
    # the end of the run: no summary, no report.html, no run.log.
    extra = {"budget_ms": budget_ms / (factor or 1.0), "latency_factor": factor}
    check = latency(samples_ns=ms_samples(*range(50, 70)), extra=extra, passed=False)
    page = render_html(make_report([check]))

    coordinates = drawn_at(page)
    assert coordinates and all(0 <= c <= 640 for c in coordinates)
    assert 'class="budget"' in page


def test_a_far_budget_widens_the_axis_only_so_far() -> None:
    # The calls keep most of the plot; the budget line sits at its edge.
    scale = latency_scale([50.0, 70.0], [1e-13])
    assert scale.log and scale.low >= 50.0 / 10**MAX_EXTRA_DECADES / 1.25
    assert scale(1e-13) == scale.start
    assert scale(70.0) > scale.start + 0.5 * (scale.end - scale.start)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e-300, 1e300]
)
def test_a_scale_places_any_value_inside_its_range(value: float) -> None:
    for scale in (Scale(0.1, 100.0, 58, 624, log=True), Scale(0.0, 100.0, 58, 624)):
        assert 58 <= scale(value) <= 624


def test_ticks_stay_few_and_finite_over_any_range() -> None:
    ticks = log_ticks(1e-9, 1e12)
    assert 2 <= len(ticks) <= MAX_LOG_TICKS and ticks == sorted(ticks)
    assert all(1e-9 <= tick <= 1e12 for tick in ticks)
    # round(t, 12) made these 0.0, and log10(0.0) the math domain error.
    assert log_ticks(1e-300, 1e-299) == [1e-300, 2e-300, 5e-300, 1e-299]
    assert linear_ticks(0.0, 0.0) == [0.0]
    assert linear_ticks(0.0, 5e-13) == [0.0, 1e-13, 2e-13, 3e-13, 4e-13, 5e-13]
    assert linear_ticks(0.0, float("inf")) == [0.0]
    assert log_ticks(0.0, 1.0) == [] and log_ticks(1.0, float("inf")) == []
