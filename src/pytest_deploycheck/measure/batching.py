"""The batching trade-off: a real dynamic batcher under Poisson arrivals.

A single-model service has one model instance and a batcher in front of it: requests
wait until ``max_batch`` of them are pending or the oldest has waited ``max_wait_ms``,
then one call runs them together.  Bigger batches raise the throughput the model can
give (the seeds' table: batch 32 in 150 ms is 213 images/s, batch 1 in 100 ms is 10)
and every request pays the wait and the longer batch.  :func:`run_batching_window`
measures one setting for real: requests arrive on a seeded Poisson schedule, the
batcher (run in the calling thread, as the one thread of the service) forms batches by
that rule and calls ``run_batch(n)``; each request's latency is the end of its batch
minus its arrival.  The schedule is known in advance, so the batcher sleeps straight to
the moment its rule fires (the oldest request's deadline, or the arrival that fills
the batch) instead of polling.

The judging follows :mod:`pytest_deploycheck.measure.load`: requests in the warm-up are
run but not judged; the achieved rate is the judged items completed over the window (to
the later of the schedule's end and the last completion) and a run short of the offered
schedule by more than 5%, whose waiting grows, or that had to give up on requests after
the drain, saturates; a batch that started more than 1 ms after its rule fired (the
sleep overslept) is late, and more than 1% late batches (and more than one) make the run
invalid. :func:`best_setting` picks the serving configuration: the highest throughput
among the settings that meet the latency budget, where throughputs within 2% are a tie
(at a fixed offered rate every unsaturated setting carries about the same load) broken
by the lower latency.
"""

from __future__ import annotations

import bisect
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .load import (
    MAX_ERROR_SAMPLES,
    NS_PER_MS,
    NS_PER_S,
    SATURATION_TOLERANCE,
    SCHEDULE_TOLERANCE_MS,
    Clock,
    SleepUntil,
    default_sleep_until,
    percentiles_ms,
    poisson_arrivals,
    queue_growth,
)

RunBatch = Callable[[int], object]
LATE_FRACTION = 0.01
LATE_ALLOWED = 1  # one late batch never makes a run invalid (see measure.load)
THROUGHPUT_TIE = 0.02


@dataclass(frozen=True)
class Batch:
    """One batch the batcher ran: its first request, size and times (ns)."""

    first: int
    size: int
    due: int
    start: int
    end: int
    error: str | None


@dataclass
class _Batcher:
    """The batcher's state: the schedule, what it ran and when it must give up."""

    run_batch: RunBatch
    scheduled: list[int]
    max_batch: int
    max_wait_ns: int
    stop_at: int
    clock: Clock
    sleep_until: SleepUntil
    batches: list[Batch] = field(default_factory=list)

    def due(self, first: int, free_at: int) -> int:
        """When the rule fires for the batch starting at *first*: deadline or full batch."""
        fill = first + self.max_batch - 1
        trigger = self.scheduled[first] + self.max_wait_ns
        if fill < len(self.scheduled):
            trigger = min(trigger, self.scheduled[fill])
        return max(trigger, free_at)

    def run_one(self, first: int, free_at: int) -> int:
        """Wait for the rule, run the batch, and return the index of the next pending."""
        due = self.due(first, free_at)
        if due > self.clock():
            self.sleep_until(due)
        now = self.clock()
        limit = min(len(self.scheduled), first + self.max_batch)
        after = max(first + 1, bisect.bisect_right(self.scheduled, now, first, limit))
        start = self.clock()
        error = _call(self.run_batch, after - first)
        self.batches.append(Batch(first, after - first, due, start, self.clock(), error))
        return after

    def run(self, origin: int) -> int:
        """Run batches until every request is served or the drain ends; the next pending."""
        first, free_at = 0, origin
        while first < len(self.scheduled) and self.clock() <= self.stop_at:
            first = self.run_one(first, free_at)
            free_at = self.batches[-1].end
        return first


def _call(run_batch: RunBatch, size: int) -> str | None:
    try:
        run_batch(size)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


