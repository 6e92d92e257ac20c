"""The sampling engine behind ``latency_under`` and ``throughput_over``.

:func:`measure_latency` warms the workload up, then times one call after another with
garbage collection off and stops as soon as the statistics of
:mod:`pytest_deploycheck.stats` settle the verdict on the percentile, or when the
sample or time cap is reached; an unsettled stop is reported as ``"inconclusive"``
with advice, never as a pass.  :func:`judge_samples` applies the same rule to samples
someone else took (pytest-benchmark).  The clock and the workload are injected, so the
tests drive the engine with a fake clock and never depend on real timing.

**The look schedule and what the confidence means.**  The decision is only looked at
on a doubling schedule: first at ``min_samples`` (by default the fewest samples with
which a pass can settle at all: 64, 130 and 662 for p90, p95 and p99 at 0.99), then at
2x, 4x, ... and at ``max_samples``; a run stopped by the time cap looks once more
where it stops.  ``confidence`` holds **per look**: one look calls a pass while the
true percentile is at or over the budget (or a fail while it is at or under) with
probability at most ``1 - confidence``.  Repeated looks add up.  The worst case is a
true percentile exactly on the budget; moving it away only makes the wrong verdict of
that side rarer.  There, computed exactly with
:func:`pytest_deploycheck.stats.boundary_error_rates`, the default p95 policy (0.99;
looks at 130, 260, ..., 16640 and 20000, 9 in all) ends in a wrong pass with
probability 5.5% and in a wrong fail with 5.0%, against 1.0% and 0.6% for its first
look alone and a union bound of 9% (p90: 6.2% and 6.0%, p99: 3.9% and 3.9%).  So read
the default as about 95% confidence overall for a percentile sitting right on the
budget.  Doubling keeps the number of looks, and so this inflation, logarithmic in
``max_samples / min_samples``.  Where a wrong verdict near the budget must be rarer,
raise ``confidence``: 0.998 gives about 1.1% per side overall at p95, with the first
look at 166 samples instead of 130.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .outputs import OutputCheck, OutputsVerified
from .stats import (
    decide,
    min_samples_to_pass,
    nearest_rank,
    percentile_ci,
    percentile_ci_ranks,
    percentile_nearest_rank,
    samples_needed_to_pass,
)

Verdict = Literal["pass", "fail", "inconclusive"]
StopReason = Literal["settled", "max_samples", "max_time", "fixed_samples", "outputs_differ"]
Clock = Callable[[], int]
PhaseCallback = Callable[[str, float], None]

CI_CONFIDENCE = 0.95  # the interval shown beside the percentile, not the decision's
_EN_DASH = "\u2013"  # between the interval's bounds, as typeset ranges are
_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000
_VERDICTS: dict[str, Verdict] = {"pass": "pass", "fail": "fail", "unsettled": "inconclusive"}
# Extrapolating a fail beyond this many samples is no longer useful advice.
_FAIL_ADVICE_CAP = 10**9


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_seconds(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


# (field, check, what is valid): one table, so every field's error reads the same way.
_POLICY_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("percentile", lambda v: _is_number(v) and 0 < v < 100, "a number in (0, 100), e.g. 95"),
    ("confidence", lambda v: _is_number(v) and 0.5 <= v < 1, "a number in [0.5, 1), e.g. 0.99"),
    ("warmup", lambda v: _is_whole(v, 0), "a whole number >= 0"),
    ("min_samples", lambda v: v is None or _is_whole(v, 1), "None or a whole number >= 1"),
    ("max_samples", lambda v: _is_whole(v, 1), "a whole number >= 1"),
    ("max_time_s", _is_seconds, "a finite number of seconds > 0"),
    ("warmup_max_s", _is_seconds, "a finite number of seconds > 0"),
)


@dataclass(frozen=True)
class SamplingPolicy:
    """How long to sample and how sure a verdict must be; validated on creation."""

    percentile: float = 95.0
    confidence: float = 0.99  # per look: see the module docstring
    warmup: int = 10  # calls discarded before timing
    min_samples: int | None = None  # default: min_samples_to_pass(percentile, confidence)
    max_samples: int = 20000
    max_time_s: float = 30.0  # wall-time cap for the timed phase
    warmup_max_s: float = 10.0  # warm-up stops early after this long

    def __post_init__(self) -> None:
        for name, valid, expected in _POLICY_RULES:
            value = getattr(self, name)
            if not valid(value):
                raise ValueError(f"SamplingPolicy: {name} must be {expected}, got {value!r}")
        self._check_sample_bounds()

    def _check_sample_bounds(self) -> None:
        # max_samples below the minimum for a pass is allowed: such a run can still
        # fail fast, and otherwise ends inconclusive with advice, never a pass.
        if self.min_samples is not None and self.min_samples > self.max_samples:
            raise ValueError(
                f"SamplingPolicy: min_samples ({self.min_samples}) must be at most"
                f" max_samples ({self.max_samples})"
            )

    @property
    def first_look(self) -> int:
        """The sample count of the first decision look (never beyond max_samples)."""
        if self.min_samples is not None:
            return self.min_samples
        return min(min_samples_to_pass(self.percentile, self.confidence), self.max_samples)

    @property
    def looks(self) -> tuple[int, ...]:
        """The sample counts at which the decision is looked at (unless time runs out)."""
        return look_schedule(self.first_look, self.max_samples)


def look_schedule(first: int, last: int) -> tuple[int, ...]:
    """first, 2*first, 4*first, ... below last, then last: few looks, so few chances to err."""
    looks = []
    n = first
    while n < last:
        looks.append(n)
        n *= 2
    return (*looks, last)


@dataclass(frozen=True)
class LatencyResult:
    """A latency measurement and its verdict; every figure in ms is measured on this host."""

    verdict: Verdict
    budget_ms: float
    percentile: float
    confidence: float
    n: int
    warmup: int
    value_ms: float  # the nearest-rank percentile that was judged
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    ci_low_ms: float  # 95% interval of the judged percentile; -inf/inf where n is too small
    ci_high_ms: float
    over_budget: int
    elapsed_s: float
    stop_reason: StopReason
    looks: int
    advice: str
    tracing_active: str | None
    source: str
    samples_ns: npt.NDArray[np.int64] = field(repr=False, compare=False)
    outputs: OutputsVerified | None = None  # verify_outputs: what the comparison found

    @property
    def label(self) -> str:
        """The percentile's short name, e.g. ``p95``."""
        return f"p{self.percentile:g}"

    def display(self) -> str:
        """One line for the summary: ``p95 61.2 ms (n=412, 95% CI 59.8-63.0)``, an en dash."""
        interval = f"{_fmt_ms(self.ci_low_ms)}{_EN_DASH}{_fmt_ms(self.ci_high_ms)}"
        why = wide_interval_reason(self.n, self.percentile, self.value_ms, self.ci_high_ms)
        return (
            f"{self.label} {_fmt_ms(self.value_ms)} ms"
            f" (n={self.n}, {CI_CONFIDENCE:.0%} CI {interval}{f': {why}' if why else ''})"
        )

    def as_extra(self, include_samples: bool = False) -> dict[str, Any]:
        """A JSON-serializable summary; infinite interval bounds become None."""
        extra: dict[str, Any] = {
            "verdict": self.verdict,
            "budget_ms": self.budget_ms,
            "percentile": self.percentile,
            "confidence": self.confidence,
            "n": self.n,
            "warmup": self.warmup,
            "value_ms": self.value_ms,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "ci_confidence": CI_CONFIDENCE,
            "ci_low_ms": _finite_or_none(self.ci_low_ms),
            "ci_high_ms": _finite_or_none(self.ci_high_ms),
            "over_budget": self.over_budget,
            "elapsed_s": self.elapsed_s,
            "stop_reason": self.stop_reason,
            "looks": self.looks,
            "advice": self.advice,
            "tracing_active": self.tracing_active,
            "source": self.source,
            "outputs": self.outputs.as_extra() if self.outputs is not None else None,
        }
        if include_samples:
            extra["samples_ns"] = [int(s) for s in self.samples_ns]
        return extra


