"""Capacity: the highest arrival rate at which a latency bound still holds.

MLPerf LoadGen's Server scenario asks "what is the highest Poisson rate whose p99 stays
under the bound?".  :func:`find_capacity` answers it with LoadGen's search: **bracket**
(double the rate from ``start_qps`` until the bound fails; halve it when it fails
already at the start), then **bisect** until the bracket ``[holds, fails]`` is
narrower than ``rel_tolerance`` of the holding rate.  For a service whose tail grows
with the rate, the true capacity C then lies in the bracket, so the reported capacity
(the highest rate that held) is within ``[C / (1 + rel_tolerance), C]``.

A step **holds** when its judged percentile is at or under ``latency_ms``, it did not
saturate, its generator was valid and no request failed.  An invalid step (the load
generator could not keep its schedule) is never taken as a pass: it bounds the search
from above like a failing step, but the result says the capacity is only a lower
bound there (``conclusive`` False), so a budget above it is inconclusive, not failed.
The same holds when the bound still holds at ``max_qps``: the capacity is at least
that, and :meth:`CapacityResult.meets` says None for a budget above it.

Each step must be long enough to judge the percentile: :func:`step_samples_for` asks
for enough requests that the binomial rule of
:func:`pytest_deploycheck.measure.stats.decide` can settle a pass at all (662 for p99
at 0.99), that the order-statistic interval of the percentile has a finite upper bound,
and that ``min_tail_samples`` requests are expected above the percentile;
:func:`step_duration_for` turns that into seconds at a rate and keeps the window at
least 20 times the latency bound, so a stable service is not taken for a saturated one
(see :mod:`pytest_deploycheck.measure.load`).  :func:`load_step` makes each step an
open-loop run that stops early once the binomial rule says the bound is broken.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .load import (
    Body,
    Clock,
    LoadPlan,
    LoadResult,
    SleepUntil,
    run_open_loop,
)

DEFAULT_REL_TOLERANCE = 0.05
DEFAULT_MAX_STEPS = 24
DEFAULT_MIN_TAIL_SAMPLES = 10
DEFAULT_CONFIDENCE = 0.99
CI_CONFIDENCE = 0.95
MIN_STEP_S = 1.0
# A step's window is at least this many latency bounds long: the last request of a
# stable run ends about one latency after the schedule, which must cost well under the
# 5% saturation tolerance of the achieved rate.
WINDOW_LATENCIES = 40
BRACKET_FACTOR = 2.0
DEFAULT_RANGE = 1024.0  # max_qps = start * this, min_qps = start / 16, unless given
DEFAULT_DOWN_RANGE = 16.0


@dataclass(frozen=True)
class StepOutcome:
    """One rate tried: its judged percentile, achieved rate, errors and validity.

    ``holds`` is set by :func:`find_capacity` from the rule in the module docstring; a
    value given by ``measure_at`` is ignored.
    """

    rate: float
    percentile_ms: float | None
    achieved_qps: float
    errors: int = 0
    saturated: bool = False
    valid: bool = True
    reason: str | None = None
    holds: bool = False
    late: bool = False  # invalid only because the generator started requests late

    @classmethod
    def from_load(cls, result: LoadResult) -> StepOutcome:
        """The step an open-loop run makes, with its invalid or saturation reason."""
        return cls(
            rate=result.offered_qps,
            percentile_ms=result.percentile_ms,
            achieved_qps=result.achieved_qps,
            errors=result.errors,
            saturated=result.saturated,
            valid=result.generator_valid,
            reason=result.invalid_reason or result.saturation_reason,
            late=result.generator_late,
        )

    def as_extra(self) -> dict[str, Any]:
        """Plain JSON figures: one point of the curve."""
        return dict(vars(self))


def step_holds(outcome: StepOutcome, latency_ms: float) -> bool:
    """Whether the bound holds at this step: in budget, unsaturated, valid, error-free.

    A step whose generator only started requests late still holds when it is within
    the bound: its latencies count from the schedule, so the lateness is in them.
    """
    return (
        (outcome.valid or outcome.late)
        and not outcome.saturated
        and outcome.errors == 0
        and outcome.percentile_ms is not None
        and outcome.percentile_ms <= latency_ms
    )


def why_not(outcome: StepOutcome, latency_ms: float, percentile: float) -> str:
    """Why a step does not hold, in words (empty when it holds)."""
    if not outcome.valid:
        return f"invalid ({outcome.reason or 'the generator could not keep its schedule'})"
    if outcome.saturated:
        return outcome.reason or "the service saturates"
    if outcome.errors:
        return f"{outcome.errors} requests failed"
    if outcome.percentile_ms is None:
        return "no request completed"
    if outcome.percentile_ms > latency_ms:
        return f"p{percentile:g} {outcome.percentile_ms:.1f} ms > {latency_ms:g} ms"
    return ""


@dataclass(frozen=True)
class CapacityResult:
    """The search's answer: the highest rate that held, the bracket and the curve."""

    capacity_qps: float
    upper_qps: float | None
    latency_ms: float
    percentile: float
    rel_tolerance: float
    conclusive: bool
    reason: str
    curve: list[StepOutcome] = field(default_factory=list)

    @property
    def sorted_curve(self) -> list[StepOutcome]:
        """The steps by rate, for a plot of percentile against rate."""
        return sorted(self.curve, key=lambda step: step.rate)

    def meets(self, budget_qps: float) -> bool | None:
        """Whether the capacity reaches *budget_qps*; None when the cap or an invalid step hid it.

        A budget above the cap, or above an invalid step, is not known to fail.
        """
        if self.capacity_qps >= budget_qps:
            return True
        return False if self.conclusive else None

    def as_extra(self) -> dict[str, Any]:
        """Plain JSON: the figures and the curve in the order tried."""
        extra = {name: getattr(self, name) for name in self.__dataclass_fields__}
        extra["curve"] = [step.as_extra() for step in self.curve]
        return extra

    def display(self) -> str:
        """A short phrase, e.g. ``capacity 48.4 req/s at p99 <= 100 ms``."""
        return (
            f"capacity {self.capacity_qps:.1f} req/s at p{self.percentile:g} "
            f"<= {self.latency_ms:g} ms"
        )