@dataclass(frozen=True)
class BatchingResult:
    """One batching setting under one arrival rate: latency, throughput, batch sizes."""

    max_batch: int
    max_wait_ms: float
    offered_qps: float
    scheduled_qps: float
    achieved_qps: float
    requests: int
    errors: int
    error_samples: list[str]
    dropped: int
    batches: int
    mean_batch: float
    full_batches: int
    busy_fraction: float
    percentile: float
    percentile_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    generator_valid: bool
    invalid_reason: str | None
    saturated: bool
    saturation_reason: str | None
    duration_s: float
    seed: int
    latency_samples_ns: list[int] = field(repr=False)
    batch_sizes: list[int] = field(repr=False)

    @property
    def throughput_items_per_s(self) -> float:
        """Items served per second of the window (the achieved rate, in items)."""
        return self.achieved_qps

    def latency_at(self, percentile: float) -> float | None:
        """The nearest-rank *percentile* of the judged latencies, in ms."""
        return percentiles_ms(self.latency_samples_ns, (percentile,))[0]

    def as_extra(self, *, samples: bool = False) -> dict[str, Any]:
        """Plain JSON figures; the raw latencies and batch sizes only when asked for."""
        raw = ("latency_samples_ns", "batch_sizes")
        extra = {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in raw}
        extra["error_samples"] = list(self.error_samples)
        extra["throughput_items_per_s"] = self.throughput_items_per_s
        if samples:
            extra.update({name: list(getattr(self, name)) for name in raw})
        return extra

    def display(self) -> str:
        """A short phrase, e.g. ``batch<=32 wait 50 ms: 99.8 items/s, p99 140.2 ms``."""
        value = "n/a" if self.percentile_ms is None else f"{self.percentile_ms:.1f} ms"
        return (
            f"batch<={self.max_batch} wait {self.max_wait_ms:g} ms: "
            f"{self.achieved_qps:.1f} items/s (mean batch {self.mean_batch:.1f}), "
            f"p{self.percentile:g} {value}"
        )


def _check_setting(qps: float, max_batch: int, max_wait_ms: float, duration_s: float) -> None:
    if not qps > 0:
        raise ValueError(f"run_batching_window qps must be > 0 req/s, got {qps!r}")
    if not (isinstance(max_batch, int) and not isinstance(max_batch, bool) and max_batch >= 1):
        raise ValueError(
            f"run_batching_window max_batch must be a whole number >= 1, got {max_batch!r}"
        )
    if not max_wait_ms >= 0:
        raise ValueError(f"run_batching_window max_wait_ms must be >= 0 ms, got {max_wait_ms!r}")
    if not duration_s > 0:
        raise ValueError(f"run_batching_window duration_s must be > 0 s, got {duration_s!r}")


def run_batching_window(
    run_batch: RunBatch,
    *,
    qps: float,
    max_batch: int,
    max_wait_ms: float,
    duration_s: float,
    warmup_s: float = 0.0,
    percentile: float = 99.0,
    seed: int | None = None,
    drain_s: float | None = None,
    clock: Clock = time.perf_counter_ns,
    sleep_until: SleepUntil | None = None,
    arrivals_ns: Sequence[int] | None = None,
) -> BatchingResult:
    """Serve a Poisson schedule at *qps* through a (max_batch, max_wait_ms) batcher.

    *arrivals_ns* replaces the Poisson schedule (offsets from the start, tests and
    replays); requests still pending *drain_s* (default ``max(1 s, 25%)`` of the run)
    after the schedule ends are dropped and saturate the run.
    """
    _check_setting(qps, max_batch, max_wait_ms, duration_s)
    used_seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    total_s = warmup_s + duration_s
    if arrivals_ns is None:
        arrivals_ns = poisson_arrivals(qps, total_s, random.Random(used_seed))
    drain = drain_s if drain_s is not None else max(1.0, 0.25 * total_s)
    origin = clock()
    batcher = _Batcher(
        run_batch=run_batch,
        scheduled=[origin + offset for offset in sorted(arrivals_ns)],
        max_batch=max_batch,
        max_wait_ns=round(max_wait_ms * NS_PER_MS),
        stop_at=origin + round((total_s + drain) * NS_PER_S),
        clock=clock,
        sleep_until=sleep_until or default_sleep_until(clock),
    )
    served = batcher.run(origin)
    window = _Window(
        origin, origin + round(warmup_s * NS_PER_S), origin + round(total_s * NS_PER_S), clock()
    )
    return _summarise(batcher, window, served, qps, max_wait_ms, duration_s, percentile, used_seed)


