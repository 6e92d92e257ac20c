"""The service under load as checks: open-loop latency, concurrent clients, capacity, batching.

``latency_under(qps=...)`` and ``latency_under(clients=...)`` judge the same figure as
the closed-loop check (the body's latency percentile against the budget) under load;
``capacity_over`` searches the highest rate that holds a latency bound;
``batching_window`` measures a model behind a dynamic batcher.  Every measurement runs
pinned to the target's cores, as the closed-loop check does, and carries the host-speed
canary read beside it.  Heavy modules are imported per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config.schema import Device
from ..config.units import format_value
from ..markers import BudgetRequest
from ..measure.progress import Progress, ProgressSink
from . import metrics
from .budget import canary_now, long_work, target_factor, with_host_canary
from .record import Check

if TYPE_CHECKING:
    from ..measure.batching import BatchingChoice, BatchingResult
    from ..measure.capacity import CapacityResult, StepOutcome
    from ..measure.load import ClientsResult, LoadResult
    from ..measure.pinning import Pinning

Workload = Callable[[], object]


@contextmanager
def _pinned(device: Device | None) -> Iterator[Pinning]:
    from ..measure.pinning import pinned_to_cpus

    with pinned_to_cpus(device.cpus if device else None) as pinning:
        yield pinning


def _ms(value: float | None) -> str:
    return "n/a" if value is None else format_value(value, "ms")


def _errors_reason(errors: int, total: int, samples: Sequence[str]) -> str:
    first = f"; first: {samples[0]}" if samples else ""
    return f"{errors} of {total} requests raised{first}"


def _samples_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """``latency_samples_ns`` under ``samples_ns``, where the regression gate reads them."""
    extra["samples_ns"] = extra.pop("latency_samples_ns", [])
    return extra


def _estimate_note(factor: float, device: Device | None) -> list[str]:
    if factor == 1.0 or device is None:
        return []
    return [
        f"measured on the host and scaled by {device.name}'s latency factor {factor:g}:"
        " queueing at the device's own speed may differ"
    ]


# --------------------------------------------------------------------------- open loop


def open_loop_verdict(result: LoadResult, budget_ms: float) -> tuple[bool | None, str]:
    """Errors and saturation fail, a generator that fell behind is inconclusive, else the budget.

    A generator that only started requests late (no worker hung) still leaves a pass
    standing: every latency counts from the scheduled arrival, so its lateness is inside
    the figure and can only overstate it.  A failure or a saturation it may have caused
    is inconclusive instead: the generator, not the service, may be what fell behind.
    """
    total = result.requests + result.errors + result.dropped
    if result.errors:
        return False, _errors_reason(result.errors, total, result.error_samples)
    invalid = result.invalid_reason or "the load generator could not keep its schedule"
    if not result.generator_valid and not result.generator_late:
        return None, invalid
    late = not result.generator_valid
    if result.saturated:
        saturation = result.saturation_reason or "the service saturates"
        return (
            (None, f"{saturation}; but {invalid}: rerun on a quieter host")
            if late
            else (
                False,
                saturation,
            )
        )
    if result.percentile_ms is None:
        return None, "no request completed in the judged window"
    if result.percentile_ms > budget_ms:
        over = (
            f"p{result.percentile:g} {_ms(result.percentile_ms)} from scheduled arrival is"
            f" over the budget of {_ms(budget_ms)} at {result.offered_qps:g} req/s"
        )
        return (None, f"{over}; but {invalid}: rerun on a quieter host") if late else (False, over)
    if late:
        return True, (
            f"{invalid}; latencies count from the scheduled arrivals, so the lateness is"
            " inside the figure: within budget all the same"
        )
    return True, ""


def open_loop_display(result: LoadResult, factor: float = 1.0) -> str:
    """Offered/achieved rates, p50/p90/p99/max, queueing p99 and errors, in one phrase."""

    def scaled(value: float | None) -> str:
        return _ms(None if value is None else value * factor)

    return (
        f"p{result.percentile:g} {scaled(result.percentile_ms)} at"
        f" {result.offered_qps:.1f} req/s offered, {result.achieved_qps:.1f} achieved"
        f" (p50 {scaled(result.p50_ms)}, p90 {scaled(result.p90_ms)},"
        f" p99 {scaled(result.p99_ms)}, max {scaled(result.max_ms)};"
        f" queueing p99 {scaled(result.queue_p99_ms)}; {result.errors} errors)"
        + (" estimated" if factor != 1.0 else "")
    )


def open_loop_check(
    request: BudgetRequest,
    workload: Workload,
    *,
    default_percentile: float,
    device: Device | None,
    sink: ProgressSink | None = None,
    label: str = "",
) -> Check:
    """Poisson arrivals at the marker's qps; the percentile from each scheduled arrival."""
    from ..measure.load import LoadPlan, run_open_loop

    percentile = request["percentile"] or default_percentile
    factor = target_factor(device)
    name = f"latency_under_{request.budget:g}"
    plan = LoadPlan(
        qps=request["qps"],
        duration_s=request["duration_s"],
        concurrency=request["concurrency"],
        warmup_s=request["warmup_s"],
        seed=request["seed"],
        percentile=percentile,
        budget_ms=request.budget / factor,
        confidence=request["confidence"],
    )
    progress = long_work(sink, f"{name} {label}".strip(), plan.total_s)
    canary_before = canary_now(device)
    with _pinned(device) as pinning:
        result = run_open_loop(workload, plan)
    passed, reason = open_loop_verdict(result, request.budget / factor)
    return _loaded_check(
        _Judged(name, request, percentile, factor, device, pinning, passed, reason),
        result,
        "open_loop",
        open_loop_display(result, factor),
        canary_before,
        progress,
    )


