"""Unit tests of latency.py, driven by a fake clock: nothing here depends on real timing."""

from __future__ import annotations

import gc
import itertools
import json
import math
import re
import sys
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from pytest_deploycheck.measure.latency import (
    LatencyResult,
    SamplingPolicy,
    budget_for_throughput,
    cache_check,
    detect_tracing,
    judge_samples,
    look_schedule,
    measure_latency,
    samples_to_settle,
    throughput_items_per_s,
)
from pytest_deploycheck.measure.outputs import OutputCheck, Tolerance

MS = 1_000_000  # nanoseconds


class FakeTimer:
    """A clock that only moves when the fake workload runs, by a latency it chooses.

    ``latency_ns(call)`` gives the synthetic latency of the call-th call (1-based,
    warm-up included); the clock also ticks 1 ns per reading, like a real one would.
    """

    def __init__(self, latency_ns: Callable[[int], int]) -> None:
        self.latency_ns = latency_ns
        self.now = 0
        self.calls = 0
        self.latencies: list[int] = []
        self.gc_enabled: list[bool] = []

    def clock(self) -> int:
        self.now += 1
        return self.now

    def workload(self) -> None:
        self.calls += 1
        latency = self.latency_ns(self.calls)
        self.latencies.append(latency)
        self.gc_enabled.append(gc.isenabled())
        self.now += latency

    def measure(self, budget_ms: float, policy: SamplingPolicy | None = None) -> LatencyResult:
        return measure_latency(
            self.workload, budget_ms, policy or SamplingPolicy(), clock=self.clock
        )


def constant(latency_ns: int) -> Callable[[int], int]:
    return lambda call: latency_ns


def exponential(mean_ns: float, seed: int) -> Callable[[int], int]:
    rng = np.random.default_rng(seed)
    return lambda call: int(rng.exponential(mean_ns)) + 1


@pytest.fixture
def untraced(monkeypatch: pytest.MonkeyPatch) -> None:
    """No tracer, whatever runs the suite (coverage, a debugger)."""
    monkeypatch.setattr(sys, "gettrace", lambda: None)
    monkeypatch.setattr(sys, "getprofile", lambda: None)
    monkeypatch.delattr(sys, "monitoring", raising=False)


@pytest.fixture
def gc_enabled() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


# --- the sampling loop -------------------------------------------------------------


@pytest.mark.parametrize(("percentile", "samples"), [(90, 64), (95, 130), (99, 662)])
def test_far_under_budget_passes_at_the_first_look(percentile: float, samples: int) -> None:
    timer = FakeTimer(constant(2 * MS))
    result = timer.measure(10, SamplingPolicy(percentile=percentile))
    assert (result.verdict, result.n, result.looks) == ("pass", samples, 1)
    assert result.stop_reason == "settled"
    assert result.advice == ""
    assert result.over_budget == 0
    assert result.value_ms == result.p50_ms == pytest.approx(2.0, abs=1e-5)


def test_far_over_budget_fails_at_the_first_look() -> None:
    timer = FakeTimer(constant(25 * MS))
    result = timer.measure(10)
    assert (result.verdict, result.n, result.stop_reason) == ("fail", 130, "settled")
    assert result.advice.startswith("p95 25.0 ms is over the budget of 10 ms: 130 of 130")


def test_a_slow_workload_over_budget_fails_when_time_runs_out() -> None:
    timer = FakeTimer(constant(2_000 * MS))  # 2 s a call against a 30 s cap
    result = timer.measure(10, SamplingPolicy(warmup=0))
    assert result.verdict == "fail"
    assert result.n == 15  # the first call that ends past 30 s (clock ticks add 30 ns)
    assert result.looks == 1
    assert result.elapsed_s == pytest.approx(30.0, abs=1e-6)


def test_near_the_budget_is_inconclusive_at_max_samples() -> None:
    # Every 20th call is over budget: exactly the 5% a p95 budget allows.
    timer = FakeTimer(lambda call: 12 * MS if call % 20 == 0 else 8 * MS)
    result = timer.measure(10, SamplingPolicy(warmup=0, max_samples=2000, max_time_s=1e6))
    assert (result.verdict, result.stop_reason, result.n) == ("inconclusive", "max_samples", 2000)
    assert result.looks == len(look_schedule(130, 2000)) == 5
    assert result.advice.startswith("inconclusive: p95 8.00 ms vs budget 10 ms after 2000 samples")
    more = re.search(
        r"; (\d+) more samples with none over budget would settle a pass", result.advice
    )
    assert more is not None and int(more.group(1)) > 0
    assert "raise max_time_s or max_samples" in result.advice


