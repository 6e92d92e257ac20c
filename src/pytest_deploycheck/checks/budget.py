"""Run a budget marker's measurement and turn its result into a check.

The plugin hands over the workload (the test body as a callable) and the target; this
module measures on the target's terms (pinned cores, latency factor), judges, and
labels every figure measured or estimated.  Heavy modules are imported per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..config.schema import Device
from ..config.units import format_value
from ..markers import BudgetRequest
from ..measure.progress import NullSink, Progress, ProgressSink
from ..measure.watchdog import HangReport
from . import metrics
from .record import Check

if TYPE_CHECKING:
    from ..measure.coldstart import ColdStartResult
    from ..measure.latency import LatencyResult
    from ..measure.memory import MemoryResult
    from ..measure.outputs import OutputCheck
    from ..measure.pinning import Pinning
    from ..measure.service_figures import ServiceMemory

PASSED = {"pass": True, "fail": False, "inconclusive": None}
# The median settles after about a dozen calls, but a throughput figure (and a later
# regression test of it) needs more calls than that to be worth reading.
THROUGHPUT_MIN_SAMPLES = 50
# A measurement that has not settled after this long shows progress.
LONG_MEASUREMENT_S = 2.0
# How to take more pytest-benchmark samples, by how the test calls the fixture.
BENCHMARK_RERUN = {
    "benchmark": "rerun with --benchmark-min-rounds={n}",
    "pedantic": "raise benchmark.pedantic(rounds=...) to {n}",
}
# Gets the failed check of a hung call that cannot be interrupted; the process ends then.
StuckCheck = Callable[[Check], None]
HungCheck = Callable[[HangReport], Check]


def latency_check(
    request: BudgetRequest,
    workload: Callable[[], object],
    *,
    default_percentile: float,
    device: Device | None,
    sink: ProgressSink | None = None,
    label: str = "",
    on_stuck: StuckCheck | None = None,
) -> Check:
    """Time *workload* on the target's cores until the percentile's verdict settles.

    A call that runs past the measurement's bounds plus the grace is interrupted and
    the check fails as hung (see :mod:`..measure.watchdog`); *on_stuck* gets that
    failed check when the call cannot be interrupted.
    """
    percentile = request["percentile"] or default_percentile
    factor = target_factor(device)
    policy = _policy(request, percentile)
    name = f"latency_under_{request.budget:g}"
    progress = long_work(sink, f"{name} {label}".strip(), policy.max_time_s)
    metric = metrics.latency_metric(percentile)

    def hung(report: HangReport) -> Check:
        return hung_check(name, metric, "ms", request.budget, report)

    budget_ms = request.budget / factor
    canary_before = canary_now(device)
    verify = output_check(request)
    timed = _watched(name, workload, budget_ms, policy, progress, device, on_stuck, hung, verify)
    if isinstance(timed, Check):
        progress.finish(f"{timed.status} {timed.display}")
        return timed
    result, pinning = timed
    check = _latency_result_check(name, request.budget, result, factor, device, pinning)
    check = with_host_canary(check, canary_before, device)
    progress.finish(f"{check.status} {check.display}")
    return check


def long_work(sink: ProgressSink | None, label: str, max_time_s: float) -> Progress:
    """Progress of a measurement that is still unsettled after a couple of seconds."""
    return Progress(sink or NullSink(), label, max_time_s, delay_s=LONG_MEASUREMENT_S)


def _watched(
    name: str,
    workload: Callable[[], object],
    budget_ms: float,
    policy: Any,
    progress: Progress,
    device: Device | None,
    on_stuck: StuckCheck | None,
    hung: HungCheck,
    verify: OutputCheck | None = None,
) -> tuple[LatencyResult, Pinning] | Check:
    """Measure pinned to the target's cores under a watchdog; the hung check if it hung."""
    from ..measure.latency import measure_latency
    from ..measure.pinning import pinned_to_cpus
    from ..measure.watchdog import MeasurementHung, Watchdog

    try:
        # The watchdog starts inside the pinning: its thread is not pinned with the work.
        with (
            pinned_to_cpus(device.cpus if device else None) as pinning,
            Watchdog(name, on_stuck=stuck_handler(on_stuck, hung)) as watchdog,
        ):
            result = measure_latency(
                workload,
                budget_ms,
                policy,
                on_progress=_reporter(progress),
                on_phase=watchdog.arm,
                verify=verify,
            )
    except MeasurementHung as interrupted:
        if interrupted.report is None:
            raise
        return hung(interrupted.report)
    return result, pinning


