"""Regression gates: this run's checks against a saved baseline.

One comparison check per check that both runs have, named ``regression[NAME]``: it
fails on a regression beyond the tolerance, passes otherwise, and says which way the
figure moved (``extra["kind"]``: regression, improvement, unchanged, not comparable,
inconclusive).

**Host drift.**  Every timed check carries a host-speed canary read beside it (see
:mod:`pytest_deploycheck.measure.canary`), and the baseline keeps it.  A comparison says
how the host moved ("host ran 24% slower than when the baseline was saved (canary
1.31 ms vs 1.06 ms)").  ``host_drift = "normalize"`` (the default) scales this run's
latency samples by baseline_canary / this_canary before the tests below when the host
ran slower by more than ``host_drift_pct`` (never up, for a host that seemed faster: the
canary's noise must not fail a merge), so a host that got slower does not read as
slower code; ``"inconclusive"`` leaves the figures as
measured and reports a regression (or improvement) the canary moved the same way by
more than ``host_drift_pct`` as inconclusive: not gating, with that reason.  Cold starts
are never normalized (they are mostly imports and file reads).  A baseline saved before
the canary existed compares as before.

**Latency** (and throughput, which is judged on the median call latency) is judged on
the **median call** and fires only when all three hold:

1. the median got worse by more than the tolerance (10% by default);
2. a one-sided **Mann-Whitney U** test on the medians of blocks of consecutive calls, or
   the same test on the blocks' share of calls beyond the pooled median, says the new
   run is slower (p below the significance, 0.01 by default);
3. a seeded **bootstrap** interval of the median's relative change lies above 0 (its
   lower bound is the one-sided 1 - significance bound, so the interval shown is the
   two-sided 1 - 2 x significance one: 98% by default).

Why the median, when the budget is on a percentile: on a shared machine a run's p95
swings by 10-20% between identical runs, because bursts from other processes land in
the tail, while the median moves by about 2%
(``benchmarks/bench_regression_gate.py``; see ``benchmarks/REGRESSION_GATE.md``).  A
gate on p95 either fires on that noise or needs a tolerance too wide to catch a 25%
slowdown.  The tail is still guarded, by the absolute budget on the percentile, and the
percentile's change is printed beside the median's.

Why blocks: slow calls come in bursts, so consecutive samples are not independent, and
a test on single samples calls one burst "highly significant".  Cut into 20 blocks of
consecutive calls, a burst moves one or two blocks; a slower model moves all of them.

Why two checks (a test and an interval): the rank test is powerful and robust but tests
a shift; the bootstrap judges the median itself.  Significance keeps sampling noise
out; the tolerance keeps run-to-run drift (another load on the CI machine, thermal
state) out; a regression has to clear both.

When either side has no samples, or fewer than :data:`MIN_SAMPLES_FOR_TEST` (the rank
test's normal approximation needs about 20 each), only the percentile values are
compared: a change beyond :data:`UNTESTED_FACTOR` times the tolerance is still a
regression, labelled untested (a 30% jump in p95 should not pass silently because a
baseline predates raw samples), anything smaller is "not comparable" and not gating.

**History.**  A baseline file keeps the last runs saved to it; latency and throughput
are compared with the pooled samples of those whose environment matches the newest
(:func:`pytest_deploycheck.verdict.baseline.pooled_baseline`), so one lucky or unlucky
saved run does not decide every later comparison.

**Memory** (one measurement per run, in a fresh child process, so nearly
deterministic) fails when the peak grows by more than ``memory_mb`` MB when that is
set, else by more than ``memory_pct`` percent.  **Accuracy** fails when the optimized
model's accuracy falls by more than ``accuracy`` (absolute) below the baseline run's
optimized accuracy: evaluation on a fixed set has no sampling noise between runs of the
same model and data, so no test is claimed.  **Cold start** is judged on the median of
a few fresh processes by its relative change only and is labelled "not tested for
significance".  Improvements are reported with the same rules mirrored.

numpy is imported at the top: this module is only imported when a baseline is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

import numpy as np
import numpy.typing as npt

from ..checks import metrics
from ..checks.record import Check
from ..config.regression import Tolerances
from ..config.units import format_value
from ..measure.stats import (
    bootstrap_percentile_change,
    consecutive_blocks,
    mann_whitney_greater,
    percentile_nearest_rank,
    pooled_percentile,
)
from .baseline import (
    ACCURACY,
    COLD_START,
    LATENCY,
    MEMORY,
    THROUGHPUT,
    Baseline,
    BaselineCheck,
    environment_differences,
    environment_notes,
    kept_checks,
    metric_family,
    pooled_baseline,
)

Kind = Literal["regression", "improvement", "unchanged", "not comparable", "inconclusive"]
FloatArray = npt.NDArray[np.float64]

ENVIRONMENT_CHECK = "baseline_environment"
MIN_SAMPLES_FOR_TEST = 20
UNTESTED_FACTOR = 3.0
THROUGHPUT_PERCENTILE = 50.0
# Fewer paired rounds than this cannot reach the gate's significance with a sign test.
MIN_DUET_ROUNDS = 8
# --------------------------------------------------------------------------- sample tests


@dataclass(frozen=True)
class SampleTest:
    """Both tests of a new sample set against an old one, in latency terms.

    ``p_slower``/``p_faster``: one-sided Mann-Whitney p-values that the new samples
    are slower/faster; ``ci_low``/``ci_high``: bootstrap interval of the percentile's
    relative change (a fraction, +0.1 = 10% slower) at ``confidence``.
    """

    p_slower: float
    p_faster: float
    ci_low: float
    ci_high: float
    confidence: float
    n_old: int
    n_new: int
    tail_p_slower: float = 1.0
    tail_p_faster: float = 1.0

    def confirms_slower(self, significance: float) -> bool:
        # A shift of the whole distribution (rank test) or of its tail alone (more calls
        # beyond the pooled percentile): a p95 budget cares about the second as well.
        shifted = min(self.p_slower, self.tail_p_slower) < significance
        return shifted and self.ci_low > 0.0

    def confirms_faster(self, significance: float) -> bool:
        shifted = min(self.p_faster, self.tail_p_faster) < significance
        return shifted and self.ci_high < 0.0


def compare_samples(
    new: Sequence[float] | npt.NDArray[Any],
    old: Sequence[float] | npt.NDArray[Any],
    percentile: float,
    significance: float,
) -> SampleTest:
    """The rank and tail tests on blocks of consecutive calls, and the bootstrap interval.

    Slow calls on a shared machine come in bursts (another process takes the core for
    tens of milliseconds), so consecutive samples are not independent: a test on single
    samples calls one burst "highly significant".  Each run is cut, in call order, into
    blocks; the rank test compares the blocks' medians and the tail test the blocks'
    share of calls beyond the pooled percentile.  A burst then moves one or two blocks
    and is not significant, while a slowdown of the model moves every block.
    """
    confidence = 1.0 - 2.0 * significance
    low, high = bootstrap_percentile_change(new, old, percentile, confidence=confidence)
    new_blocks = consecutive_blocks(new, blocks=BLOCKS, min_size=MIN_BLOCK)
    old_blocks = consecutive_blocks(old, blocks=BLOCKS, min_size=MIN_BLOCK)
    threshold = pooled_percentile(new, old, percentile)
    new_tail = [float((block > threshold).mean()) for block in new_blocks]
    old_tail = [float((block > threshold).mean()) for block in old_blocks]
    new_medians = [float(np.median(block)) for block in new_blocks]
    old_medians = [float(np.median(block)) for block in old_blocks]
    return SampleTest(
        p_slower=mann_whitney_greater(new_medians, old_medians),
        p_faster=mann_whitney_greater(old_medians, new_medians),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        n_old=len(old),
        n_new=len(new),
        tail_p_slower=mann_whitney_greater(new_tail, old_tail),
        tail_p_faster=mann_whitney_greater(old_tail, new_tail),
    )


# Latency regressions are judged on the median call, not on the budget's percentile: on
# a shared machine a run's p95 swings by 10-20% between identical runs (bursts from
# other processes land in the tail), while its median moves by about 2%.  Measured with
# benchmarks/bench_regression_gate.py: p95-based, 53 of 380 identical-run pairs fired
# and 342 of 400 real 25% slowdowns were caught; median-based, 0 of 380 and 400 of 400.
# The tail stays guarded by the absolute budget on the percentile itself.
LATENCY_GATE_PERCENTILE = 50.0
BLOCKS = 20
MIN_BLOCK = 5


# --------------------------------------------------------------------------- comparison


@dataclass
class _Judgement:
    """What one gate found; :func:`_comparison_check` turns it into a Check.

    The details line reads ``{headline} ({terms}; {evidence}): {outcome}``, e.g.
    ``p95 61.2 ms -> 78.9 ms (+28.9%, tolerance 10%; Mann-Whitney p=2e-09, 98% CI of
    the change +22.1% to +35.0%): regression``.
    """

    kind: Kind
    headline: str
    terms: str
    evidence: str
    outcome: str
    display: str
    value: float | None = None
    unit: str = ""
    budget: float | None = None
    old: float | None = None
    new: float | None = None
    change: float | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    untested: bool = False
    advisory: bool = False  # reported, but too weak to fail a merge on
    noteworthy: bool = False  # beyond the tolerance yet not judged: say so in the summary
    extra: dict[str, Any] = field(default_factory=dict)

    def details(self, override: bool) -> str:
        terms = self.terms + (" for this check" if override and self.terms else "")
        inside = "; ".join(part for part in (terms, self.evidence) if part)
        return f"{self.headline} ({inside}): {self.outcome}"


def compare_to_baseline(
    current: Sequence[Check],
    baseline: Baseline,
    tolerances: Tolerances,
    *,
    environment: Mapping[str, Any] | None = None,
    target: str | None = None,
) -> list[Check]:
    """Regression checks of this run's *current* checks against *baseline*.

    One ``regression[NAME]`` check per check both runs have (same key): gating, failed
    on a regression, passed on an improvement or no significant change; not gating
    (with a note) when the figures cannot be compared, since nothing was judged.
    Checks on one side only give an INFO check each ("new", "missing").  Given this
    run's *environment* (as :func:`pytest_deploycheck.checks.environment.environment` returns it)
    and *target*, a baseline from another environment adds a ``baseline_environment``
    check: INFO with a note under ``on_environment_mismatch = "warn"``; under
    ``"refuse"`` a failing check, and nothing is compared.

    A comparison's value is the relative change in percent (unit ``%``), except for
    accuracy (the absolute change, unit ``""``) and memory with ``memory_mb`` set (MB);
    its budget is the tolerance in the same unit.  ``extra`` holds ``old``, ``new``,
    ``change``, ``p_value`` and ``ci`` (percent; None where untested) and ``kind``; its
    ``display`` is a short phrase.
    """
    result: list[Check] = []
    environment_check = None
    baseline = pooled_baseline(baseline)
    if environment is not None:
        environment_check = _environment_check(baseline, environment, target, tolerances)
        if environment_check is not None and environment_check.gating:
            return [environment_check]
        result += [environment_check] if environment_check is not None else []
    checks = kept_checks(current)
    new_keys = [key for key in checks if key not in baseline.checks]
    missing_keys = [key for key in baseline.checks if key not in checks]
    for key, check in checks.items():
        if key in new_keys:
            result.append(_one_sided_check(check.name, check.nodeid, key, "new", new_keys))
            continue
        record = baseline.checks[key]
        judgement = _judge(record, check, tolerances.for_check(check.name))
        if record.samples_ns is not None and judgement.kind != "not comparable":
            # Raw host timings, for reports that draw both distributions.
            judgement.extra["baseline_samples_ns"] = list(record.samples_ns)
        pooled = record.extra.get("pooled_runs")
        paired = judgement.extra.get("paired")
        if pooled and judgement.kind != "not comparable" and not paired:
            judgement.extra["pooled_runs"] = pooled
            judgement.evidence += f"; baseline: {pooled} saved runs pooled"
        result.append(
            _comparison_check(
                check, key, judgement, tolerances, baseline, environment_check is not None
            )
        )
    for key in missing_keys:
        record = baseline.checks[key]
        result.append(_one_sided_check(record.name, record.nodeid, key, "missing", missing_keys))
    unused = _unused_overrides(tolerances, [check.name for check in checks.values()])
    return result + ([unused] if unused is not None else [])


def _judge(record: BaselineCheck, check: Check, tolerances: Tolerances) -> _Judgement:
    """Compare one check with its baseline record under *tolerances* (already per check)."""
    family = metric_family(check.metric)
    problem = _incomparable(record, check, family)
    if problem:
        return _not_comparable(record, check, problem)
    if family == LATENCY:
        return _judge_sampled(record, check, tolerances, higher_is_worse=True)
    if family == THROUGHPUT:
        return _judge_sampled(record, check, tolerances, higher_is_worse=False)
    if family == MEMORY:
        return _judge_memory(record, check, tolerances)
    if family == ACCURACY:
        return _judge_accuracy(record, check, tolerances)
    if family == COLD_START:
        # Reported, never normalized: a cold start is mostly imports and file reads,
        # which the CPU canary does not measure.
        drift = host_drift(record.extra, check.extra)
        judged = _judge_cold_start(record, check, tolerances)
        return _with_host_drift(judged, drift, tolerances, 1.0)
    raise ValueError(f"no regression gate for metric {check.metric!r}")


def _incomparable(record: BaselineCheck, check: Check, family: str | None) -> str | None:
    """Why the two figures cannot be compared at all, or None."""
    if record.family != family:
        return f"metric changed from {record.metric} to {check.metric}"
    if record.unit != check.unit:
        return f"unit changed from {record.unit!r} to {check.unit!r}"
    if record.provenance != check.provenance:
        return f"the baseline's figure is {record.provenance}, this run's {check.provenance}"
    if record.value is None:
        return "the baseline has no figure for it"
    if not _is_number(check.value):
        return "this run has no figure for it"
    if family != ACCURACY and record.value <= 0:
        return "the baseline's figure is 0: no relative change"
    if family == LATENCY:
        old_p, new_p = _percentile(record.percentile, record.metric), _check_percentile(check)
        if old_p != new_p:
            return f"the baseline judged p{old_p:g}, this run p{new_p:g}"
    return None


def _not_comparable(record: BaselineCheck, check: Check, problem: str) -> _Judgement:
    new = float(check.value) if _is_number(check.value) else None
    return _Judgement(
        kind="not comparable",
        headline=f"{format_value(record.value, record.unit)} -> {format_value(new, check.unit)}",
        terms="",
        evidence=problem,
        outcome="not comparable",
        display=f"not comparable: {problem}",
        old=record.value,
        new=new,
    )


def _figures(record: BaselineCheck, check: Check) -> tuple[float, float]:
    """The two figures, once :func:`_incomparable` has made sure both are numbers."""
    if record.value is None or not _is_number(check.value):
        raise ValueError(f"{check.name}: no figures to compare")
    return float(record.value), float(check.value)


def _percentile(raw: float | None, metric: str) -> float:
    if raw is not None:
        return float(raw)
    try:
        return float(metric.partition("_p")[2])
    except ValueError:
        return 95.0  # the latency_under default, for a check that recorded neither


def _check_percentile(check: Check) -> float:
    raw = check.extra.get("percentile")
    return _percentile(None if raw is None else float(raw), check.metric)


def _usable_samples(samples: Sequence[int] | None) -> bool:
    return samples is not None and len(samples) >= MIN_SAMPLES_FOR_TEST


def _scaled(samples: Sequence[int], extra: Mapping[str, Any]) -> FloatArray:
    """Host samples in the units of the reported figure (times the latency factor)."""
    factor = extra.get("latency_factor") or 1.0
    return np.asarray(samples, dtype=np.float64) * float(factor)


def _judge_sampled(
    record: BaselineCheck, check: Check, tolerances: Tolerances, *, higher_is_worse: bool
) -> _Judgement:
    """Latency or throughput, on samples normalized for the host's drift when asked to.

    A check that timed the release's model beside its own in this run (``duet``) is
    judged on that pair instead: the host's drift is in both arms and cancels.
    """
    duet = check.extra.get(metrics.DUET_KEY)
    if isinstance(duet, Mapping) and _usable_duet(duet):
        return _judge_duet(check, duet, tolerances, higher_is_worse)
    drift = host_drift(record.extra, check.extra)
    factor = _normalization(drift, tolerances)
    judgement = _judge_timed(record, check, tolerances, higher_is_worse, factor)
    return _with_host_drift(judgement, drift, tolerances, factor)


def _usable_duet(duet: Mapping[str, Any]) -> bool:
    rounds = duet.get("rounds")
    return (
        isinstance(rounds, list)
        and len(rounds) >= MIN_DUET_ROUNDS
        and _is_number(duet.get("ratio"))
        and isinstance(duet.get("ratio_ci"), list)
        and len(duet["ratio_ci"]) == 2
        and all(_is_number(p) for p in (duet.get("p_slower"), duet.get("p_faster")))
    )


def _judge_duet(
    check: Check, duet: Mapping[str, Any], tolerances: Tolerances, higher_is_worse: bool
) -> _Judgement:
    """The paired A/B rounds of this run: candidate / release median call, sign-tested.

    Latency: the change is the median round's ratio - 1; throughput (items per call
    being the same on both arms) its inverse.  A regression needs the change beyond the
    tolerance, the sign test below the significance and the ratio's interval beyond 1,
    as the saved-run gate asks of its own test and interval.
    """
    ratio = float(duet["ratio"])
    low, high = (float(v) if _is_number(v) else math.nan for v in duet.get("ratio_ci") or ())
    rounds = len(duet["rounds"])
    if higher_is_worse:
        change, ci = (ratio - 1.0) * 100.0, ((low - 1.0) * 100.0, (high - 1.0) * 100.0)
        tolerance = tolerances.latency_pct
    else:
        change, ci = (
            (1.0 / ratio - 1.0) * 100.0,
            ((1.0 / high - 1.0) * 100, (1.0 / low - 1.0) * 100),
        )
        tolerance = tolerances.throughput_pct
    slower = float(duet["p_slower"]) < tolerances.significance and low > 1.0
    faster = float(duet["p_faster"]) < tolerances.significance and high < 1.0
    worse = (change > tolerance) if higher_is_worse else (change < -tolerance)
    better = (change < -tolerance) if higher_is_worse else (change > tolerance)
    p_value = float(duet["p_slower"] if ratio >= 1.0 else duet["p_faster"])
    kind: Kind = (
        "regression" if worse and slower else "improvement" if better and faster else "unchanged"
    )
    outcome = kind if kind != "unchanged" else _duet_unconfirmed(worse or better, p_value)
    old_ms, new_ms = _duet_medians(duet)
    models = ", ".join(str(m) for m in duet.get("models") or ())
    confidence = float(duet.get("ci_confidence") or 0.98)
    return _Judgement(
        kind=kind,
        headline=(
            f"paired with the release's {models}: median call"
            f" {format_value(old_ms, 'ms')} (release) -> {format_value(new_ms, 'ms')} (candidate)"
        ),
        terms=f"{change:+.1f}%, tolerance {tolerance:g}%",
        evidence=(
            f"{rounds} interleaved rounds of {duet.get('block_calls')} calls per model in this"
            f" run, sign test {_p_text(p_value)}, {confidence:.0%} CI of the change"
            f" {ci[0]:+.1f}% to {ci[1]:+.1f}%: the host's drift cancels within the pair"
        ),
        outcome=outcome,
        display=f"{change:+.1f}% vs the release's model, paired ({_p_text(p_value)})",
        value=change,
        unit="%",
        budget=tolerance,
        old=old_ms,
        new=new_ms,
        change=change,
        p_value=p_value,
        ci=ci,
        noteworthy=outcome.startswith("not confirmed"),
        extra={"paired": True, "duet_rounds": rounds, "ci_confidence": confidence},
    )


def _duet_medians(duet: Mapping[str, Any]) -> tuple[float, float]:
    """The median of each arm's block medians, in ms, for the headline."""
    rounds = duet["rounds"]
    release = float(np.median([float(pair[0]) for pair in rounds])) / 1e6
    candidate = float(np.median([float(pair[1]) for pair in rounds])) / 1e6
    return release, candidate


