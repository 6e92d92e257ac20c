"""Unit tests of gates.py: the two tests on latency samples, and every gate.

Nothing is timed: latencies are drawn from seeded generators (log-normal around 50 ms,
sigma 0.2, the shape of CPU inference latency), so every figure here is reproducible.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.config.regression import Tolerances
from pytest_deploycheck.measure.stats import percentile_nearest_rank
from pytest_deploycheck.verdict.baseline import Baseline, build_baseline, parse_baseline
from pytest_deploycheck.verdict.gates import (
    ENVIRONMENT_CHECK,
    MIN_SAMPLES_FOR_TEST,
    HostDrift,
    compare_samples,
    compare_to_baseline,
    comparison_summary,
)

NODE = "tests/test_model.py::test_fast"
SEEDS = range(20)
Samples = npt.NDArray[np.int64]


def latencies(rng: np.random.Generator, n: int, slowdown: float = 1.0) -> Samples:
    """n per-call latencies in ns: log-normal around 50 ms, times *slowdown*."""
    return (50e6 * slowdown * rng.lognormal(0.0, 0.2, n)).astype(np.int64)


def latency_check(
    samples: Samples | None,
    *,
    name: str = "latency_under_80",
    percentile: float = 95.0,
    value_ms: float | None = None,
    nodeid: str = NODE,
    **extra: Any,
) -> Check:
    """A check as the latency marker records it: the nearest-rank percentile in ms."""
    if value_ms is None and samples is not None:
        value_ms = percentile_nearest_rank(samples, percentile) / 1e6
    return Check(
        name=name,
        metric=f"latency_p{percentile:g}",
        value=value_ms,
        unit="ms",
        budget=80,
        nodeid=nodeid,
        extra={
            "percentile": percentile,
            **({} if samples is None else {"samples_ns": [int(s) for s in samples]}),
            **extra,
        },
    )


def baseline_of(
    checks: list[Check], target: str | None = "edge-c", env: dict[str, Any] | None = None
) -> Baseline:
    return parse_baseline(build_baseline(checks, target=target, environment=env or {}))


def compare_one(old: Check, new: Check, tolerances: Tolerances | None = None) -> Check:
    """The one regression check of *new* against a baseline holding *old*."""
    comparisons = compare_to_baseline([new], baseline_of([old]), tolerances or Tolerances())
    (comparison,) = [c for c in comparisons if c.name == f"regression[{new.name}]"]
    return comparison


def fires(comparison: Check) -> bool:
    assert comparison.metric == "regression" and comparison.gating
    return comparison.passed is False


# ------------------------------------------------------------------ sample tests


def test_compare_samples_reports_both_tests() -> None:
    rng = np.random.default_rng(0)
    old, new = latencies(rng, 200), latencies(rng, 200, 1.25)
    tested = compare_samples(new, old, 95, 0.01)
    assert tested.confidence == pytest.approx(0.98)
    assert tested.p_slower < 1e-4 and tested.p_faster > 0.99
    assert tested.confirms_slower(0.01) and not tested.confirms_faster(0.01)
    assert (tested.n_old, tested.n_new) == (200, 200)


# ------------------------------------------------------------------ latency gate


def test_a_a_never_fires() -> None:
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        comparison = compare_one(
            latency_check(latencies(rng, 200)), latency_check(latencies(rng, 200))
        )
        assert not fires(comparison), comparison.details
        assert comparison.extra["kind"] == "unchanged"


def test_a_25_percent_slowdown_fires_every_time() -> None:
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        old, new = latencies(rng, 200), latencies(rng, 200, 1.25)
        comparison = compare_one(latency_check(old), latency_check(new))
        assert fires(comparison), comparison.details
        assert comparison.extra["kind"] == "regression"
        assert comparison.extra["p_value"] < 1e-4


def test_a_5_percent_slowdown_within_a_10_percent_tolerance_does_not_fire() -> None:
    # 2000 samples a side: the p95 estimate itself is then good to about +-2%.  With
    # 200 a side it is good to about +-7%, and a real 5% slowdown measured as +12%
    # does fire (3 of these 20 seeds): the tolerance applies to the measured change.
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        old, new = latencies(rng, 2000), latencies(rng, 2000, 1.05)
        comparison = compare_one(latency_check(old), latency_check(new))
        assert not fires(comparison), comparison.details
        assert comparison.extra["p_value"] < 0.01  # the slowdown is real, and small
        assert comparison.details.endswith("within tolerance")


def test_a_few_outliers_with_the_same_percentile_do_not_fire() -> None:
    rng = np.random.default_rng(0)
    old = latencies(rng, 200)
    new = old.copy()
    slowest = np.argsort(new)[-4:]  # above the p95 rank (190 of 200)
    new[slowest] *= 10
    comparison = compare_one(latency_check(old), latency_check(new))
    assert comparison.value == 0.0
    assert not fires(comparison)
    assert comparison.extra["p_value"] > 0.4


def test_a_burst_of_slow_calls_does_not_fire() -> None:
    # Another process takes the core for a while: 12 consecutive calls (6%) get 5 times
    # slower.  p95 jumps, but the burst fills one block of calls: not a regression.
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        old, new = latencies(rng, 200), latencies(rng, 200)
        start = int(rng.integers(0, 188))
        new[start : start + 12] *= 5
        comparison = compare_one(latency_check(old), latency_check(new))
        assert not fires(comparison), comparison.details
        assert "[p95 " in comparison.details  # the percentile's move stays in view


def test_a_tail_only_slowdown_is_left_to_the_budget() -> None:
    # The slowest 10% of calls get 50% slower: p95 moves by about +50%, the median not at
    # all.  The gate judges the median (a run's p95 swings by 10-20% between identical
    # runs on a shared machine), so it does not fire; the absolute budget on p95 is what
    # guards the tail, and the p95 change is shown in the details.
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        old, new = latencies(rng, 200), latencies(rng, 200)
        slowest = np.argsort(new)[-20:]
        new[slowest] = (new[slowest] * 1.5).astype(np.int64)
        comparison = compare_one(latency_check(old), latency_check(new))
        assert not fires(comparison)
        assert "[p95 " in comparison.details and abs(comparison.value) < 10


def test_a_broad_slowdown_is_caught_on_the_median_even_with_few_samples() -> None:
    # 30 samples a side: p95 is the 29th of 30 and could not tell, but a 20% slowdown
    # of every call moves the median, whose interval is tight.
    rng = np.random.default_rng(2)
    old, new = latencies(rng, 30), latencies(rng, 30, 1.2)
    comparison = compare_one(latency_check(old), latency_check(new))
    assert fires(comparison), comparison.details
    assert comparison.extra["p_value"] < 0.01 and comparison.extra["ci"][0] > 0


def test_identical_few_noisy_samples_are_within_noise_or_tolerance() -> None:
    rng = np.random.default_rng(1)
    comparison = compare_one(latency_check(latencies(rng, 25)), latency_check(latencies(rng, 25)))
    assert not fires(comparison)
    assert comparison.details.rsplit("): ", 1)[-1].startswith("within")
    assert comparison.notes == ()


def test_a_speed_up_is_an_improvement() -> None:
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        old, new = latencies(rng, 200), latencies(rng, 200, 0.8)
        comparison = compare_one(latency_check(old), latency_check(new))
        assert comparison.passed and comparison.gating
        assert comparison.extra["kind"] == "improvement", comparison.details
        assert comparison.details.endswith("): improvement")


def test_regression_check_fields() -> None:
    rng = np.random.default_rng(0)
    old, new = latencies(rng, 200), latencies(rng, 200, 1.25)
    comparison = compare_one(latency_check(old), latency_check(new))
    assert comparison.name == "regression[latency_under_80]"
    assert (comparison.metric, comparison.unit, comparison.budget) == ("regression", "%", 10.0)
    assert comparison.nodeid == NODE and comparison.provenance == "measured"
    old_ms, new_ms = comparison.extra["old"], comparison.extra["new"]
    assert old_ms == percentile_nearest_rank(old, 50) / 1e6  # judged on the median call
    assert comparison.value == pytest.approx((new_ms / old_ms - 1) * 100)
    low, high = comparison.extra["ci"]
    assert 0 < low < comparison.value < high
    p = comparison.extra["p_value"]
    old_p95, new_p95 = (
        percentile_nearest_rank(old, 95) / 1e6,
        percentile_nearest_rank(new, 95) / 1e6,
    )
    assert comparison.details.startswith(
        f"median {old_ms:.4g} ms -> {new_ms:.4g} ms [p95 {old_p95:.4g} ms -> {new_p95:.4g} ms,"
    )
    assert comparison.details.endswith(
        f"({comparison.value:+.1f}%, tolerance 10%;"
        f" Mann-Whitney p={p:.2g}, 98% CI of the change {low:+.1f}% to {high:+.1f}%):"
        " regression"
    )
    assert comparison.display == f"{comparison.value:+.1f}% vs baseline (p={p:.2g})"
    assert comparison.extra["key"] == f"{NODE}::latency_under_80"
    assert (comparison.extra["n_old"], comparison.extra["n_new"]) == (200, 200)
    assert comparison.extra["baseline_samples_ns"] == old.tolist()  # for the HTML chart


def test_per_check_tolerance_override() -> None:
    rng = np.random.default_rng(0)
    old, new = latencies(rng, 200), latencies(rng, 200, 1.25)
    tolerances = Tolerances(per_check={"latency_under_80": {"latency_pct": 50.0}})
    relaxed = compare_one(latency_check(old), latency_check(new), tolerances)
    assert not fires(relaxed) and relaxed.budget == 50.0
    assert "tolerance 50% for this check;" in relaxed.details
    assert relaxed.extra["tolerance_override"] is True
    other = compare_one(
        latency_check(old, name="latency_under_90"),
        latency_check(new, name="latency_under_90"),
        tolerances,
    )
    assert fires(other) and other.budget == 10.0


def test_estimated_latencies_compare_in_device_terms() -> None:
    rng = np.random.default_rng(0)
    old, new = latencies(rng, 200), latencies(rng, 200, 1.25)

    def estimated(samples: Samples) -> Check:
        value = percentile_nearest_rank(samples, 95) / 1e6 * 2.5
        return Check(
            name="latency_under_80",
            metric="latency_p95",
            value=value,
            unit="ms",
            provenance="estimated",
            nodeid=NODE,
            extra={"percentile": 95.0, "samples_ns": samples.tolist(), "latency_factor": 2.5},
        )

    comparison = compare_one(estimated(old), estimated(new))
    assert fires(comparison) and comparison.provenance == "estimated"
    measured = compare_one(latency_check(old), latency_check(new))
    assert comparison.extra["ci"] == pytest.approx(measured.extra["ci"])


def test_without_samples_a_small_change_is_not_comparable() -> None:
    comparison = compare_one(latency_check(None, value_ms=50.0), latency_check(None, value_ms=60.0))
    assert comparison.extra["kind"] == "not comparable"
    assert not comparison.gating and comparison.passed
    assert comparison.details == (
        "p95 50 ms -> 60 ms (+20.0%, tolerance 10%; no samples (fewer than 20) in the baseline"
        " and this run: change not tested for significance): not comparable"
    )
    assert comparison.notes == ("regression[latency_under_80]: +20.0% vs baseline (untested)",)


def test_without_samples_a_change_beyond_three_tolerances_is_an_untested_regression() -> None:
    rng = np.random.default_rng(0)
    old = latency_check(latencies(rng, 200))
    new = latency_check(None, value_ms=float(old.value) * 1.35)  # type: ignore[arg-type]
    comparison = compare_one(old, new)
    assert fires(comparison) and comparison.extra["untested"]
    assert "no samples (fewer than 20) in this run" in comparison.details
    assert comparison.details.endswith("regression (untested: beyond 3x the tolerance)")
    faster = compare_one(old, latency_check(None, value_ms=float(old.value) * 0.6))  # type: ignore[arg-type]
    assert faster.extra["kind"] == "improvement" and faster.passed


def test_too_few_samples_count_as_none() -> None:
    rng = np.random.default_rng(0)
    few = latencies(rng, MIN_SAMPLES_FOR_TEST - 1)
    comparison = compare_one(latency_check(latencies(rng, 200)), latency_check(few))
    assert comparison.extra["untested"] and comparison.extra["p_value"] is None


@pytest.mark.parametrize(
    ("new", "problem"),
    [
        (
            latency_check(None, percentile=99, value_ms=60.0),
            "the baseline judged p95, this run p99",
        ),
        (latency_check(None, value_ms=None), "this run has no figure for it"),
        (
            Check(name="latency_under_80", metric="latency_p95", value=50.0, unit="s", nodeid=NODE),
            "unit changed from 'ms' to 's'",
        ),
        (
            Check(
                name="latency_under_80",
                metric="latency_p95",
                value=50.0,
                unit="ms",
                nodeid=NODE,
                provenance="estimated",
            ),
            "the baseline's figure is measured, this run's estimated",
        ),
    ],
)
def test_figures_that_cannot_be_compared(new: Check, problem: str) -> None:
    comparison = compare_one(latency_check(None, value_ms=50.0), new)
    assert comparison.extra["kind"] == "not comparable"
    assert not comparison.gating and comparison.value is None
    assert comparison.details.endswith(f"({problem}): not comparable")


# ------------------------------------------------------------------ other gates


def throughput_check(samples: Samples, batch: int = 8) -> Check:
    items_per_s = batch * 1000 / (percentile_nearest_rank(samples, 50) / 1e6)
    return Check(
        name=f"throughput_over_100[batch={batch}]",
        metric="throughput",
        value=items_per_s,
        unit="items/s",
        nodeid=NODE,
        extra={"percentile": 50.0, "samples_ns": samples.tolist(), "batch": batch},
    )


def test_throughput_falls_when_batches_get_slower() -> None:
    rng = np.random.default_rng(0)
    old, new = latencies(rng, 200), latencies(rng, 200, 1.25)
    comparison = compare_one(throughput_check(old), throughput_check(new))
    assert fires(comparison)
    assert comparison.value == pytest.approx(-20, abs=5)
    low, high = comparison.extra["ci"]
    assert low < comparison.value < high < 0  # in throughput terms: a fall
    assert comparison.details.startswith("throughput ")
    faster = compare_one(throughput_check(old), throughput_check(latencies(rng, 200, 0.8)))
    assert faster.extra["kind"] == "improvement"
    same = compare_one(throughput_check(old), throughput_check(latencies(rng, 200)))
    assert same.extra["kind"] == "unchanged"


def memory_check(peak_mb: float) -> Check:
    return Check(
        name="memory_under_512",
        metric="peak_memory",
        value=peak_mb,
        unit="MB",
        nodeid=NODE,
        extra={"repeat": 5},
    )


def test_memory_gate_in_percent() -> None:
    comparison = compare_one(memory_check(400), memory_check(430))
    assert fires(comparison)
    assert comparison.value == pytest.approx(7.5)
    assert (comparison.unit, comparison.budget) == ("%", 5.0)
    assert comparison.details == (
        "peak 400 MB -> 430 MB (+7.5% (+30.0 MB), tolerance 5%;"
        " one measurement each, not tested for significance): regression"
    )
    assert compare_one(memory_check(400), memory_check(410)).extra["kind"] == "unchanged"
    assert compare_one(memory_check(400), memory_check(360)).extra["kind"] == "improvement"


def test_memory_gate_in_megabytes_when_set() -> None:
    tolerances = Tolerances(memory_mb=50)
    within = compare_one(memory_check(400), memory_check(430), tolerances)
    assert not fires(within)
    assert (within.value, within.unit, within.budget) == (30.0, "MB", 50.0)
    beyond = compare_one(memory_check(400), memory_check(460), tolerances)
    assert fires(beyond) and "tolerance 50 MB" in beyond.details


def accuracy_check(optimized: float, n: int = 1000, metric: str = "top1") -> Check:
    return Check(
        name="accuracy_drop_ok",
        metric="accuracy_drop",
        value=round(0.904 - optimized, 6),
        nodeid=NODE,
        extra={"baseline": 0.904, "optimized": optimized, "n": n, "metric": metric},
    )


def test_accuracy_gate_on_the_optimized_models_accuracy() -> None:
    comparison = compare_one(accuracy_check(0.900), accuracy_check(0.890))
    assert fires(comparison)
    assert comparison.value == pytest.approx(-0.01)
    assert (comparison.unit, comparison.budget) == ("", 0.005)
    assert comparison.details == (
        "optimized accuracy 0.9 -> 0.89 (-0.01, tolerance 0.005;"
        " evaluation set n=1000, not tested for significance): regression"
    )
    assert compare_one(accuracy_check(0.9), accuracy_check(0.897)).extra["kind"] == "unchanged"
    better = compare_one(accuracy_check(0.9), accuracy_check(0.91))
    assert better.extra["kind"] == "improvement" and better.passed


def test_accuracy_on_other_data_or_metric() -> None:
    other_n = compare_one(accuracy_check(0.9), accuracy_check(0.9, n=500))
    assert "evaluation set n=1000 in the baseline, n=500 now" in other_n.details
    other_metric = compare_one(accuracy_check(0.9), accuracy_check(0.9, metric="top5"))
    assert other_metric.extra["kind"] == "not comparable"
    assert "accuracy metric changed from top1 to top5" in other_metric.details


def cold_start_check(median_ms: float, runs: int = 3, spread: float = 10.0) -> Check:
    offsets = np.linspace(-spread, spread, runs)
    return Check(
        name="cold_start_under_2000",
        metric="cold_start",
        value=median_ms,
        unit="ms",
        nodeid=NODE,
        extra={"n": runs, "runs_ms": [median_ms + o for o in offsets]},
    )


def test_cold_start_with_few_runs_is_advisory() -> None:
    comparison = compare_one(cold_start_check(290), cold_start_check(400))
    assert comparison.value == pytest.approx(37.93, abs=0.01)
    assert comparison.extra["kind"] == "regression"
    assert not comparison.gating  # three process starts cannot fail a merge
    assert comparison.details == (
        "cold start median 290 ms -> 400 ms (+37.9%, tolerance 25%;"
        " median of 3 and 3 runs: too few to test (need 5 a side), advisory): regression"
    )
    assert comparison.display == "+37.9% vs baseline (median, advisory)"


def test_cold_start_with_enough_runs_is_tested() -> None:
    slower = compare_one(cold_start_check(290, runs=8), cold_start_check(400, runs=8))
    assert fires(slower) and slower.gating
    assert slower.extra["p_value"] < 0.01
    # The median moved by more than the tolerance, but the runs overlap: not confirmed.
    noisy = compare_one(
        cold_start_check(290, runs=8, spread=200), cold_start_check(400, runs=8, spread=200)
    )
    assert not fires(noisy) and noisy.extra["kind"] == "unchanged"
    assert compare_one(cold_start_check(290, runs=8), cold_start_check(300, runs=8)).passed


# ------------------------------------------------------------------ the whole comparison


def test_checks_on_one_side_only_are_info() -> None:
    rng = np.random.default_rng(0)
    samples = latencies(rng, 50)
    kept = latency_check(samples)
    deleted = latency_check(samples, nodeid="tests/test_model.py::test_gone")
    added = latency_check(samples, nodeid="tests/test_model.py::test_new")
    not_kept = Check(name="device_fit[x]", metric="device_fit", value="FIT")
    comparisons = compare_to_baseline(
        [kept, added, not_kept], baseline_of([kept, deleted]), Tolerances()
    )
    by_kind = {c.extra["kind"]: c for c in comparisons}
    assert list(by_kind) == ["unchanged", "new", "missing"]
    new, missing = by_kind["new"], by_kind["missing"]
    assert not new.gating and not missing.gating
    assert new.details == "new check, no baseline"
    assert new.nodeid == "tests/test_model.py::test_new"
    assert missing.details.startswith("in the baseline but not in this run")
    assert missing.notes == (
        "1 check(s) in the baseline did not run: tests/test_model.py::test_gone::latency_under_80",
    )


def test_unused_per_check_tolerances_are_named() -> None:
    tolerances = Tolerances(per_check={"latency_under_8": {"latency_pct": 5.0}})
    check = latency_check(None, value_ms=50.0)
    comparisons = compare_to_baseline([check], baseline_of([check]), tolerances)
    assert comparisons[-1].name == "regression_tolerances" and not comparisons[-1].gating
    assert comparisons[-1].extra["unused_overrides"] == ["latency_under_8"]


def test_environment_mismatch_warns_by_default() -> None:
    check = memory_check(400)
    baseline = baseline_of([check], env={"host": {"cpu_model": "AMD EPYC 7B13"}})
    comparisons = compare_to_baseline(
        [memory_check(430)],
        baseline,
        Tolerances(),
        environment={"host": {"cpu_model": "Intel Xeon 8375C"}},
        target="edge-c",
    )
    environment_check, comparison = comparisons
    assert environment_check.name == ENVIRONMENT_CHECK and not environment_check.gating
    (note,) = environment_check.notes
    assert "is from another environment, compared anyway" in note
    assert note.endswith("CPU model: AMD EPYC 7B13 in the baseline, Intel Xeon 8375C now")
    assert fires(comparison)
    assert comparison.details.endswith("regression (baseline from another environment)")


def test_environment_mismatch_can_refuse() -> None:
    check = memory_check(400)
    comparisons = compare_to_baseline(
        [memory_check(430)],
        baseline_of([check], target="edge-a"),
        Tolerances(on_environment_mismatch="refuse"),
        environment={},
        target="edge-c",
    )
    (refused,) = comparisons
    assert refused.gating and refused.passed is False and refused.status == "FAIL"
    assert refused.extra["differences"] == ["target: edge-a in the baseline, edge-c now"]
    assert "not compared (on_environment_mismatch = 'refuse')" in refused.details


def test_same_environment_adds_nothing() -> None:
    check = memory_check(400)
    comparisons = compare_to_baseline(
        [check], baseline_of([check]), Tolerances(), environment={}, target="edge-c"
    )
    assert [c.extra["kind"] for c in comparisons] == ["unchanged"]


def test_comparison_summary_counts_kinds() -> None:
    kept, gone = memory_check(400), cold_start_check(290)
    baseline = baseline_of([kept, gone])
    comparisons = compare_to_baseline([memory_check(460)], baseline, Tolerances())
    assert comparison_summary(comparisons, baseline) == (
        f"vs baseline baseline (edge-c, {baseline.created}): 1 regression, 1 missing"
    )


def test_comparison_checks_survive_the_xdist_round_trip() -> None:
    rng = np.random.default_rng(0)
    old, new = latencies(rng, 200), latencies(rng, 200, 1.25)
    comparison = compare_one(latency_check(old), latency_check(new))
    assert Check.from_dict(comparison.as_dict()) == comparison


# --------------------------------------------------------------------------- host drift
# Fake canary figures: ns per multiply-add of the fixed product (262,144 of them).


def canary(ns_per_op: float) -> dict[str, Any]:
    return {"host_canary": {"ns_per_op": ns_per_op, "ops": 262_144}}


def test_host_drift_is_said_in_words_and_milliseconds() -> None:
    drift = HostDrift(old_ns=4.0, new_ns=5.0, ops=262_144)
    assert drift.pct == 25.0
    assert drift.sentence() == (
        "host ran 25% slower than when the baseline was saved (canary 1.311 ms vs 1.049 ms)"
    )
    assert "20% faster" in HostDrift(5.0, 4.0, 262_144).sentence()


def test_a_slowdown_the_canary_shows_too_is_normalized_away() -> None:
    rng = np.random.default_rng(7)
    old_samples = latencies(rng, 400)
    old = latency_check(old_samples, **canary(4.0))
    new = latency_check(latencies(rng, 400, slowdown=1.3), **canary(5.2))
    comparison = compare_one(old, new)
    assert comparison.passed is True and comparison.extra["kind"] == "unchanged"
    assert comparison.extra["host_drift_pct"] == pytest.approx(30.0)
    assert comparison.extra["host_normalization"] == pytest.approx(1 / 1.3)
    assert "host ran 30% slower than when the baseline was saved" in comparison.details
    assert "scaled by 0.769 (host_drift = 'normalize')" in comparison.details
    # Without the canary, the same samples are a regression.
    assert fires(compare_one(latency_check(old_samples), new))


def test_a_faster_host_or_a_small_drift_is_never_normalized() -> None:
    rng = np.random.default_rng(14)
    old = latency_check(latencies(rng, 400), **canary(4.0))
    for new_canary in (3.0, 4.3):  # 25% faster; 7.5% slower, within host_drift_pct
        new = latency_check(latencies(rng, 400), **canary(new_canary))
        comparison = compare_one(old, new)
        assert comparison.extra["host_normalization"] == 1.0
        assert comparison.extra["kind"] == "unchanged"
        assert "scaled by" not in comparison.details


def test_normalizing_keeps_a_code_regression_on_a_drifting_host() -> None:
    rng = np.random.default_rng(8)
    old = latency_check(latencies(rng, 400), **canary(4.0))
    new = latency_check(latencies(rng, 400, slowdown=1.3 * 1.5), **canary(5.2))
    comparison = compare_one(old, new)
    assert fires(comparison)
    assert comparison.extra["change"] == pytest.approx(50.0, abs=8.0)


def test_inconclusive_mode_reports_a_slowdown_the_host_explains() -> None:
    rng = np.random.default_rng(9)
    tolerances = Tolerances(host_drift="inconclusive", host_drift_pct=10.0)
    old = latency_check(latencies(rng, 400), **canary(4.0))
    new = latency_check(latencies(rng, 400, slowdown=1.3), **canary(5.2))
    comparison = compare_one(old, new, tolerances)
    assert comparison.extra["kind"] == "inconclusive"
    assert comparison.passed is True and comparison.gating is False
    assert comparison.extra["host_normalization"] == 1.0
    assert "inconclusive: the host ran 30% slower" in comparison.details
    assert any("inconclusive" in note for note in comparison.notes)
    assert "1 inconclusive" in comparison_summary([comparison], baseline_of([old]))


def test_inconclusive_mode_keeps_a_regression_beyond_a_small_drift_or_a_faster_host() -> None:
    rng = np.random.default_rng(10)
    tolerances = Tolerances(host_drift="inconclusive", host_drift_pct=10.0)
    old = latency_check(latencies(rng, 400), **canary(4.0))
    small = latency_check(latencies(rng, 400, slowdown=1.5), **canary(4.2))
    assert fires(compare_one(old, small, tolerances))
    faster_host = latency_check(latencies(rng, 400, slowdown=1.5), **canary(3.0))
    assert fires(compare_one(old, faster_host, tolerances))


def test_throughput_is_normalized_the_other_way() -> None:
    rng = np.random.default_rng(11)
    old_samples, new_samples = latencies(rng, 400), latencies(rng, 400, slowdown=1.3)
    old = throughput_like(old_samples, **canary(4.0))
    new = throughput_like(new_samples, **canary(5.2))
    comparison = compare_one(old, new)
    assert comparison.extra["kind"] == "unchanged"
    assert comparison.extra["new"] == pytest.approx(comparison.extra["old"], rel=0.08)


def test_a_baseline_without_a_canary_compares_as_before() -> None:
    rng = np.random.default_rng(12)
    old = latency_check(latencies(rng, 400))
    new = latency_check(latencies(rng, 400, slowdown=1.3), **canary(5.2))
    comparison = compare_one(old, new)
    assert fires(comparison)
    assert "host_drift_pct" not in comparison.extra
    assert "host ran" not in comparison.details


def test_canaries_of_another_size_are_not_compared() -> None:
    rng = np.random.default_rng(13)
    old = latency_check(latencies(rng, 400), host_canary={"ns_per_op": 4.0, "ops": 1000})
    new = latency_check(latencies(rng, 400, slowdown=1.3), **canary(5.2))
    assert "host_drift_pct" not in compare_one(old, new).extra


def throughput_like(samples: Samples, **extra: Any) -> Check:
    """A throughput check of batch 1 over *samples*: items/s from the median call."""
    median_ms = percentile_nearest_rank(samples, 50) / 1e6
    return Check(
        name="throughput_over_10[batch=1]",
        metric="throughput",
        value=1000.0 / median_ms,
        unit="items/s",
        budget=10,
        nodeid=NODE,
        extra={"samples_ns": [int(s) for s in samples], "batch": 1, **extra},
    )


# --------------------------------------------------------------------------- paired A/B
# A "duet" as checks.duet records it: rounds of (release, candidate) median call ns.


def duet(ratio_per_round: list[float], base_ns: float = 50e6) -> dict[str, Any]:
    from pytest_deploycheck.measure.duet import DuetResult

    rounds = tuple((base_ns, base_ns * r) for r in ratio_per_round)
    extra = DuetResult(rounds=rounds, block_calls=5, models=("optimized",)).as_extra()
    return {"duet": extra}


def test_a_paired_slowdown_fails_even_when_the_host_seems_to_explain_it() -> None:
    rng = np.random.default_rng(21)
    old = latency_check(latencies(rng, 400), **canary(4.0))
    # The saved-run comparison would normalize this away (host 30% slower, run 30% slower)...
    new = latency_check(
        latencies(rng, 400, slowdown=1.3),
        **canary(5.2),
        **duet([1.25 + 0.001 * i for i in range(16)]),
    )
    comparison = compare_one(old, new)
    # ...but the pair, timed in this run, says the candidate's model is 25% slower.
    assert fires(comparison)
    assert comparison.extra["kind"] == "regression"
    assert comparison.extra["paired"] is True
    assert comparison.value == pytest.approx(25.75)  # the median round of 1.250 .. 1.265
    assert "paired with the release's optimized" in comparison.details
    assert "16 interleaved rounds of 5 calls per model" in comparison.details
    assert "host_drift_pct" not in comparison.extra  # the pair needs no correction


def test_a_paired_tie_passes_whatever_the_saved_run_says() -> None:
    rng = np.random.default_rng(22)
    old = latency_check(latencies(rng, 400))
    # Four times the saved run's latency (busy host), yet the same model speed in the pair.
    ratios = [1.0 + (0.01 if i % 2 else -0.01) for i in range(16)]
    new = latency_check(latencies(rng, 400, slowdown=4.0), **duet(ratios))
    comparison = compare_one(old, new)
    assert comparison.passed is True and comparison.extra["kind"] == "unchanged"
    assert comparison.extra["paired"] is True
    assert "within tolerance" in comparison.details


def test_paired_rounds_that_disagree_do_not_confirm_a_change() -> None:
    rng = np.random.default_rng(23)
    old = latency_check(latencies(rng, 400))
    ratios = [1.6 if i % 2 else 0.95 for i in range(16)]  # median 1.275, half the rounds faster
    comparison = compare_one(old, latency_check(latencies(rng, 400), **duet(ratios)))
    assert comparison.passed is True and comparison.extra["kind"] == "unchanged"
    assert comparison.details.endswith("not confirmed: the rounds do not agree (p=0.6)")


def test_a_paired_speed_up_is_an_improvement_and_throughput_inverts_the_ratio() -> None:
    rng = np.random.default_rng(24)
    samples = latencies(rng, 400)
    faster = duet([0.5] * 16)
    latency = compare_one(latency_check(samples), latency_check(samples, **faster))
    assert latency.extra["kind"] == "improvement"
    assert latency.value == pytest.approx(-50.0)
    old, new = throughput_check(samples), throughput_check(samples)
    new = Check(**{**new.__dict__, "extra": {**new.extra, **faster}})
    through = compare_one(old, new)
    assert through.extra["kind"] == "improvement"
    assert through.value == pytest.approx(100.0)  # half the time per call: twice the items/s


@pytest.mark.parametrize(
    "broken",
    [
        {"duet": {"skipped": "optimized: the release's file is not on disk"}},
        {"duet": {"error": "RuntimeError: boom"}},
        {"duet": {**duet([1.5] * 4)["duet"]}},  # too few rounds for the sign test
        {"duet": {**duet([1.5] * 16)["duet"], "ratio_ci": None}},
    ],
)
def test_a_duet_that_cannot_be_judged_leaves_the_saved_run_gate(broken: dict[str, Any]) -> None:
    rng = np.random.default_rng(25)
    samples = latencies(rng, 400)
    comparison = compare_one(latency_check(samples), latency_check(samples, **broken))
    assert "paired" not in comparison.extra
    assert comparison.extra["kind"] == "unchanged"