@dataclass(frozen=True)
class _Judged:
    """What an open-loop or clients run was judged with, for :func:`_loaded_check`."""

    name: str
    request: BudgetRequest
    percentile: float
    factor: float
    device: Device | None
    pinning: Pinning
    passed: bool | None
    reason: str


def _loaded_check(
    judged: _Judged,
    result: LoadResult | ClientsResult,
    mode: str,
    display: str,
    canary_before: float,
    progress: Progress,
) -> Check:
    """The latency check of a load run: figures in the target's terms, canary beside."""
    factor, device, pinning = judged.factor, judged.device, judged.pinning
    notes = [note for note in (pinning.caveat(estimated=factor != 1.0),) if note]
    notes += _estimate_note(factor, device)
    budget_ms = judged.request.budget / factor
    extra = _samples_extra(result.as_extra(samples=True))
    extra.update(_judged_extra(budget_ms, result.percentile_ms, factor, pinning))
    extra["mode"] = mode
    check = Check(
        name=judged.name,
        metric=metrics.latency_metric(judged.percentile),
        value=None if result.percentile_ms is None else result.percentile_ms * factor,
        unit="ms",
        budget=judged.request.budget,
        passed=judged.passed,
        provenance="estimated" if factor != 1.0 else "measured",
        details="; ".join(part for part in (judged.reason, *notes) if part),
        extra=extra,
        display=display,
        notes=tuple(notes),
    )
    check = with_host_canary(check, canary_before, device)
    progress.finish(f"{check.status} {check.display}")
    return check


def _judged_extra(
    budget_ms: float, value_ms: float | None, factor: float, pinning: Pinning
) -> dict[str, Any]:
    """The keys the report's chart and the gates read beside the samples (host terms)."""
    return {
        "budget_ms": budget_ms,
        "value_ms": value_ms,
        "host_value_ms": value_ms,
        "latency_factor": factor if factor != 1.0 else None,
        "pinning": pinning.note,
    }


# --------------------------------------------------------------------------- clients


def clients_verdict(result: ClientsResult, budget_ms: float) -> tuple[bool | None, str]:
    """Errors fail, a hung client is inconclusive, else the aggregate percentile."""
    if result.errors:
        total = result.requests + result.errors
        return False, _errors_reason(result.errors, total, result.error_samples)
    if result.hung_clients:
        return None, f"{result.hung_clients} clients were still inside the body when the run ended"
    if result.percentile_ms is None:
        return None, "no request completed in the judged window"
    if result.percentile_ms > budget_ms:
        return False, (
            f"p{result.percentile:g} {_ms(result.percentile_ms)} over {result.clients} clients"
            f" is over the budget of {_ms(budget_ms)}"
        )
    return True, ""