def _duet_unconfirmed(beyond: bool, p_value: float) -> str:
    if not beyond:
        return "within tolerance"
    return f"not confirmed: the rounds do not agree ({_p_text(p_value)})"


def _normalization(drift: HostDrift | None, tolerances: Tolerances) -> float:
    """The factor for this run's latencies under ``host_drift = "normalize"``, else 1.0.

    Only a host that ran slower by more than ``host_drift_pct`` is corrected for, and
    only downwards: the canary's own noise is several percent, and scaling this run's
    figures up for a host that seemed faster would turn that noise into failed merges.
    """
    if drift is None or tolerances.host_drift != "normalize":
        return 1.0
    if drift.pct <= tolerances.host_drift_pct:
        return 1.0
    return 1.0 / drift.ratio


def _judge_timed(
    record: BaselineCheck,
    check: Check,
    tolerances: Tolerances,
    higher_is_worse: bool,
    factor: float,
) -> _Judgement:
    """Latency (higher is worse) or throughput (lower is worse), tested on the samples.

    *factor* scales this run's latencies (and so divides its throughput): the host-drift
    normalization, 1.0 when there is none.
    """
    old, new = _figures(record, check)
    new = new * factor if higher_is_worse else new / factor
    change = (new / old - 1.0) * 100.0
    tolerance = tolerances.latency_pct if higher_is_worse else tolerances.throughput_pct
    sign = 1.0 if higher_is_worse else -1.0
    worse, better = sign * change > tolerance, sign * change < -tolerance
    if higher_is_worse:
        percentile = _check_percentile(check)
        label = f"p{percentile:g}"
    else:
        label, percentile = "throughput", THROUGHPUT_PERCENTILE
    base = _Judgement(
        kind="unchanged",
        headline=f"{label} {format_value(old, check.unit)} -> {format_value(new, check.unit)}",
        terms=f"{change:+.1f}%, tolerance {tolerance:g}%",
        evidence="",
        outcome="",
        display="",
        value=change,
        unit="%",
        budget=tolerance,
        old=old,
        new=new,
        change=change,
    )
    new_samples = check.extra.get("samples_ns")
    if not (_usable_samples(record.samples_ns) and _usable_samples(new_samples)):
        return _untested(base, worse, better, tolerance, record.samples_ns, new_samples)
    assert record.samples_ns is not None and new_samples is not None
    new_scaled = _scaled(new_samples, check.extra) * factor
    old_scaled = _scaled(record.samples_ns, record.extra)
    if higher_is_worse:
        # Judged on the median call: see LATENCY_GATE_PERCENTILE.
        base, worse, better = _on_the_median(base, old_scaled, new_scaled, tolerance, label)
        percentile, label = LATENCY_GATE_PERCENTILE, "median"
        change = base.change if base.change is not None else change
    tested = compare_samples(new_scaled, old_scaled, percentile, tolerances.significance)
    # Throughput is tested as the median call latency; the interval is shown in its terms.
    ci = (tested.ci_low, tested.ci_high) if higher_is_worse else _throughput_ci(tested)
    p_value = tested.p_slower if (change >= 0) == higher_is_worse else tested.p_faster
    alpha = tolerances.significance
    if worse and tested.confirms_slower(alpha):
        kind: Kind = "regression"
        outcome = "regression"
    elif better and tested.confirms_faster(alpha):
        kind, outcome = "improvement", "improvement"
    else:
        kind = "unchanged"
        outcome = _unconfirmed(worse or better, p_value, tested, label, alpha)
        base.noteworthy = outcome.startswith("not confirmed")
    base.kind, base.outcome, base.p_value = kind, outcome, p_value
    base.evidence = (
        f"Mann-Whitney {_p_text(p_value)}, {tested.confidence:.0%} CI of the change"
        f" {ci[0] * 100:+.1f}% to {ci[1] * 100:+.1f}%"
    )
    base.display = f"{change:+.1f}% vs baseline ({_p_text(p_value)})"
    base.ci = (ci[0] * 100.0, ci[1] * 100.0)
    base.extra = {"n_old": tested.n_old, "n_new": tested.n_new, "ci_confidence": tested.confidence}
    return base