@dataclass(frozen=True)
class _Window:
    origin: int
    judged_from: int
    cutoff: int
    finished: int


def _per_request(batcher: _Batcher, served: int) -> tuple[list[int], list[int], list[bool]]:
    """Start, end and failure of every served request, from the batches that carried it."""
    start, end, failed = [0] * served, [0] * served, [False] * served
    for batch in batcher.batches:
        for index in range(batch.first, batch.first + batch.size):
            start[index], end[index] = batch.start, batch.end
            failed[index] = batch.error is not None
    return start, end, failed


def _saturation(
    offered: float, arrived: float, achieved: float, dropped: int, growth: float | None
) -> tuple[bool, str | None]:
    rates = f"offered {offered:.1f} req/s, achieved {achieved:.1f} req/s: the service saturates"
    if dropped:
        return True, f"{rates} ({dropped} requests never served before the drain)"
    if arrived > 0 and achieved < (1 - SATURATION_TOLERANCE) * arrived:
        return True, rates
    if growth is not None and growth > SATURATION_TOLERANCE:
        return True, f"{rates} (waiting grows {growth * 1000:.0f} ms per second)"
    return False, None


def _validity(batches: Sequence[Batch]) -> tuple[bool, str | None]:
    limit = SCHEDULE_TOLERANCE_MS * NS_PER_MS
    late = sum(batch.start - batch.due > limit for batch in batches)
    if batches and late > max(LATE_ALLOWED, LATE_FRACTION * len(batches)):
        return False, (
            f"the batcher could not keep its schedule: {late} of {len(batches)} batches "
            f"started more than {SCHEDULE_TOLERANCE_MS:g} ms after their rule fired"
        )
    return True, None


@dataclass(frozen=True)
class _Judged:
    """The judged requests' latencies, rates and saturation."""

    latency_ns: list[int]
    dropped: int
    errors: int
    arrived: float
    achieved: float
    saturated: bool
    saturation_reason: str | None


def _judge(batcher: _Batcher, window: _Window, served: int, offered: float) -> _Judged:
    scheduled = batcher.scheduled
    start, end, failed = _per_request(batcher, served)
    judged = [i for i, arrival in enumerate(scheduled) if arrival >= window.judged_from]
    done = [i for i in judged if i < served]
    dropped = len(judged) - len(done)
    latency_ns = [end[i] - scheduled[i] for i in done if not failed[i]]
    given_up = max(window.finished, batcher.stop_at)
    latency_ns += [given_up - scheduled[i] for i in judged[len(done) :]]
    span_ns = max(window.cutoff - window.judged_from, 1)
    busy_ns = max(max([end[i] for i in done] + [window.cutoff]) - window.judged_from, 1)
    arrived, achieved = len(judged) * NS_PER_S / span_ns, len(done) * NS_PER_S / busy_ns
    growth = queue_growth([scheduled[i] for i in done], [start[i] - scheduled[i] for i in done])
    saturated, reason = _saturation(offered, arrived, achieved, dropped, growth)
    errors = sum(failed[i] for i in done)
    return _Judged(latency_ns, dropped, errors, arrived, achieved, saturated, reason)