def clients_display(result: ClientsResult, factor: float = 1.0) -> str:
    """The aggregate figure and each client's p99, in one phrase."""
    per_client = ", ".join(
        f"#{stats.client} {_ms(None if stats.p99_ms is None else stats.p99_ms * factor)}"
        for stats in result.per_client
    )
    value = None if result.percentile_ms is None else result.percentile_ms * factor
    return (
        f"{result.clients} clients: p{result.percentile:g} {_ms(value)} in all,"
        f" {result.throughput_qps:.1f} req/s; p99 per client {per_client};"
        f" {result.errors} errors" + (" estimated" if factor != 1.0 else "")
    )


def clients_check(
    request: BudgetRequest,
    workload: Workload,
    *,
    default_percentile: float,
    device: Device | None,
    sink: ProgressSink | None = None,
    label: str = "",
) -> Check:
    """N closed-loop clients at once; judged on the aggregate percentile."""
    from ..measure.load import run_closed_loop_clients

    percentile = request["percentile"] or default_percentile
    factor = target_factor(device)
    name = f"latency_under_{request.budget:g}"
    total_s = request["warmup_s"] + request["duration_s"]
    progress = long_work(sink, f"{name} {label}".strip(), total_s)
    canary_before = canary_now(device)
    with _pinned(device) as pinning:
        result = run_closed_loop_clients(
            workload,
            request["clients"],
            request["duration_s"],
            warmup_s=request["warmup_s"],
            percentile=percentile,
        )
    passed, reason = clients_verdict(result, request.budget / factor)
    return _loaded_check(
        _Judged(name, request, percentile, factor, device, pinning, passed, reason),
        result,
        "clients",
        clients_display(result, factor),
        canary_before,
        progress,
    )


# --------------------------------------------------------------------------- capacity


def timed_steps(
    measure_at: Callable[[float], StepOutcome],
    max_time_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[float], StepOutcome]:
    """*measure_at* that stops measuring once *max_time_s* is spent.

    A step asked for after that is an invalid step, which bounds the search from above
    without claiming a failure, so the search ends at once and inconclusively.
    """
    from ..measure.capacity import StepOutcome

    deadline = clock() + max_time_s

    def bounded(rate: float) -> StepOutcome:
        if clock() >= deadline:
            reason = f"max_time_s of {max_time_s:g} s spent before this step"
            return StepOutcome(
                rate=rate, percentile_ms=None, achieved_qps=0.0, valid=False, reason=reason
            )
        return measure_at(rate)

    return bounded


def capacity_verdict(result: CapacityResult, budget_qps: float) -> tuple[bool | None, str]:
    """Pass at or over the budget, fail under it, inconclusive when the search hid it."""
    meets = result.meets(budget_qps)
    if meets is True:
        return True, ""
    if meets is False:
        return False, (
            f"capacity {result.capacity_qps:.1f} req/s is under the budget of"
            f" {budget_qps:g} req/s: {result.reason}"
        )
    return None, (f"capacity unknown against {budget_qps:g} req/s: {result.reason}")


def capacity_extra(result: CapacityResult, budget_qps: float) -> dict[str, Any]:
    """The search's figures and the curve (rate -> percentile, achieved, errors, holds)."""
    extra = result.as_extra()
    extra["budget_qps"] = budget_qps
    return extra


def capacity_check(
    request: BudgetRequest,
    workload: Workload,
    *,
    device: Device | None,
    sink: ProgressSink | None = None,
    label: str = "",
) -> Check:
    """The highest Poisson rate within the latency bound, against the budget rate."""
    from ..measure.capacity import find_capacity, load_step

    factor = target_factor(device)
    latency_ms = request["latency_ms"]
    name = f"capacity_over_{request.budget:g}"
    progress = long_work(sink, f"{name} {label}".strip(), request["max_time_s"])
    step = load_step(
        workload,
        latency_ms=latency_ms / factor,
        percentile=request["percentile"],
        concurrency=request["concurrency"],
        warmup_s=request["warmup_s"],
        seed=request["seed"],
        min_tail_samples=request["min_tail_samples"],
        confidence=request["confidence"],
        min_duration_s=request["min_step_s"],
    )
    canary_before = canary_now(device)
    with _pinned(device) as pinning:
        result = find_capacity(
            timed_steps(step, request["max_time_s"]),
            latency_ms=latency_ms / factor,
            percentile=request["percentile"],
            start_qps=request["start_qps"] or request.budget,
            max_qps=request["max_qps"],
        )
    passed, reason = capacity_verdict(result, request.budget)
    notes = [note for note in (pinning.caveat(estimated=factor != 1.0),) if note]
    notes += _estimate_note(factor, device)
    extra = capacity_extra(result, request.budget)
    extra.update({"pinning": pinning.note, "latency_factor": factor if factor != 1.0 else None})
    check = Check(
        name=name,
        metric=metrics.CAPACITY,
        value=result.capacity_qps,
        unit="req/s",
        budget=request.budget,
        passed=passed,
        provenance="estimated" if factor != 1.0 else "measured",
        details="; ".join(part for part in (reason or result.reason, *notes) if part),
        extra=extra,
        display=f"{result.display()} ({len(result.curve)} steps)",
        notes=tuple(notes),
    )
    check = with_host_canary(check, canary_before, device)
    progress.finish(f"{check.status} {check.display}")
    return check