@dataclass(frozen=True)
class HostDrift:
    """How the host-speed canary moved between the baseline and this run.

    ``old_ns``/``new_ns``: nanoseconds per multiply-add of the fixed product (see
    :mod:`pytest_deploycheck.measure.canary`); ``ops``: multiply-adds per product.
    """

    old_ns: float
    new_ns: float
    ops: int

    @property
    def ratio(self) -> float:
        """How much slower the host ran now (1.24 = 24% slower)."""
        return self.new_ns / self.old_ns

    @property
    def pct(self) -> float:
        return (self.ratio - 1.0) * 100.0

    def sentence(self) -> str:
        """``host ran 24% slower than when the baseline was saved (canary 1.31 ms vs 1.06 ms)``."""
        way = "slower" if self.pct >= 0 else "faster"
        old_ms, new_ms = self.old_ns * self.ops / 1e6, self.new_ns * self.ops / 1e6
        return (
            f"host ran {abs(self.pct):.0f}% {way} than when the baseline was saved"
            f" (canary {format_value(new_ms, 'ms')} vs {format_value(old_ms, 'ms')})"
        )


def host_drift(old_extra: Mapping[str, Any], new_extra: Mapping[str, Any]) -> HostDrift | None:
    """The host's drift between two checks' canaries; None when either side has none."""
    old, new = old_extra.get(metrics.HOST_CANARY), new_extra.get(metrics.HOST_CANARY)
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return None
    old_ns, new_ns, ops = old.get("ns_per_op"), new.get("ns_per_op"), new.get("ops")
    if not (_is_number(old_ns) and _is_number(new_ns) and old_ns > 0 and new_ns > 0):
        return None
    if ops != old.get("ops") or not _is_number(ops):
        return None  # another canary: its figures are not comparable
    return HostDrift(float(old_ns), float(new_ns), int(ops))


