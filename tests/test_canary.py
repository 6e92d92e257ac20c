"""The host-speed canary: a fixed product, timed with an injected clock (nothing is timed)."""

from __future__ import annotations

import itertools

from pytest_deploycheck.measure.canary import (
    CANARY_OPS,
    HostCanary,
    block_ms,
    canary_ns_per_op,
)


def test_the_canary_is_the_median_time_per_multiply_add() -> None:
    # Each timing reads the clock twice: durations 1000, 3000, 2000 ns.
    ticks = iter([0, 1000, 5000, 8000, 10000, 12000])
    assert canary_ns_per_op(repeats=3, clock=lambda: next(ticks)) == 2000 / CANARY_OPS


def test_the_canary_times_at_least_once() -> None:
    ticks = itertools.count(0, 500)
    assert canary_ns_per_op(repeats=0, clock=lambda: next(ticks)) == 500 / CANARY_OPS


def test_a_check_keeps_both_readings_and_their_mean() -> None:
    extra = HostCanary(before_ns=1.0, after_ns=3.0).as_extra()
    assert extra == {
        "ns_per_op": 2.0,
        "before_ns_per_op": 1.0,
        "after_ns_per_op": 3.0,
        "ops": CANARY_OPS,
    }
    assert block_ms(2.0) == 2.0 * CANARY_OPS / 1e6