def output_check(request: BudgetRequest) -> OutputCheck | None:
    """The marker's verify_outputs (opt-in): timed calls' outputs against an untimed call's."""
    if not request.options.get("verify_outputs"):
        return None
    from ..measure.outputs import OutputCheck, Tolerance

    return OutputCheck(Tolerance(rtol=request["rtol"], atol=request["atol"]))


def stuck_handler(
    on_stuck: StuckCheck | None, hung: HungCheck
) -> Callable[[HangReport], None] | None:
    """The watchdog's last resort, handing on the failed check rather than the report."""
    if on_stuck is None:
        return None
    return lambda report: on_stuck(hung(report))


def hung_check(
    name: str,
    metric: str,
    unit: str,
    budget: float,
    report: HangReport,
) -> Check:
    """The failed check of a measurement the watchdog stopped: where it hung, no figure."""
    return Check(
        name=name,
        metric=metric,
        value=None,
        unit=unit,
        budget=budget,
        passed=False,
        provenance="measured",
        details=report.reason(),
        extra={
            "hang": {
                "phase": report.phase,
                "limit_s": report.limit_s,
                "grace_s": report.grace_s,
                "stack": report.stack,
            },
        },
        display=f"hung in the {report.phase} phase",
    )


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
    pedantic: bool = False,
) -> Check:
    """Judge the samples pytest-benchmark already took, without running anything again.

    An unsettled verdict names the pytest-benchmark setting, with the count, that would
    settle it: ``--benchmark-min-rounds`` (its default takes about 1 s of rounds, some
    25 of a 40 ms call, where a p95 pass needs 130), or the rounds of
    ``benchmark.pedantic``, which ignores that option (*pedantic*).
    """
    from ..measure.latency import judge_samples

    percentile = request["percentile"] or default_percentile
    factor = target_factor(device)
    samples_ns = [round(s * 1e9) for s in samples_s]
    result = judge_samples(
        samples_ns,
        request.budget / factor,
        percentile,
        request["confidence"],
        source="pytest-benchmark",
        rerun=BENCHMARK_RERUN["pedantic" if pedantic else "benchmark"],
    )
    name = f"latency_under_{request.budget:g}"
    check = _latency_result_check(name, request.budget, result, factor, device, None)
    if not request.options.get("verify_outputs"):
        return check
    # pytest-benchmark called the body; its return values never reached the plugin.
    unverified = "verify_outputs does not apply to pytest-benchmark's samples: not verified"
    return replace(check, notes=(*check.notes, unverified))


def unsampled_benchmark_check(request: BudgetRequest, *, xdist: bool) -> Check:
    """The inconclusive check of a benchmark without samples, saying why it has none.

    pytest-benchmark disables itself while xdist is active (*xdist*), as with
    ``--benchmark-disable``: the body then runs once, untimed.
    """
    why = (
        "pytest-benchmark took no samples: it disables itself while xdist is active;"
        " run this test with -p no:xdist (or -n 0), or drop the benchmark fixture and"
        " let latency_under time the body"
        if xdist
        else "pytest-benchmark took no samples (is --benchmark-disable set?)"
    )
    return Check(
        name=f"latency_under_{request.budget:g}",
        metric=metrics.LATENCY,
        value=None,
        unit="ms",
        budget=request.budget,
        passed=None,
        details=why,
    )


