"""Unit tests of measure/batching.py: batch formation, latency accounting, the best setting.

The batcher runs on a virtual clock that only ``run_batch`` and the sleep move, with a
model whose batch costs ``a + b * n`` -- the seeds' example: batch 1 in 100 ms, batch
32 in 150 ms (213 items/s).  Expected latencies are computed from the schedule.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from pytest_deploycheck.measure.batching import (
    BatchingResult,
    best_setting,
    meets_budget,
    run_batching_window,
    sweep_batching,
)
from virtual_clock import VirtualClock

MS = 1_000_000  # nanoseconds


def linear_model(clock: VirtualClock, a_ns: int, b_ns: float) -> Callable[[int], None]:
    """A batch of n costs a + b * n of virtual time; the sizes it was called with are kept."""

    def run_batch(n: int) -> None:
        clock.now += round(a_ns + b_ns * n)

    return run_batch


def seeds_model(clock: VirtualClock) -> Callable[[int], None]:
    """Batch 1: 100 ms, batch 32: 150 ms."""
    b = 50 * MS / 31
    return linear_model(clock, round(100 * MS - b), b)


def window(
    clock: VirtualClock, run_batch: Callable[[int], None], **options: object
) -> BatchingResult:
    settings: dict[str, object] = {"qps": 100.0, "duration_s": 1.0, "seed": 0, **options}
    return run_batching_window(
        run_batch,
        clock=clock,
        sleep_until=clock.sleep_until,
        **settings,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- formation


def test_a_batch_never_exceeds_max_batch_and_the_rest_waits_for_its_deadline() -> None:
    clock = VirtualClock()
    result = window(
        clock, linear_model(clock, 10 * MS, 0), max_batch=4, max_wait_ms=50, arrivals_ns=[0] * 10
    )
    assert result.batch_sizes == [4, 4, 2] and result.full_batches == 2
    # Batches end at 10 and 20 ms (full at once), the last two wait to their 50 ms deadline.
    assert sorted(v / MS for v in result.latency_samples_ns) == [10] * 4 + [20] * 4 + [60] * 2


def test_the_oldest_requests_wait_triggers_a_partial_batch() -> None:
    clock = VirtualClock()
    arrivals = [k * 10 * MS for k in range(10)]
    result = window(
        clock, linear_model(clock, 1 * MS, 0), max_batch=32, max_wait_ms=25, arrivals_ns=arrivals
    )
    assert result.batch_sizes == [3, 3, 3, 1]
    # The first batch leaves at 25 ms with the requests of 0, 10 and 20 ms, done at 26.
    assert [v / MS for v in result.latency_samples_ns[:3]] == [26, 16, 6]
    assert result.max_ms == 26.0 and result.mean_batch == 2.5


def test_no_wait_serves_each_request_alone_when_the_model_keeps_up() -> None:
    clock = VirtualClock()
    arrivals = [k * 10 * MS for k in range(5)]
    result = window(
        clock, linear_model(clock, 2 * MS, 0), max_batch=8, max_wait_ms=0, arrivals_ns=arrivals
    )
    assert result.batch_sizes == [1] * 5 and result.percentile_ms == 2.0


def test_a_backlog_is_batched_as_soon_as_the_model_is_free() -> None:
    clock = VirtualClock()
    arrivals = [0, 1 * MS, 2 * MS, 3 * MS]  # arrive while the first batch runs
    result = window(
        clock, linear_model(clock, 10 * MS, 0), max_batch=8, max_wait_ms=0, arrivals_ns=arrivals
    )
    assert result.batch_sizes == [1, 3]
    assert [v / MS for v in result.latency_samples_ns] == [10, 19, 18, 17]
    assert result.generator_valid


# --------------------------------------------------------------------------- the trade-off


def test_batch_one_saturates_where_batch_32_keeps_up_at_100_requests_per_second() -> None:
    clock = VirtualClock()
    one = window(clock, seeds_model(clock), max_batch=1, max_wait_ms=0, duration_s=5.0)
    assert one.saturated and "offered 100.0 req/s, achieved" in one.saturation_reason  # type: ignore[operator]
    assert one.achieved_qps == pytest.approx(10.0, rel=0.05)
    clock = VirtualClock()
    many = window(clock, seeds_model(clock), max_batch=32, max_wait_ms=50, duration_s=5.0)
    assert not many.saturated and many.generator_valid
    assert many.achieved_qps == pytest.approx(many.scheduled_qps, rel=0.05)
    assert many.percentile_ms is not None and many.percentile_ms < 400


def test_under_overload_batch_32_gives_the_seeds_213_items_per_second() -> None:
    clock = VirtualClock()
    result = window(clock, seeds_model(clock), max_batch=32, max_wait_ms=50, qps=1000, drain_s=0.5)
    assert result.saturated and result.dropped > 0
    assert result.achieved_qps == pytest.approx(32 / 0.150, rel=0.03)
    assert result.mean_batch > 31 and result.busy_fraction > 0.95


def test_best_setting_takes_the_highest_throughput_within_the_budget() -> None:
    clock = VirtualClock()
    results = sweep_batching(
        seeds_model(clock),
        [(1, 0), (8, 20), (16, 20), (32, 50)],
        qps=100.0,
        duration_s=5.0,
        seed=0,
        clock=clock,
        sleep_until=clock.sleep_until,
    )
    saturated = [r.max_batch for r in results if r.saturated]
    assert saturated == [1, 8]  # 10 and 72 items/s at best
    choice = best_setting(results, latency_ms=400)
    eligible = [r for r in results if not r.saturated]
    assert choice.eligible == eligible
    # Both unsaturated settings carry the offered load: a tie, so the lower latency wins.
    assert choice.best is min(eligible, key=lambda r: r.percentile_ms or 0)
    assert "the highest throughput within p99 <= 400 ms (2 of 4 settings meet it)" in choice.reason
    assert json.loads(json.dumps(choice.as_extra())) == choice.as_extra()


def test_no_setting_within_the_budget_is_none_with_the_reason() -> None:
    clock = VirtualClock()
    result = window(clock, seeds_model(clock), max_batch=32, max_wait_ms=50)
    choice = best_setting([result], latency_ms=50)  # every batch takes >= 100 ms
    assert choice.best is None and choice.reason.startswith("no setting meets p99 <= 50 ms: ")
    assert result.display() in choice.reason


def test_throughputs_within_two_percent_tie_and_beyond_the_higher_wins() -> None:
    clock = VirtualClock()
    base = window(clock, linear_model(clock, 1 * MS, 0), max_batch=4, max_wait_ms=5)
    a = dataclasses.replace(base, max_batch=2, achieved_qps=100.0, latency_samples_ns=[200 * MS])
    b = dataclasses.replace(base, max_batch=4, achieved_qps=99.0, latency_samples_ns=[150 * MS])
    c = dataclasses.replace(base, max_batch=8, achieved_qps=150.0, latency_samples_ns=[300 * MS])
    hot = dataclasses.replace(c, max_batch=16, achieved_qps=500.0, saturated=True)
    assert best_setting([a, b], latency_ms=400).best is b
    assert best_setting([a, b, c, hot], latency_ms=400).best is c
    assert best_setting([a, b, c], latency_ms=250).best is b
    assert not meets_budget(hot, 400, 99)


# --------------------------------------------------------------------------- judging


def test_requests_in_the_warm_up_are_served_but_not_judged() -> None:
    clock = VirtualClock()
    arrivals = [k * 10 * MS for k in range(20)]
    result = window(
        clock,
        linear_model(clock, 1 * MS, 0),
        max_batch=1,
        max_wait_ms=0,
        arrivals_ns=arrivals,
        warmup_s=0.1,
        duration_s=0.1,
    )
    assert result.requests == 10 and result.batches == 20


def test_a_failing_batch_counts_its_items_as_errors() -> None:
    clock = VirtualClock()

    def run_batch(n: int) -> None:
        clock.now += MS
        if n == 2:
            raise RuntimeError("out of memory")

    arrivals = [0, 0, 10 * MS, 20 * MS]
    result = window(clock, run_batch, max_batch=2, max_wait_ms=0, arrivals_ns=arrivals)
    assert result.errors == 2 and result.requests == 2
    assert result.error_samples == ["RuntimeError: out of memory"]
    assert not meets_budget(result, 1000, 99)


def test_a_batcher_that_oversleeps_is_invalid() -> None:
    clock = VirtualClock(oversleep_ns=5 * MS)
    arrivals = [k * 20 * MS for k in range(20)]
    result = window(
        clock, linear_model(clock, 1 * MS, 0), max_batch=4, max_wait_ms=2, arrivals_ns=arrivals
    )
    assert not result.generator_valid
    assert (
        result.invalid_reason is not None and "could not keep its schedule" in result.invalid_reason
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"qps": 0}, "qps must be > 0"),
        ({"max_batch": 0}, "max_batch must be a whole number >= 1"),
        ({"max_wait_ms": -1}, "max_wait_ms must be >= 0"),
        ({"duration_s": 0}, "duration_s must be > 0"),
    ],
)
def test_run_batching_window_rejects_bad_settings(changes: dict[str, float], message: str) -> None:
    options: dict[str, float] = {
        "qps": 10,
        "max_batch": 4,
        "max_wait_ms": 5,
        "duration_s": 1,
        **changes,
    }
    with pytest.raises(ValueError, match=message):
        run_batching_window(lambda n: None, **options)  # type: ignore[arg-type]


def test_the_result_is_plain_json_and_displays_in_one_phrase() -> None:
    clock = VirtualClock()
    arrivals = [k * 10 * MS for k in range(10)]
    result = window(
        clock, linear_model(clock, 1 * MS, 0), max_batch=32, max_wait_ms=25, arrivals_ns=arrivals
    )
    extra = result.as_extra()
    assert json.loads(json.dumps(extra)) == extra and "latency_samples_ns" not in extra
    assert extra["throughput_items_per_s"] == result.achieved_qps
    assert result.as_extra(samples=True)["batch_sizes"] == [3, 3, 3, 1]
    assert result.display() == "batch<=32 wait 25 ms: 10.0 items/s (mean batch 2.5), p99 26.0 ms"
