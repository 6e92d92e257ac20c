"""The load checks' pure rules: verdicts, displays, the bounded search, batching lines.

Results are built by hand (no load is run), so every rule is tested exactly.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pytest_deploycheck.checks.load import (
    batching_details,
    batching_settings,
    capacity_verdict,
    clients_display,
    clients_verdict,
    open_loop_display,
    open_loop_verdict,
    timed_steps,
)
from pytest_deploycheck.config.schema import Budgets
from pytest_deploycheck.markers import BATCHING, parse_budget_marker
from pytest_deploycheck.measure.batching import BatchingResult, best_setting
from pytest_deploycheck.measure.capacity import CapacityResult, StepOutcome
from pytest_deploycheck.measure.load import ClientsResult, ClientStats, LoadResult


def load_result(**changes: Any) -> LoadResult:
    base = LoadResult(
        offered_qps=50.0,
        scheduled_qps=50.0,
        achieved_qps=49.5,
        requests=500,
        errors=0,
        error_samples=[],
        dropped=0,
        percentile=99.0,
        percentile_ms=12.0,
        p50_ms=5.0,
        p90_ms=8.0,
        p99_ms=12.0,
        max_ms=20.0,
        queue_p50_ms=0.1,
        queue_p99_ms=3.0,
        queue_max_ms=4.0,
        late_p99_ms=0.1,
        generator_valid=True,
        invalid_reason=None,
        saturated=False,
        saturation_reason=None,
        stopped_early=False,
        duration_s=10.0,
        warmup_s=1.0,
        concurrency=4,
        seed=1,
        latency_samples_ns=[12_000_000],
    )
    return replace(base, **changes)


def test_open_loop_passes_within_the_budget() -> None:
    assert open_loop_verdict(load_result(), 100.0) == (True, "")


def test_open_loop_over_the_budget_fails_naming_the_rate() -> None:
    passed, reason = open_loop_verdict(load_result(percentile_ms=120.0), 100.0)
    assert passed is False
    assert "p99 120 ms" in reason and "over the budget of 100 ms at 50 req/s" in reason


def test_open_loop_saturated_fails_with_the_saturation_reason() -> None:
    why = "offered 50.0 req/s, achieved 30.0 req/s: the service saturates"
    result = load_result(saturated=True, saturation_reason=why)
    assert open_loop_verdict(result, 100.0) == (False, why)


def test_open_loop_invalid_generator_is_inconclusive_even_when_saturated() -> None:
    result = load_result(
        generator_valid=False, invalid_reason="the load generator could not", saturated=True
    )
    assert open_loop_verdict(result, 100.0) == (None, "the load generator could not")


def test_open_loop_errors_fail_with_the_count_and_the_first_message() -> None:
    result = load_result(errors=3, error_samples=["ValueError: bad", "ValueError: worse"])
    passed, reason = open_loop_verdict(result, 100.0)
    assert passed is False
    assert reason == "3 of 503 requests raised; first: ValueError: bad"


def test_open_loop_without_a_completed_request_is_inconclusive() -> None:
    assert open_loop_verdict(load_result(percentile_ms=None), 100.0)[0] is None


def test_open_loop_display_gives_rates_percentiles_queueing_and_errors() -> None:
    text = open_loop_display(load_result())
    assert text.startswith("p99 12")
    for words in ("50.0 req/s offered", "49.5 achieved", "p50 5", "p90 8", "max 20"):
        assert words in text
    assert "queueing p99 3" in text and "0 errors" in text
    assert open_loop_display(load_result(), 2.0).endswith("estimated")


def clients_result(**changes: Any) -> ClientsResult:
    base = ClientsResult(
        clients=2,
        duration_s=1.0,
        requests=20,
        errors=0,
        error_samples=[],
        throughput_qps=20.0,
        percentile=99.0,
        percentile_ms=4.0,
        p50_ms=2.0,
        p90_ms=3.0,
        p99_ms=4.0,
        max_ms=5.0,
        per_client=[ClientStats(0, 10, 0, 2.0, 4.0), ClientStats(1, 10, 0, 2.0, 3.0)],
        hung_clients=0,
        latency_samples_ns=[],
    )
    return replace(base, **changes)


def test_clients_are_judged_on_the_aggregate_percentile() -> None:
    assert clients_verdict(clients_result(), 10.0) == (True, "")
    passed, reason = clients_verdict(clients_result(percentile_ms=40.0), 10.0)
    assert passed is False and "over 2 clients" in reason


def test_clients_errors_fail_and_a_hung_client_is_inconclusive() -> None:
    assert clients_verdict(clients_result(errors=1, error_samples=["E: x"]), 10.0)[0] is False
    assert clients_verdict(clients_result(hung_clients=1), 10.0)[0] is None


def test_clients_display_names_each_client() -> None:
    text = clients_display(clients_result())
    assert text.startswith("2 clients: p99 4") and "#0 4" in text and "#1 3" in text


def test_timed_steps_stop_measuring_once_the_time_is_spent() -> None:
    now = [0.0]
    measured: list[float] = []

    def measure_at(rate: float) -> StepOutcome:
        measured.append(rate)
        now[0] += 5.0
        return StepOutcome(rate=rate, percentile_ms=1.0, achieved_qps=rate)

    bounded = timed_steps(measure_at, 8.0, clock=lambda: now[0])
    assert bounded(1.0).valid and bounded(2.0).valid
    late = bounded(4.0)
    assert measured == [1.0, 2.0]
    assert late.valid is False and late.reason == "max_time_s of 8 s spent before this step"


def capacity(capacity_qps: float, conclusive: bool) -> CapacityResult:
    return CapacityResult(
        capacity_qps=capacity_qps,
        upper_qps=None,
        latency_ms=100.0,
        percentile=99.0,
        rel_tolerance=0.05,
        conclusive=conclusive,
        reason="the search's words",
    )


def test_capacity_verdict_passes_fails_or_says_unknown() -> None:
    assert capacity_verdict(capacity(60.0, True), 50.0) == (True, "")
    passed, reason = capacity_verdict(capacity(40.0, True), 50.0)
    assert passed is False
    assert reason == ("capacity 40.0 req/s is under the budget of 50 req/s: the search's words")
    passed, reason = capacity_verdict(capacity(40.0, False), 50.0)
    assert passed is None and reason.startswith("capacity unknown against 50 req/s")


def batching_result(max_batch: int, wait: float, p99: float, achieved: float) -> BatchingResult:
    return BatchingResult(
        max_batch=max_batch,
        max_wait_ms=wait,
        offered_qps=50.0,
        scheduled_qps=50.0,
        achieved_qps=achieved,
        requests=100,
        errors=0,
        error_samples=[],
        dropped=0,
        batches=50,
        mean_batch=2.0,
        full_batches=10,
        busy_fraction=0.5,
        percentile=99.0,
        percentile_ms=p99,
        p50_ms=p99 / 2,
        p90_ms=p99,
        p99_ms=p99,
        max_ms=p99,
        generator_valid=True,
        invalid_reason=None,
        saturated=False,
        saturation_reason=None,
        duration_s=2.0,
        seed=1,
        latency_samples_ns=[round(p99 * 1e6)] * 100,
        batch_sizes=[2] * 50,
    )


def test_batching_settings_are_every_batch_and_wait_in_order() -> None:
    request = parse_budget_marker(
        BATCHING, (100,), {"qps": 5, "max_batch": [1, 8], "max_wait_ms": [0, 5]}, Budgets()
    )
    assert batching_settings(request) == [(1, 0.0), (1, 5.0), (8, 0.0), (8, 5.0)]


def test_batching_details_list_one_line_per_setting_then_the_best() -> None:
    results = [batching_result(1, 0.0, 50.0, 49.0), batching_result(8, 5.0, 150.0, 50.0)]
    choice = best_setting(results, 100.0, 99.0)
    lines = batching_details(results, choice, 100.0).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("batch<=1 wait 0 ms") and lines[0].endswith("meets")
    assert lines[1].startswith("batch<=8 wait 5 ms") and lines[1].endswith("over the budget")
    assert lines[2].startswith("best: batch<=1 wait 0 ms")


LATE = "the load generator could not keep its schedule: 9 of 500 requests started late"


def test_a_late_generator_leaves_a_pass_standing_and_says_why() -> None:
    late = load_result(generator_valid=False, generator_late=True, invalid_reason=LATE)
    passed, reason = open_loop_verdict(late, budget_ms=100.0)
    assert passed is True
    assert reason.startswith(LATE)
    assert "the lateness is inside the figure" in reason


def test_a_late_generator_makes_a_failure_or_a_saturation_inconclusive() -> None:
    late = {"generator_valid": False, "generator_late": True, "invalid_reason": LATE}
    over, _ = open_loop_verdict(load_result(**late, percentile_ms=150.0), budget_ms=100.0)
    assert over is None
    saturated = load_result(**late, saturated=True, saturation_reason="offered 50, achieved 30")
    passed, reason = open_loop_verdict(saturated, budget_ms=100.0)
    assert passed is None and reason.endswith("rerun on a quieter host")
    # The same figures from a generator that kept its schedule fail.
    assert open_loop_verdict(load_result(percentile_ms=150.0), 100.0)[0] is False


def test_a_hung_worker_is_inconclusive_whatever_the_figure() -> None:
    hung = load_result(generator_valid=False, invalid_reason="1 workers were still inside")
    assert open_loop_verdict(hung, budget_ms=100.0) == (None, "1 workers were still inside")


def test_a_late_capacity_step_within_the_bound_holds_and_one_over_it_is_invalid() -> None:
    from pytest_deploycheck.measure.capacity import step_holds

    late = StepOutcome(rate=50.0, percentile_ms=20.0, achieved_qps=50.0, valid=False, late=True)
    assert step_holds(late, latency_ms=100.0)
    assert not step_holds(replace(late, percentile_ms=120.0), latency_ms=100.0)
    assert not step_holds(replace(late, late=False), latency_ms=100.0)