def _with_host_drift(
    base: _Judgement, drift: HostDrift | None, tolerances: Tolerances, factor: float
) -> _Judgement:
    """Say how the host moved; under ``host_drift = "inconclusive"`` a change it explains is."""
    if drift is None or base.kind == "not comparable":
        return base
    base.extra.update(
        host_drift_pct=drift.pct,
        host_canary_ms=[drift.old_ns * drift.ops / 1e6, drift.new_ns * drift.ops / 1e6],
        host_drift_mode=tolerances.host_drift,
        host_normalization=factor,
    )
    said = drift.sentence()
    if factor != 1.0:
        said += f": this run's figures scaled by {factor:.3g} (host_drift = 'normalize')"
    base.evidence = f"{base.evidence}; {said}" if base.evidence else said
    same_way = (base.kind == "regression" and drift.pct > 0) or (
        base.kind == "improvement" and drift.pct < 0
    )
    beyond = abs(drift.pct) > tolerances.host_drift_pct
    if tolerances.host_drift == "inconclusive" and same_way and beyond:
        base.kind = "inconclusive"
        base.outcome = (
            f"inconclusive: the {drift.sentence()}, beyond host_drift_pct"
            f" {tolerances.host_drift_pct:g}%: rerun on a quiet host"
        )
        base.advisory = base.noteworthy = True
        base.display = f"{base.display} inconclusive (host {drift.pct:+.0f}%)"
    return base


