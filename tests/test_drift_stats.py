"""The drift statistics of stats.py against standalone scipy computations.

scipy is a test-only dependency (the ``test`` extra): the package computes everything
with numpy and math, and these tests are what says its figures are scipy's.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_deploycheck.measure import stats

scipy_stats = pytest.importorskip("scipy.stats")

sizes = st.integers(min_value=1, max_value=120)


@settings(max_examples=150, deadline=None)
@given(
    m=sizes,
    n=sizes,
    shift=st.floats(0.0, 2.0),
    ties=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_ks_statistic_and_exact_p_are_scipys(
    m: int, n: int, shift: float, ties: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=m), rng.normal(shift, size=n)
    if ties:  # rounded values: D must count ties on both sides as scipy does
        x, y = np.round(x), np.round(y)
    ours = stats.ks_two_sample(x, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        theirs = scipy_stats.ks_2samp(x, y, method="exact")
    assert ours.method == "exact"
    assert math.isclose(ours.statistic, theirs.statistic, rel_tol=1e-12, abs_tol=1e-15)
    if not caught:
        assert math.isclose(ours.p_value, theirs.pvalue, rel_tol=1e-7, abs_tol=1e-12)
        return
    # scipy gave up on the exact p (it says so and switches to asymp): enumerate instead.
    assume(math.comb(m + n, m) <= 200_000)
    assert math.isclose(ours.p_value, _enumerated_p(ours.statistic, m, n), rel_tol=1e-9)


def _enumerated_p(d: float, m: int, n: int) -> float:
    """P(D >= d) over every way m of m + n distinct values fall in the first sample."""
    hits = total = 0
    for chosen in itertools.combinations(range(m + n), m):
        in_x = np.zeros(m + n, dtype=np.int64)
        in_x[list(chosen)] = 1
        gap = np.abs(np.cumsum(in_x) * n - np.cumsum(1 - in_x) * m).max()
        hits += gap >= round(d * m * n)
        total += 1
    return hits / total


@pytest.mark.parametrize(("m", "n"), [(300, 450), (1000, 1000), (2000, 1500), (37, 2000)])
def test_ks_exact_p_at_larger_sizes(m: int, n: int) -> None:
    rng = np.random.default_rng(m * n)
    for shift in (0.0, 0.1, 0.3):
        x, y = rng.normal(size=m), rng.normal(shift, size=n)
        ours = stats.ks_two_sample(x, y)
        theirs = scipy_stats.ks_2samp(x, y, method="exact")
        assert math.isclose(ours.p_value, theirs.pvalue, rel_tol=1e-6, abs_tol=1e-12)


def test_ks_asymptotic_p_is_the_kolmogorov_limit() -> None:
    for lam in np.linspace(0.02, 4.0, 200):
        assert math.isclose(
            stats.kolmogorov_sf(float(lam)), scipy_stats.kstwobign.sf(lam), abs_tol=1e-14
        )
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=5000), rng.normal(0.05, size=4000)
    ours = stats.ks_two_sample(x, y)
    assert ours.method == "asymptotic"  # 5000 * 4000 > KS_EXACT_LIMIT
    en = 5000 * 4000 / 9000
    assert math.isclose(ours.p_value, scipy_stats.kstwobign.sf(ours.statistic * math.sqrt(en)))
    # ...and close to scipy's own large-sample p-value.
    assert math.isclose(ours.p_value, scipy_stats.ks_2samp(x, y).pvalue, rel_tol=0.05)


def test_ks_critical_d_is_where_the_limit_crosses_alpha() -> None:
    for m, n, alpha in [(450, 300, 0.05), (1000, 50, 0.01), (20, 20, 0.1)]:
        d = stats.ks_critical_d(m, n, alpha)
        en = m * n / (m + n)
        assert math.isclose(scipy_stats.kstwobign.sf(d * math.sqrt(en)), alpha, rel_tol=1e-6)


def test_normal_shift_for_ks_inverts_the_gap_of_two_normals() -> None:
    for delta in (0.1, 0.5, 1.0, 3.0):
        gap = 2 * scipy_stats.norm.cdf(delta / 2) - 1
        assert math.isclose(stats.normal_shift_for_ks(gap), delta, rel_tol=1e-9)


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 400)), min_size=2, max_size=12
    ).filter(lambda rows: sum(r for r, _ in rows) > 0 and sum(c for _, c in rows) > 0)
)
def test_chi_square_and_p_are_scipys(counts: list[tuple[int, int]]) -> None:
    ref = np.array([r for r, _ in counts])
    cur = np.array([c for _, c in counts])
    ours = stats.chi_square_homogeneity(ref, cur)
    kept = (ref + cur) > 0
    if kept.sum() < 2:
        assert (ours.statistic, ours.df, ours.p_value) == (0.0, 0, 1.0)
        return
    table = np.stack([ref[kept], cur[kept]])
    statistic, p, df, expected = scipy_stats.chi2_contingency(table, correction=False)
    assert ours.df == df
    assert math.isclose(ours.statistic, statistic, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(ours.p_value, p, rel_tol=1e-8, abs_tol=1e-300)
    assert math.isclose(ours.min_expected, expected.min(), rel_tol=1e-12)


@settings(max_examples=200, deadline=None)
@given(x=st.floats(0.0, 500.0), df=st.integers(1, 200))
def test_chi2_sf_is_scipys(x: float, df: int) -> None:
    assert math.isclose(stats.chi2_sf(x, df), scipy_stats.chi2.sf(x, df), rel_tol=1e-9)


def _holm_by_definition(p: list[float], alpha: float) -> set[int]:
    """Holm (1979) as written: reject the i-th smallest while p_(i) <= alpha / (k - i)."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected: set[int] = set()
    for step, index in enumerate(order):
        if p[index] > alpha / (len(p) - step):
            break
        rejected.add(index)
    return rejected