def throughput_check(
    request: BudgetRequest,
    workload: Callable[[], object],
    *,
    batch: int,
    device: Device | None,
    sink: ProgressSink | None = None,
    label: str = "",
    on_stuck: StuckCheck | None = None,
) -> Check:
    """Throughput of batched calls, judged on the median call latency (hangs as latency)."""
    from ..measure.latency import budget_for_throughput, throughput_items_per_s

    factor = target_factor(device)
    budget_ms = budget_for_throughput(request.budget, batch)
    policy = _policy(request, 50.0, default_min_samples=THROUGHPUT_MIN_SAMPLES)
    name = f"throughput_over_{request.budget:g}[batch={batch}]"
    progress = long_work(sink, f"{name} {label}".strip(), policy.max_time_s)

    def hung(report: HangReport) -> Check:
        return hung_check(name, metrics.THROUGHPUT, "items/s", request.budget, report)

    canary_before = canary_now(device)
    verify = output_check(request)
    timed = _watched(
        name, workload, budget_ms / factor, policy, progress, device, on_stuck, hung, verify
    )
    if isinstance(timed, Check):
        progress.finish(f"{timed.status} {timed.display}")
        return timed
    result, pinning = timed
    canary = _host_canary(canary_before, device)
    items_per_s = throughput_items_per_s(result, batch) / factor
    estimated = factor != 1.0
    extra = {
        **result.as_extra(include_samples=True),
        "batch": batch,
        "items_per_s": items_per_s,
        "latency_ms_per_batch": result.p50_ms * factor,
        "latency_factor": factor if estimated else None,
        "pinning": pinning.note,
        metrics.HOST_CANARY: canary,
    }
    display = (
        f"{format_value(items_per_s, 'items/s')} at batch {batch}"
        f" (p50 {format_value(result.p50_ms * factor, 'ms')} per batch, n={result.n})"
        + (" estimated" if estimated else "")
    )
    progress.finish(display)
    return Check(
        name=name,
        metric=metrics.THROUGHPUT,
        value=items_per_s,
        unit="items/s",
        budget=request.budget,
        passed=PASSED[result.verdict],
        provenance="estimated" if estimated else "measured",
        details=result.advice,
        extra=extra,
        display=display,
        notes=tuple(_notes(pinning, result, estimated)),
    )


def memory_check(
    request: BudgetRequest,
    result: MemoryResult,
    *,
    device: Device | None,
    models: Sequence[str],
) -> Check:
    """The workload's footprint against the budget and against the target's memory."""
    problems = _memory_problems(request, result.footprint_mb, device)
    return Check(
        name=f"memory_under_{request.budget:g}",
        metric=metrics.PEAK_MEMORY,
        value=result.footprint_mb,
        unit="MB",
        budget=request.budget,
        passed=not problems,
        provenance="measured",
        details=f"peak {result.footprint_mb:.1f} MB is " + " and ".join(problems)
        if problems
        else "",
        extra=result.as_extra(),
        display=result.display(),
        models=tuple(models),
    )


def _memory_problems(
    request: BudgetRequest, footprint_mb: float, device: Device | None
) -> list[str]:
    problems = []
    if footprint_mb > request.budget:
        problems.append(f"over the budget of {request.budget:g} MB")
    if device is not None and device.memory_mb is not None and footprint_mb > device.memory_mb:
        problems.append(f"more than {device.name}'s {device.memory_mb:g} MB")
    return problems