def measure_latency(
    workload: Callable[[], object],
    budget_ms: float,
    policy: SamplingPolicy = SamplingPolicy(),
    *,
    clock: Clock = time.perf_counter_ns,
    on_progress: Callable[[int, float], None] | None = None,
    on_phase: PhaseCallback | None = None,
    verify: OutputCheck | None = None,
) -> LatencyResult:
    """Time *workload* until its percentile is settled under or over *budget_ms*.

    Warm-up calls come first and are not timed into the samples; then each call is
    timed alone with garbage collection disabled (restored afterwards).  Stops when a
    look settles the verdict, at ``max_samples``, or once the timed phase has run
    ``max_time_s`` by *clock* (nanoseconds); an unsettled stop is ``"inconclusive"``.
    *on_progress* gets (samples so far, seconds elapsed) at each look; *on_phase* gets
    each phase's name and time bound as it starts (``"warm-up"``, ``warmup_max_s``,
    then ``"timing"``, ``max_time_s``): a watchdog arms on it, since the bounds are
    checked here only between calls.  An exception from the workload propagates
    unchanged.  With *verify*, the first untimed call's return value is the reference
    and sampled timed calls must return the same (see :mod:`.outputs`): a mismatch
    stops the run at once as a fail, stop reason ``"outputs_differ"``.
    """
    _check_budget(budget_ms)
    tracing = detect_tracing()
    if on_phase is not None:
        on_phase("warm-up", policy.warmup_max_s)
    warmup_calls = _warm_up(workload, policy, clock, verify)
    if on_phase is not None:
        on_phase("timing", policy.max_time_s)
    run = _timed_phase(workload, budget_ms, policy, clock, on_progress, verify)
    return _result(
        run.samples_ns,
        budget_ms,
        policy.percentile,
        policy.confidence,
        verdict=run.verdict,
        warmup=warmup_calls,
        elapsed_s=run.elapsed_s,
        stop_reason=run.stop_reason,
        looks=run.looks,
        tracing_active=tracing,
        source="measured",
        outputs=verify.result() if verify is not None else None,
    )


