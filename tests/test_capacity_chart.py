"""The capacity curve in report.html: points by outcome, the bound, escaped text."""

from __future__ import annotations

from typing import Any

from pytest_deploycheck.report.html import (
    capacity_curve,
    capacity_section,
    capacity_svg,
    rate_scale,
    render_html,
)


def step(rate: float, value: float | None, holds: bool, valid: bool = True) -> dict[str, Any]:
    return {
        "rate": rate,
        "percentile_ms": value,
        "achieved_qps": rate,
        "errors": 0,
        "saturated": False,
        "valid": valid,
        "reason": None,
        "holds": holds,
    }


def capacity_check(
    name: str = "capacity_over_50", curve: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "metric": "capacity",
        "unit": "req/s",
        "value": 80.0,
        "budget": 50.0,
        "status": "PASS",
        "extra": {
            "latency_ms": 100.0,
            "percentile": 99.0,
            "capacity_qps": 80.0,
            "curve": curve
            if curve is not None
            else [
                step(50, 20.0, True),
                step(100, 400.0, False),
                step(80, 60.0, True),
                step(90, None, False, valid=False),
                step(95, 150.0, False, valid=False),
            ],
        },
    }


def test_the_curve_keeps_the_steps_with_a_figure_by_rate() -> None:
    curve = capacity_curve(capacity_check())
    assert curve is not None
    assert [s.rate for s in curve.steps] == [50, 80, 95, 100]
    assert curve.unmeasured == 1
    assert (curve.latency_ms, curve.percentile, curve.budget_qps) == (100.0, 99.0, 50.0)


def test_only_capacity_checks_with_a_curve_are_charted() -> None:
    assert capacity_curve({"metric": "latency_p99", "extra": {"curve": [step(1, 1, True)]}}) is None
    assert capacity_curve(capacity_check(curve=[])) is None


def test_the_svg_draws_each_outcome_and_the_bound() -> None:
    curve = capacity_curve(capacity_check())
    assert curve is not None
    svg = capacity_svg(curve, "capacity-1")
    assert svg.count('<circle class="holds"') == 2
    assert svg.count('<path class="fails"') == 1
    assert svg.count('<circle class="invalid"') == 1
    assert '<line class="budget"' in svg and "bound p99 100 ms" in svg
    assert "<script" not in svg


def test_user_text_is_escaped() -> None:
    curve = capacity_curve(capacity_check(name="capacity_over_5<script>"))
    assert curve is not None
    section = capacity_section([("capacity-1", curve)])
    assert "<script>" not in section and "&lt;script&gt;" in section


def test_rates_spread_widely_go_on_a_log_axis() -> None:
    assert rate_scale([1.0, 1024.0]).log
    assert not rate_scale([50.0, 100.0]).log


def test_report_html_has_the_capacity_section_and_links_the_check() -> None:
    page = render_html({"checks": [capacity_check()], "verdict": {"release_candidate": True}})
    assert "<h2>Capacity curves</h2>" in page
    assert 'href="#capacity-1"' in page and 'id="capacity-1"' in page


def test_a_step_that_held_with_a_late_generator_is_drawn_as_holding() -> None:
    late = {**step(60, 30.0, True, valid=False), "late": True}
    curve = capacity_curve(capacity_check(curve=[late, step(120, 300.0, False)]))
    assert curve is not None
    svg = capacity_svg(curve, "capacity-1")
    assert svg.count('<circle class="holds"') == 1
    assert '<circle class="invalid"' not in svg
