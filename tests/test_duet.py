"""The paired A/B timing itself, on a fake clock: blocks, order, ratios and tests."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_deploycheck.measure.duet import (
    DUET_ROUNDS,
    MAX_BLOCK_CALLS,
    MIN_BLOCK_CALLS,
    Arm,
    DuetResult,
    block_calls_for,
    run_duet,
)


class FakeHost:
    """A clock the workload advances by its arm's cost times the host's slowness."""

    def __init__(self, costs: dict[Arm, int], slowdown_per_call: float = 0.0) -> None:
        self.now = 0
        self.costs = costs
        self.arm: Arm = "candidate"
        self.slowness = 1.0
        self.slowdown_per_call = slowdown_per_call
        self.log: list[Arm] = []

    def clock(self) -> int:
        return self.now

    def workload(self) -> None:
        self.log.append(self.arm)
        self.now += round(self.costs[self.arm] * self.slowness)
        self.slowness += self.slowdown_per_call

    @contextlib.contextmanager
    def use(self, arm: Arm) -> Iterator[None]:
        saved, self.arm = self.arm, arm
        try:
            yield
        finally:
            self.arm = saved


def test_a_slower_candidate_reads_as_its_ratio_in_every_round() -> None:
    host = FakeHost({"baseline": 1_000_000, "candidate": 1_250_000})
    result = run_duet(host.workload, host.use, block_calls=5, clock=host.clock)
    assert len(result.rounds) == DUET_ROUNDS
    assert result.ratio == pytest.approx(1.25)
    assert result.p_slower == pytest.approx(0.5**DUET_ROUNDS)
    assert result.p_faster == 1.0
    low, high = result.ratio_ci()
    assert low == pytest.approx(1.25) and high == pytest.approx(1.25)


def test_the_order_alternates_and_each_arm_warms_up_untimed() -> None:
    host = FakeHost({"baseline": 10, "candidate": 10})
    run_duet(host.workload, host.use, block_calls=2, rounds=2, clock=host.clock)
    # Round 1: baseline then candidate; round 2 the other way round; 1 + 2 calls a block.
    assert host.log == ["baseline"] * 3 + ["candidate"] * 6 + ["baseline"] * 3
    assert host.arm == "candidate"  # the test's own model is back in place


def test_a_host_slowing_down_steadily_does_not_favour_either_arm() -> None:
    # The same model on both arms while every call is 0.2% slower than the last: a
    # fixed order would read the second arm as slower in every round.
    host = FakeHost({"baseline": 1_000_000, "candidate": 1_000_000}, slowdown_per_call=0.002)
    result = run_duet(host.workload, host.use, block_calls=10, clock=host.clock)
    slower = sum(r > 1 for r in result.ratios)
    assert slower == DUET_ROUNDS // 2
    assert result.p_slower > 0.4 and result.p_faster > 0.4


def test_as_extra_is_plain_json_the_gate_can_rejudge() -> None:
    host = FakeHost({"baseline": 2_000_000, "candidate": 1_000_000})
    extra = run_duet(
        host.workload, host.use, block_calls=3, models=("optimized",), clock=host.clock
    ).as_extra()
    assert extra["ratio"] == pytest.approx(0.5)
    assert extra["block_calls"] == 3
    assert extra["models"] == ["optimized"]
    assert len(extra["rounds"]) == DUET_ROUNDS
    assert extra["rounds"][0] == [2_000_000.0, 1_000_000.0]
    assert extra["p_faster"] < 0.001 and extra["p_slower"] == 1.0


def test_too_few_rounds_leave_the_interval_open() -> None:
    result = DuetResult(rounds=((1.0, 2.0), (1.0, 2.0)), block_calls=3)
    low, high = result.ratio_ci()
    assert math.isinf(low) or math.isinf(high)
    assert result.as_extra()["ratio_ci"].count(None) >= 1


def test_an_empty_duet_says_nothing() -> None:
    result = DuetResult(rounds=(), block_calls=3)
    assert math.isnan(result.ratio)
    assert result.p_slower == 1.0 and result.p_faster == 1.0
    assert result.as_extra()["ratio"] is None


@given(st.floats(min_value=1e-3, max_value=1e12, allow_nan=False))
def test_blocks_last_about_25_ms_within_their_bounds(median_ns: float) -> None:
    calls = block_calls_for(median_ns)
    assert MIN_BLOCK_CALLS <= calls <= MAX_BLOCK_CALLS
    if MIN_BLOCK_CALLS < calls < MAX_BLOCK_CALLS:
        assert (calls - 1) * median_ns < 25_000_000 <= calls * median_ns


@pytest.mark.parametrize("median_ns", [0.0, -1.0, math.nan, math.inf])
def test_a_meaningless_median_gives_the_smallest_block(median_ns: float) -> None:
    assert block_calls_for(median_ns) == MIN_BLOCK_CALLS


def test_an_error_on_the_release_arm_propagates_and_restores_the_candidate() -> None:
    host = FakeHost({"baseline": 1, "candidate": 1})

    def workload() -> None:
        if host.arm == "baseline":
            raise RuntimeError("release model failed")
        host.workload()

    with pytest.raises(RuntimeError, match="release model failed"):
        run_duet(workload, host.use, block_calls=3, clock=host.clock)
    assert host.arm == "candidate"
