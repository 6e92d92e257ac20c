"""Soak: the workload in a loop for minutes, its memory and latency sampled throughout.

"It ran once" is not "it runs for a shift".  A leak of 1 MB a minute is invisible in a
latency test and fatal on a 512 MB device by the end of the day.  A soak runs the
workload back to back for a set time and keeps, per sampling interval, the resident
set size and the calls, errors and latency percentiles of that interval.  The
harness allocates its buffers up front, so its own bookkeeping does not grow with the
run and cannot pass for a leak.

Growth is judged on a robust line, never on two samples.  The first part of the run
(``warmup_fraction``) is left out -- arenas, caches and lazy initialisation settle
there -- and the rest is cut into consecutive blocks whose medians are fitted with
the Theil-Sen estimator (the median of all pairwise slopes), which one allocator step
or one slow sample cannot tip.  Its confidence interval (Sen's, from the
distribution of Kendall's S) decides:

- **fail** when even the low end of the interval is over the budget: the memory grows;
- **pass** when the estimate is within the budget; when the interval still reaches
  over the budget the soak was too short to rule a slower leak out, and says so;
- **inconclusive** when the estimate is over the budget but the interval is not.

Growth that adds up to less than :data:`RESOLUTION_MB` over the judged window is
not told from a leak: allocators grow in steps (glibc's heap, Python's 1 MiB arenas,
the runtime's own arenas -- a fresh onnxruntime process here grows 0.75 MB once, some
nine seconds into a soak, and never again).  Such a soak passes and says which
growth rate it could have resolved; the full-length soak resolves the budget.

Block medians rather than raw samples because consecutive memory samples are not
independent (an arena stays grown for a while); medians of blocks are much closer to
the independent values the interval assumes.  Errors (calls that raised) count
against ``max_error_rate``; latency drift compares the per-interval medians of the
first and last fifth of the judged window.  Nothing here imports pytest.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .memory import MB, current_rss_bytes, heap_in_use_bytes
from .outputs import OutputCheck, OutputsVerified
from .stats import SlopeFit, block_medians, mann_whitney_greater, theil_sen

FloatArray = npt.NDArray[np.float64]
BLOCKS = 30
MIN_FIT_POINTS = 6
DRIFT_WINDOW = 0.2
DRIFT_MIN_INTERVALS = 5
DRIFT_SIGNIFICANCE = 0.01
LATENCY_BUFFER = 8192
MAX_ERROR_EXAMPLES = 5  # distinct messages kept for the report
ABORT_AFTER_FAILURES = 20
DEFAULT_GROWTH_MB_PER_H = 10.0
RESOLUTION_MB = 1.0
# The most rows one soak's series holds (8 columns of 8 bytes: 6.4 MB); a shorter
# sampling interval asked for is widened to fit.
MAX_INTERVALS = 100_000


@dataclass(frozen=True)
class SoakPolicy:
    """How long to soak and what to judge; durations in seconds."""

    duration_s: float
    configured_s: float | None = None
    growth_mb_per_h: float = DEFAULT_GROWTH_MB_PER_H
    max_error_rate: float = 0.0
    max_drift_pct: float | None = None
    warmup_fraction: float = 0.2
    sample_interval_s: float | None = None
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"soak duration must be > 0 seconds, got {self.duration_s!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction!r}")
        if not 0 <= self.max_error_rate <= 1:
            raise ValueError(f"max_error_rate must be in [0, 1], got {self.max_error_rate!r}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence!r}")
        interval = self.sample_interval_s
        if interval is not None and not (math.isfinite(interval) and interval > 0):
            raise ValueError(f"sample_interval_s must be a number of seconds > 0, got {interval!r}")

    @property
    def interval_s(self) -> float:
        """The sampling interval: about 300 samples per run, 0.05 s to 10 s apart.

        Never so short that the run would need more than :data:`MAX_INTERVALS` rows: the
        series is allocated up front, and a tiny interval must not allocate gigabytes.
        """
        if self.sample_interval_s is not None:
            asked = self.sample_interval_s
        else:
            asked = min(max(self.duration_s / 300.0, 0.05), 10.0)
        return max(asked, self.duration_s / MAX_INTERVALS)

    @property
    def shortened(self) -> bool:
        return self.configured_s is not None and self.duration_s < self.configured_s


def growth_fit(
    t_s: Sequence[float] | FloatArray,
    rss_mb: Sequence[float] | FloatArray,
    *,
    confidence: float = 0.95,
    blocks: int = BLOCKS,
) -> SlopeFit | None:
    """Memory growth in MB per hour, or None when there are too few points to fit.

    Theil-Sen on the medians of *blocks* runs of consecutive samples (see the module doc).
    """
    t, rss = np.asarray(t_s, dtype=np.float64), np.asarray(rss_mb, dtype=np.float64)
    if t.size < MIN_FIT_POINTS or float(t[-1] - t[0]) <= 0:
        return None
    bt, bv = block_medians(t, rss, blocks=blocks)
    return theil_sen(bt / 3600.0, bv, confidence=confidence)


@dataclass
class SoakSeries:
    """The per-interval time series of one soak; its arrays are allocated up front."""

    capacity: int
    rows: int = 0
    t_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    rss_mb: FloatArray = field(default_factory=lambda: np.zeros(0))
    calls: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    errors: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    p50_ms: FloatArray = field(default_factory=lambda: np.zeros(0))
    p95_ms: FloatArray = field(default_factory=lambda: np.zeros(0))
    max_ms: FloatArray = field(default_factory=lambda: np.zeros(0))
    heap_mb: FloatArray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def allocate(cls, capacity: int) -> SoakSeries:
        return cls(
            capacity=capacity,
            t_s=np.full(capacity, np.nan),
            rss_mb=np.full(capacity, np.nan),
            calls=np.zeros(capacity, dtype=np.int64),
            errors=np.zeros(capacity, dtype=np.int64),
            p50_ms=np.full(capacity, np.nan),
            p95_ms=np.full(capacity, np.nan),
            max_ms=np.full(capacity, np.nan),
            heap_mb=np.full(capacity, np.nan),
        )

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[float]]) -> SoakSeries:
        """A series from (t_s, rss_mb, calls, errors, p50, p95, max[, heap_mb]) rows (tests)."""
        series = cls.allocate(len(rows))
        for row in rows:
            series.append(*row)
        return series

    def append(
        self,
        t_s: float,
        rss_mb: float,
        calls: float,
        errors: float,
        p50_ms: float,
        p95_ms: float,
        max_ms: float,
        heap_mb: float | None = None,
    ) -> bool:
        """Add one interval; False when full (the run then stops sampling, never grows)."""
        if self.rows >= self.capacity:
            return False
        k = self.rows
        self.t_s[k], self.rss_mb[k] = t_s, rss_mb
        self.calls[k], self.errors[k] = int(calls), int(errors)
        self.p50_ms[k], self.p95_ms[k], self.max_ms[k] = p50_ms, p95_ms, max_ms
        self.heap_mb[k] = math.nan if heap_mb is None else heap_mb
        self.rows += 1
        return True

    def column(self, name: str) -> FloatArray:
        return np.asarray(getattr(self, name)[: self.rows], dtype=np.float64)

    def as_rows(self, warmup_s: float) -> list[list[Any]]:
        """Rows of :data:`.evidence.TIMESERIES_COLUMNS` for the CSV and the report."""
        rows = []
        for k in range(self.rows):
            t = float(self.t_s[k])
            rows.append(
                [
                    round(t, 3),
                    "warmup" if t < warmup_s else "judged",
                    round(float(self.rss_mb[k]), 3),
                    int(self.calls[k]),
                    int(self.errors[k]),
                    _rounded(self.p50_ms[k]),
                    _rounded(self.p95_ms[k]),
                    _rounded(self.max_ms[k]),
                    _rounded(self.heap_mb[k]),
                ]
            )
        return rows


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


@dataclass(frozen=True)
class SoakRun:
    """What the loop observed: the series, the totals and a few error messages."""

    series: SoakSeries
    calls: int
    errors: int
    elapsed_s: float
    error_examples: tuple[str, ...]
    aborted: str = ""
    outputs: OutputsVerified | None = None  # verify_outputs: what the comparison found


Clock = Callable[[], int]
IntervalCallback = Callable[[SoakSeries, float], None]


def run_soak(
    workload: Callable[[], object],
    policy: SoakPolicy,
    *,
    clock: Clock = time.perf_counter_ns,
    rss_bytes: Callable[[], int] = current_rss_bytes,
    heap_bytes: Callable[[], int | None] = heap_in_use_bytes,
    on_interval: IntervalCallback | None = None,
    verify: OutputCheck | None = None,
) -> SoakRun:
    """Call *workload* back to back for ``policy.duration_s``; sample every interval.

    A call that raises counts as an error and the loop goes on (a service keeps
    serving after one bad request); when the first calls all fail the run stops
    early, since a broken workload would otherwise spin for the whole soak.
    Garbage collection stays on: a service runs with it, and a cycle the collector
    frees is not a leak.  *on_interval* gets the series and the elapsed seconds after
    each interval (progress reporting); it must be quick.  With *verify*, one untimed
    call before the loop gives the reference outputs and sampled calls must return the
    same (see :mod:`.outputs`); a mismatch stops the soak as failed.
    """
    interval_ns = int(policy.interval_s * 1e9)
    duration_ns = int(policy.duration_s * 1e9)
    series = SoakSeries.allocate(int(policy.duration_s / policy.interval_s) + 16)
    latencies = np.zeros(LATENCY_BUFFER, dtype=np.int64)
    examples: list[str] = []
    calls = errors = in_interval = interval_errors = 0
    aborted = ""
    if verify is not None:
        verify.set_reference(workload())
    gc.collect(1)
    started = clock()
    next_sample = started + interval_ns
    now = started
    while now - started < duration_ns:
        before = clock()
        output: object = _RAISED
        try:
            output = workload()
        except Exception as exc:  # every failure of the workload counts
            errors += 1
            interval_errors += 1
            example = f"{type(exc).__name__}: {exc}"[:300]
            if len(examples) < MAX_ERROR_EXAMPLES and example not in examples:
                examples.append(example)
        now = clock()
        latencies[in_interval % LATENCY_BUFFER] = now - before
        in_interval += 1
        calls += 1
        if errors == calls == ABORT_AFTER_FAILURES:
            aborted = f"stopped after the first {calls} calls all raised"
        if verify is not None and output is not _RAISED:
            aborted = aborted or _outputs_differ(verify, calls, output)
        if now >= next_sample or aborted or now - started >= duration_ns:
            _close_interval(
                series,
                latencies,
                in_interval,
                interval_errors,
                now - started,
                rss_bytes,
                heap_bytes,
            )
            in_interval = interval_errors = 0
            next_sample = now + interval_ns
            if on_interval is not None:
                on_interval(series, (now - started) / 1e9)
            if aborted:
                break
    return SoakRun(
        series=series,
        calls=calls,
        errors=errors,
        elapsed_s=(now - started) / 1e9,
        error_examples=tuple(examples),
        aborted=aborted,
        outputs=verify.result() if verify is not None else None,
    )


_RAISED = object()  # the output of a call that raised: nothing to compare


def _outputs_differ(verify: OutputCheck, call: int, output: object) -> str:
    """Why the soak stops when a sampled call's outputs differ from the reference, or ""."""
    if not verify.wants(call) or verify.compare(call, output):
        return ""
    return f"outputs differ from the untimed reference call's, at {verify.mismatch}"


