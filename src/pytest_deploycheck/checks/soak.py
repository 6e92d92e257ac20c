"""Run a ``soak`` marker on the target's terms and turn what it saw into a check.

The duration is the marker's, cut to the run's cap (``--deploy-soak-minutes``, its
environment variable or ``soak_max_minutes``) -- and a shortened soak says so in its
figure, in the verdict's caveats and in the evidence.  Energy is read from the
host's RAPL counters where they can be read and labelled measured (the whole CPU
package); otherwise the report says power stays declared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from ..config.schema import Budgets, Device
from ..markers import BudgetRequest
from ..measure.progress import NullSink, Progress, ProgressSink
from ..measure.soak import (
    DEFAULT_GROWTH_MB_PER_H,
    SoakPolicy,
    SoakRun,
    SoakSeries,
    growth_fit,
    judge_soak,
    minutes_text,
    run_soak,
)
from ..measure.watchdog import HangReport, MeasurementHung, Watchdog
from .budget import StuckCheck, hung_check, output_check, stuck_handler
from .metrics import SOAK_MEMORY_GROWTH, TIMESERIES_COLUMNS, TIMESERIES_KEY
from .record import Check

if TYPE_CHECKING:
    from ..measure.energy import EnergyMeter, EnergyReading
    from ..measure.outputs import OutputCheck
    from ..measure.pinning import Pinning


class MemoryReader(Protocol):
    """Whose resident memory a soak follows, when not the test process's (a service's)."""

    def __call__(self) -> int: ...

    def label(self) -> str: ...


TEST_PROCESS_MEMORY = "RSS and heap in use of the test process"


@dataclass(frozen=True)
class SoakCap:
    """The run's limit on soak minutes and where it came from (for the caveat)."""

    minutes: float | None = None
    source: str = ""


def soak_policy(request: BudgetRequest, budgets: Budgets, cap: SoakCap) -> SoakPolicy:
    """The marker's options, with the config's [budgets] and built-in defaults under them."""
    configured = request.budget
    minutes = configured if cap.minutes is None else min(configured, cap.minutes)
    growth = request["growth_mb_per_hour"] or budgets.soak_growth_mb_per_hour
    error_rate = request["max_error_rate"]
    if error_rate is None:
        error_rate = budgets.soak_error_rate if budgets.soak_error_rate is not None else 0.0
    drift = request["max_latency_drift_pct"] or budgets.soak_latency_drift_pct
    return SoakPolicy(
        duration_s=minutes * 60.0,
        configured_s=configured * 60.0,
        growth_mb_per_h=growth or DEFAULT_GROWTH_MB_PER_H,
        max_error_rate=error_rate,
        max_drift_pct=drift,
        warmup_fraction=request["warmup"],
        sample_interval_s=request["sample_interval_s"],
    )


@dataclass(frozen=True)
class _Soaked:
    """What the soak loop left: the run, its energy, how it was pinned."""

    run: SoakRun
    energy: EnergyReading | None
    pinning: Pinning


def soak_check(
    request: BudgetRequest,
    workload: Callable[[], object],
    *,
    budgets: Budgets,
    device: Device | None,
    cap: SoakCap = SoakCap(),
    sink: ProgressSink | None = None,
    label: str = "soak",
    on_stuck: StuckCheck | None = None,
    memory: MemoryReader | None = None,
) -> Check:
    """Soak *workload* on the target's cores and judge growth, errors and drift.

    *memory* reads the resident bytes whose growth is judged (a service's process tree);
    by default the test process's RSS and heap in use.

    The soak's duration is checked between calls; a watchdog holds it to the duration
    plus the grace also inside a call that hangs, and the check then fails as hung
    (*on_stuck* gets that check when the call cannot be interrupted).
    """
    from ..measure.energy import host_meter

    policy = soak_policy(request, budgets, cap)
    name = f"soak_{request.budget:g}min"
    progress = Progress(sink or NullSink(), f"{name} {label}", policy.duration_s)
    progress.start(_start_text(policy, cap))
    meter = host_meter()

    def hung(report: HangReport) -> Check:
        return hung_check(name, SOAK_MEMORY_GROWTH, "MB/h", policy.growth_mb_per_h, report)

    on_interval = _progress_callback(progress, policy)
    verify = output_check(request)
    soaked = _soak(
        name,
        workload,
        policy,
        meter,
        on_interval,
        device,
        stuck_handler(on_stuck, hung),
        verify,
        memory,
    )
    if isinstance(soaked, HangReport):
        check = hung(soaked)
        progress.finish(f"{check.status} {check.display}")
        return check
    check = _judged(name, request, soaked, policy, cap, device, meter.reason)
    memory_of = memory.label() if memory is not None else TEST_PROCESS_MEMORY
    check = replace(check, extra={**check.extra, "memory_of": memory_of})
    progress.finish(f"{check.status} {check.display}")
    return check