def service_memory_check(
    request: BudgetRequest, result: ServiceMemory, *, device: Device | None
) -> Check:
    """A service's peak tree RSS, judged as memory_under judges a workload's footprint.

    Same name, metric and unit as :func:`memory_check`, so reports, baselines and gates
    treat both alike; the details say whose memory it is.
    """
    problems = _memory_problems(request, result.footprint_mb, device)
    details = result.label
    if problems:
        details = f"peak {result.footprint_mb:.1f} MB is {' and '.join(problems)} ({details})"
    return Check(
        name=f"memory_under_{request.budget:g}",
        metric=metrics.PEAK_MEMORY,
        value=result.footprint_mb,
        unit="MB",
        budget=request.budget,
        passed=not problems,
        provenance="measured",
        details=details,
        extra=result.as_extra(),
        display=result.display(),
    )


def service_cold_start_check(
    request: BudgetRequest, result: ColdStartResult, *, device: Device | None, display: str
) -> Check:
    """A service's cold start, judged as :func:`cold_start_check` judges a model's."""
    check = cold_start_check(request, result, device=device)
    # A service has no import, session or first-inference phases, nor a model file.
    model_only = ("mean_phases_ms", "uncached_runs")
    extra = {k: v for k, v in check.extra.items() if k not in model_only}
    extra["service"] = request["service"]
    return replace(check, display=display, extra=extra)


def cold_start_check(
    request: BudgetRequest, result: ColdStartResult, *, device: Device | None
) -> Check:
    """Cold start judged on the median of several fresh processes; the max is shown."""
    passed = result.p50_ms <= request.budget
    return Check(
        name=f"cold_start_under_{request.budget:g}",
        metric=metrics.COLD_START,
        value=result.p50_ms,
        unit="ms",
        budget=request.budget,
        passed=passed,
        provenance="measured",
        details="" if passed else f"median {result.p50_ms:.1f} ms over {request.budget:g} ms",
        extra={
            **result.as_extra(),
            "device": device.name if device else None,
            # Read once, right after the fresh processes: they ran before this check.
            metrics.HOST_CANARY: _host_canary(None, device),
        },
        display=result.display(),
        notes=result.notes(),
    )


def canary_now(device: Device | None) -> float:
    """The host-speed canary's reading now, on the cores the check is pinned to.

    See :mod:`..measure.canary`: the same cores as the measurement, so that the canary
    sees the load the workload saw.
    """
    from ..measure.canary import canary_ns_per_op
    from ..measure.pinning import pinned_to_cpus

    with pinned_to_cpus(device.cpus if device else None):
        return canary_ns_per_op()


def _host_canary(before_ns: float | None, device: Device | None) -> dict[str, Any]:
    """``extra["host_canary"]``: the canary read *before_ns* and now (now twice if None)."""
    from ..measure.canary import HostCanary

    after = canary_now(device)
    return HostCanary(after if before_ns is None else before_ns, after).as_extra()


def with_host_canary(check: Check, before_ns: float, device: Device | None) -> Check:
    """*check* with the host-speed reference read before it and now in its extra."""
    canary = _host_canary(before_ns, device)
    return replace(check, extra={**check.extra, metrics.HOST_CANARY: canary})


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


def target_factor(device: Device | None) -> float:
    """The device's declared latency factor (host figures times it are estimated), or 1."""
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
    notes = _notes(pinning, result, estimated)
    details = "; ".join([result.advice, *notes]) if result.advice else "; ".join(notes)
    return Check(
        name=name,
        metric=metrics.latency_metric(result.percentile),
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
        },
        display=display,
        notes=tuple(notes),
    )


def _notes(pinning: Pinning | None, result: LatencyResult, estimated: bool) -> list[str]:
    """Caveats a reader must see beside the figure: emulation gaps, tracing, unverified outputs."""
    shortfall = pinning.caveat(estimated=estimated) if pinning is not None else ""
    notes = [shortfall] if shortfall else []
    tracing = _tracing_note(result)
    outputs = result.outputs.note() if result.outputs is not None else ""
    return [*notes, *(note for note in (tracing, outputs) if note)]


def _tracing_note(result: LatencyResult) -> str:
    if not result.tracing_active:
        return ""
    return f"timed under {result.tracing_active}: figures are inflated"
