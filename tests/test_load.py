"""Unit tests of measure/load.py: the open-loop runner and the closed-loop clients.

Nothing here depends on the machine's speed: the runner is driven by a virtual
nanosecond clock that only the body and the sleep move, and expected latencies are
computed from the schedule.  One real-thread run at the end asserts behaviour only.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_deploycheck.measure.load import (
    MAX_AUTO_CONCURRENCY,
    MAX_ERROR_SAMPLES,
    START_LEAD_NS,
    LoadPlan,
    LoadResult,
    choose_concurrency,
    default_sleep_until,
    poisson_arrivals,
    queue_growth,
    run_closed_loop_clients,
    run_open_loop,
    simulate_queue,
)
from virtual_clock import VirtualClock

MS = 1_000_000  # nanoseconds


def service_body(clock: VirtualClock, service_ns: Sequence[int]) -> Callable[[], None]:
    """A body whose k-th call takes service_ns[k] of virtual time."""
    calls = iter(service_ns)

    def body() -> None:
        clock.advance(next(calls))

    return body


def run_virtual(
    arrivals_ns: Sequence[int],
    service_ns: Sequence[int],
    *,
    qps: float,
    duration_s: float,
    oversleep_ns: int = 0,
    **plan: Any,
) -> LoadResult:
    clock = VirtualClock(oversleep_ns)
    body = service_body(clock, service_ns)
    load = LoadPlan(qps=qps, duration_s=duration_s, concurrency=1, seed=0, **plan)
    return run_open_loop(
        body, load, clock=clock, sleep_until=clock.sleep_until, arrivals_ns=arrivals_ns
    )


# --------------------------------------------------------------------------- the schedule


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_arrivals_have_the_offered_rate_and_exponential_gaps(seed: int) -> None:
    qps, duration = 200.0, 50.0
    offsets = poisson_arrivals(qps, duration, random.Random(seed))
    expected = qps * duration  # 10000, Poisson: sd 100
    assert abs(len(offsets) - expected) < 4 * math.sqrt(expected)
    assert offsets == sorted(offsets) and offsets[0] >= 0 and offsets[-1] < duration * 1e9
    gaps = sorted(b - a for a, b in itertools.pairwise(offsets))
    # Kolmogorov-Smirnov against Exp(qps) at the 1% level.
    n = len(gaps)
    worst = max(
        max(abs((i + 1) / n - cdf), abs(i / n - cdf))
        for i, gap in enumerate(gaps)
        for cdf in [1 - math.exp(-qps * gap / 1e9)]
    )
    assert worst < 1.63 / math.sqrt(n)


def test_poisson_arrivals_replay_from_their_seed() -> None:
    first = poisson_arrivals(50, 2, random.Random(7))
    assert first == poisson_arrivals(50, 2, random.Random(7))
    assert first != poisson_arrivals(50, 2, random.Random(8))


def test_simulate_queue_is_a_fifo_before_several_servers() -> None:
    spans = simulate_queue([0, 0, 0, 5], [10, 10, 10, 1], workers=2)
    assert spans == [(0, 10), (0, 10), (10, 20), (10, 11)]


def test_choose_concurrency_keeps_up_with_headroom_and_a_cap() -> None:
    assert choose_concurrency(100, 0.0001) == 2  # light load: the floor
    assert choose_concurrency(50, 0.1) == 10  # 5 Erlangs, doubled
    assert choose_concurrency(10_000, 1.0) == MAX_AUTO_CONCURRENCY


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"qps": 0}, "qps must be > 0"),
        ({"qps": True}, "qps must be > 0"),
        ({"duration_s": -1}, "duration_s must be > 0"),
        ({"warmup_s": -0.1}, "warmup_s must be >= 0"),
        ({"concurrency": 0}, "concurrency must be a whole number >= 1 or None"),
        ({"concurrency": 2.5}, "concurrency must be a whole number"),
        ({"seed": "x"}, "seed must be an integer or None"),
        ({"percentile": 100}, r"percentile must be in \(0, 100\)"),
        ({"saturation_tolerance": 1.5}, "saturation_tolerance must be in"),
        ({"budget_ms": 0}, "budget_ms must be > 0"),
        ({"drain_s": -1}, "drain_s must be >= 0"),
        ({"confidence": 1}, "confidence must be in"),
    ],
)
def test_load_plan_rejects_bad_values_in_one_sentence(
    changes: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"qps": 10.0, "duration_s": 1.0, **changes}
    with pytest.raises(ValueError, match=message) as caught:
        LoadPlan(**values)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value) and str(caught.value).startswith("LoadPlan ")


def test_load_plan_defaults_total_and_drain() -> None:
    plan = LoadPlan(qps=10, duration_s=8, warmup_s=2)
    assert plan.total_s == 10 and plan.drain_limit_s == 2.5
    assert LoadPlan(qps=10, duration_s=1).drain_limit_s == 1.0


# --------------------------------------------------------------------------- accounting


def test_a_stall_shows_in_the_percentile_through_the_requests_queued_behind_it() -> None:
    # 50 req/s, one arrival every 20 ms for 1 s; every call 1 ms except the 11th: 500 ms.
    arrivals = [k * 20 * MS for k in range(50)]
    service = [1 * MS] * 50
    service[10] = 500 * MS
    result = run_virtual(arrivals, service, qps=50, duration_s=1.0)
    # Request 10 + j (1 <= j <= 26) waited for the stall: latency 500 - 19 j ms; the
    # other 23 took 1 ms.  A closed loop would have seen one slow sample.
    expected = sorted([1.0] * 23 + [500.0 - 19 * j for j in range(27)])
    assert sorted(v / MS for v in result.latency_samples_ns) == expected
    assert result.p50_ms == 25.0
    assert result.p90_ms == 405.0
    assert result.p99_ms == result.percentile_ms == result.max_ms == 500.0
    assert result.queue_max_ms == 480.0
    assert result.generator_valid and not result.saturated
    assert result.requests == 50 and result.errors == 0 and result.dropped == 0


@settings(max_examples=40)
@given(
    st.lists(st.tuples(st.integers(0, 50 * MS), st.integers(1, 80 * MS)), min_size=1, max_size=40)
)
def test_the_threaded_runner_agrees_with_the_discrete_event_queue(
    jobs: list[tuple[int, int]],
) -> None:
    arrivals, t = [], 0
    for gap, _ in jobs:
        t += gap
        arrivals.append(t)
    service = [s for _, s in jobs]
    spans = simulate_queue(arrivals, service, workers=1)
    duration = arrivals[-1] / 1e9 + 0.001
    result = run_virtual(arrivals, service, qps=10, duration_s=duration, drain_s=1e6)
    assert result.latency_samples_ns == [
        end - a for (_, end), a in zip(spans, arrivals, strict=True)
    ]
    assert result.queue_max_ms == max(s - a for (s, _), a in zip(spans, arrivals, strict=True)) / MS
    assert result.generator_valid


def test_a_service_slower_than_the_rate_saturates_in_words_naming_both_rates() -> None:
    arrivals = [k * 10 * MS for k in range(100)]  # 100 req/s; the service manages 50
    result = run_virtual(arrivals, [20 * MS] * 100, qps=100, duration_s=1.0, drain_s=2.0)
    assert result.saturated
    assert result.achieved_qps == pytest.approx(50.0, rel=0.02)
    assert "offered 100.0 req/s, achieved 50." in result.saturation_reason
    assert "the service saturates" in result.saturation_reason
    assert result.dropped == 0 and result.generator_valid


def test_a_saturated_run_gives_up_after_the_drain_and_counts_the_dropped() -> None:
    arrivals = [k * 10 * MS for k in range(100)]
    result = run_virtual(arrivals, [20 * MS] * 100, qps=100, duration_s=1.0, drain_s=0.2)
    # Until 1.2 s the worker starts 61 requests (one every 20 ms); 39 never start.
    assert result.dropped == 39 and result.requests == 61
    assert result.saturated and "never started" in result.saturation_reason
    # A dropped request counts with the latency it had accrued, so the tail is not lost.
    assert result.max_ms >= 1200 - 990


def test_a_stable_service_does_not_saturate() -> None:
    rng = random.Random(3)
    arrivals = poisson_arrivals(50, 20, rng)
    service = [round(rng.expovariate(200) * 1e9) for _ in arrivals]  # rho = 0.25
    result = run_virtual(arrivals, service, qps=50, duration_s=20)
    assert not result.saturated and result.generator_valid
    assert result.achieved_qps == pytest.approx(result.scheduled_qps, rel=0.01)


def test_queue_growth_is_none_for_few_requests_and_the_rate_otherwise() -> None:
    assert queue_growth([1, 2, 3], [0, 0, 0]) is None
    scheduled = [k * 1000 for k in range(40)]
    assert queue_growth(scheduled, [k * 500 for k in range(40)]) == pytest.approx(0.5)
    assert queue_growth(scheduled, [0] * 40) == 0


def test_a_generator_that_oversleeps_makes_the_run_invalid_not_slow() -> None:
    arrivals = [k * 20 * MS for k in range(50)]
    result = run_virtual(arrivals, [1 * MS] * 50, qps=50, duration_s=1.0, oversleep_ns=5 * MS)
    assert not result.generator_valid
    assert "could not keep its schedule" in result.invalid_reason
    assert "50 of 50 requests started more than 1 ms late" in result.invalid_reason
    assert result.late_p99_ms == 5.0
    assert result.generator_late  # lateness only: a pass would still stand (checks.load)


def test_a_small_oversleep_within_tolerance_keeps_the_run_valid() -> None:
    arrivals = [k * 20 * MS for k in range(50)]
    result = run_virtual(arrivals, [1 * MS] * 50, qps=50, duration_s=1.0, oversleep_ns=MS // 2)
    assert result.generator_valid and result.invalid_reason is None


class LateFirstSleeps(VirtualClock):
    """Oversleeps 5 ms on its first *late* sleeps only: a hiccup, not a slow generator."""

    def __init__(self, late: int) -> None:
        super().__init__()
        self.late = late

    def sleep_until(self, target_ns: int) -> None:
        if target_ns > self.now:
            self.now = target_ns + (5 * MS if self.late > 0 else 0)
            self.late -= 1


@pytest.mark.parametrize(("late", "valid"), [(1, True), (2, False)])
def test_one_late_request_never_makes_a_short_run_invalid(late: int, valid: bool) -> None:
    # 50 requests: the 1% rule alone would allow none late; one is allowed, two are not.
    clock = LateFirstSleeps(late)
    body = service_body(clock, [1 * MS] * 50)
    plan = LoadPlan(qps=50, duration_s=1.0, concurrency=1, seed=0)
    arrivals = [k * 20 * MS for k in range(50)]
    result = run_open_loop(
        body, plan, clock=clock, sleep_until=clock.sleep_until, arrivals_ns=arrivals
    )
    assert result.generator_valid is valid


def test_errors_are_counted_and_sampled_not_raised() -> None:
    clock = VirtualClock()
    calls = 0

    def body() -> None:
        nonlocal calls
        calls += 1
        clock.advance(MS)
        if calls % 3 == 0:
            raise RuntimeError(f"boom {calls}")

    plan = LoadPlan(qps=50, duration_s=1.0, concurrency=1, seed=0)
    arrivals = [k * 20 * MS for k in range(30)]
    result = run_open_loop(
        body, plan, clock=clock, sleep_until=clock.sleep_until, arrivals_ns=arrivals
    )
    assert result.errors == 10 and result.requests == 20
    assert len(result.error_samples) == MAX_ERROR_SAMPLES
    assert result.error_samples[0] == "RuntimeError: boom 3"
    assert len(result.latency_samples_ns) == 20  # failed calls are left out of the tail


def test_requests_in_the_warm_up_run_but_are_not_judged() -> None:
    arrivals = [k * 20 * MS for k in range(75)]  # 1.5 s, the first 0.5 s warm-up
    service = [100 * MS] * 3 + [1 * MS] * 72  # a slow start that drains by 0.4 s
    result = run_virtual(arrivals, service, qps=50, duration_s=1.0, warmup_s=0.5)
    assert result.requests == 50  # arrivals at 500, 520, ..., 1480 ms
    assert result.max_ms == result.percentile_ms == 1.0
    assert result.warmup_s == 0.5


def test_a_budget_stops_the_run_early_once_it_is_surely_broken() -> None:
    arrivals = [k * 20 * MS for k in range(1000)]
    result = run_virtual(arrivals, [10 * MS] * 1000, qps=50, duration_s=20.0, budget_ms=5.0)
    assert result.stopped_early
    assert result.requests < 100 and result.percentile_ms == 10.0
    assert not result.saturated and result.dropped == 0


def test_a_budget_that_holds_never_stops_the_run() -> None:
    arrivals = [k * 20 * MS for k in range(200)]
    result = run_virtual(arrivals, [1 * MS] * 200, qps=50, duration_s=4.0, budget_ms=5.0)
    assert not result.stopped_early and result.requests == 200


def test_the_result_is_plain_json_and_displays_in_one_phrase() -> None:
    arrivals = [k * 20 * MS for k in range(50)]
    result = run_virtual(arrivals, [2 * MS] * 50, qps=50, duration_s=1.0)
    extra = result.as_extra()
    assert json.loads(json.dumps(extra)) == extra
    assert "latency_samples_ns" not in extra
    assert len(result.as_extra(samples=True)["latency_samples_ns"]) == 50
    assert result.display() == "p99 2.0 ms at 50.0 req/s offered (50.0 achieved)"
    assert extra["concurrency"] == 1 and extra["seed"] == 0


def test_the_schedule_starts_after_the_lead_and_is_replayable_from_the_seed() -> None:
    clock = VirtualClock()
    seen: list[int] = []

    def body() -> None:
        seen.append(clock())

    plan = LoadPlan(qps=100, duration_s=0.5, concurrency=1, seed=11)
    run_open_loop(body, plan, clock=clock, sleep_until=clock.sleep_until)
    expected = poisson_arrivals(100, 0.5, random.Random(11))
    assert seen == [START_LEAD_NS + offset for offset in expected]


def test_auto_concurrency_is_sized_from_calibration_calls() -> None:
    clock = VirtualClock()
    calls = 0

    def body() -> None:
        nonlocal calls
        calls += 1

    plan = LoadPlan(qps=10, duration_s=0.5, seed=1)  # concurrency chosen
    result = run_open_loop(body, plan, clock=clock, sleep_until=clock.sleep_until)
    assert result.concurrency == 2  # zero-time body: the floor
    assert calls == 3 + len(poisson_arrivals(10, 0.5, random.Random(1)))


# --------------------------------------------------------------------------- real threads


def test_a_real_no_op_load_completes_every_request_without_errors() -> None:
    plan = LoadPlan(qps=200, duration_s=0.5, concurrency=2, seed=5, drain_s=2.0)
    box: list[LoadResult] = []
    worker = threading.Thread(target=lambda: box.append(run_open_loop(lambda: None, plan)))
    worker.start()
    worker.join(timeout=30)  # a bug must not hang the suite
    assert not worker.is_alive() and box
    result = box[0]
    expected = len(poisson_arrivals(200, 0.5, random.Random(5)))
    assert result.requests == expected and result.dropped == 0 and result.errors == 0
    assert result.concurrency == 2


def test_the_default_sleep_reaches_its_target() -> None:
    sleep_until = default_sleep_until()
    target = time.perf_counter_ns() + 2 * MS
    sleep_until(target)
    assert time.perf_counter_ns() >= target


# --------------------------------------------------------------------------- clients


class PerThreadClock:
    """One virtual time per thread: each closed-loop client lives on its own clock."""

    def __init__(self) -> None:
        self.local = threading.local()

    def __call__(self) -> int:
        now: int = getattr(self.local, "now", 0)
        return now

    def advance(self, ns: int) -> None:
        self.local.now = self() + ns


def client_index() -> int:
    return int(threading.current_thread().name.rsplit("-", 1)[1])


def test_closed_loop_clients_give_per_client_and_aggregate_figures() -> None:
    clock = PerThreadClock()

    def body() -> None:  # client i takes (i + 1) * 10 ms a call
        clock.advance((client_index() + 1) * 10 * MS)

    result = run_closed_loop_clients(body, 3, 1.0, clock=clock)
    assert [c.requests for c in result.per_client] == [100, 50, 34]
    assert [c.p50_ms for c in result.per_client] == [10.0, 20.0, 30.0]
    assert result.requests == 184 and result.throughput_qps == 184.0
    assert result.p50_ms == 10.0 and result.p99_ms == result.percentile_ms == 30.0
    assert result.hung_clients == 0
    assert result.display() == "3 clients: p99 30.0 ms, 184.0 req/s in all"
    extra = result.as_extra()
    assert json.loads(json.dumps(extra)) == extra and len(extra["per_client"]) == 3


def test_closed_loop_clients_skip_the_warm_up_and_count_errors() -> None:
    clock = PerThreadClock()

    def body() -> None:
        clock.advance(10 * MS)
        if client_index() == 1:
            raise ValueError("bad input")

    result = run_closed_loop_clients(body, 2, 1.0, warmup_s=0.1, clock=clock)
    assert result.per_client[0].requests == 100  # calls starting at 100 ... 1090 ms
    assert result.per_client[1].errors == 100 and result.per_client[1].requests == 0
    assert result.errors == 100 and result.error_samples[0] == "ValueError: bad input"
    assert result.per_client[1].p99_ms is None


def test_closed_loop_clients_reject_a_bad_count() -> None:
    with pytest.raises(ValueError, match="clients must be a whole number >= 1"):
        run_closed_loop_clients(lambda: None, 0, 1.0)


def test_a_body_that_hangs_leaves_the_run_invalid_instead_of_hanging_the_suite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pytest_deploycheck.measure.load as load

    monkeypatch.setattr(load, "JOIN_GRACE_S", 0.0)
    release = threading.Event()
    plan = LoadPlan(qps=20, duration_s=0.1, concurrency=1, seed=2, drain_s=0.0)
    try:
        result = run_open_loop(lambda: release.wait(10), plan, arrivals_ns=[0])
    finally:
        release.set()
    assert not result.generator_valid and not result.generator_late
    assert result.invalid_reason == "1 workers were still inside the body when the run ended"


def test_real_closed_loop_clients_all_make_progress() -> None:
    result = run_closed_loop_clients(lambda: None, 2, 0.2)
    assert result.hung_clients == 0 and result.errors == 0
    assert all(client.requests > 0 for client in result.per_client)
    assert result.throughput_qps > 0