def test_near_the_budget_is_inconclusive_when_time_runs_out() -> None:
    timer = FakeTimer(exponential(10 * MS / 3.0, seed=3))  # p95 = ln(20)/3 * 10 ms ≈ 9.99 ms
    result = timer.measure(10, SamplingPolicy(warmup=0, max_time_s=5.0))
    assert (result.verdict, result.stop_reason) == ("inconclusive", "max_time")
    assert result.elapsed_s > 5.0
    assert result.n == len(timer.latencies)
    assert re.search(r"after \d+ samples in 5\.0 s; .*would settle a (pass|fail)", result.advice)


def test_looks_follow_the_doubling_schedule() -> None:
    looked: list[tuple[int, float]] = []
    timer = FakeTimer(lambda call: 12 * MS if call % 20 == 0 else 8 * MS)
    measure_latency(
        timer.workload,
        10,
        SamplingPolicy(warmup=0, max_samples=1500, max_time_s=1e6),
        clock=timer.clock,
        on_progress=lambda n, elapsed_s: looked.append((n, elapsed_s)),
    )
    assert [n for n, _ in looked] == [130, 260, 520, 1040, 1500]
    assert all(b > a for (_, a), (_, b) in itertools.pairwise(looked))
    assert look_schedule(130, 130) == (130,)
    assert look_schedule(11, 100) == (11, 22, 44, 88, 100)


def test_min_samples_sets_the_first_look() -> None:
    timer = FakeTimer(constant(25 * MS))
    result = timer.measure(10, SamplingPolicy(warmup=0, min_samples=20))
    assert (result.verdict, result.n) == ("fail", 20)
    assert SamplingPolicy(min_samples=20).looks[:3] == (20, 40, 80)


def test_samples_are_the_timed_calls_in_nanoseconds() -> None:
    timer = FakeTimer(exponential(MS, seed=1))
    result = timer.measure(10, SamplingPolicy(warmup=0))
    # Each sample spans the call plus one clock tick.
    assert list(result.samples_ns) == [latency + 1 for latency in timer.latencies]
    assert result.samples_ns.dtype == np.int64
    assert not result.samples_ns.flags.writeable
    assert result.p99_ms == max(result.p50_ms, result.p90_ms, result.p95_ms, result.p99_ms)
    assert result.min_ms <= result.mean_ms <= result.max_ms


def test_warm_up_calls_are_not_sampled() -> None:
    timer = FakeTimer(lambda call: 500 * MS if call <= 10 else 2 * MS)
    result = timer.measure(10)
    assert result.warmup == 10
    assert timer.calls == 10 + result.n
    assert result.max_ms < 3  # none of the 500 ms warm-up calls
    assert result.verdict == "pass"


def test_warm_up_stops_after_warmup_max_s() -> None:
    timer = FakeTimer(lambda call: 3_000 * MS if call <= 100 else MS)
    result = timer.measure(10, SamplingPolicy(warmup=100, warmup_max_s=5.0, min_samples=10))
    assert result.warmup == 2  # 6 s of warm-up is past the 5 s cap
    assert result.samples_ns[0] == 3_000 * MS + 1  # the rest of the slow calls are timed


def test_each_phase_announces_its_time_bound_as_it_starts() -> None:
    # A watchdog arms on these: the bounds are checked here only between calls.
    phases: list[tuple[str, float, int]] = []
    timer = FakeTimer(constant(MS))
    measure_latency(
        timer.workload,
        10,
        SamplingPolicy(warmup=3, warmup_max_s=7.0, max_time_s=2.5),
        clock=timer.clock,
        on_phase=lambda phase, bound_s: phases.append((phase, bound_s, timer.calls)),
    )
    assert phases == [("warm-up", 7.0, 0), ("timing", 2.5, 3)]


def test_without_warm_up_every_call_is_sampled() -> None:
    timer = FakeTimer(constant(MS))
    result = timer.measure(10, SamplingPolicy(warmup=0))
    assert result.warmup == 0
    assert timer.calls == result.n