# --------------------------------------------------------------------------- batching


def batching_settings(request: BudgetRequest) -> list[tuple[int, float]]:
    """Every (max_batch, max_wait_ms) of the marker, in the order written."""
    return [(batch, wait) for batch in request["max_batch"] for wait in request["max_wait_ms"]]


def batching_details(
    results: Sequence[BatchingResult], choice: BatchingChoice, latency_ms: float
) -> str:
    """The serving-config evidence: one line per setting, then the choice."""
    from ..measure.batching import meets_budget

    percentile = results[0].percentile if results else 99.0
    lines = [
        f"{result.display()} — "
        + ("meets" if meets_budget(result, latency_ms, percentile) else _missed(result))
        for result in results
    ]
    return "\n".join([*lines, f"best: {choice.reason}"])


def _missed(result: BatchingResult) -> str:
    if not result.generator_valid:
        return f"invalid ({result.invalid_reason})"
    if result.saturated:
        return str(result.saturation_reason)
    if result.errors:
        first = result.error_samples[0] if result.error_samples else ""
        return f"{result.errors} requests failed ({first})"
    return "over the budget"


def batching_check(
    request: BudgetRequest,
    run_batch: Callable[[int], object],
    *,
    model: str,
    device: Device | None,
    sink: ProgressSink | None = None,
    label: str = "",
) -> Check:
    """Each batching setting at the marker's rate; the best one within the latency budget."""
    import random

    from ..measure.batching import best_setting, sweep_batching

    settings = batching_settings(request)
    name = f"batching_window[{model}]"
    total_s = (request["warmup_s"] + request["duration_s"]) * len(settings)
    progress = long_work(sink, f"{name} {label}".strip(), total_s)
    seed = request["seed"] if request["seed"] is not None else random.randrange(2**32)
    canary_before = canary_now(device)
    with _pinned(device) as pinning:
        results = sweep_batching(
            run_batch,
            settings,
            qps=request["qps"],
            duration_s=request["duration_s"],
            warmup_s=request["warmup_s"],
            percentile=request["percentile"],
            seed=seed,
        )
    choice = best_setting(results, request.budget, request["percentile"])
    best = choice.best
    notes = [note for note in (pinning.caveat(estimated=False),) if note]
    check = Check(
        name=name,
        metric=metrics.BATCHING,
        value=None if best is None else best.throughput_items_per_s,
        unit="items/s",
        budget=request.budget,
        passed=best is not None,
        provenance="measured",
        details=batching_details(results, choice, request.budget),
        extra={
            "model": model,
            "qps": request["qps"],
            "latency_ms": request.budget,
            "percentile": request["percentile"],
            "seed": seed,
            "settings": [result.as_extra() for result in results],
            **{key: value for key, value in choice.as_extra().items() if key != "eligible"},
            "eligible": len(choice.eligible),
            "pinning": pinning.note,
        },
        display=_batching_display(best, len(results)),
        models=(model,),
        notes=tuple(notes),
    )
    check = with_host_canary(check, canary_before, device)
    progress.finish(f"{check.status} {check.display}")
    return check


def _batching_display(best: BatchingResult | None, tried: int) -> str:
    if best is None:
        return f"no setting of {tried} meets the budget"
    return f"best of {tried} settings: {best.display()}"