def judge_samples(
    samples_ns: Sequence[int] | npt.NDArray[np.integer],
    budget_ms: float,
    percentile: float,
    confidence: float,
    *,
    source: str,
    detect: bool = True,
    rerun: str | None = None,
) -> LatencyResult:
    """Judge a fixed sample set (e.g. pytest-benchmark's) with the same rule, in one look.

    Nothing is run: an unsettled verdict is ``"inconclusive"`` with advice on how many
    more samples would settle it.  *detect* records the tracing active in this process
    now, which is right for samples just taken here; pass False for samples from
    elsewhere.  *rerun* says how to take more of *source*'s samples, a template with
    ``{n}`` (e.g. ``"rerun with --benchmark-min-rounds={n}"``): the advice fills in
    :func:`samples_to_settle`, so it names the setting that would settle the verdict.
    """
    _check_budget(budget_ms)
    samples = np.asarray(samples_ns, dtype=np.int64)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"judge_samples: no samples to judge from {source}")
    over = int(np.count_nonzero(samples > budget_ms * _NS_PER_MS))
    decision = decide(samples.size, over, percentile, confidence)
    return _result(
        samples,
        budget_ms,
        percentile,
        confidence,
        verdict=_VERDICTS[decision],
        warmup=0,
        elapsed_s=float(samples.sum()) / _NS_PER_S,
        stop_reason="settled" if decision != "unsettled" else "fixed_samples",
        looks=1,
        tracing_active=detect_tracing() if detect else None,
        source=source,
        rerun=rerun,
    )