@pytest.mark.usefixtures("gc_enabled")
def test_garbage_collection_is_off_while_timing_and_restored() -> None:
    timer = FakeTimer(constant(MS))
    result = timer.measure(10, SamplingPolicy(warmup=5))
    assert timer.gc_enabled[:5] == [True] * 5  # warm-up runs as the test would
    assert timer.gc_enabled[5:] == [False] * result.n
    assert gc.isenabled()


@pytest.mark.usefixtures("gc_enabled")
def test_garbage_collection_left_disabled_stays_disabled() -> None:
    gc.disable()
    FakeTimer(constant(MS)).measure(10)
    assert not gc.isenabled()


class WorkloadError(Exception):
    pass


@pytest.mark.usefixtures("gc_enabled")
def test_a_workload_error_propagates_and_gc_is_restored() -> None:
    def failing(call: int) -> int:
        if call == 15:
            raise WorkloadError("model exploded")
        return MS

    with pytest.raises(WorkloadError, match="model exploded"):
        FakeTimer(failing).measure(10)
    assert gc.isenabled()


@pytest.mark.parametrize("budget", [0, -1.0, math.nan, math.inf, "10", True])
def test_budget_must_be_a_positive_number(budget: float) -> None:
    with pytest.raises(ValueError, match="budget_ms"):
        FakeTimer(constant(MS)).measure(budget)


# --- outputs checked while timed ---------------------------------------------------


class ReturningTimer(FakeTimer):
    """A fake workload that returns outputs: ``outputs(call)`` for the call-th call."""

    def __init__(self, latency_ns: Callable[[int], int], outputs: Callable[[int], object]):
        super().__init__(latency_ns)
        self.outputs = outputs
        self.clock_at_return: list[int] = []

    def workload(self) -> object:  # type: ignore[override]
        super().workload()
        return self.outputs(self.calls)

    def measure_verified(self, policy: SamplingPolicy, every: int = 16) -> LatencyResult:
        check = OutputCheck(Tolerance(), every=every)
        return measure_latency(self.workload, 10, policy, clock=self.clock, verify=check)


def test_outputs_equal_to_the_reference_leave_the_verdict_alone() -> None:
    timer = ReturningTimer(constant(2 * MS), lambda call: [np.ones(3), {"n": 1}])
    result = timer.measure_verified(SamplingPolicy())
    assert (result.verdict, result.n) == ("pass", 130)
    assert result.outputs is not None
    assert (result.outputs.compared, result.outputs.mismatch) == (9, None)  # 1, 17, ..., 129
    assert result.as_extra()["outputs"] == {
        "compared": 9,
        "mismatch": None,
        "reference_is_none": False,
    }


def test_garbage_under_load_fails_at_once_naming_the_call() -> None:
    # The first 10 calls (the warm-up) are right; from then on the model returns empty.
    def outputs(call: int) -> object:
        return np.ones((1, 4)) if call <= 40 else np.zeros((0, 4))

    timer = ReturningTimer(constant(2 * MS), outputs)
    result = timer.measure_verified(SamplingPolicy(warmup=10), every=4)
    assert (result.verdict, result.stop_reason, result.n) == ("fail", "outputs_differ", 33)
    assert result.advice == (
        "outputs differ from the untimed reference call's, at timed call 33:"
        " output has shape (0, 4) where the reference has (1, 4) (verify_outputs needs"
        " the same inputs on every call: build them once, outside the body)"
    )


def test_without_warm_up_one_untimed_call_gives_the_reference() -> None:
    timer = ReturningTimer(constant(2 * MS), lambda call: call)  # never the same twice
    result = timer.measure_verified(SamplingPolicy(warmup=0))
    assert (result.verdict, result.n, result.warmup) == ("fail", 1, 0)
    assert timer.calls == 2
    assert "timed call 1: output = 2 where the reference has 1" in result.advice


def test_a_body_returning_none_is_timed_as_usual_with_a_note() -> None:
    timer = ReturningTimer(constant(2 * MS), lambda call: None)
    result = timer.measure_verified(SamplingPolicy())
    assert result.verdict == "pass" and result.outputs is not None
    assert result.outputs.note().startswith("verify_outputs: the body returned None")