def _on_the_median(
    base: _Judgement, old: FloatArray, new: FloatArray, tolerance: float, label: str
) -> tuple[_Judgement, bool, bool]:
    """The judgement re-based on the median call; the budget percentile stays in view."""
    old_median = percentile_nearest_rank(old, 50) / 1e6
    new_median = percentile_nearest_rank(new, 50) / 1e6
    change = (new_median / old_median - 1.0) * 100.0
    base.headline = (
        f"median {format_value(old_median, 'ms')} -> {format_value(new_median, 'ms')}"
        f" [{label} {format_value(base.old, 'ms')} -> {format_value(base.new, 'ms')},"
        f" {base.change:+.1f}%]"
    )
    base.terms = f"{change:+.1f}%, tolerance {tolerance:g}%"
    base.value = base.change = change
    base.old, base.new = old_median, new_median
    return base, change > tolerance, change < -tolerance


def _throughput_ci(tested: SampleTest) -> tuple[float, float]:
    """Throughput is 1 / median latency: a latency change r is a throughput change 1/(1+r)-1."""
    return 1.0 / (1.0 + tested.ci_high) - 1.0, 1.0 / (1.0 + tested.ci_low) - 1.0


def _unconfirmed(beyond: bool, p_value: float, tested: SampleTest, label: str, alpha: float) -> str:
    """Why a change did not count: too small, noise, or seen by only one of the two tests."""
    if not beyond:
        return "within tolerance"
    interval_excludes_0 = tested.ci_low > 0.0 or tested.ci_high < 0.0
    if p_value >= alpha and not interval_excludes_0:
        return f"within noise ({_p_text(p_value)})"
    if p_value >= alpha:
        # The percentile moved but the bulk did not (a change in the tail, or a fragile
        # interval at small n): not confirmed by this gate's rule, never passed silently.
        return (
            f"not confirmed: the {label} interval excludes 0 but the rank test sees no shift"
            f" of the distribution ({_p_text(p_value)})"
        )
    return (
        f"not confirmed: the rank test sees a shift ({_p_text(p_value)}) but the"
        f" {tested.confidence:.0%} CI of the {label} change includes 0"
    )


