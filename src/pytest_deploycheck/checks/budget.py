"""Run a budget marker's measurement and turn its result into a check.

The plugin hands over the workload (the test body as a callable) and the target; this
module measures on the target's terms (pinned cores, latency factor), judges, and
labels every figure measured or estimated.  Heavy modules are imported per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..config.schema import Device
from ..config.units import format_value
from ..markers import BudgetRequest
from ..measure.progress import NullSink, Progress, ProgressSink
from .record import Check

if TYPE_CHECKING:
    from ..measure.coldstart import ColdStartResult
    from ..measure.latency import LatencyResult
    from ..measure.memory import MemoryResult
    from ..measure.pinning import Pinning

PASSED = {"pass": True, "fail": False, "inconclusive": None}
# The median settles after about a dozen calls, but a throughput figure (and a later
# regression test of it) needs more calls than that to be worth reading.
THROUGHPUT_MIN_SAMPLES = 50
# A measurement that has not settled after this long shows progress.
LONG_MEASUREMENT_S = 2.0


def latency_check(
    request: BudgetRequest,
    workload: Callable[[], object],
    *,
    default_percentile: float,
    device: Device | None,
    sink: ProgressSink | None = None,
    label: str = "",
) -> Check:
    """Time *workload* on the target's cores until the percentile's verdict settles."""
    from ..measure.latency import measure_latency
    from ..measure.pinning import pinned_to_cpus

    percentile = request["percentile"] or default_percentile
    factor = _factor(device)
    policy = _policy(request, percentile)
    name = f"latency_under_{request.budget:g}"
    progress = _long_work(sink, f"{name} {label}".strip(), policy.max_time_s)
    with pinned_to_cpus(device.cpus if device else None) as pinning:
        result = measure_latency(
            workload, request.budget / factor, policy, on_progress=_reporter(progress)
        )
    check = _latency_result_check(name, request.budget, result, factor, device, pinning)
    progress.finish(f"{check.status} {check.extra['display']}")
    return check


def _long_work(sink: ProgressSink | None, label: str, max_time_s: float) -> Progress:
    """Progress of a measurement that is still unsettled after a couple of seconds."""
    return Progress(sink or NullSink(), label, max_time_s, delay_s=LONG_MEASUREMENT_S)


def _reporter(progress: Progress) -> Callable[[int, float], None]:
    def on_look(samples: int, elapsed_s: float) -> None:
        progress.update(elapsed_s, f"{samples:,} calls timed, verdict not settled yet")

    return on_look


def benchmark_check(
    request: BudgetRequest,
    samples_s: Sequence[float],
    *,
    default_percentile: float,
    device: Device | None,
) -> Check:
    """Judge the samples pytest-benchmark already took, without running anything again."""
    from ..measure.latency import judge_samples

    percentile = request["percentile"] or default_percentile
    factor = _factor(device)
    samples_ns = [round(s * 1e9) for s in samples_s]
    result = judge_samples(
        samples_ns,
        request.budget / factor,
        percentile,
        request["confidence"],
        source="pytest-benchmark",
    )
    name = f"latency_under_{request.budget:g}"
    return _latency_result_check(name, request.budget, result, factor, device, None)


def throughput_check(
    request: BudgetRequest,
    workload: Callable[[], object],
    *,
    batch: int,
    device: Device | None,
    sink: ProgressSink | None = None,
    label: str = "",
) -> Check:
    """Throughput of batched calls, judged on the median call latency."""
    from ..measure.latency import (
        budget_for_throughput,
        measure_latency,
        throughput_items_per_s,
    )
    from ..measure.pinning import pinned_to_cpus

    factor = _factor(device)
    budget_ms = budget_for_throughput(request.budget, batch)
    policy = _policy(request, 50.0, default_min_samples=THROUGHPUT_MIN_SAMPLES)
    name = f"throughput_over_{request.budget:g}[batch={batch}]"
    progress = _long_work(sink, f"{name} {label}".strip(), policy.max_time_s)
    with pinned_to_cpus(device.cpus if device else None) as pinning:
        result = measure_latency(
            workload, budget_ms / factor, policy, on_progress=_reporter(progress)
        )
    items_per_s = throughput_items_per_s(result, batch) / factor
    estimated = factor != 1.0
    extra = {
        **result.as_extra(include_samples=True),
        "batch": batch,
        "items_per_s": items_per_s,
        "latency_ms_per_batch": result.p50_ms * factor,
        "latency_factor": factor if estimated else None,
        "pinning": pinning.note,
        "notes": _notes(pinning, result),
        "display": (
            f"{format_value(items_per_s, 'items/s')} at batch {batch}"
            f" (p50 {format_value(result.p50_ms * factor, 'ms')} per batch, n={result.n})"
            + (" estimated" if estimated else "")
        ),
    }
    progress.finish(f"{extra['display']}")
    return Check(
        name=name,
        metric="throughput",
        value=items_per_s,
        unit="items/s",
        budget=request.budget,
        passed=PASSED[result.verdict],
        provenance="estimated" if estimated else "measured",
        details=result.advice,
        extra=extra,
    )


def memory_check(
    request: BudgetRequest,
    result: MemoryResult,
    *,
    device: Device | None,
    models: Sequence[str],
) -> Check:
    """The workload's footprint against the budget and against the target's memory."""
    problems = []
    if result.footprint_mb > request.budget:
        problems.append(f"over the budget of {request.budget:g} MB")
    if (
        device is not None
        and device.memory_mb is not None
        and result.footprint_mb > device.memory_mb
    ):
        problems.append(f"more than {device.name}'s {device.memory_mb:g} MB")
    return Check(
        name=f"memory_under_{request.budget:g}",
        metric="peak_memory",
        value=result.footprint_mb,
        unit="MB",
        budget=request.budget,
        passed=not problems,
        provenance="measured",
        details=f"peak {result.footprint_mb:.1f} MB is " + " and ".join(problems)
        if problems
        else "",
        extra={**result.as_extra(), "models": list(models), "display": result.display()},
    )


def cold_start_check(
    request: BudgetRequest, result: ColdStartResult, *, device: Device | None
) -> Check:
    """Cold start judged on the median of several fresh processes; the max is shown."""
    passed = result.p50_ms <= request.budget
    return Check(
        name=f"cold_start_under_{request.budget:g}",
        metric="cold_start",
        value=result.p50_ms,
        unit="ms",
        budget=request.budget,
        passed=passed,
        provenance="measured",
        details="" if passed else f"median {result.p50_ms:.1f} ms over {request.budget:g} ms",
        extra={
            **result.as_extra(),
            "display": result.display(),
            "device": device.name if device else None,
        },
    )


def _policy(
    request: BudgetRequest, percentile: float, default_min_samples: int | None = None
) -> Any:
    from ..measure.latency import SamplingPolicy

    min_samples = request["min_samples"] or default_min_samples
    return SamplingPolicy(
        percentile=percentile,
        confidence=request["confidence"],
        warmup=request["warmup"],
        min_samples=min(min_samples, request["max_samples"]) if min_samples else None,
        max_samples=request["max_samples"],
        max_time_s=request["max_time_s"],
    )


def _factor(device: Device | None) -> float:
    return device.latency_factor if device and device.latency_factor else 1.0


def _latency_result_check(
    name: str,
    budget_ms: float,
    result: LatencyResult,
    factor: float,
    device: Device | None,
    pinning: Pinning | None,
) -> Check:
    estimated = factor != 1.0
    value = result.value_ms * factor
    display = result.display()
    if estimated and device is not None:
        display = (
            f"p{result.percentile:g} {format_value(value, 'ms')} estimated on {device.name}"
            f" (host {display}, factor {factor:g})"
        )
    notes = _notes(pinning, result)
    details = "; ".join([result.advice, *notes]) if result.advice else "; ".join(notes)
    return Check(
        name=name,
        metric=f"latency_p{result.percentile:g}",
        value=value,
        unit="ms",
        budget=budget_ms,
        passed=PASSED[result.verdict],
        provenance="estimated" if estimated else "measured",
        details=details,
        extra={
            **result.as_extra(include_samples=True),
            "host_value_ms": result.value_ms,
            "latency_factor": factor if estimated else None,
            "pinning": pinning.note if pinning else None,
            "notes": notes,
            "display": display,
        },
    )


def _notes(pinning: Pinning | None, result: LatencyResult) -> list[str]:
    """Caveats a reader must see beside the figure: emulation gaps and tracing."""
    shortfall = pinning.shortfall if pinning is not None else ""
    notes = [shortfall] if shortfall else []
    tracing = _tracing_note(result)
    return [*notes, tracing] if tracing else notes


def _tracing_note(result: LatencyResult) -> str:
    if not result.tracing_active:
        return ""
    return f"timed under {result.tracing_active}: figures are inflated"
