"""Unit tests of measure/capacity.py: the bracket-then-bisect search and the step length.

The search runs against queues whose capacity is known analytically: an M/M/1 queue's
sojourn time is exponential with rate mu - lambda, so its p99 is ln(100) / (mu - lambda)
and the highest rate holding a bound B is lambda* = mu - ln(100) / B.  Once with the
analytic percentile (no noise), once on a simulated queue (seeded), and once through
the real open-loop runner on a virtual clock.  Nothing here times anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pytest_deploycheck.measure.capacity import (
    StepOutcome,
    find_capacity,
    load_step,
    step_duration_for,
    step_holds,
    step_samples_for,
    why_not,
)
from pytest_deploycheck.measure.stats import (
    min_samples_to_pass,
    percentile_ci_ranks,
    percentile_nearest_rank,
)
from virtual_clock import VirtualClock

LN100 = math.log(100)


def analytic_mm1(mu: float) -> Callable[[float], StepOutcome]:
    """The exact M/M/1 p99 at each rate: the search with no noise at all."""

    def measure_at(rate: float) -> StepOutcome:
        if rate >= mu:
            return StepOutcome(rate, math.inf, mu, saturated=True, reason="saturates")
        return StepOutcome(rate, 1000 * LN100 / (mu - rate), rate)

    return measure_at


def simulated_mm1(mu: float, requests: int, seed: int) -> Callable[[float], StepOutcome]:
    """A seeded M/M/1 queue, the same random numbers at every rate (so p99 grows with it).

    Waiting times from Lindley's recursion W' = max(0, W + S - A), vectorised as
    W_k = U_k - min(U_0..U_k) with U the running sum of S - A.
    """
    rng = np.random.default_rng(seed)
    arrival_units = rng.standard_exponential(requests)
    service = rng.standard_exponential(requests) / mu

    def measure_at(rate: float) -> StepOutcome:
        gaps = arrival_units / rate
        u = np.concatenate([[0.0], np.cumsum(service[:-1] - gaps[1:])])
        sojourn_ms = (u - np.minimum.accumulate(u) + service) * 1000
        return StepOutcome(rate, percentile_nearest_rank(sojourn_ms, 99), min(rate, mu))

    return measure_at


def capacity_of(mu: float, bound_ms: float) -> float:
    return mu - 1000 * LN100 / bound_ms


# --------------------------------------------------------------------------- the search


def test_the_search_brackets_by_doubling_then_bisects() -> None:
    result = find_capacity(analytic_mm1(100), latency_ms=100, start_qps=10)
    assert [step.rate for step in result.curve] == [10, 20, 40, 80, 60, 50, 55, 52.5]
    assert [step.holds for step in result.curve] == [1, 1, 1, 0, 0, 1, 0, 1]
    assert result.capacity_qps == 52.5 and result.upper_qps == 55
    assert result.conclusive and result.meets(50) is True and result.meets(53) is False
    assert "holds at 52.5 req/s and fails at 55.0 req/s" in result.reason
    assert "within 5%" in result.reason
    assert [s.rate for s in result.sorted_curve] == sorted(s.rate for s in result.curve)


@given(
    mu=st.floats(10, 10_000),
    load=st.floats(0.05, 0.95),
    start=st.floats(1, 1000),
    tolerance=st.sampled_from([0.01, 0.05, 0.1]),
)
def test_the_analytic_capacity_is_found_within_the_stated_tolerance(
    mu: float, load: float, start: float, tolerance: float
) -> None:
    target = mu * load
    bound_ms = 1000 * LN100 / (mu - target)
    assume(start / 8 <= target <= start * 512)
    result = find_capacity(
        analytic_mm1(mu), latency_ms=bound_ms, start_qps=start, rel_tolerance=tolerance
    )
    # (1e-9: a rate a rounding error off the capacity may land on either side of it.)
    assert target / (1 + tolerance) * (1 - 1e-9) <= result.capacity_qps <= target * (1 + 1e-9)
    assert result.upper_qps is not None and result.upper_qps > target * (1 - 1e-9)
    assert result.upper_qps - result.capacity_qps <= tolerance * result.capacity_qps


@pytest.mark.parametrize(("mu", "bound_ms", "seed"), [(100, 100, 0), (200, 50, 1), (50, 500, 2)])
def test_the_capacity_of_a_simulated_mm1_queue_matches_the_analytic_one(
    mu: float, bound_ms: float, seed: int
) -> None:
    target = capacity_of(mu, bound_ms)
    result = find_capacity(
        simulated_mm1(mu, 400_000, seed), latency_ms=bound_ms, start_qps=5, rel_tolerance=0.05
    )
    # The search's tolerance, widened by the simulation's own noise in p99 (about 1%
    # of the capacity with 400 000 requests).
    assert target / 1.05 * 0.97 <= result.capacity_qps <= target * 1.03


def test_a_bound_that_holds_everywhere_brackets_up_to_the_cap() -> None:
    always = StepOutcome(0, 1.0, 0)
    result = find_capacity(lambda rate: always, latency_ms=100, start_qps=10, max_qps=100)
    assert [step.rate for step in result.curve] == [10, 20, 40, 80, 100]
    assert result.capacity_qps == 100 and result.upper_qps is None
    assert "still holds at 100.0 req/s, the highest rate tried (the cap)" in result.reason
    assert result.meets(100) is True and result.meets(150) is None  # unknown above the cap


def test_a_bound_that_fails_at_the_start_halves_down_and_says_capacity_zero() -> None:
    never = StepOutcome(0, 500.0, 0)
    result = find_capacity(lambda rate: never, latency_ms=100, start_qps=10)
    assert [step.rate for step in result.curve] == [10, 5, 2.5, 1.25, 0.625]
    assert result.capacity_qps == 0 and result.upper_qps == 0.625
    assert result.reason == (
        "the p99 bound of 100 ms fails already at 0.6 req/s, the lowest rate tried "
        "(p99 500.0 ms > 100 ms): capacity 0"
    )
    assert result.meets(1) is False


def test_a_bound_failing_at_the_start_but_holding_lower_is_bracketed_below() -> None:
    result = find_capacity(analytic_mm1(100), latency_ms=100, start_qps=80)
    assert [step.rate for step in result.curve][:2] == [80, 40]
    assert capacity_of(100, 100) / 1.05 <= result.capacity_qps <= capacity_of(100, 100)


def test_an_invalid_step_is_reported_never_passed_and_makes_the_result_a_lower_bound() -> None:
    def measure_at(rate: float) -> StepOutcome:
        if rate > 30:  # the generator cannot keep up above 30 req/s; the service could
            return StepOutcome(rate, 1.0, rate, valid=False, reason="late generator")
        return StepOutcome(rate, 1.0, rate)

    result = find_capacity(measure_at, latency_ms=100, start_qps=10)
    invalid = [step for step in result.curve if not step.valid]
    assert invalid and not any(step.holds for step in invalid)
    assert 30 / 1.05 <= result.capacity_qps <= 30
    assert not result.conclusive and result.meets(40) is None and result.meets(20) is True
    assert "the step was invalid (late generator)" in result.reason
    assert "the capacity is at least" in result.reason


def test_the_search_stops_after_max_steps_and_says_so() -> None:
    result = find_capacity(analytic_mm1(100), latency_ms=100, start_qps=10, max_steps=5)
    assert len(result.curve) == 5
    assert "after 5 steps" in result.reason


@pytest.mark.parametrize(
    ("outcome", "holds", "why"),
    [
        (StepOutcome(10, 99.0, 10), True, ""),
        (StepOutcome(10, 101.0, 10), False, "p99 101.0 ms > 100 ms"),
        (StepOutcome(10, 50.0, 8, saturated=True, reason="offered 10"), False, "offered 10"),
        (StepOutcome(10, 50.0, 10, errors=2), False, "2 requests failed"),
        (StepOutcome(10, 50.0, 10, valid=False, reason="late"), False, "invalid (late)"),
        (StepOutcome(10, None, 0), False, "no request completed"),
    ],
)
def test_a_step_holds_only_in_budget_unsaturated_valid_and_error_free(
    outcome: StepOutcome, holds: bool, why: str
) -> None:
    assert step_holds(outcome, 100) is holds
    assert why_not(outcome, 100, 99) == why


def test_holds_is_judged_by_the_search_not_taken_from_the_step() -> None:
    lying = StepOutcome(0, 500.0, 0, holds=True)
    result = find_capacity(lambda rate: lying, latency_ms=100, start_qps=10, max_steps=1)
    assert result.curve[0].holds is False and result.curve[0].rate == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"latency_ms": 0}, "latency_ms must be > 0"),
        ({"start_qps": -1}, "start_qps must be > 0"),
        ({"rel_tolerance": 0}, r"rel_tolerance must be in \(0, 1\)"),
        ({"max_steps": 0}, "max_steps must be >= 1"),
    ],
)
def test_find_capacity_rejects_bad_arguments(changes: dict[str, float], message: str) -> None:
    arguments: dict[str, float] = {"latency_ms": 100, "start_qps": 10, **changes}
    with pytest.raises(ValueError, match=message):
        find_capacity(analytic_mm1(100), **arguments)  # type: ignore[arg-type]


def test_the_result_is_plain_json_with_the_curve_in_order() -> None:
    result = find_capacity(analytic_mm1(100), latency_ms=100, start_qps=10)
    extra = result.as_extra()
    assert json.loads(json.dumps(extra)) == extra
    assert [point["rate"] for point in extra["curve"]] == [s.rate for s in result.curve]
    assert result.display() == "capacity 52.5 req/s at p99 <= 100 ms"


# --------------------------------------------------------------------------- step length


@pytest.mark.parametrize("percentile", [90, 95, 99, 99.9])
def test_a_step_has_enough_requests_to_judge_its_percentile(percentile: float) -> None:
    n = step_samples_for(percentile)
    assert n >= min_samples_to_pass(percentile, 0.99)
    assert n * (1 - percentile / 100) >= 10 - 1e-9
    assert percentile_ci_ranks(n, percentile, 0.95)[1] <= n  # a finite upper bound


def test_step_duration_is_the_requests_at_the_rate_or_forty_latency_bounds() -> None:
    assert step_samples_for(99) == 1000  # 10 expected above the p99
    assert step_duration_for(99, 50) == 20.0
    assert step_duration_for(99, 5000) == 1.0  # the floor
    assert step_duration_for(99, 5000, latency_ms=100) == 4.0
    with pytest.raises(ValueError, match="qps must be > 0"):
        step_duration_for(99, 0)


# --------------------------------------------------------------------------- real steps


def test_load_step_runs_an_early_stopped_open_loop_step() -> None:
    clock = VirtualClock()

    def body() -> None:
        clock.now += 10_000_000  # 10 ms a call

    slow = load_step(
        body, latency_ms=5, concurrency=1, seed=0, clock=clock, sleep_until=clock.sleep_until
    )(20)
    assert not step_holds(slow, 5) and slow.percentile_ms is not None
    assert slow.percentile_ms >= 10
    fast = load_step(
        body, latency_ms=50, concurrency=1, seed=0, clock=clock, sleep_until=clock.sleep_until
    )(20)
    assert step_holds(fast, 50) and fast.valid and fast.errors == 0