def samples_to_settle(n: int, over: int, percentile: float, confidence: float) -> int | None:
    """The total sample count that would settle the verdict the estimate leans to.

    Assumes the over-budget rate so far (``over / n``) holds: with none over, the count
    at which a pass settles (:func:`..stats.samples_needed_to_pass`); otherwise the
    count at which that rate settles a pass or a fail.  None where that is beyond any
    useful count, i.e. the percentile sits about on the budget.
    """
    if over == 0:
        return samples_needed_to_pass(0, percentile, confidence)
    leans_pass = over <= n - nearest_rank(n, percentile)
    return _samples_at_rate(n, over, percentile, confidence, "pass" if leans_pass else "fail")


def budget_for_throughput(items_per_s: float, batch: int) -> float:
    """The per-call budget in ms equivalent to a throughput floor: ``batch * 1000 / items_per_s``.

    Throughput is judged on the median latency of one batched call (percentile 50): a
    call of *batch* items under this budget delivers at least *items_per_s*.
    """
    if not _is_number(items_per_s) or not 0 < items_per_s < math.inf:
        raise ValueError(f"items_per_s must be a finite number > 0, got {items_per_s!r}")
    if not _is_whole(batch, 1):
        raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")
    return batch * 1000.0 / items_per_s


def throughput_items_per_s(result: LatencyResult, batch: int) -> float:
    """Items per second at the median call latency of *result*, for calls of *batch* items.

    A median below the clock's resolution is counted as 1 ns, so the figure is a lower
    bound there rather than infinite.
    """
    median_ms = max(result.p50_ms, 1 / _NS_PER_MS)
    return batch * 1000.0 / median_ms


# Timing one input repeated and the input pool may differ this much before a note.
CACHE_FLATTERY = 0.10


@dataclass(frozen=True)
class CacheCheck:
    """Median call latency over an input pool against one input repeated, in ms."""

    pool_median_ms: float
    repeated_median_ms: float
    calls: int  # timed calls of each kind

    @property
    def difference(self) -> float:
        """How much the repeated input differs from the pool, relative: -0.25 is 25% faster."""
        return self.repeated_median_ms / max(self.pool_median_ms, 1 / _NS_PER_MS) - 1

    def note(self) -> str:
        """A caveat where the two differ by more than :data:`CACHE_FLATTERY`, else ""."""
        if abs(self.difference) <= CACHE_FLATTERY:
            return ""
        return (
            f"one input repeated took {_fmt_ms(self.repeated_median_ms)} ms at the median"
            f" against {_fmt_ms(self.pool_median_ms)} ms over the input pool"
            f" ({self.difference:+.0%}): a cache may flatter a figure timed on one input;"
            " time with varied inputs (deploy_model.example_inputs() cycles a pool)"
        )


def cache_check(
    run: Callable[[Any], object],
    pool: Sequence[Any],
    *,
    calls: int = 200,
    blocks: int = 10,
    clock: Clock = time.perf_counter_ns,
) -> CacheCheck:
    """Time *run* over the input *pool* and on the pool's first input repeated.

    A documented helper rather than part of ``latency_under``, since only the body
    knows its inputs.  The two kinds alternate in *blocks* of back-to-back calls, so a
    drift of the host falls on both alike; each kind gets about *calls* timed calls
    (a whole number per block) after one untimed call.
    """
    if len(pool) < 2:
        raise ValueError(f"cache_check: the input pool needs at least 2 inputs, got {len(pool)}")
    if not _is_whole(calls, blocks) or not _is_whole(blocks, 1):
        raise ValueError(f"cache_check: need calls >= blocks >= 1, got {calls} and {blocks}")
    run(pool[0])
    pooled: list[int] = []
    repeated: list[int] = []
    per_block = calls // blocks
    for block in range(blocks):  # back to back within a block, as a cache would see them
        start = block * per_block
        pooled += [_time_call(run, pool[(start + i) % len(pool)], clock) for i in range(per_block)]
        repeated += [_time_call(run, pool[0], clock) for _ in range(per_block)]
    return CacheCheck(
        pool_median_ms=float(np.median(pooled)) / _NS_PER_MS,
        repeated_median_ms=float(np.median(repeated)) / _NS_PER_MS,
        calls=len(pooled),
    )