def _untested(
    base: _Judgement,
    worse: bool,
    better: bool,
    tolerance: float,
    old_samples: Sequence[int] | None,
    new_samples: Sequence[int] | None,
) -> _Judgement:
    """No usable samples on a side: only a change far beyond the tolerance counts.

    Without samples the percentile's noise is unknown; a change of several tolerances
    is still more than the run-to-run noise of a settled percentile, and letting it pass
    because a baseline predates raw samples would hide exactly what the gate is for.
    """
    sides = [
        side
        for side, samples in (("the baseline", old_samples), ("this run", new_samples))
        if not _usable_samples(samples)
    ]
    base.evidence = (
        f"no samples (fewer than {MIN_SAMPLES_FOR_TEST}) in {' and '.join(sides)}:"
        " change not tested for significance"
    )
    far = abs(base.change or 0.0) > UNTESTED_FACTOR * tolerance
    if far and worse:
        base.kind = "regression"
        base.outcome = f"regression (untested: beyond {UNTESTED_FACTOR:g}x the tolerance)"
    elif far and better:
        base.kind, base.outcome = "improvement", "improvement (untested)"
    else:
        base.kind, base.outcome = "not comparable", "not comparable"
    base.display = f"{base.change:+.1f}% vs baseline (untested)"
    base.untested = True
    return base