def _summarise(
    batcher: _Batcher,
    window: _Window,
    served: int,
    offered: float,
    max_wait_ms: float,
    duration_s: float,
    percentile: float,
    seed: int,
) -> BatchingResult:
    judged = _judge(batcher, window, served, offered)
    latency_ns, dropped = judged.latency_ns, judged.dropped
    valid, invalid_reason = _validity(batcher.batches)
    p50, p90, p99, peak, value = percentiles_ms(latency_ns, (50, 90, 99, 100, percentile))
    sizes = [batch.size for batch in batcher.batches]
    errors = [batch.error for batch in batcher.batches if batch.error is not None]
    busy = sum(batch.end - batch.start for batch in batcher.batches)
    return BatchingResult(
        max_batch=batcher.max_batch,
        max_wait_ms=max_wait_ms,
        offered_qps=offered,
        scheduled_qps=judged.arrived,
        achieved_qps=judged.achieved,
        requests=len(latency_ns) - dropped,
        errors=judged.errors,
        error_samples=errors[:MAX_ERROR_SAMPLES],
        dropped=dropped,
        batches=len(sizes),
        mean_batch=sum(sizes) / len(sizes) if sizes else 0.0,
        full_batches=sum(size == batcher.max_batch for size in sizes),
        busy_fraction=busy / max(window.finished - window.origin, 1),
        percentile=percentile,
        percentile_ms=value,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=peak,
        generator_valid=valid,
        invalid_reason=invalid_reason,
        saturated=judged.saturated,
        saturation_reason=judged.saturation_reason,
        duration_s=duration_s,
        seed=seed,
        latency_samples_ns=latency_ns,
        batch_sizes=sizes,
    )


# --- choosing a setting ----------------------------------------------------------------


@dataclass(frozen=True)
class BatchingChoice:
    """The best setting that meets the budget (None when none does) and why."""

    best: BatchingResult | None
    reason: str
    eligible: list[BatchingResult]

    def as_extra(self) -> dict[str, Any]:
        """Plain JSON: the chosen setting's figures and the reason."""
        best = None if self.best is None else self.best.as_extra()
        return {"best": best, "reason": self.reason, "eligible": len(self.eligible)}


def meets_budget(result: BatchingResult, latency_ms: float, percentile: float) -> bool:
    """Valid, unsaturated, error-free and within *latency_ms* at *percentile*."""
    value = result.latency_at(percentile) if result.latency_samples_ns else None
    return (
        result.generator_valid
        and not result.saturated
        and result.errors == 0
        and value is not None
        and value <= latency_ms
    )


def _rank(result: BatchingResult, top: float, percentile: float) -> tuple[int, float, int]:
    """Sort key: throughput within 2% of the best ties, then lower latency, smaller batch."""
    tied = result.achieved_qps >= (1 - THROUGHPUT_TIE) * top
    latency = result.latency_at(percentile)
    return (0 if tied else 1, latency if latency is not None else math.inf, result.max_batch)


def best_setting(
    results: Sequence[BatchingResult], latency_ms: float, percentile: float = 99.0
) -> BatchingChoice:
    """The serving configuration: the highest throughput among settings within the budget.

    Throughputs within 2% of the highest tie, and the lower latency wins among them.
    """
    eligible = [result for result in results if meets_budget(result, latency_ms, percentile)]
    budget = f"p{percentile:g} <= {latency_ms:g} ms"
    if not eligible:
        tried = "; ".join(result.display() for result in results) or "no setting was measured"
        return BatchingChoice(None, f"no setting meets {budget}: {tried}", [])
    top = max(result.achieved_qps for result in eligible)
    best = min(eligible, key=lambda result: _rank(result, top, percentile))
    reason = (
        f"{best.display()}: the highest throughput within {budget} "
        f"({len(eligible)} of {len(results)} settings meet it)"
    )
    return BatchingChoice(best, reason, eligible)


def sweep_batching(
    run_batch: RunBatch,
    settings: Sequence[tuple[int, float]],
    **window: Any,
) -> list[BatchingResult]:
    """One :func:`run_batching_window` per ``(max_batch, max_wait_ms)``.

    Give ``seed`` (or ``arrivals_ns``) so every setting sees the same schedule.
    """
    return [
        run_batching_window(run_batch, max_batch=max_batch, max_wait_ms=wait, **window)
        for max_batch, wait in settings
    ]