def test_outputs_are_not_compared_inside_the_timed_interval() -> None:
    compared_at: list[int] = []

    class Spy(OutputCheck):
        def compare(self, call: int, value: object) -> bool:
            compared_at.append(timer.now)
            timer.now += 50 * MS  # a slow comparison must not land in any sample
            return super().compare(call, value)

    timer = ReturningTimer(constant(2 * MS), lambda call: np.ones(2))
    check = Spy(Tolerance(), every=1)
    result = measure_latency(timer.workload, 10, SamplingPolicy(), clock=timer.clock, verify=check)
    assert len(compared_at) == result.n == 130
    assert result.max_ms < 3  # 2 ms calls, whatever the comparisons cost


# --- the policy --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"percentile": 0}, "percentile"),
        ({"percentile": 100}, "percentile"),
        ({"percentile": "95"}, "percentile"),
        ({"confidence": 0.3}, "confidence"),
        ({"confidence": 1.0}, "confidence"),
        ({"warmup": -1}, "warmup"),
        ({"warmup": 2.5}, "warmup"),
        ({"min_samples": 0}, "min_samples"),
        ({"max_samples": 0}, "max_samples"),
        ({"max_samples": True}, "max_samples"),
        ({"max_time_s": 0}, "max_time_s"),
        ({"max_time_s": math.inf}, "max_time_s"),
        ({"warmup_max_s": -1}, "warmup_max_s"),
        ({"min_samples": 300, "max_samples": 200}, "min_samples"),
    ],
)
def test_policy_errors_name_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^SamplingPolicy: {field} ") as error:
        SamplingPolicy(**options)  # type: ignore[arg-type]
    assert "must be" in str(error.value)


def test_too_few_samples_for_a_pass_end_inconclusive() -> None:
    timer = FakeTimer(constant(MS))
    result = timer.measure(10, SamplingPolicy(warmup=0, max_samples=5))
    assert (result.verdict, result.stop_reason, result.n, result.looks) == (
        "inconclusive",
        "max_samples",
        5,
        1,
    )
    assert "; 125 more samples with none over budget would settle a pass" in result.advice


def test_too_few_samples_for_a_pass_can_still_fail() -> None:
    result = FakeTimer(constant(25 * MS)).measure(10, SamplingPolicy(warmup=0, max_samples=5))
    assert (result.verdict, result.n) == ("fail", 5)


def test_default_policy() -> None:
    policy = SamplingPolicy()
    assert policy.first_look == 130
    assert policy.looks == (130, 260, 520, 1040, 2080, 4160, 8320, 16640, 20000)


# --- tracing -----------------------------------------------------------------------


def dummy_tracer(frame: object, event: str, arg: object) -> None:
    return None


@pytest.mark.usefixtures("untraced")
def test_no_tracing_found() -> None:
    assert detect_tracing() is None
    assert FakeTimer(constant(MS)).measure(10).tracing_active is None


@pytest.mark.usefixtures("untraced")
def test_settrace_and_setprofile_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "gettrace", lambda: dummy_tracer)
    monkeypatch.setattr(sys, "getprofile", lambda: dummy_tracer)
    found = detect_tracing()
    assert found == f"sys.settrace ({__name__}), sys.setprofile ({__name__})"
    assert FakeTimer(constant(MS)).measure(10).tracing_active == found


@pytest.mark.usefixtures("untraced")
def test_sys_monitoring_tools_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    tools = {0: None, 1: "coverage.py", 2: None}
    monitoring = SimpleNamespace(
        DEBUGGER_ID=0, COVERAGE_ID=1, PROFILER_ID=2, get_tool=lambda tool_id: tools[tool_id]
    )
    monkeypatch.setattr(sys, "monitoring", monitoring, raising=False)
    assert detect_tracing() == "sys.monitoring coverage tool 'coverage.py'"


def test_a_real_settrace_is_found() -> None:
    previous = sys.gettrace()  # coverage may already be tracing: put it back after
    sys.settrace(dummy_tracer)
    try:
        found = detect_tracing()
    finally:
        sys.settrace(previous)
    assert found is not None and f"sys.settrace ({__name__})" in found


# --- judging fixed samples ---------------------------------------------------------


def judge(
    samples_ms: list[float] | np.ndarray, budget_ms: float, *, detect: bool = False
) -> LatencyResult:
    samples_ns = np.round(np.asarray(samples_ms, dtype=np.float64) * MS).astype(np.int64)
    return judge_samples(samples_ns, budget_ms, 95, 0.99, source="pytest-benchmark", detect=detect)