def _judge_memory(record: BaselineCheck, check: Check, tolerances: Tolerances) -> _Judgement:
    old, new = _figures(record, check)
    change_mb, change_pct = new - old, (new / old - 1.0) * 100.0
    if tolerances.memory_mb is not None:
        value, unit, tolerance = change_mb, "MB", tolerances.memory_mb
        terms = f"{change_mb:+.1f} MB ({change_pct:+.1f}%), tolerance {tolerance:g} MB"
    else:
        value, unit, tolerance = change_pct, "%", tolerances.memory_pct
        terms = f"{change_pct:+.1f}% ({change_mb:+.1f} MB), tolerance {tolerance:g}%"
    kind = _threshold_kind(value, tolerance, higher_is_worse=True)
    return _Judgement(
        kind=kind,
        headline=f"peak {format_value(old, 'MB')} -> {format_value(new, 'MB')}",
        terms=terms,
        evidence="one measurement each, not tested for significance",
        outcome=_threshold_outcome(kind),
        display=f"{change_mb:+.1f} MB ({change_pct:+.1f}%) vs baseline",
        value=value,
        unit=unit,
        budget=tolerance,
        old=old,
        new=new,
        change=value,
        untested=True,
        extra={"change_mb": change_mb, "change_pct": change_pct},
    )


def _judge_accuracy(record: BaselineCheck, check: Check, tolerances: Tolerances) -> _Judgement:
    old, new = record.extra.get("optimized"), check.extra.get("optimized")
    if not _is_number(old) or not _is_number(new):
        return _not_comparable(record, check, "the optimized accuracy is missing on a side")
    old_metric, new_metric = record.extra.get("metric"), check.extra.get("metric")
    if old_metric != new_metric:
        problem = f"accuracy metric changed from {old_metric} to {new_metric}"
        return _not_comparable(record, check, problem)
    old_accuracy, new_accuracy = float(old), float(new)
    change = new_accuracy - old_accuracy
    kind = _threshold_kind(change, tolerances.accuracy, higher_is_worse=False)
    n_old, n_new = record.extra.get("n"), check.extra.get("n")
    data = f"n={n_new}" if n_old == n_new else f"n={n_old} in the baseline, n={n_new} now"
    return _Judgement(
        kind=kind,
        headline=(
            f"optimized accuracy {format_value(old_accuracy)} -> {format_value(new_accuracy)}"
        ),
        terms=f"{change:+.4g}, tolerance {tolerances.accuracy:g}",
        evidence=f"evaluation set {data}, not tested for significance",
        outcome=_threshold_outcome(kind),
        display=(
            f"{change:+.4g} vs baseline"
            f" ({format_value(old_accuracy)} -> {format_value(new_accuracy)})"
        ),
        value=change,
        unit="",
        budget=tolerances.accuracy,
        old=old_accuracy,
        new=new_accuracy,
        change=change,
        untested=True,
    )


COLD_START_MIN_RUNS = 5


def _judge_cold_start(record: BaselineCheck, check: Check, tolerances: Tolerances) -> _Judgement:
    """Median change of fresh-process start times, tested on the runs when there are enough.

    A few process starts swing with the page cache and the machine's load: with fewer
    than five runs a side the comparison is advisory, never a failed merge.
    """
    old, new = _figures(record, check)
    change = (new / old - 1.0) * 100.0
    kind = _threshold_kind(change, tolerances.cold_start_pct, higher_is_worse=True)
    old_runs = [float(v) for v in record.extra.get("runs_ms") or []]
    new_runs = [float(v) for v in check.extra.get("runs_ms") or []]
    enough = min(len(old_runs), len(new_runs)) >= COLD_START_MIN_RUNS
    significance = tolerances.significance  # already this check's, see compare_to_baseline
    p_value = mann_whitney_greater(new_runs, old_runs) if enough else None
    if kind == "regression" and p_value is not None and p_value >= significance:
        kind = "unchanged"
    runs = f"median of {len(old_runs) or '?'} and {len(new_runs) or '?'} runs"
    evidence = (
        f"{runs}, Mann-Whitney p={p_value:.2g}"
        if p_value is not None
        else f"{runs}: too few to test (need {COLD_START_MIN_RUNS} a side), advisory"
    )
    return _Judgement(
        kind=kind,
        headline=f"cold start median {format_value(old, 'ms')} -> {format_value(new, 'ms')}",
        terms=f"{change:+.1f}%, tolerance {tolerances.cold_start_pct:g}%",
        evidence=evidence,
        outcome=_threshold_outcome(kind),
        display=f"{change:+.1f}% vs baseline (median"
        + (f", p={p_value:.2g})" if p_value is not None else ", advisory)"),
        value=change,
        unit="%",
        budget=tolerances.cold_start_pct,
        old=old,
        new=new,
        change=change,
        p_value=p_value,
        untested=p_value is None,
        advisory=p_value is None,
    )


def _threshold_kind(change: float, tolerance: float, *, higher_is_worse: bool) -> Kind:
    worse = change if higher_is_worse else -change
    if worse > tolerance:
        return "regression"
    if worse < -tolerance:
        return "improvement"
    return "unchanged"


def _threshold_outcome(kind: Kind) -> str:
    return "within tolerance" if kind == "unchanged" else kind