def _time_call(run: Callable[[Any], object], feed: Any, clock: Clock) -> int:
    before = clock()
    run(feed)
    return clock() - before


def detect_tracing() -> str | None:
    """What is tracing or profiling this process, which inflates every timing, or None.

    Finds ``sys.settrace`` (coverage, debuggers), ``sys.setprofile`` and, on Python
    3.12+, ``sys.monitoring`` tools registered as debugger, coverage or profiler.
    """
    found = []
    tracer = sys.gettrace()
    if tracer is not None:
        found.append(f"sys.settrace ({_owner(tracer)})")
    profiler = sys.getprofile()
    if profiler is not None:
        found.append(f"sys.setprofile ({_owner(profiler)})")
    found.extend(_monitoring_tools())
    return ", ".join(found) or None


def _owner(hook: object) -> str:
    """The module a trace or profile function comes from: a hint at coverage or a debugger."""
    return str(getattr(hook, "__module__", None) or type(hook).__module__)


def _monitoring_tools() -> list[str]:
    # sys.monitoring exists from Python 3.12; getattr keeps 3.10 and 3.11 working.
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return []
    found = []
    for kind in ("DEBUGGER", "COVERAGE", "PROFILER"):
        tool = monitoring.get_tool(getattr(monitoring, f"{kind}_ID"))
        if tool is not None:
            found.append(f"sys.monitoring {kind.lower()} tool {tool!r}")
    return found


def _warm_up(
    workload: Callable[[], object],
    policy: SamplingPolicy,
    clock: Clock,
    verify: OutputCheck | None = None,
) -> int:
    """Run the untimed warm-up calls; the number made (fewer if warmup_max_s ran out).

    The first call's return value is *verify*'s reference; without warm-up, one extra
    untimed call gives it.
    """
    deadline = clock() + policy.warmup_max_s * _NS_PER_S
    if verify is not None and policy.warmup == 0:
        verify.set_reference(workload())
    for done in range(1, policy.warmup + 1):
        output = workload()
        if done == 1 and verify is not None:
            verify.set_reference(output)
        if clock() > deadline:
            return done
    return policy.warmup


@dataclass(frozen=True)
class _Run:
    samples_ns: npt.NDArray[np.int64]
    verdict: Verdict
    elapsed_s: float
    stop_reason: StopReason
    looks: int


def _timed_phase(
    workload: Callable[[], object],
    budget_ms: float,
    policy: SamplingPolicy,
    clock: Clock,
    on_progress: Callable[[int, float], None] | None,
    verify: OutputCheck | None = None,
) -> _Run:
    """Collect the samples with garbage collection off, so no pause lands in a call."""
    # The young generations only: enough to start without a pending collection, and a
    # full collection of a big test process can take longer than the measurement.
    gc.collect(1)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _sample(workload, budget_ms, policy, clock, on_progress, verify)
    finally:
        if was_enabled:
            gc.enable()


def _sample(
    workload: Callable[[], object],
    budget_ms: float,
    policy: SamplingPolicy,
    clock: Clock,
    on_progress: Callable[[int, float], None] | None,
    verify: OutputCheck | None = None,
) -> _Run:
    """The timing loop: one sample per call, a decision only at the scheduled looks.

    Sampled outputs are compared after the call's clock stopped, never inside it.
    """
    budget_ns = budget_ms * _NS_PER_MS
    max_time_ns = policy.max_time_s * _NS_PER_S
    schedule = iter(policy.looks)
    next_look = next(schedule)
    samples: list[int] = []
    over = looks = 0
    started = clock()
    while True:
        before = clock()
        output = workload()
        after = clock()
        latency_ns = after - before
        samples.append(latency_ns)
        over += latency_ns > budget_ns
        n, elapsed_s = len(samples), (after - started) / _NS_PER_S
        if verify is not None and verify.wants(n) and not verify.compare(n, output):
            array = np.array(samples, dtype=np.int64)
            return _Run(array, "fail", elapsed_s, "outputs_differ", looks)
        timed_out = after - started > max_time_ns
        if n != next_look and not timed_out:
            continue
        looks += 1
        decision = decide(n, over, policy.percentile, policy.confidence)
        if on_progress is not None:
            on_progress(n, elapsed_s)
        stop = _stop_reason(decision, n, policy.max_samples, timed_out)
        if stop is not None:
            array = np.array(samples, dtype=np.int64)
            return _Run(array, _VERDICTS[decision], elapsed_s, stop, looks)
        next_look = next(schedule)