@dataclass
class _Search:
    """The search's state: the bracket and every step in the order tried."""

    measure_at: Callable[[float], StepOutcome]
    latency_ms: float
    percentile: float
    max_steps: int
    curve: list[StepOutcome] = field(default_factory=list)
    low: StepOutcome | None = None
    high: StepOutcome | None = None

    def step(self, rate: float) -> StepOutcome:
        outcome = self.measure_at(rate)
        outcome = replace(outcome, rate=rate, holds=step_holds(outcome, self.latency_ms))
        self.curve.append(outcome)
        if outcome.holds:
            self.low = outcome
        else:
            self.high = outcome
        return outcome

    @property
    def steps_left(self) -> bool:
        return len(self.curve) < self.max_steps


def _bracket_up(search: _Search, rate: float, max_qps: float) -> None:
    """Double the rate while the bound holds, up to *max_qps*."""
    while search.high is None and search.steps_left and rate < max_qps:
        rate = min(rate * BRACKET_FACTOR, max_qps)
        search.step(rate)


def _bracket_down(search: _Search, rate: float, min_qps: float) -> None:
    """Halve the rate while the bound fails, down to *min_qps*."""
    while search.low is None and search.steps_left and rate / BRACKET_FACTOR >= min_qps:
        rate /= BRACKET_FACTOR
        search.step(rate)


def _bisect(search: _Search, rel_tolerance: float) -> None:
    while search.steps_left and search.low is not None and search.high is not None:
        low, high = search.low.rate, search.high.rate
        if high - low <= rel_tolerance * low:
            return
        search.step((low + high) / 2)