def _comparison_check(
    check: Check,
    key: str,
    judgement: _Judgement,
    tolerances: Tolerances,
    baseline: Baseline,
    environment_differs: bool,
) -> Check:
    comparable = judgement.kind != "not comparable"
    override = tolerances.overridden(check.name)
    details = judgement.details(override)
    if environment_differs:
        details += " (baseline from another environment)"
    name = f"regression[{check.name}]"
    return Check(
        name=name,
        metric=metrics.REGRESSION,
        value=judgement.value if comparable else None,
        unit=judgement.unit if comparable else "",
        budget=judgement.budget if comparable else None,
        passed=judgement.kind != "regression",
        provenance=check.provenance,
        details=details,
        gating=comparable and not judgement.advisory,
        nodeid=check.nodeid,
        extra={
            **judgement.extra,
            "kind": judgement.kind,
            "key": key,
            "compared_metric": check.metric,
            "old": judgement.old,
            "new": judgement.new,
            "change": judgement.change,
            "p_value": judgement.p_value,
            "ci": None if judgement.ci is None else list(judgement.ci),
            "untested": judgement.untested,
            "tolerance_override": override,
            "significance": tolerances.for_check(check.name).significance,
            "baseline": baseline.describe(),
            "environment_differs": environment_differs,
        },
        display=judgement.display,
        notes=_notes(name, judgement),
    )


def _notes(name: str, judgement: _Judgement) -> tuple[str, ...]:
    """Summary notes for comparisons that did not judge, or saw a change they did not confirm."""
    if judgement.kind == "not comparable":
        return (f"{name}: {judgement.display}",)
    if judgement.noteworthy:
        return (f"{name}: {judgement.headline}: {judgement.outcome}",)
    return ()


def _one_sided_check(
    name: str, nodeid: str, key: str, side: Literal["new", "missing"], keys: Sequence[str]
) -> Check:
    """INFO for a check only one side has: a new test, or a deleted or deselected one.

    Every such check carries the same summary note, so the terminal shows it once.
    """
    if side == "new":
        details = "new check, no baseline"
        note = f"{len(keys)} check(s) have no baseline yet"
    else:
        details = "in the baseline but not in this run (deleted, renamed or deselected test?)"
        shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
        note = f"{len(keys)} check(s) in the baseline did not run: {shown}"
    return Check(
        name=f"regression[{name}]",
        metric=metrics.REGRESSION,
        value=None,
        passed=True,
        details=details,
        gating=False,
        nodeid=nodeid,
        extra={"kind": side, "key": key},
        display=details,
        notes=(note,),
    )


def _unused_overrides(tolerances: Tolerances, names: Sequence[str]) -> Check | None:
    """An INFO check naming per-check tolerances that match no check (a typo, usually)."""
    unused = [name for name in tolerances.per_check if name not in set(names)]
    if not unused:
        return None
    note = (
        f"regression tolerances are set for {', '.join(map(repr, unused))},"
        " but no check in this run has that name"
    )
    return Check(
        name="regression_tolerances",
        metric=metrics.REGRESSION,
        value=None,
        passed=True,
        details=note,
        gating=False,
        extra={"kind": "config", "unused_overrides": unused},
        notes=(note,),
    )


def _environment_check(
    baseline: Baseline,
    environment: Mapping[str, Any],
    target: str | None,
    tolerances: Tolerances,
) -> Check | None:
    """A baseline_environment check when the environments differ, else None."""
    differences = environment_differences(
        baseline.environment, environment, baseline_target=baseline.target, current_target=target
    )
    if not differences:
        return None
    refuse = tolerances.on_environment_mismatch == "refuse"
    consequence = (
        "not compared (on_environment_mismatch = 'refuse')"
        if refuse
        else "compared anyway: a change may come from the machine, not the code"
    )
    listing = "; ".join(differences)
    note = f"baseline {baseline.describe()} is from another environment, {consequence}: {listing}"
    return Check(
        name=ENVIRONMENT_CHECK,
        metric=metrics.REGRESSION_ENVIRONMENT,
        value=len(differences),
        passed=not refuse,
        details=note,
        gating=refuse,
        extra={
            "kind": "environment",
            "differences": differences,
            "informational": environment_notes(baseline.environment, environment),
            "mode": tolerances.on_environment_mismatch,
        },
        display=f"environment differs: {listing}",
        notes=(note,),
    )


def comparison_summary(checks: Sequence[Check], baseline: Baseline) -> str:
    """One line for the terminal: ``vs baseline b.json (edge-c, ...): 1 regression, ...``."""
    kinds = [str(c.extra.get("kind")) for c in checks if c.metric == metrics.REGRESSION]
    order = (
        "regression",
        "improvement",
        "unchanged",
        "inconclusive",
        "not comparable",
        "new",
        "missing",
    )
    counts = [f"{kinds.count(kind)} {kind}" for kind in order if kind in kinds]
    return f"vs baseline {baseline.describe()}: {', '.join(counts) or 'nothing compared'}"


def _p_text(p_value: float) -> str:
    """``p=2e-09``; a p-value that underflowed a double is shown as a bound."""
    return "p<1e-300" if p_value <= 0.0 else f"p={p_value:.2g}"


def _is_number(value: object) -> TypeGuard[float]:
    """A finite int or float (bools are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