def _close_interval(
    series: SoakSeries,
    latencies: npt.NDArray[np.int64],
    count: int,
    errors: int,
    elapsed_ns: int,
    rss_bytes: Callable[[], int],
    heap_bytes: Callable[[], int | None],
) -> None:
    filled = latencies[: min(count, LATENCY_BUFFER)]
    if filled.size:
        p50, p95 = np.percentile(filled, [50, 95]) / 1e6
        slowest = float(filled.max()) / 1e6
    else:
        p50 = p95 = slowest = math.nan
    heap = heap_bytes()
    series.append(
        elapsed_ns / 1e9,
        rss_bytes() / MB,
        count,
        errors,
        p50,
        p95,
        slowest,
        None if heap is None else heap / MB,
    )


@dataclass(frozen=True)
class SoakVerdict:
    """The judged soak: growth, errors and drift, and the overall pass/fail/inconclusive."""

    passed: bool | None
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    growth: SlopeFit | None
    heap_growth: SlopeFit | None
    growth_budget: float
    judged_s: float
    error_rate: float
    drift_pct: float | None
    drift_p95_pct: float | None
    drift_p_value: float | None
    calls: int
    errors: int
    elapsed_s: float
    warmup_s: float

    def display(self, configured_s: float | None = None) -> str:
        """``+0.4 MB/h (95% CI -1.2 to 2.0) over 29.8 min, 1,204,311 calls, 0 errors ...``."""
        if self.growth is None:
            growth = "growth not fitted"
        elif self.growth.slope * self.judged_s / 3600.0 < RESOLUTION_MB and self.growth.slope > 0:
            grown = self.growth.slope * self.judged_s / 3600.0
            growth = (
                f"grew {grown:.2g} MB in {minutes_text(self.judged_s)}"
                f" (under the {RESOLUTION_MB:g} MB resolution)"
            )
        else:
            growth = (
                f"{_signed(self.growth.slope)} MB/h"
                f" (CI {_signed(self.growth.low)} to {_signed(self.growth.high)})"
            )
        if self.heap_growth is not None:
            growth += f"; heap in use {_signed(self.heap_growth.slope)} MB/h"
        ran = minutes_text(self.elapsed_s)
        if configured_s is not None and self.elapsed_s < configured_s * 0.99:
            ran += f" of {minutes_text(configured_s)}"
        drift = "" if self.drift_pct is None else f", p50 drift {self.drift_pct:+.0f}%"
        return (
            f"{growth} over {ran}, {self.calls:,} calls,"
            f" {self.errors:,} errors ({self.error_rate:.2%}){drift}"
        )

    def as_extra(self) -> dict[str, Any]:
        fit = self.growth
        return {
            "growth_mb_per_h": None if fit is None else _finite(fit.slope),
            "growth_ci_mb_per_h": None if fit is None else [_finite(fit.low), _finite(fit.high)],
            "growth_points": None if fit is None else fit.n,
            "growth_budget_mb_per_h": self.growth_budget,
            "heap_growth_mb_per_h": None
            if self.heap_growth is None
            else _finite(self.heap_growth.slope),
            "heap_growth_ci_mb_per_h": None
            if self.heap_growth is None
            else [_finite(self.heap_growth.low), _finite(self.heap_growth.high)],
            "judged_s": self.judged_s,
            "warmup_s": self.warmup_s,
            "elapsed_s": self.elapsed_s,
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_drift_pct": self.drift_pct,
            "latency_drift_p95_pct": self.drift_p95_pct,
            "latency_drift_p_value": self.drift_p_value,
            "problems": list(self.problems),
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _signed(value: float) -> str:
    if not math.isfinite(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.3g}"


def minutes_text(seconds: float) -> str:
    """``42 s`` under a minute, ``7.5 min`` beyond: how long a soak ran or should."""
    return f"{seconds / 60:.3g} min" if seconds >= 60 else f"{seconds:.3g} s"


def judge_soak(run: SoakRun, policy: SoakPolicy) -> SoakVerdict:
    """Growth against the budget, the error rate, and latency drift (see the module doc)."""
    series = run.series
    t = series.column("t_s")
    warmup_s = policy.warmup_fraction * run.elapsed_s
    judged_s = max(run.elapsed_s - warmup_s, 1e-9)
    judged = t >= warmup_s
    problems: list[str] = []
    notes: list[str] = []
    inconclusive: list[str] = []
    budget = policy.growth_mb_per_h
    growth = growth_fit(t[judged], series.column("rss_mb")[judged], confidence=policy.confidence)
    if growth is None:
        inconclusive.append(
            f"too few memory samples after the warm-up ({int(judged.sum())}) to fit a growth"
            f" line; soak longer (at least {MIN_FIT_POINTS} intervals of"
            f" {policy.interval_s:g} s after {policy.warmup_fraction:.0%} warm-up)"
        )
    else:
        _judge_growth(
            "memory", growth, judged_s, run.elapsed_s, policy, problems, inconclusive, notes
        )
    heap = series.column("heap_mb")[judged]
    heap_growth = None
    if heap.size and not np.isnan(heap).any():
        heap_growth = growth_fit(t[judged], heap, confidence=policy.confidence)
    if heap_growth is not None:
        _judge_growth(
            "heap memory in use",
            heap_growth,
            judged_s,
            run.elapsed_s,
            policy,
            problems,
            inconclusive,
            [],
        )
    error_rate = run.errors / run.calls if run.calls else 0.0
    problems += _call_problems(run, policy, error_rate)
    drift, drift_p95, p_value = latency_drift(series, judged)
    problems += _drift_problems(drift, p_value, policy)
    if drift is None:
        notes.append("latency drift not judged: too few intervals in the first and last fifth")
    passed: bool | None = False if problems else (None if inconclusive else True)
    return SoakVerdict(
        passed=passed,
        problems=tuple(problems + inconclusive),
        notes=tuple(notes),
        growth=growth,
        heap_growth=heap_growth,
        growth_budget=budget,
        judged_s=judged_s,
        error_rate=error_rate,
        drift_pct=drift,
        drift_p95_pct=drift_p95,
        drift_p_value=p_value,
        calls=run.calls,
        errors=run.errors,
        elapsed_s=run.elapsed_s,
        warmup_s=warmup_s,
    )


def _call_problems(run: SoakRun, policy: SoakPolicy, error_rate: float) -> list[str]:
    """A soak stopped early, never calling the workload, or raising too often."""
    problems = [run.aborted] if run.aborted else []
    if run.calls == 0:
        problems.append("the workload was never called")
    elif error_rate > policy.max_error_rate:
        first = f"; first: {run.error_examples[0]}" if run.error_examples else ""
        problems.append(
            f"{run.errors} of {run.calls} calls raised ({error_rate:.2%}, allowed"
            f" {policy.max_error_rate:.2%}){first}"
        )
    return problems


def _drift_problems(drift: float | None, p_value: float | None, policy: SoakPolicy) -> list[str]:
    """Latency drift gates only with max_latency_drift_pct, and only when significant."""
    if drift is None or policy.max_drift_pct is None:
        return []
    significant = p_value is not None and p_value < DRIFT_SIGNIFICANCE
    if drift > policy.max_drift_pct and significant:
        return [
            f"latency drifted {drift:+.0f}% at the median from the first to the last"
            f" fifth of the run (budget {policy.max_drift_pct:g}%)"
        ]
    return []


def _judge_growth(
    what: str,
    growth: SlopeFit,
    judged_s: float,
    elapsed_s: float,
    policy: SoakPolicy,
    problems: list[str],
    inconclusive: list[str],
    notes: list[str],
) -> None:
    """One memory series against the growth budget (see the module docstring)."""
    budget = policy.growth_mb_per_h
    judged_h = judged_s / 3600.0
    if growth.slope * judged_h < RESOLUTION_MB and growth.slope > budget:
        notes.append(
            f"{what} grew {growth.slope * judged_h:.2g} MB over the judged"
            f" {minutes_text(judged_s)}, within the {RESOLUTION_MB:g} MB an allocator moves in"
            f" steps: not judged as growth; a soak of {minutes_text(_resolving_s(budget, policy))}"
            f" resolves {budget:g} MB/h"
        )
    elif growth.low > budget and growth.low * judged_h >= RESOLUTION_MB:
        problems.append(
            f"{what} grows {growth.slope:.3g} MB/h (CI {growth.low:.3g} to {growth.high:.3g}),"
            f" over the budget of {budget:g} MB/h"
        )
    elif growth.slope > budget:
        inconclusive.append(
            f"{what} may grow {growth.slope:.3g} MB/h (CI {_signed(growth.low)} to"
            f" {_signed(growth.high)}): over the {budget:g} MB/h budget but not certainly;"
            " soak longer"
        )
    elif max(growth.high, RESOLUTION_MB / judged_h) > budget:
        floor = RESOLUTION_MB / judged_h
        limit = max(growth.high, floor)
        resolving = _resolving_s(budget, policy)
        advice = (
            f"; a soak of {minutes_text(resolving)} can"
            if floor >= growth.high and elapsed_s < resolving
            else "; a longer or quieter soak narrows it"
        )
        notes.append(
            f"a {minutes_text(elapsed_s)} soak cannot rule out growth up to {limit:.3g} MB/h"
            f" (budget {budget:g} MB/h){advice}"
        )


def _resolving_s(budget_mb_per_h: float, policy: SoakPolicy) -> float:
    """The soak length whose judged window sees RESOLUTION_MB at the budget's rate."""
    judged_s = RESOLUTION_MB / budget_mb_per_h * 3600.0
    return judged_s / (1.0 - policy.warmup_fraction)


def latency_drift(
    series: SoakSeries, judged: npt.NDArray[np.bool_]
) -> tuple[float | None, float | None, float | None]:
    """Median and p95 change (%) from the first to the last fifth, and its p-value.

    Each interval's median is one value; a one-sided Mann-Whitney test asks whether
    the late intervals are slower than the early ones.
    """
    p50 = series.column("p50_ms")[judged]
    p95 = series.column("p95_ms")[judged]
    keep = ~np.isnan(p50)
    p50, p95 = p50[keep], p95[keep]
    window = int(p50.size * DRIFT_WINDOW)
    if window < DRIFT_MIN_INTERVALS:
        return None, None, None
    early, late = p50[:window], p50[-window:]
    base = float(np.median(early))
    if base <= 0:
        return None, None, None
    drift = (float(np.median(late)) / base - 1.0) * 100.0
    base95 = float(np.median(p95[:window]))
    drift95 = (float(np.median(p95[-window:])) / base95 - 1.0) * 100.0 if base95 > 0 else None
    return drift, drift95, mann_whitney_greater(late, early)