def _stop_reason(decision: str, n: int, max_samples: int, timed_out: bool) -> StopReason | None:
    if decision != "unsettled":
        return "settled"
    if n >= max_samples:
        return "max_samples"
    if timed_out:
        return "max_time"
    return None


def _result(
    samples_ns: npt.NDArray[np.int64],
    budget_ms: float,
    percentile: float,
    confidence: float,
    *,
    verdict: Verdict,
    warmup: int,
    elapsed_s: float,
    stop_reason: StopReason,
    looks: int,
    tracing_active: str | None,
    source: str,
    rerun: str | None = None,
    outputs: OutputsVerified | None = None,
) -> LatencyResult:
    """Summarise the samples; the judged figures are nearest-rank, in ms."""
    samples_ns = samples_ns.copy()
    samples_ns.setflags(write=False)
    samples_ms = samples_ns / _NS_PER_MS
    n = int(samples_ns.size)
    over = int(np.count_nonzero(samples_ns > budget_ms * _NS_PER_MS))
    ci_low, ci_high = percentile_ci(samples_ms, percentile, CI_CONFIDENCE)
    value_ms = percentile_nearest_rank(samples_ms, percentile)
    advice = _advice(
        verdict, value_ms, budget_ms, percentile, confidence, n, over, elapsed_s, source, rerun
    )
    if outputs is not None and outputs.mismatch is not None:
        advice = (
            f"outputs differ from the untimed reference call's, at {outputs.mismatch}"
            " (verify_outputs needs the same inputs on every call: build them once,"
            " outside the body)"
        )
    return LatencyResult(
        verdict=verdict,
        budget_ms=float(budget_ms),
        percentile=float(percentile),
        confidence=float(confidence),
        n=n,
        warmup=warmup,
        value_ms=value_ms,
        p50_ms=percentile_nearest_rank(samples_ms, 50),
        p90_ms=percentile_nearest_rank(samples_ms, 90),
        p95_ms=percentile_nearest_rank(samples_ms, 95),
        p99_ms=percentile_nearest_rank(samples_ms, 99),
        mean_ms=float(samples_ms.mean()),
        min_ms=float(samples_ms.min()),
        max_ms=float(samples_ms.max()),
        ci_low_ms=ci_low,
        ci_high_ms=ci_high,
        over_budget=over,
        elapsed_s=elapsed_s,
        stop_reason=stop_reason,
        looks=looks,
        advice=advice,
        tracing_active=tracing_active,
        source=source,
        samples_ns=samples_ns,
        outputs=outputs,
    )


def _advice(
    verdict: Verdict,
    value_ms: float,
    budget_ms: float,
    percentile: float,
    confidence: float,
    n: int,
    over: int,
    elapsed_s: float,
    source: str,
    rerun: str | None = None,
) -> str:
    """What the verdict means and, when unsettled, what would settle it."""
    label = f"p{percentile:g} {_fmt_ms(value_ms)} ms"
    if verdict == "pass":
        return ""
    if verdict == "fail":
        return (
            f"{label} is over the budget of {budget_ms:g} ms: {over} of {n} samples"
            f" ({over / n:.1%}) took longer, where at most {100 - percentile:g}% may"
            f" (confidence {confidence:g})"
        )
    taken = (
        f"after {n} samples in {elapsed_s:.1f} s"
        if source == "measured"
        else f"from {n} {source} samples"
    )
    if source == "measured":
        remedy = "raise max_time_s or max_samples"
    elif rerun is not None:
        remedy = _rerun_remedy(rerun, samples_to_settle(n, over, percentile, confidence))
    else:
        remedy = f"take more samples ({source} rounds)"
    return (
        f"inconclusive: {label} vs budget {budget_ms:g} ms {taken};"
        f" {_settle_hint(n, over, percentile, confidence)}"
        f" — {remedy}, or move the budget away from the measured value"
    )