def find_capacity(
    measure_at: Callable[[float], StepOutcome],
    *,
    latency_ms: float,
    percentile: float = 99.0,
    start_qps: float,
    max_qps: float | None = None,
    min_qps: float | None = None,
    rel_tolerance: float = DEFAULT_REL_TOLERANCE,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> CapacityResult:
    """The highest rate whose *percentile* stays under *latency_ms*: bracket, then bisect.

    *measure_at(rate)* runs one step (for instance :func:`load_step`).  The bracket
    grows to *max_qps* (default ``start_qps * 1024``) and shrinks to *min_qps* (default
    ``start_qps / 16``); the search takes at most *max_steps* steps.
    """
    _check_search(latency_ms, start_qps, rel_tolerance, max_steps)
    max_qps = max_qps if max_qps is not None else start_qps * DEFAULT_RANGE
    min_qps = min_qps if min_qps is not None else start_qps / DEFAULT_DOWN_RANGE
    search = _Search(measure_at, latency_ms, percentile, max_steps)
    if search.step(start_qps).holds:
        _bracket_up(search, start_qps, max_qps)
    else:
        _bracket_down(search, start_qps, min_qps)
    _bisect(search, rel_tolerance)
    return _result(search, rel_tolerance, max_qps)


def _check_search(latency_ms: float, start_qps: float, rel_tolerance: float, steps: int) -> None:
    if not latency_ms > 0:
        raise ValueError(f"find_capacity latency_ms must be > 0 ms, got {latency_ms!r}")
    if not start_qps > 0:
        raise ValueError(f"find_capacity start_qps must be > 0 req/s, got {start_qps!r}")
    if not 0 < rel_tolerance < 1:
        raise ValueError(f"find_capacity rel_tolerance must be in (0, 1), got {rel_tolerance!r}")
    if steps < 1:
        raise ValueError(f"find_capacity max_steps must be >= 1, got {steps!r}")


def _result(search: _Search, rel_tolerance: float, max_qps: float) -> CapacityResult:
    low, high = search.low, search.high
    return CapacityResult(
        capacity_qps=low.rate if low is not None else 0.0,
        upper_qps=high.rate if high is not None else None,
        latency_ms=search.latency_ms,
        percentile=search.percentile,
        rel_tolerance=rel_tolerance,
        conclusive=high is not None and high.valid,
        reason=_reason(search, rel_tolerance, max_qps),
        curve=list(search.curve),
    )


def _reason(search: _Search, rel_tolerance: float, max_qps: float) -> str:
    bound = f"the p{search.percentile:g} bound of {search.latency_ms:g} ms"
    low, high = search.low, search.high
    if high is None:
        assert low is not None
        return (
            f"{bound} still holds at {low.rate:.1f} req/s, the highest rate tried (the cap): "
            "the capacity is at least that"
        )
    failure = why_not(high, search.latency_ms, search.percentile)
    if low is None:
        return (
            f"{bound} fails already at {high.rate:.1f} req/s, the lowest rate tried "
            f"({failure}): capacity 0"
        )
    if not high.valid:
        return (
            f"{bound} holds at {low.rate:.1f} req/s; at {high.rate:.1f} req/s the step was "
            f"{failure}: the capacity is at least {low.rate:.1f} req/s"
        )
    within = high.rate - low.rate <= rel_tolerance * low.rate
    tail = f"within {rel_tolerance:.0%}" if within else f"after {len(search.curve)} steps"
    return (
        f"{bound} holds at {low.rate:.1f} req/s and fails at {high.rate:.1f} req/s "
        f"({failure}; {tail})"
    )


# --- step length ---------------------------------------------------------------------


def step_samples_for(
    percentile: float,
    *,
    min_tail_samples: int = DEFAULT_MIN_TAIL_SAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
) -> int:
    """Requests one step needs to judge *percentile* (see the module docstring)."""
    from .stats import exceed_probability, min_samples_to_pass, percentile_ci_ranks

    n = max(
        min_samples_to_pass(percentile, confidence),
        math.ceil(min_tail_samples / exceed_probability(percentile)),
    )
    while percentile_ci_ranks(n, percentile, CI_CONFIDENCE)[1] > n:
        n = math.ceil(n * 1.1)
    return n


def step_duration_for(
    percentile: float,
    qps: float,
    *,
    min_tail_samples: int = DEFAULT_MIN_TAIL_SAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    latency_ms: float | None = None,
    min_duration_s: float = MIN_STEP_S,
) -> float:
    """Seconds one step at *qps* must last: enough requests, and 40 latency bounds."""
    if not qps > 0:
        raise ValueError(f"step_duration_for qps must be > 0 req/s, got {qps!r}")
    samples = step_samples_for(percentile, min_tail_samples=min_tail_samples, confidence=confidence)
    window_s = WINDOW_LATENCIES * latency_ms / 1000 if latency_ms is not None else 0.0
    return max(samples / qps, window_s, min_duration_s)


def load_step(
    body: Body,
    *,
    latency_ms: float,
    percentile: float = 99.0,
    concurrency: int | None = None,
    warmup_s: float = 0.0,
    seed: int | None = None,
    min_tail_samples: int = DEFAULT_MIN_TAIL_SAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    clock: Clock = time.perf_counter_ns,
    sleep_until: SleepUntil | None = None,
    min_duration_s: float = MIN_STEP_S,
) -> Callable[[float], StepOutcome]:
    """A ``measure_at`` for :func:`find_capacity`: one open-loop run per rate, early-stopped.

    Each step lasts :func:`step_duration_for` the rate (at least *min_duration_s*) and
    stops as soon as the binomial rule says the bound is broken.
    """

    def measure_at(rate: float) -> StepOutcome:
        duration = step_duration_for(
            percentile,
            rate,
            min_tail_samples=min_tail_samples,
            confidence=confidence,
            latency_ms=latency_ms,
            min_duration_s=min_duration_s,
        )
        plan = LoadPlan(
            qps=rate,
            duration_s=duration,
            concurrency=concurrency,
            warmup_s=warmup_s,
            seed=seed,
            percentile=percentile,
            budget_ms=latency_ms,
            confidence=confidence,
        )
        result = run_open_loop(body, plan, clock=clock, sleep_until=sleep_until)
        return StepOutcome.from_load(result)

    return measure_at
