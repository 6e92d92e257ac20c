"""Unit tests of gates.py: tolerances, the two tests on latency samples, and every gate.

Nothing is timed: latencies are drawn from seeded generators (log-normal around 50 ms,
sigma 0.2, the shape of CPU inference latency), so every figure here is reproducible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_deploycheck.checks.record import Check
from pytest_deploycheck.measure.stats import percentile_nearest_rank
from pytest_deploycheck.verdict.baseline import Baseline, build_baseline, parse_baseline
from pytest_deploycheck.verdict.gates import (
    ENVIRONMENT_CHECK,
    MIN_SAMPLES_FOR_TEST,
    Tolerances,
    _bootstrap_percentiles,
    bootstrap_percentile_change,
    compare_samples,
    compare_to_baseline,
    comparison_summary,
    mann_whitney_greater,
    tail_exceedance_greater,
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


# ------------------------------------------------------------------ tolerances


def test_default_tolerances() -> None:
    tolerances = Tolerances()
    assert (tolerances.latency_pct, tolerances.significance) == (10.0, 0.01)
    assert (tolerances.memory_mb, tolerances.memory_pct) == (None, 5.0)
    assert (tolerances.accuracy, tolerances.throughput_pct) == (0.005, 10.0)
    assert (tolerances.cold_start_pct, tolerances.on_environment_mismatch) == (25.0, "warn")


def test_tolerances_from_the_config_table() -> None:
    raw = {
        "latency_pct": 15,
        "significance": 0.05,
        "memory_mb": 20,
        "memory_pct": 3.5,
        "accuracy": 0.01,
        "throughput_pct": 8,
        "cold_start_pct": 40,
        "on_environment_mismatch": "refuse",
        "checks": {"latency_under_80": {"latency_pct": 20, "significance": 0.001}},
    }
    tolerances = Tolerances.from_mapping(raw, "pyproject.toml: [tool.deploycheck.regression]")
    assert tolerances.latency_pct == 15.0 and isinstance(tolerances.latency_pct, float)
    assert (tolerances.memory_mb, tolerances.on_environment_mismatch) == (20.0, "refuse")
    special = tolerances.for_check("latency_under_80")
    assert (special.latency_pct, special.significance, special.memory_mb) == (20.0, 0.001, 20.0)
    assert special.on_environment_mismatch == "refuse"
    assert tolerances.for_check("other") is tolerances
    assert tolerances.overridden("latency_under_80") and not tolerances.overridden("other")
    assert Tolerances.from_mapping({}, "x") == Tolerances()


WHERE = "pyproject.toml: [tool.deploycheck.regression]"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"latency_percent": 5},
            "unknown key 'latency_percent'; did you mean 'latency_pct'? valid keys: latency_pct,"
            " significance, memory_mb, memory_pct, accuracy, throughput_pct, cold_start_pct,"
            " on_environment_mismatch, checks",
        ),
        ({"latency_pct": -5}, "latency_pct: expected a number >= 0 (percent), got -5"),
        ({"latency_pct": True}, "latency_pct: expected a number >= 0 (percent), got True"),
        ({"memory_mb": "50"}, "memory_mb: expected a number >= 0 (MB), got '50'"),
        ({"significance": 0.7}, "significance: expected a number in (0, 0.5], e.g. 0.01, got 0.7"),
        ({"significance": 0}, "significance: expected a number in (0, 0.5], e.g. 0.01, got 0"),
        (
            {"accuracy": 2},
            "accuracy: expected a number in [0, 1] (absolute accuracy), got 2",
        ),
        (
            {"throughput_pct": 100},
            "throughput_pct: expected a number in [0, 100) (percent), got 100",
        ),
        (
            {"cold_start_pct": float("nan")},
            "cold_start_pct: expected a number >= 0 (percent), got nan",
        ),
        (
            {"on_environment_mismatch": "fail"},
            "on_environment_mismatch: expected one of 'warn', 'refuse', got 'fail'",
        ),
        (
            {"checks": 5},
            "checks: expected a table of check names, e.g. [checks.latency_under_80], got 5",
        ),
        (
            {"checks": {"latency_under_80": 20}},
            "checks.latency_under_80: expected a table of tolerances, got 20",
        ),
        (
            {"checks": {"latency_under_80": {"on_environment_mismatch": "warn"}}},
            "checks.latency_under_80: unknown key 'on_environment_mismatch'; valid keys:"
            " latency_pct, significance, memory_mb, memory_pct, accuracy, throughput_pct,"
            " cold_start_pct",
        ),
        (
            {"checks": {"latency_under_80": {"latency_pct": -1}}},
            "checks.latency_under_80: latency_pct: expected a number >= 0 (percent), got -1",
        ),
    ],
)
def test_tolerance_errors_are_one_line_naming_the_table_and_key(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        Tolerances.from_mapping(raw, WHERE)
    assert str(info.value) == f"{WHERE}: {message}"


def test_tolerances_not_a_table() -> None:
    with pytest.raises(ValueError, match=r"^x: expected a table, got list$"):
        Tolerances.from_mapping([], "x")  # type: ignore[arg-type]


def test_tolerances_built_in_python_are_validated_too() -> None:
    with pytest.raises(ValueError, match=r"^Tolerances: latency_pct: expected a number >= 0"):
        Tolerances(latency_pct=-1)
    with pytest.raises(ValueError, match=r"^Tolerances: on_environment_mismatch: expected"):
        Tolerances(on_environment_mismatch="ignore")  # type: ignore[arg-type]


# ------------------------------------------------------------------ Mann-Whitney


def normal_upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def test_mann_whitney_fully_separated_five_and_five() -> None:
    # Every x above every y: U_x = 5 * 5 = 25, E[U] = 12.5, Var[U] = 5 * 5 * 11 / 12,
    # and with the continuity correction z = (25 - 12.5 - 0.5) / sqrt(Var).
    z = (25 - 12.5 - 0.5) / math.sqrt(5 * 5 * 11 / 12)
    assert mann_whitney_greater([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]) == pytest.approx(
        normal_upper_tail(z), rel=1e-12
    )
    assert normal_upper_tail(z) == pytest.approx(0.006093, abs=1e-6)
    # The other way round: z = (0 - 12.5 - 0.5) / sqrt(Var), p close to 1.
    z_other = (0 - 12.5 - 0.5) / math.sqrt(5 * 5 * 11 / 12)
    assert mann_whitney_greater([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(
        normal_upper_tail(z_other), rel=1e-12
    )


def test_mann_whitney_with_ties() -> None:
    # x = 1 2 2 3, y = 2 3 3 4.  Pooled ranks: 1 -> 1; the three 2s share (2+3+4)/3 = 3;
    # the three 3s share (5+6+7)/3 = 6; 4 -> 8.  R_x = 1 + 3 + 3 + 6 = 13,
    # U_x = 13 - 4*5/2 = 3, E[U] = 8, tie term = 2 * (3**3 - 3) = 48, N = 8.
    variance = 4 * 4 / 12 * ((8 + 1) - 48 / (8 * 7))
    expected = normal_upper_tail((3 - 8 - 0.5) / math.sqrt(variance))
    assert mann_whitney_greater([1, 2, 2, 3], [2, 3, 3, 4]) == pytest.approx(expected, rel=1e-12)
    without = normal_upper_tail((3 - 8) / math.sqrt(variance))
    assert mann_whitney_greater([1, 2, 2, 3], [2, 3, 3, 4], continuity=False) == pytest.approx(
        without, rel=1e-12
    )


def test_mann_whitney_all_equal_is_no_evidence() -> None:
    assert mann_whitney_greater([3, 3, 3], [3, 3]) == 1.0
    assert mann_whitney_greater([3, 3, 3], [3, 3], continuity=False) == 0.5


def test_mann_whitney_agrees_with_scipy_where_available() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(7)
    for _ in range(5):
        x, y = rng.integers(0, 30, size=40), rng.integers(0, 33, size=35)
        expected = stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic").pvalue
        assert mann_whitney_greater(x, y) == pytest.approx(expected, rel=1e-9)


sample_lists = st.lists(st.integers(0, 30), min_size=1, max_size=40)


@settings(max_examples=80, deadline=None)
@given(x=sample_lists, y=sample_lists)
def test_mann_whitney_one_sided_p_values_mirror_each_other(x: list[int], y: list[int]) -> None:
    greater = mann_whitney_greater(x, y, continuity=False)
    less = mann_whitney_greater(y, x, continuity=False)
    assert 0.0 <= greater <= 1.0
    assert greater + less == pytest.approx(1.0, abs=1e-12)
    # The continuity correction only ever moves a p-value towards "not significant".
    assert mann_whitney_greater(x, y) >= greater - 1e-15
    assert mann_whitney_greater(x, y) + mann_whitney_greater(y, x) >= 1.0 - 1e-12


@settings(max_examples=60, deadline=None)
@given(x=sample_lists, y=sample_lists, scale=st.floats(0.01, 100), shift=st.floats(-50, 50))
def test_mann_whitney_depends_on_the_ranks_only(
    x: list[int], y: list[int], scale: float, shift: float
) -> None:
    p = mann_whitney_greater(x, y)
    moved = mann_whitney_greater(
        [v * scale + shift for v in reversed(x)], [v * scale + shift for v in y[::-1]]
    )
    assert moved == pytest.approx(p, rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(n1=st.integers(1, 30), n2=st.integers(1, 30))
def test_mann_whitney_separated_samples_are_the_most_significant(n1: int, n2: int) -> None:
    high, low = list(range(100, 100 + n1)), list(range(n2))
    z = (n1 * n2 / 2 - 0.5) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    assert mann_whitney_greater(high, low) == pytest.approx(normal_upper_tail(z), rel=1e-9)


# ------------------------------------------------------------------ bootstrap


def test_beta_draws_are_the_bootstrap_distribution_of_the_order_statistic() -> None:
    # Resampling 40 values and taking the nearest-rank p90 the slow way, 20000 times,
    # gives the same distribution of the chosen order statistic as one beta draw each.
    n, resamples = 40, 20_000
    ordered = np.arange(n, dtype=np.float64)
    rng = np.random.default_rng(3)
    slow = np.sort(rng.integers(0, n, size=(resamples, n)), axis=1)[:, 36 - 1]
    fast = _bootstrap_percentiles(ordered, 90, resamples, np.random.default_rng(4))
    slow_freq = np.bincount(slow, minlength=n) / resamples
    fast_freq = np.bincount(fast.astype(np.int64), minlength=n) / resamples
    assert 0.5 * np.abs(slow_freq - fast_freq).sum() < 0.02  # total variation distance


def test_bootstrap_is_seeded_and_orders_its_bounds() -> None:
    rng = np.random.default_rng(0)
    old, new = latencies(rng, 200), latencies(rng, 200, 1.25)
    low, high = bootstrap_percentile_change(new, old, 95)
    assert (low, high) == bootstrap_percentile_change(new, old, 95)
    assert 0.0 < low < 0.25 < high
    assert bootstrap_percentile_change(new, old, 95, seed=1) != (low, high)
    wider = bootstrap_percentile_change(new, old, 95, confidence=0.999)
    assert wider[0] <= low and wider[1] >= high


@settings(max_examples=30, deadline=None)
@given(
    old=st.lists(st.integers(1, 10**9), min_size=1, max_size=60),
    new=st.lists(st.integers(1, 10**9), min_size=1, max_size=60),
    scale=st.floats(1.0, 4.0),
)
def test_bootstrap_change_is_relative(old: list[int], new: list[int], scale: float) -> None:
    low, high = bootstrap_percentile_change(new, old, 95)
    assert low <= high
    scaled = bootstrap_percentile_change([v * scale for v in new], [v * scale for v in old], 95)
    assert scaled == pytest.approx((low, high), rel=1e-9, abs=1e-9)


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


def test_the_tail_test_sees_more_calls_beyond_the_pooled_percentile() -> None:
    old = np.arange(100, dtype=float)
    same = tail_exceedance_greater(old, old, 95)
    heavier = tail_exceedance_greater(np.concatenate([old[:80], old[80:] + 1000]), old, 95)
    assert same == pytest.approx(0.5)
    assert heavier < 0.01


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
    assert comparison.extra["notes"] == []


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
    assert comparison.extra["display"] == f"{comparison.value:+.1f}% vs baseline (p={p:.2g})"
    assert comparison.extra["key"] == f"{NODE}::latency_under_80"
    assert (comparison.extra["n_old"], comparison.extra["n_new"]) == (200, 200)
    assert comparison.extra["baseline_samples_ns"] == old.tolist()  # for the HTML chart


def test_per_check_tolerance_override() -> None:
    rng = np.random.default_rng(0)
    old, new = latencies(rng, 200), latencies(rng, 200, 1.25)
    tolerances = Tolerances.from_mapping(
        {"checks": {"latency_under_80": {"latency_pct": 50}}}, WHERE
    )
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
    assert comparison.extra["notes"] == [
        "regression[latency_under_80]: +20.0% vs baseline (untested)"
    ]


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
    assert comparison.extra["display"] == "+37.9% vs baseline (median, advisory)"


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
    assert missing.extra["notes"] == [
        "1 check(s) in the baseline did not run: tests/test_model.py::test_gone::latency_under_80"
    ]


def test_unused_per_check_tolerances_are_named() -> None:
    tolerances = Tolerances.from_mapping({"checks": {"latency_under_8": {"latency_pct": 5}}}, WHERE)
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
    (note,) = environment_check.extra["notes"]
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