def _settle_hint(n: int, over: int, percentile: float, confidence: float) -> str:
    """How many more samples would settle the verdict the point estimate leans to."""
    if over <= n - nearest_rank(n, percentile):  # the estimate is at or under the budget
        more = samples_needed_to_pass(over, percentile, confidence) - n
        return f"{more} more samples with none over budget would settle a pass"
    rate = over / n
    needed = _samples_at_rate(n, over, percentile, confidence, "fail")
    if needed is None:
        return f"at the current over-budget rate ({rate:.1%}) a fail would need far more samples"
    return (
        f"about {needed - n} more samples at the current over-budget rate ({rate:.1%})"
        " would settle a fail"
    )


def _rerun_remedy(rerun: str, needed: int | None) -> str:
    """The way to take more samples, with the count that would settle the verdict."""
    if needed is None:
        return "no practical number of samples would settle it at the current rate"
    return rerun.format(n=needed)


def _samples_at_rate(
    n: int, over: int, percentile: float, confidence: float, verdict: str
) -> int | None:
    """The sample count at which the rate *over*/*n* settles *verdict* (None: beyond the cap).

    The count over budget is rounded against the verdict (down for a fail, up for a
    pass), in whole numbers so that the current count gives exactly *over*.
    """

    def settles(count: int) -> bool:
        exceed = over * count // n if verdict == "fail" else -(-over * count // n)
        return decide(count, exceed, percentile, confidence) == verdict

    low, high = n, 2 * n
    while not settles(high):
        if high > _FAIL_ADVICE_CAP:
            return None
        low, high = high, high * 2
    while low + 1 < high:  # settles(high) holds; the rate makes it roughly monotone
        middle = (low + high) // 2
        low, high = (low, middle) if settles(middle) else (middle, high)
    return high


def _check_budget(budget_ms: float) -> None:
    if not _is_number(budget_ms) or not 0 < budget_ms < math.inf:
        raise ValueError(
            f"budget_ms must be a finite number of milliseconds > 0, got {budget_ms!r}"
        )


# An interval whose upper bound is this many times the figure is explained in words.
WIDE_INTERVAL_RATIO = 10.0


def wide_interval_reason(n: int, percentile: float, value: float, high: float) -> str:
    """Why the shown interval is far wider than the figure, or "" when it is not.

    Its upper bound is the order statistic just above the percentile; with few samples
    above it the bound is one outlier, or none at all (infinite).
    """
    above = max(0, n - math.ceil(n * percentile / 100.0))
    label = f"p{percentile:g}"
    if math.isinf(high):
        return (
            f"too few samples above {label} to bound it ({above} of {n});"
            f" about {_samples_for_finite_bound(n, percentile)} samples would"
        )
    if value > 0 and high > WIDE_INTERVAL_RATIO * value:
        return f"wide: only {above} of {n} samples lie above {label}"
    return ""


def _samples_for_finite_bound(n: int, percentile: float) -> int:
    """The fewest samples whose displayed interval has a finite upper bound."""

    def finite(count: int) -> bool:
        return percentile_ci_ranks(count, percentile, CI_CONFIDENCE)[1] <= count

    low, high = n, max(2 * n, 2)
    while not finite(high) and high < 10_000_000:
        low, high = high, high * 2
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (low, middle) if finite(middle) else (middle, high)
    return high


def _fmt_ms(value: float) -> str:
    """Milliseconds with about three significant figures: 61.2, 1.23, 0.0456, 152.3."""
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
