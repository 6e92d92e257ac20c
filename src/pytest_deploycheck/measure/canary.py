"""A host-speed reference: a fixed CPU canary timed right beside each timed check.

A shared machine's speed moves between runs (another tenant, thermal state, a
frequency governor): the same model, measured twice, can read 25% slower.  A gate that
compares a run with a saved baseline cannot tell that from a slower model unless each
side also says how fast the host itself was.  The canary is that figure: a fixed
64 x 64 integer matrix product (numpy's own loop, never BLAS, so it is single-threaded
and does the same work on every host and numpy build), timed a few times before and
after the check; its median time per multiply-add is the host's speed.

About 4 ms a reading; numpy is imported per call (this module is only used by timed checks).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CANARY_SIZE = 64
CANARY_OPS = CANARY_SIZE**3  # multiply-adds of one product
CANARY_REPEATS = 15
Clock = Callable[[], int]


def canary_ns_per_op(repeats: int = CANARY_REPEATS, clock: Clock = time.perf_counter_ns) -> float:
    """Median nanoseconds per multiply-add of the fixed product over *repeats* timings."""
    import numpy as np

    matrix = (np.arange(CANARY_SIZE * CANARY_SIZE, dtype=np.int64) % 7).reshape(
        CANARY_SIZE, CANARY_SIZE
    )
    np.matmul(matrix, matrix)  # once untimed: first-call costs are not the host's speed
    timings = []
    for _ in range(max(1, repeats)):
        start = clock()
        np.matmul(matrix, matrix)
        timings.append(clock() - start)
    return statistics.median(timings) / CANARY_OPS


@dataclass(frozen=True)
class HostCanary:
    """The canary before and after one check, in nanoseconds per multiply-add."""

    before_ns: float
    after_ns: float

    @property
    def ns_per_op(self) -> float:
        """The host's speed during the check: the mean of the two readings."""
        return (self.before_ns + self.after_ns) / 2.0

    def as_extra(self) -> dict[str, Any]:
        """The check's ``extra["host_canary"]`` (see :mod:`..checks.metrics`)."""
        return {
            "ns_per_op": self.ns_per_op,
            "before_ns_per_op": self.before_ns,
            "after_ns_per_op": self.after_ns,
            "ops": CANARY_OPS,
        }


def block_ms(ns_per_op: float, ops: int = CANARY_OPS) -> float:
    """One canary product's time in milliseconds, for report lines."""
    return ns_per_op * ops / 1e6
