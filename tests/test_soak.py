"""Unit tests of soak.py: the slope, the judge and the loop, on synthetic series and fake clocks.

Nothing here depends on how fast the machine is: series are built from rows, the loop
runs on a fake nanosecond clock, and the two real soaks at the end assert only what a
slow or loaded machine cannot change.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from pytest_deploycheck.measure.outputs import OutputCheck, Tolerance
from pytest_deploycheck.measure.soak import (
    ABORT_AFTER_FAILURES,
    MAX_ERROR_EXAMPLES,
    MAX_INTERVALS,
    MIN_FIT_POINTS,
    RESOLUTION_MB,
    SoakPolicy,
    SoakRun,
    SoakSeries,
    SoakVerdict,
    growth_fit,
    judge_soak,
    run_soak,
)
from pytest_deploycheck.measure.watchdog import MeasurementHung

MS = 1_000_000  # nanoseconds
MB = 1_000_000  # bytes


# --------------------------------------------------------------------------- helpers


def synthetic_run(
    duration_s: float,
    rss_mb: Callable[[float], float],
    *,
    p50_ms: Callable[[float], float] = lambda t: 1.0,
    noise_mb: float = 0.05,
    seed: int = 0,
    intervals: int | None = None,
    calls_per_interval: int = 100,
    errors: int = 0,
    error_examples: Sequence[str] = (),
    policy: SoakPolicy | None = None,
) -> tuple[SoakRun, SoakPolicy]:
    """A soak of *duration_s* sampled as run_soak samples it, memory and latency given.

    *rss_mb* and *p50_ms* are functions of the elapsed seconds; memory gets Gaussian
    noise of *noise_mb*, latency 2 % multiplicative noise, from a fixed seed.
    """
    policy = policy or SoakPolicy(duration_s=duration_s)
    count = intervals or round(duration_s / policy.interval_s)
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(1, count + 1):
        t = k * duration_s / count
        p50 = p50_ms(t) * (1.0 + rng.normal(0.0, 0.02))
        rows.append(
            (t, rss_mb(t) + rng.normal(0.0, noise_mb), calls_per_interval, 0, p50, 2 * p50, 3 * p50)
        )
    series = SoakSeries.from_rows(rows)
    run = SoakRun(
        series=series,
        calls=calls_per_interval * count,
        errors=errors,
        elapsed_s=duration_s,
        error_examples=tuple(error_examples),
    )
    return run, policy


def stable(t: float) -> float:
    return 200.0


def leak_1mb_per_min(t: float) -> float:
    return 200.0 + t / 60.0


class FakeClock:
    """A nanosecond clock that moves *step_ns* each time it is read."""

    def __init__(self, step_ns: int) -> None:
        self.step_ns = step_ns
        self.now = 0
        self.reads = 0

    def __call__(self) -> int:
        self.now += self.step_ns
        self.reads += 1
        return self.now


# --------------------------------------------------------------------------- growth


def test_growth_is_fitted_in_mb_per_hour() -> None:
    t = np.arange(0.0, 600.0, 2.0)  # ten minutes
    fit = growth_fit(t, 100.0 + t / 60.0)  # 1 MB a minute
    assert fit is not None
    assert fit.slope == pytest.approx(60.0)
    assert growth_fit(t[: MIN_FIT_POINTS - 1], t[: MIN_FIT_POINTS - 1]) is None
    assert growth_fit(np.full(10, 5.0), np.arange(10.0)) is None  # no time passed


# --------------------------------------------------------------------------- policy


def test_policy_samples_about_300_times_between_limits() -> None:
    assert SoakPolicy(duration_s=1800).interval_s == 6.0
    assert SoakPolicy(duration_s=1.2).interval_s == 0.05
    assert SoakPolicy(duration_s=86400).interval_s == 10.0
    assert SoakPolicy(duration_s=60, sample_interval_s=0.5).interval_s == 0.5
    assert SoakPolicy(duration_s=60, configured_s=1800).shortened
    assert not SoakPolicy(duration_s=60, configured_s=60).shortened
    assert not SoakPolicy(duration_s=60).shortened


def test_an_interval_so_short_it_would_need_too_many_rows_is_widened() -> None:
    # 3e9 rows of eight columns would not fit in memory: at most MAX_INTERVALS are kept.
    policy = SoakPolicy(duration_s=3.0, sample_interval_s=1e-9)
    assert policy.interval_s == 3.0 / MAX_INTERVALS
    assert SoakPolicy(duration_s=8_640_000.0).interval_s == 86.4  # 100 days, not every 10 s
    run = run_soak(lambda: None, policy, clock=FakeClock(MS), rss_bytes=lambda: 100 * MB)
    assert run.series.capacity <= MAX_INTERVALS + 16


def test_the_soak_does_not_count_a_watchdog_interrupt_as_an_error() -> None:
    def hangs() -> None:
        raise MeasurementHung()

    with pytest.raises(MeasurementHung):
        run_soak(hangs, SoakPolicy(duration_s=60.0), clock=FakeClock(MS), rss_bytes=lambda: MB)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration_s": 0}, "duration must be > 0"),
        ({"duration_s": math.nan}, "duration must be > 0"),
        ({"duration_s": 1, "warmup_fraction": 1.0}, "warmup_fraction"),
        ({"duration_s": 1, "max_error_rate": 1.5}, "max_error_rate"),
        ({"duration_s": 1, "confidence": 0.3}, "confidence"),
        ({"duration_s": 1, "sample_interval_s": 0}, "sample_interval_s must be a number"),
        ({"duration_s": 1, "sample_interval_s": math.inf}, "sample_interval_s must be a number"),
    ],
)
def test_policy_refuses_impossible_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SoakPolicy(**kwargs)


# --------------------------------------------------------------------------- judging growth


@pytest.mark.parametrize("duration_s", [30.0, 300.0, 1800.0])
def test_a_stable_series_with_noise_passes(duration_s: float) -> None:
    verdict = judge_soak(*synthetic_run(duration_s, stable))
    assert verdict.passed is True
    assert verdict.problems == ()
    assert verdict.growth is not None
    assert verdict.growth.slope < verdict.growth_budget


@pytest.mark.parametrize("duration_s", [300.0, 1800.0])
def test_a_leak_of_1mb_a_minute_fails_with_its_rate_and_the_budget(duration_s: float) -> None:
    verdict = judge_soak(*synthetic_run(duration_s, leak_1mb_per_min))
    assert verdict.passed is False
    assert len(verdict.problems) == 1
    problem = verdict.problems[0]
    assert re.fullmatch(
        r"memory grows (59\.\d|60\.\d|60) MB/h \(CI \d+\.?\d* to \d+\.?\d*\),"
        r" over the budget of 10 MB/h",
        problem,
    ), problem
    assert verdict.growth is not None and verdict.growth.slope == pytest.approx(60.0, rel=0.02)
    assert re.match(r"\+(59\.\d|60\.?\d*) MB/h \(CI \+", verdict.display())


def test_a_leak_too_small_to_resolve_in_a_short_soak_is_a_note_not_a_failure() -> None:
    # By design: 1 MB a minute over the 24 s judged of a 30 s soak is 0.4 MB, under
    # RESOLUTION_MB -- the size of one allocator step -- so it is not told from one.
    # The soak passes, says so, and says how long a soak resolves the budget.
    run, policy = synthetic_run(30.0, leak_1mb_per_min)
    verdict = judge_soak(run, policy)
    assert verdict.growth is not None
    assert verdict.growth.slope * verdict.judged_s / 3600 < RESOLUTION_MB
    assert verdict.growth.low > verdict.growth_budget  # the fit alone would fail it
    assert verdict.passed is True
    assert verdict.problems == ()
    resolution = [n for n in verdict.notes if "not judged as growth" in n]
    assert len(resolution) == 1
    assert resolution[0].startswith("memory grew 0.4 MB over the judged 24 s, within the 1 MB")
    assert resolution[0].endswith("a soak of 7.5 min resolves 10 MB/h")


def test_a_stable_short_soak_says_what_it_cannot_rule_out() -> None:
    verdict = judge_soak(*synthetic_run(30.0, stable))
    assert verdict.passed is True
    assert any(
        n.startswith("a 30 s soak cannot rule out growth up to") and "(budget 10 MB/h)" in n
        for n in verdict.notes
    )


def test_a_noisy_long_soak_does_not_advise_a_shorter_one() -> None:
    # 20 MB of noise: the interval reaches 25 MB/h after 30 minutes; a 7.5-minute soak
    # (what resolves 1 MB at 10 MB/h) would rule out even less.
    verdict = judge_soak(*synthetic_run(1800.0, stable, noise_mb=20.0))
    assert verdict.passed is True
    note = next(n for n in verdict.notes if "cannot rule out" in n)
    assert note.startswith("a 30 min soak cannot rule out growth up to 25.5 MB/h")
    assert "a soak of 7.5 min can" not in note


def step_after(size_mb: float, at_s: float) -> Callable[[float], float]:
    return lambda t: 200.0 + (size_mb if t > at_s else 0.0)


@pytest.mark.parametrize("at_fraction", [0.3, 0.6, 0.9])
def test_one_allocator_step_after_the_warm_up_passes(at_fraction: float) -> None:
    # A 0.75 MB step (what a fresh onnxruntime process grows once) anywhere in a
    # 30-minute soak leaves the robust slope far under the budget.
    run, policy = synthetic_run(1800.0, step_after(0.75, at_fraction * 1800.0))
    verdict = judge_soak(run, policy)
    assert verdict.passed is True
    assert verdict.growth is not None and verdict.growth.slope < 5.0


@pytest.mark.parametrize("size_mb", [0.75, 4.0, 50.0, 500.0])
def test_a_single_step_never_fails_a_soak_however_large(size_mb: float) -> None:
    # The step placed at the middle of the judged window (60 % of the run) is the worst
    # case: just over half the pairs of block medians straddle it, so the median slope
    # grows with the step; but the interval's low end is a pair on one side of the step
    # -- noise -- so a single step is never *certainly* growth.  A step big enough to
    # tip the median over the budget is inconclusive ("soak longer"), never a failure.
    run, policy = synthetic_run(1800.0, step_after(size_mb, 0.6 * 1800.0))
    verdict = judge_soak(run, policy)
    assert verdict.passed is not False
    assert verdict.growth is not None and verdict.growth.low < verdict.growth_budget
    if size_mb < 2:
        assert verdict.passed is True
    if size_mb >= 50:
        assert verdict.passed is None
        assert verdict.problems[0].startswith("memory may grow")
        assert verdict.problems[0].endswith("not certainly; soak longer")


def test_a_custom_growth_budget_is_judged() -> None:
    run, _ = synthetic_run(1800.0, leak_1mb_per_min)
    assert judge_soak(run, SoakPolicy(duration_s=1800.0, growth_mb_per_h=100.0)).passed is True
    verdict = judge_soak(run, SoakPolicy(duration_s=1800.0, growth_mb_per_h=30.0))
    assert verdict.passed is False
    assert "over the budget of 30 MB/h" in verdict.problems[0]


def test_too_few_samples_is_inconclusive_with_advice() -> None:
    run, policy = synthetic_run(300.0, stable, intervals=5)
    verdict = judge_soak(run, policy)
    assert verdict.passed is None
    assert verdict.growth is None
    assert len(verdict.problems) == 1
    assert verdict.problems[0].startswith("too few memory samples after the warm-up (5)")
    assert "soak longer (at least 6 intervals of 1 s after 20% warm-up)" in verdict.problems[0]
    assert verdict.display().startswith("growth not fitted over 5 min")


# --------------------------------------------------------------------------- judging errors


def test_errors_over_the_allowed_rate_fail_with_the_first_example() -> None:
    examples = ["ValueError: bad input 3", "RuntimeError: session closed"]
    run, policy = synthetic_run(300.0, stable, errors=6, error_examples=examples)
    verdict = judge_soak(run, policy)
    assert verdict.passed is False
    assert verdict.problems == (
        "6 of 30000 calls raised (0.02%, allowed 0.00%); first: ValueError: bad input 3",
    )
    assert verdict.error_rate == pytest.approx(6 / 30000)
    assert "6 errors (0.02%)" in verdict.display()


def test_errors_within_the_allowed_rate_pass() -> None:
    policy = SoakPolicy(duration_s=300.0, max_error_rate=0.001)
    run, _ = synthetic_run(300.0, stable, errors=30, error_examples=["E: x"], policy=policy)
    assert judge_soak(run, policy).passed is True  # exactly 0.1 %
    run, _ = synthetic_run(300.0, stable, errors=31, error_examples=["E: x"], policy=policy)
    verdict = judge_soak(run, policy)
    assert verdict.passed is False
    assert verdict.problems[0].startswith("31 of 30000 calls raised (0.10%, allowed 0.10%)")


def test_a_workload_never_called_fails() -> None:
    run = SoakRun(SoakSeries.allocate(4), calls=0, errors=0, elapsed_s=1.0, error_examples=())
    verdict = judge_soak(run, SoakPolicy(duration_s=1.0))
    assert verdict.passed is False
    assert "the workload was never called" in verdict.problems


# --------------------------------------------------------------------------- judging drift


def twice_as_slow_late(duration_s: float) -> Callable[[float], float]:
    return lambda t: 1.0 if t < duration_s / 2 else 2.0


def test_latency_drift_over_its_budget_fails() -> None:
    policy = SoakPolicy(duration_s=300.0, max_drift_pct=50.0)
    run, _ = synthetic_run(300.0, stable, p50_ms=twice_as_slow_late(300.0), policy=policy)
    verdict = judge_soak(run, policy)
    assert verdict.passed is False
    assert verdict.drift_pct == pytest.approx(100.0, abs=10.0)
    assert verdict.drift_p_value is not None and verdict.drift_p_value < 1e-6
    assert verdict.problems == (
        f"latency drifted {verdict.drift_pct:+.0f}% at the median from the first to the last"
        " fifth of the run (budget 50%)",
    )
    assert "p50 drift +" in verdict.display()


def test_latency_drift_without_a_budget_is_only_reported() -> None:
    run, policy = synthetic_run(300.0, stable, p50_ms=twice_as_slow_late(300.0))
    verdict = judge_soak(run, policy)
    assert verdict.passed is True
    assert verdict.drift_pct == pytest.approx(100.0, abs=10.0)
    assert verdict.drift_p95_pct == pytest.approx(100.0, abs=10.0)
    assert verdict.as_extra()["latency_drift_pct"] == verdict.drift_pct


def test_steady_latency_passes_a_drift_budget() -> None:
    policy = SoakPolicy(duration_s=300.0, max_drift_pct=50.0)
    verdict = judge_soak(*synthetic_run(300.0, stable, policy=policy))
    assert verdict.passed is True
    assert verdict.drift_pct is not None and abs(verdict.drift_pct) < 10


def test_drift_is_not_judged_with_too_few_intervals() -> None:
    # 20 intervals, 16 judged: a fifth is 3 intervals, fewer than the 5 drift needs.
    policy = SoakPolicy(duration_s=300.0, max_drift_pct=1.0)
    run, _ = synthetic_run(
        300.0, stable, p50_ms=twice_as_slow_late(300.0), intervals=20, policy=policy
    )
    verdict = judge_soak(run, policy)
    assert verdict.drift_pct is None
    assert verdict.passed is True
    assert (
        "latency drift not judged: too few intervals in the first and last fifth" in verdict.notes
    )


def test_the_verdict_as_report_data() -> None:
    verdict = judge_soak(*synthetic_run(300.0, leak_1mb_per_min))
    extra = verdict.as_extra()
    assert extra["growth_mb_per_h"] == pytest.approx(60.0, rel=0.02)
    assert extra["growth_budget_mb_per_h"] == 10.0
    assert extra["growth_points"] == 30
    assert extra["judged_s"] == pytest.approx(240.0)
    assert extra["warmup_s"] == pytest.approx(60.0)
    assert extra["problems"] == list(verdict.problems)
    low, high = extra["growth_ci_mb_per_h"]
    assert low < extra["growth_mb_per_h"] < high


def test_display_says_when_a_soak_ran_shorter_than_configured() -> None:
    verdict = judge_soak(*synthetic_run(30.0, stable))
    assert " over 30 s of 30 min, 30,000 calls, 0 errors (0.00%)" in verdict.display(1800.0)
    assert " over 30 s, " in verdict.display(30.0)


def test_series_rows_are_labelled_warmup_or_judged() -> None:
    series = SoakSeries.from_rows(
        [
            (1.0, 100.0, 10, 0, 1.0, 2.0, 3.0),
            (5.0, 101.23456, 12, 1, math.nan, math.nan, 9.0, 7.123456),
        ]
    )
    assert series.as_rows(warmup_s=2.0) == [
        [1.0, "warmup", 100.0, 10, 0, 1.0, 2.0, 3.0, None],
        [5.0, "judged", 101.235, 12, 1, None, None, 9.0, 7.1235],
    ]
    assert not series.append(9.0, 1.0, 1, 0, 1.0, 1.0, 1.0)  # full: never grows
    assert series.rows == 2


# --------------------------------------------------------------------------- the loop


def test_the_loop_is_deterministic_on_a_fake_clock() -> None:
    clock = FakeClock(MS)  # two readings a call: each call takes 2 ms of fake time
    intervals: list[tuple[int, float]] = []
    run = run_soak(
        lambda: None,
        SoakPolicy(duration_s=1.0),  # sampled every 50 ms
        clock=clock,
        rss_bytes=lambda: 100 * MB,
        on_interval=lambda series, elapsed: intervals.append((series.rows, elapsed)),
    )
    assert run.calls == 500
    assert run.series.rows == 20
    assert run.elapsed_s == pytest.approx(1.0)
    assert (run.errors, run.error_examples, run.aborted) == (0, (), "")
    assert list(run.series.column("calls")) == [25.0] * 20
    assert list(run.series.column("rss_mb")) == [100.0] * 20
    assert list(run.series.column("p50_ms")) == [1.0] * 20  # one clock step per call
    assert run.series.column("t_s") == pytest.approx(np.arange(1, 21) * 0.05)
    # on_interval: once per row, after the row is added, with the elapsed seconds.
    assert [rows for rows, _ in intervals] == list(range(1, 21))
    assert [elapsed for _, elapsed in intervals] == pytest.approx(np.arange(1, 21) * 0.05)


def test_errors_are_counted_and_distinct_examples_kept() -> None:
    calls = 0

    def workload() -> None:
        nonlocal calls
        calls += 1
        if calls % 3 == 0:
            raise ValueError(f"bad input {calls % 8}")  # eight distinct messages, repeated

    run = run_soak(
        workload, SoakPolicy(duration_s=1.0), clock=FakeClock(MS), rss_bytes=lambda: 100 * MB
    )
    assert run.calls == calls == 500
    assert run.errors == 500 // 3
    assert int(run.series.column("errors").sum()) == run.errors
    assert len(run.error_examples) == MAX_ERROR_EXAMPLES
    assert len(set(run.error_examples)) == MAX_ERROR_EXAMPLES
    assert run.error_examples[:2] == ("ValueError: bad input 3", "ValueError: bad input 6")
    assert run.aborted == ""  # the first calls did not all fail


def test_a_workload_that_always_raises_stops_early() -> None:
    calls = 0

    def broken() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("model not loaded")

    policy = SoakPolicy(duration_s=60.0)
    run = run_soak(broken, policy, clock=FakeClock(MS), rss_bytes=lambda: 100 * MB)
    assert calls == run.calls == run.errors == ABORT_AFTER_FAILURES
    assert run.aborted == f"stopped after the first {ABORT_AFTER_FAILURES} calls all raised"
    assert run.error_examples == ("RuntimeError: model not loaded",)
    assert run.series.rows == 1  # the interval is closed before stopping
    verdict = judge_soak(run, policy)
    assert verdict.passed is False
    assert verdict.problems[0] == run.aborted
    assert any("first: RuntimeError: model not loaded" in p for p in verdict.problems)


def test_a_soak_whose_outputs_go_wrong_under_load_fails_naming_the_call() -> None:
    calls = 0

    def degrading() -> list[float]:
        nonlocal calls
        calls += 1
        return [0.9, 0.1] if calls <= 40 else []  # empty results after a while

    policy = SoakPolicy(duration_s=60.0)
    check = OutputCheck(Tolerance(), every=16)
    run = run_soak(degrading, policy, clock=FakeClock(MS), rss_bytes=lambda: MB, verify=check)
    # The untimed reference call is call 1; soak call 49 is the first sampled after 40.
    assert run.calls == 49 and run.outputs is not None
    assert run.aborted == (
        "outputs differ from the untimed reference call's, at timed call 49:"
        " output has 0 items where the reference has 2"
    )
    assert judge_soak(run, policy).passed is False


def test_a_soak_with_steady_outputs_or_none_runs_its_length() -> None:
    policy = SoakPolicy(duration_s=1.0)
    check = OutputCheck(Tolerance(), every=16)
    run = run_soak(lambda: (1, 2), policy, clock=FakeClock(MS), rss_bytes=lambda: MB, verify=check)
    assert run.aborted == "" and run.outputs is not None
    assert run.outputs.compared == -(-run.calls // 16) and run.outputs.mismatch is None
    nothing = run_soak(
        lambda: None, policy, clock=FakeClock(MS), rss_bytes=lambda: MB, verify=OutputCheck()
    )
    assert nothing.outputs is not None and nothing.outputs.reference_is_none


def test_a_fake_leak_of_1mb_a_fake_minute_fails() -> None:
    clock = FakeClock(10 * MS)

    def rss() -> int:
        return int(200 * MB + clock.now / 60e9 * MB)

    policy = SoakPolicy(duration_s=300.0)
    run = run_soak(lambda: None, policy, clock=clock, rss_bytes=rss)
    assert run.calls == 15_000
    assert run.series.rows == 300
    verdict = judge_soak(run, policy)
    assert verdict.passed is False
    assert verdict.growth is not None and verdict.growth.slope == pytest.approx(60.0, rel=1e-3)
    assert "memory grows 60 MB/h" in verdict.problems[0]


def test_a_flat_fake_memory_passes() -> None:
    policy = SoakPolicy(duration_s=300.0)
    run = run_soak(lambda: None, policy, clock=FakeClock(10 * MS), rss_bytes=lambda: 200 * MB)
    verdict = judge_soak(run, policy)
    assert verdict.passed is True
    assert verdict.growth is not None and verdict.growth.slope == 0.0


# --------------------------------------------------------------------------- real soaks


def test_a_real_leak_fails_a_short_soak() -> None:
    leaked: list[bytearray] = []

    def leaking() -> None:
        leaked.append(bytearray(16384))  # touched (zeroed) memory: resident at once
        time.sleep(0.001)  # at most ~2000 calls: ~30 MB however fast the machine

    policy = SoakPolicy(duration_s=2.0)
    try:
        run = run_soak(leaking, policy)
        verdict = judge_soak(run, policy)
    finally:
        leaked.clear()
    assert run.calls > 0 and run.errors == 0
    assert verdict.passed is False, verdict
    assert "MB/h" in verdict.problems[0]


def test_a_real_steady_workload_is_not_failed() -> None:
    policy = SoakPolicy(duration_s=2.0)
    run = run_soak(lambda: sum(range(100)), policy)
    verdict: SoakVerdict = judge_soak(run, policy)
    assert run.errors == 0 and run.calls > 100
    # Pass, or at worst inconclusive should the machine's allocator move a whole MB
    # under the loop: a steady workload is never judged to leak.
    assert verdict.passed is not False, verdict.problems


def test_a_leak_hidden_from_the_resident_set_shows_in_the_heap() -> None:
    # Freed memory stays resident and a leak first fills those holes: the resident set is
    # flat while the allocator's bytes in use grow 1 MB a minute.
    minutes = 5.0
    t = np.linspace(0.0, minutes * 60, 300)
    rows = [(x, 120.0, 100, 0, 1.0, 1.2, 2.0, 40.0 + x / 60.0) for x in t]
    run = SoakRun(SoakSeries.from_rows(rows), 30000, 0, minutes * 60, ())

    verdict = judge_soak(run, SoakPolicy(duration_s=minutes * 60))

    assert verdict.passed is False
    assert verdict.growth is not None and verdict.growth.slope == 0
    assert verdict.heap_growth is not None
    assert verdict.heap_growth.slope == pytest.approx(60.0)
    assert any(p.startswith("heap memory in use grows 60") for p in verdict.problems)
    assert "heap in use +60 MB/h" in verdict.display()


def test_without_a_heap_figure_only_the_resident_set_is_judged() -> None:
    t = np.linspace(0.0, 300.0, 300)
    rows = [(x, 120.0, 100, 0, 1.0, 1.2, 2.0) for x in t]
    run = SoakRun(SoakSeries.from_rows(rows), 30000, 0, 300.0, ())

    verdict = judge_soak(run, SoakPolicy(duration_s=300.0))

    assert verdict.passed is True
    assert verdict.heap_growth is None
    assert "heap" not in verdict.display()


def test_the_heap_figure_counts_bytes_the_allocator_handed_out() -> None:
    from pytest_deploycheck.measure.memory import heap_in_use_bytes

    before = heap_in_use_bytes()
    if before is None:
        pytest.skip("no glibc mallinfo2 on this platform")
    block = bytearray(4_000_000)
    during = heap_in_use_bytes()
    del block
    assert during is not None and during - before >= 3_900_000