def test_judge_passes_enough_samples_under_budget() -> None:
    result = judge([1.0] * 129 + [3.0], 2.0)
    assert (result.verdict, result.n, result.over_budget, result.looks) == ("pass", 130, 1, 1)
    assert (result.source, result.warmup, result.stop_reason) == ("pytest-benchmark", 0, "settled")
    assert result.elapsed_s == pytest.approx((129 + 3) / 1000)


def test_judge_fails_too_many_samples_over_budget() -> None:
    result = judge([1.0] * 110 + [3.0] * 20, 2.0)
    assert (result.verdict, result.value_ms) == ("fail", 3.0)
    assert result.advice == (
        "p95 3.00 ms is over the budget of 2 ms: 20 of 130 samples (15.4%) took longer,"
        " where at most 5% may (confidence 0.99)"
    )


def test_judge_is_inconclusive_with_too_few_samples() -> None:
    result = judge([1.0] * 100, 2.0)
    assert (result.verdict, result.stop_reason) == ("inconclusive", "fixed_samples")
    assert result.advice == (
        "inconclusive: p95 1.00 ms vs budget 2 ms from 100 pytest-benchmark samples;"
        " 30 more samples with none over budget would settle a pass — take more samples"
        " (pytest-benchmark rounds), or move the budget away from the measured value"
    )


def test_judge_advises_a_fail_when_the_estimate_is_over() -> None:
    result = judge([1.0] * 92 + [3.0] * 8, 2.0)  # 8% over; a p95 allows 5%
    assert result.verdict == "inconclusive"
    assert re.search(
        r"about \d+ more samples at the current over-budget rate \(8\.0%\)", result.advice
    )


BENCH_RERUN = "rerun with --benchmark-min-rounds={n}"


def test_judge_names_the_rounds_that_would_settle_a_pass() -> None:
    # pytest-benchmark's default for a 40 ms call: about 25 rounds in its 1 s.
    samples_ns = [40 * MS] * 25
    result = judge_samples(
        samples_ns, 50, 95, 0.99, source="pytest-benchmark", detect=False, rerun=BENCH_RERUN
    )
    assert result.verdict == "inconclusive"
    assert result.advice == (
        "inconclusive: p95 40.0 ms vs budget 50 ms from 25 pytest-benchmark samples;"
        " 105 more samples with none over budget would settle a pass"
        " — rerun with --benchmark-min-rounds=130, or move the budget away from the"
        " measured value"
    )


def test_judge_names_the_rounds_that_would_settle_a_fail() -> None:
    samples_ns = [1 * MS] * 92 + [3 * MS] * 8  # 8% over; a p95 allows 5%
    result = judge_samples(
        samples_ns, 2, 95, 0.99, source="pytest-benchmark", detect=False, rerun=BENCH_RERUN
    )
    needed = samples_to_settle(100, 8, 95, 0.99)
    assert needed is not None and needed > 100
    assert f"about {needed - 100} more samples" in result.advice
    assert f"rerun with --benchmark-min-rounds={needed}," in result.advice