def _judged(
    name: str,
    request: BudgetRequest,
    soaked: _Soaked,
    policy: SoakPolicy,
    cap: SoakCap,
    device: Device | None,
    meter_reason: str | None,
) -> Check:
    """The soak's check: growth judged on the faster-growing memory series."""
    run, energy, pinning = soaked.run, soaked.energy, soaked.pinning
    verdict = judge_soak(run, policy)
    notes = list(verdict.notes)
    if pinning.shortfall:
        notes.append(pinning.shortfall)
    if run.outputs is not None and run.outputs.note():
        notes.append(run.outputs.note())
    energy_extra, energy_text = _energy(energy, run.calls, device, meter_reason, notes)
    # The figure judged against the budget: the faster-growing of the two memory series.
    slopes = [f.slope for f in (verdict.growth, verdict.heap_growth) if f is not None]
    value = max(slopes) if slopes and math.isfinite(max(slopes)) else None
    return Check(
        name=name,
        metric=SOAK_MEMORY_GROWTH,
        value=value,
        unit="MB/h",
        budget=policy.growth_mb_per_h,
        passed=verdict.passed,
        provenance="measured",
        details="; ".join(verdict.problems),
        extra={
            **verdict.as_extra(),
            "configured_minutes": request.budget,
            "minutes_run": verdict.elapsed_s / 60.0,
            "shortened_by": cap.source if policy.shortened else None,
            "sample_interval_s": policy.interval_s,
            "max_error_rate": policy.max_error_rate,
            "max_latency_drift_pct": policy.max_drift_pct,
            "error_examples": list(run.error_examples),
            "outputs": run.outputs.as_extra() if run.outputs is not None else None,
            "energy": energy_extra,
            "pinning": pinning.note or None,
            "timeseries_columns": list(TIMESERIES_COLUMNS),
            TIMESERIES_KEY: run.series.as_rows(verdict.warmup_s),
        },
        display=verdict.display(policy.configured_s) + energy_text,
        notes=tuple(notes),
        caveats=_shortened_caveat(name, policy, cap, verdict.elapsed_s),
    )


def _shortened_caveat(
    name: str, policy: SoakPolicy, cap: SoakCap, elapsed_s: float
) -> tuple[str, ...]:
    """What the verdict must say of a soak the cap cut short."""
    if not policy.shortened:
        return ()
    asked = minutes_text(policy.configured_s or 0)
    return (
        f"{name} ran {minutes_text(elapsed_s)} of the {asked}"
        f" its marker asks for ({cap.source}); run it in full before calling the device"
        " ready (--deploy-soak-minutes=full)",
    )


def _energy(
    energy: EnergyReading | None,
    calls: int,
    device: Device | None,
    meter_reason: str | None,
    notes: list[str],
) -> tuple[dict[str, Any] | None, str]:
    """The soak's energy figures and display text, or a note saying why there are none."""
    from ..measure.energy import judge_power, unavailable_note

    if energy is None or not calls:
        notes.append(unavailable_note(meter_reason or "no energy counters"))
        return None, ""
    if device is not None and device.power_w is not None:
        notes.append(judge_power(energy.watts, None, device.power_w)[1])
    return energy.as_dict(calls), f"; {energy.describe(calls)}"


def _soak(
    name: str,
    workload: Callable[[], object],
    policy: SoakPolicy,
    meter: EnergyMeter,
    on_interval: Callable[[SoakSeries, float], None],
    device: Device | None,
    on_stuck: Callable[[HangReport], None] | None,
    verify: OutputCheck | None = None,
    memory: MemoryReader | None = None,
) -> _Soaked | HangReport:
    """The soak loop on the target's cores, under a watchdog; its report if it hung."""
    from ..measure.pinning import pinned_to_cpus

    # A service's heap is not this process's: its RSS alone is judged.
    readers: dict[str, Any] = (
        {} if memory is None else {"rss_bytes": memory, "heap_bytes": _no_heap}
    )
    try:
        # The watchdog starts inside the pinning: its thread is not pinned with the work.
        with (
            pinned_to_cpus(device.cpus if device else None) as pinning,
            Watchdog(name, on_stuck=on_stuck) as watchdog,
        ):
            watchdog.arm("soak", policy.duration_s)
            if meter.available:
                meter.start()
            run = run_soak(workload, policy, on_interval=on_interval, verify=verify, **readers)
            energy = meter.stop() if meter.available else None
    except MeasurementHung as hung:
        if hung.report is None:
            raise
        return hung.report
    return _Soaked(run, energy, pinning)


def _no_heap() -> int | None:
    return None


def _start_text(policy: SoakPolicy, cap: SoakCap) -> str:
    text = f"running for {minutes_text(policy.duration_s)}"
    if policy.shortened:
        text += f" (marker: {minutes_text(policy.configured_s or 0)}; capped by {cap.source})"
    return text


def _progress_callback(
    progress: Progress, policy: SoakPolicy
) -> Callable[[SoakSeries, float], None]:
    warmup_s = policy.warmup_fraction * policy.duration_s

    def on_interval(series: SoakSeries, elapsed_s: float) -> None:
        def text() -> str:
            calls = int(series.calls[: series.rows].sum())
            errors = int(series.errors[: series.rows].sum())
            rss = float(series.rss_mb[series.rows - 1]) if series.rows else math.nan
            t = series.column("t_s")
            judged = t >= warmup_s
            fit = growth_fit(t[judged], series.column("rss_mb")[judged])
            # Interim: the fit of the part run so far, not the judged figure.
            slope = (
                "warming up"
                if fit is None
                else f"growth so far {fit.slope:+.3g} MB/h (provisional)"
            )
            return f"{calls:,} calls, {errors:,} errors, rss {rss:.1f} MB, {slope}"

        progress.update(elapsed_s, text)

    return on_interval