@settings(max_examples=200, deadline=None)
@given(
    p=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40),
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
)
def test_holm_rejects_what_the_step_down_definition_rejects(p: list[float], alpha: float) -> None:
    adjusted = stats.holm(p)
    # Strict < on the adjusted p vs <= alpha/(k-i) by definition: equal only on a tie.
    ours = {i for i, q in enumerate(adjusted) if q < alpha}
    by_definition = _holm_by_definition(p, alpha)
    assert ours <= by_definition
    assert all(math.isclose(adjusted[i], alpha) for i in by_definition - ours)
    assert np.all(adjusted >= np.asarray(p)) and np.all(adjusted <= 1.0)


def test_holm_adjusted_values_on_a_known_case() -> None:
    # k = 4: 0.01 * 4, max(0.04, 0.02 * 3), max(0.06, 0.03 * 2), max(0.06, 0.5 * 1).
    assert stats.holm([0.03, 0.01, 0.5, 0.02]).tolist() == pytest.approx([0.06, 0.04, 0.5, 0.06])


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 3000), share=st.floats(0.0, 1.0), confidence=st.sampled_from([0.9, 0.95]))
def test_clopper_pearson_is_scipys_exact_interval(n: int, share: float, confidence: float) -> None:
    k = round(share * n)
    low, high = stats.clopper_pearson(k, n, confidence)
    theirs = scipy_stats.binomtest(k, n).proportion_ci(confidence, method="exact")
    assert math.isclose(low, theirs.low, abs_tol=1e-9)
    assert math.isclose(high, theirs.high, abs_tol=1e-9)


def test_psi_by_its_formula() -> None:
    ref, cur = np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.4, 0.2])
    expected = sum((c - r) * math.log(c / r) for r, c in zip(ref, cur, strict=True))
    assert math.isclose(stats.psi(ref, cur), expected)
    assert stats.psi(ref, ref) == 0.0
    # An empty bin is floored, not infinite.
    assert math.isfinite(stats.psi([1.0, 0.0], [0.5, 0.5]))


def test_psi_continuous_is_zero_for_the_same_sample_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=2000)
    assert stats.psi_continuous(x, x) == 0.0
    assert stats.psi_continuous(x, x + 1.0) > 0.25
    assert stats.psi_continuous(np.zeros(10), np.zeros(5)) == 0.0  # one bin: constants


def test_ks_of_constants() -> None:
    same = stats.ks_two_sample(np.ones(30), np.ones(20))
    assert (same.statistic, same.p_value) == (0.0, 1.0)
    apart = stats.ks_two_sample(np.zeros(30), np.ones(20))
    assert apart.statistic == 1.0
    assert apart.p_value == pytest.approx(
        scipy_stats.ks_2samp(np.zeros(30), np.ones(20), method="exact").pvalue, rel=1e-6
    )


@pytest.mark.parametrize(("m", "n"), [(1, 1), (3, 7), (5, 5), (6, 6), (8, 5), (2, 12)])
def test_ks_exact_p_is_the_enumerated_null_distribution(m: int, n: int) -> None:
    """Every placement of the samples counted: where scipy switches away from exact too."""
    rng = np.random.default_rng(m * 100 + n)
    for _ in range(5):
        x, y = rng.normal(size=m), rng.normal(0.7, size=n)
        ours = stats.ks_two_sample(x, y)
        assert math.isclose(ours.p_value, _enumerated_p(ours.statistic, m, n), rel_tol=1e-9)