def test_rounds_to_settle_follow_the_over_budget_rate() -> None:
    assert samples_to_settle(25, 0, 95, 0.99) == 130  # min_samples_to_pass
    leaning_pass = samples_to_settle(100, 2, 95, 0.99)  # 2% over at p95
    assert leaning_pass is not None
    over_then = -(-2 * leaning_pass // 100)
    assert judge([1.0] * (leaning_pass - over_then) + [3.0] * over_then, 2.0).verdict == "pass"
    fewer = leaning_pass - 1
    over_fewer = -(-2 * fewer // 100)
    assert judge([1.0] * (fewer - over_fewer) + [3.0] * over_fewer, 2.0).verdict != "pass"


def test_rounds_to_settle_a_percentile_on_the_budget_are_none() -> None:
    assert samples_to_settle(100, 5, 95, 0.99) is None  # exactly 5% over at p95
    samples_ns = [1 * MS] * 95 + [3 * MS] * 5
    result = judge_samples(
        samples_ns, 2, 95, 0.99, source="pytest-benchmark", detect=False, rerun=BENCH_RERUN
    )
    assert "no practical number of samples would settle it at the current rate" in result.advice


def test_judge_records_tracing_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "gettrace", lambda: dummy_tracer)
    assert judge([1.0] * 130, 2.0).tracing_active is None
    assert judge([1.0] * 130, 2.0, detect=True).tracing_active is not None


def test_judge_needs_samples() -> None:
    with pytest.raises(ValueError, match="no samples to judge from pytest-benchmark"):
        judge([], 2.0)


# --- presentation ------------------------------------------------------------------


def test_display() -> None:
    result = judge(np.arange(1, 101), 200)
    assert result.display() == "p95 95.0 ms (n=100, 95% CI 91.0\u2013100.0)"
    # An infinite upper bound says why (issue 15 point 5): too few samples above p95.
    assert judge([1, 2, 3, 4, 5], 200).display() == (
        "p95 5.00 ms (n=5, 95% CI 4.00\u2013∞: too few samples above p95 to bound it (0 of 5);"
        " about 59 samples would)"
    )
    assert judge([0.0123] * 130, 200).display() == (
        "p95 0.0123 ms (n=130, 95% CI 0.0123\u20130.0123)"
    )


def test_as_extra_is_json_without_samples_unless_asked() -> None:
    result = judge([1, 2, 3, 4, 5], 200)
    extra = result.as_extra()
    json.dumps(extra, allow_nan=False)
    assert "samples_ns" not in extra
    assert (extra["ci_low_ms"], extra["ci_high_ms"]) == (4.0, None)  # no finite upper bound
    assert extra["verdict"] == "inconclusive" and extra["source"] == "pytest-benchmark"
    with_samples = result.as_extra(include_samples=True)
    assert with_samples["samples_ns"] == [1 * MS, 2 * MS, 3 * MS, 4 * MS, 5 * MS]
    json.dumps(with_samples, allow_nan=False)


# --- throughput --------------------------------------------------------------------


def test_throughput_budget_is_the_median_call_latency() -> None:
    assert budget_for_throughput(100, 8) == 80.0  # 8 items in 80 ms is 100 items/s
    timer = FakeTimer(constant(40 * MS))
    result = timer.measure(budget_for_throughput(100, 8), SamplingPolicy(percentile=50))
    assert (result.verdict, result.n) == ("pass", 11)
    assert throughput_items_per_s(result, 8) == pytest.approx(200, rel=1e-6)


def test_throughput_of_an_unresolvably_fast_call_is_finite() -> None:
    result = judge([0.0] * 130, 2.0)
    assert throughput_items_per_s(result, 4) == pytest.approx(4e9)  # as if 1 ns


@pytest.mark.parametrize(
    ("items_per_s", "batch"), [(0, 1), (-5, 1), (math.inf, 1), (10, 0), (10, 1.5)]
)
def test_throughput_budget_rejects_bad_arguments(items_per_s: float, batch: int) -> None:
    with pytest.raises(ValueError, match=r"items_per_s|batch"):
        budget_for_throughput(items_per_s, batch)


# --- anti-caching --------------------------------------------------------------------


class CachingModel:
    """A fake model on the fake clock: 10 ms a call, *hit_ms* when the input is the last one."""

    def __init__(self, hit_ms: float) -> None:
        self.now = 0
        self.last: object = None
        self.hit_ns = int(hit_ms * MS)
        self.seen: list[int] = []

    def clock(self) -> int:
        return self.now

    def run(self, feed: int) -> None:
        self.seen.append(feed)
        self.now += self.hit_ns if feed == self.last else 10 * MS
        self.last = feed


def test_a_cache_that_flatters_a_repeated_input_is_noted() -> None:
    model = CachingModel(hit_ms=2.0)
    found = cache_check(model.run, list(range(8)), calls=40, blocks=4, clock=model.clock)
    assert (found.pool_median_ms, found.repeated_median_ms, found.calls) == (10.0, 2.0, 40)
    assert found.difference == pytest.approx(-0.8)
    assert found.note() == (
        "one input repeated took 2.00 ms at the median against 10.0 ms over the input pool"
        " (-80%): a cache may flatter a figure timed on one input; time with varied inputs"
        " (deploy_model.example_inputs() cycles a pool)"
    )
    assert model.seen[:12] == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8 % 8, 9 % 8, 0]


def test_no_cache_no_note() -> None:
    model = CachingModel(hit_ms=9.5)  # within 10%
    assert cache_check(model.run, [1, 2, 3], clock=model.clock).note() == ""


def test_cache_check_needs_a_pool_and_whole_blocks() -> None:
    with pytest.raises(ValueError, match="at least 2 inputs"):
        cache_check(lambda feed: None, [1])
    with pytest.raises(ValueError, match="calls >= blocks"):
        cache_check(lambda feed: None, [1, 2], calls=3, blocks=4)
