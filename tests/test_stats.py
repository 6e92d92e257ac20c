"""Unit tests of stats.py: percentiles, binomial tails, intervals, the stopping rule,
the two-sample and paired tests, and the robust slope."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_deploycheck.measure import stats
from pytest_deploycheck.measure.stats import (
    _bootstrap_percentiles,
    binom_cdf,
    binom_sf,
    block_medians,
    bootstrap_percentile_change,
    boundary_error_rates,
    consecutive_blocks,
    decide,
    exceed_probability,
    mann_whitney_greater,
    mcnemar_exact_p,
    min_samples_to_pass,
    nearest_rank,
    paired_bootstrap,
    percentile_ci,
    percentile_ci_ranks,
    percentile_interval,
    percentile_nearest_rank,
    pooled_percentile,
    samples_needed_to_pass,
    tail_exceedance_greater,
    theil_sen,
)

# Percentiles as people write them (95, 99.9, 12.345) and arbitrary floats.
decimal_percentiles = st.integers(1, 99_999).map(lambda k: k / 1000)
percentiles = decimal_percentiles | st.floats(0.001, 99.999)
confidences = st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99, 0.999]) | st.floats(0.5, 0.9999)
# Most properties here are also argued in stats.py; a few dozen examples each keep the
# suite fast, the decision rule's own properties get more.
quick = settings(max_examples=40, deadline=None)
thorough = settings(max_examples=150, deadline=None)
sample_values = st.lists(st.integers(0, 50) | st.floats(-1e6, 1e6), min_size=1, max_size=200)


def hand_nearest_rank(values: list[float], percentile: float) -> float:
    """The textbook definition, written independently: sorted[ceil(p/100 * n) - 1]."""
    ordered = sorted(values)
    rank = math.ceil(Fraction(str(percentile)) * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]


def exact_cdf(k: int, n: int, q: float) -> Fraction:
    exact_q = Fraction(q)
    return sum(
        (math.comb(n, i) * exact_q**i * (1 - exact_q) ** (n - i) for i in range(min(k, n) + 1)),
        Fraction(0),
    )


# --- nearest-rank percentile -------------------------------------------------------


@quick
@given(sample_values, percentiles | st.just(100.0))
def test_nearest_rank_matches_the_textbook_definition(values: list[float], p: float) -> None:
    assert percentile_nearest_rank(values, p) == hand_nearest_rank(values, p)


@quick
@given(st.integers(1, 1000), decimal_percentiles)
def test_nearest_rank_agrees_with_numpy_inverted_cdf_off_whole_ranks(n: int, p: float) -> None:
    # numpy computes p/100 * n in binary, so it may round up a product that is a whole
    # number; everywhere else both are the same estimator.
    assume((Fraction(str(p)) * n / 100).denominator != 1)
    values = np.arange(n, dtype=np.float64)
    expected = np.percentile(values, p, method="inverted_cdf")
    assert percentile_nearest_rank(values, p) == expected


def test_nearest_rank_is_exact_where_numpy_rounds_up() -> None:
    values = np.arange(1, 101)
    assert percentile_nearest_rank(values, 7) == 7  # rank ceil(7.00) = 7
    assert np.percentile(values, 7, method="inverted_cdf") == 8  # 0.07 * 100 > 7 in binary


def test_nearest_rank_returns_an_observed_sample() -> None:
    assert percentile_nearest_rank([3, 1, 2], 50) == 2
    assert percentile_nearest_rank([3, 1, 2], 100) == 3
    assert percentile_nearest_rank([3, 1, 2], 0.1) == 1
    assert nearest_rank(412, 95) == 392


@pytest.mark.parametrize(("values", "p"), [([], 95), ([1.0], 0), ([1.0], 100.5), ([[1.0]], 50)])
def test_nearest_rank_rejects_bad_input(values: list[float], p: float) -> None:
    with pytest.raises(ValueError, match=r"percentile|sample"):
        percentile_nearest_rank(values, p)


# --- binomial tails ----------------------------------------------------------------


# Probabilities with short binary fractions keep the exact reference sums fast.
probabilities = st.integers(0, 4096).map(lambda i: i / 4096) | st.sampled_from([1e-9, 1 - 1e-6])


@settings(max_examples=120, deadline=None)
@given(st.integers(0, 50), st.integers(-2, 52), probabilities)
def test_binomial_tails_match_exact_sums(n: int, k: int, q: float) -> None:
    expected_cdf = float(exact_cdf(k, n, q)) if k >= 0 else 0.0
    # 1 - P(X <= k - 1) in exact arithmetic, so a tiny upper tail keeps its precision.
    expected_sf = float(1 - exact_cdf(k - 1, n, q)) if k > 0 else 1.0
    assert math.isclose(binom_cdf(k, n, q), expected_cdf, rel_tol=1e-9, abs_tol=1e-290)
    assert math.isclose(binom_sf(k, n, q), expected_sf, rel_tol=1e-9, abs_tol=1e-290)


def direct_sum(n: int, q: float, counts: range) -> float:
    """The binomial pmf summed term by term in log space: slow, but a separate route."""
    log_q, log_p = math.log(q), math.log1p(-q)
    return math.fsum(
        math.exp(
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * log_q
            + (n - i) * log_p
        )
        for i in counts
    )


def test_binomial_is_accurate_at_a_million_trials() -> None:
    n, q = 10**6, 0.05
    # By symmetry P(X <= n/2) = (1 + P(X = n/2)) / 2 for q = 1/2.
    centre = direct_sum(n, 0.5, range(n // 2, n // 2 + 1))
    assert math.isclose(binom_cdf(n // 2, n, 0.5), (1 + centre) / 2, rel_tol=1e-8)
    # Five standard deviations below the mean (terms below 40000 are under 1e-300).
    assert math.isclose(
        binom_cdf(48_910, n, q), direct_sum(n, q, range(40_000, 48_911)), rel_tol=1e-7
    )
    assert math.isclose(
        binom_sf(55_000, n, q), direct_sum(n, q, range(55_000, 60_000)), rel_tol=1e-7
    )
    assert binom_sf(55_000, n, q) < 1e-100
    assert math.isclose(binom_cdf(48_910, n, q) + binom_sf(48_911, n, q), 1.0, rel_tol=1e-12)
    assert binom_sf(n // 10, n, q) == 0.0  # below the smallest double


@quick
@given(st.integers(1, 5000), st.floats(0.001, 0.999), st.data())
def test_binomial_cdf_is_monotone_and_complements_sf(n: int, q: float, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n - 1))
    assert binom_cdf(k, n, q) <= binom_cdf(k + 1, n, q) + 1e-15
    assert math.isclose(binom_cdf(k, n, q) + binom_sf(k + 1, n, q), 1.0, rel_tol=1e-9)


@pytest.mark.parametrize(
    ("k", "n", "q"), [(1, -1, 0.5), (1, 10, 1.5), (1, 10, -0.1), (1, 2.5, 0.5)]
)
def test_binomial_rejects_bad_parameters(k: int, n: int, q: float) -> None:
    with pytest.raises(ValueError, match=r"sample count|probability"):
        binom_cdf(k, n, q)


# --- the stopping rule -------------------------------------------------------------


@pytest.mark.parametrize(("percentile", "samples"), [(90, 64), (95, 130), (99, 662)])
def test_minimum_samples_to_pass_are_loadgen_s(percentile: float, samples: int) -> None:
    assert min_samples_to_pass(percentile, 0.99) == samples
    assert decide(samples, 0, percentile, 0.99) == "pass"
    assert decide(samples - 1, 0, percentile, 0.99) == "unsettled"
    # LoadGen counts at least one over-budget sample, so one over costs nothing.
    assert decide(samples, 1, percentile, 0.99) == "pass"


def test_exceed_probability_reads_the_decimal() -> None:
    assert exceed_probability(95) == 0.05
    assert exceed_probability(99.9) == 0.001
    with pytest.raises(ValueError, match="percentile"):
        exceed_probability(100)


@quick
@given(st.integers(0, 400), percentiles, confidences)
def test_samples_needed_to_pass_is_the_first_passing_count(
    over: int, p: float, confidence: float
) -> None:
    needed = samples_needed_to_pass(over, p, confidence)
    assume(needed < 10**6)  # keep the example cheap; the search itself is logarithmic
    assert needed >= over
    assert decide(needed, over, p, confidence) == "pass"
    assert decide(needed - 1, over, p, confidence) != "pass" or needed - 1 < over


def test_decide_on_clear_cases() -> None:
    assert decide(0, 0, 95, 0.99) == "unsettled"
    assert decide(10, 10, 95, 0.99) == "fail"
    assert decide(1000, 50, 95, 0.99) == "unsettled"  # exactly the allowed rate
    assert decide(1000, 80, 95, 0.99) == "fail"
    assert decide(1000, 30, 95, 0.99) == "pass"


@pytest.mark.parametrize(
    ("n", "over", "p", "confidence", "match"),
    [
        (10, 11, 95, 0.99, "cannot exceed"),
        (-1, 0, 95, 0.99, "sample count"),
        (10, 0, 95, 0.4, "confidence"),
        (10, 0, 95, 1.0, "confidence"),
        (10, 0, 0, 0.99, "percentile"),
    ],
)
def test_decide_rejects_bad_arguments(
    n: int, over: int, p: float, confidence: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        decide(n, over, p, confidence)


counts = st.integers(0, 3000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@thorough
@given(counts, percentiles, confidences)
def test_decide_is_monotone(count: tuple[int, int], p: float, confidence: float) -> None:
    n, over = count
    now = decide(n, over, p, confidence)
    under_added = decide(n + 1, over, p, confidence)
    over_added = decide(n + 1, over + 1, p, confidence)
    # A sample under the budget keeps a pass a pass (and so never makes it a fail).
    if now == "pass":
        assert under_added == "pass"
    # A sample over the budget keeps a fail a fail (and so never makes it a pass).
    if now == "fail":
        assert over_added == "fail"
    # Nor does it create a pass, except where LoadGen's floor of one over-budget sample
    # already counted it: from 0 to 1 over, only the extra sample counts.
    if over_added == "pass" and over >= 1:
        assert now == "pass"
    assert {now, under_added, over_added} <= {"pass", "fail", "unsettled"}


@thorough
@given(counts, percentiles, confidences)
def test_decide_agrees_with_the_point_estimate(
    count: tuple[int, int], p: float, confidence: float
) -> None:
    # With over samples above the budget, the nearest-rank percentile is over the
    # budget exactly when over > n - rank.  For any confidence >= 0.5 a pass needs it
    # at or under, and a fail needs it over (the binomial median is floor or ceil of nq).
    n, over = count
    assume(n >= 1)
    estimate_over = over > n - nearest_rank(n, p)
    verdict = decide(n, over, p, confidence)
    if verdict == "pass":
        assert not estimate_over
    if verdict == "fail":
        assert estimate_over


@quick
@given(st.lists(st.integers(0, 20), min_size=1, max_size=300), st.integers(0, 20), percentiles)
def test_verdict_never_contradicts_the_samples(values: list[int], budget: int, p: float) -> None:
    over = sum(v > budget for v in values)
    verdict = decide(len(values), over, p, 0.95)
    value = percentile_nearest_rank(values, p)
    if verdict == "pass":
        assert value <= budget
    if verdict == "fail":
        assert value > budget


# --- confidence intervals ----------------------------------------------------------


def coverage(low: int, high: int, n: int, p: float) -> float:
    """P(low <= B <= high - 1) for B ~ Binomial(n, p/100) (rank 0 = -inf, n + 1 = inf)."""
    q = p / 100
    return binom_cdf(high - 1, n, q) - binom_cdf(low - 1, n, q)


@quick
@given(st.integers(1, 2000), st.sampled_from([50.0, 90.0, 95.0, 99.0]) | percentiles, confidences)
def test_interval_ranks_reach_the_confidence(n: int, p: float, confidence: float) -> None:
    low, high = percentile_ci_ranks(n, p, confidence)
    assert 0 <= low < high <= n + 1
    if (low, high) != (0, n + 1):  # (-inf, inf) is what is left when nothing reaches it
        assert coverage(low, high, n, p) >= confidence


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 45), st.sampled_from([10.0, 50.0, 90.0, 95.0]), st.sampled_from([0.9, 0.95]))
def test_interval_ranks_are_the_narrowest(n: int, p: float, confidence: float) -> None:
    low, high = percentile_ci_ranks(n, p, confidence)
    finite = [
        (a, b)
        for a in range(1, n + 1)
        for b in range(a + 1, n + 1)
        if coverage(a, b, n, p) >= confidence
    ]
    if finite:
        assert low >= 1 and high <= n
        assert high - low == min(b - a for a, b in finite)
    else:
        assert low == 0 or high == n + 1


def test_interval_goes_infinite_when_samples_are_few() -> None:
    samples = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile_ci(samples, 95) == (4.0, math.inf)  # p95 of 5 samples: above the 4th
    assert percentile_ci(samples, 5) == (-math.inf, 2.0)
    assert percentile_ci([1.0], 50) == (-math.inf, math.inf)
    low, high = percentile_ci(np.arange(1.0, 101.0), 95)
    assert (low, high) == (91.0, 100.0)


def test_interval_covers_a_known_quantile_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(20240611)
    cases = [(95.0, 200, 300), (50.0, 40, 300), (99.0, 700, 150)]
    for p, n, repetitions in cases:
        true_quantile = -math.log(1 - p / 100)  # of the unit exponential
        hits = 0
        for _ in range(repetitions):
            low, high = percentile_ci(rng.exponential(size=n), p, 0.95)
            hits += low <= true_quantile <= high
        # Nominal 95%; the bound leaves over three standard errors of slack.
        assert hits / repetitions >= 0.91, (p, n, hits)


# --- what repeated looks cost ------------------------------------------------------


def test_boundary_error_of_one_look_is_within_the_confidence() -> None:
    passed, failed = boundary_error_rates([130], 95, 0.99)
    assert passed == pytest.approx(binom_cdf(1, 130, 0.05))
    assert passed < 0.01 and failed < 0.01


def test_boundary_error_of_the_default_schedule() -> None:
    looks = [130, 260, 520, 1040, 2080, 4160, 8320, 16640, 20000]
    passed, failed = boundary_error_rates(looks, 95, 0.99)
    # The figures the latency module's docstring quotes; below the union bound.
    assert passed == pytest.approx(0.0545, abs=5e-4)
    assert failed == pytest.approx(0.0497, abs=5e-4)
    assert passed < len(looks) * 0.01 and failed < len(looks) * 0.01
    # ... and the stricter per-look confidence it suggests for about 1% overall.
    stricter = [166, 332, 664, 1328, 2656, 5312, 10624, 20000]
    assert min_samples_to_pass(95, 0.998) == 166
    assert max(boundary_error_rates(stricter, 95, 0.998)) == pytest.approx(0.0115, abs=5e-4)


def test_boundary_error_matches_a_simulation() -> None:
    looks, p, confidence = [64, 128, 256, 512], 90.0, 0.95
    expected_pass, expected_fail = boundary_error_rates(looks, p, confidence)
    rng = np.random.default_rng(7)
    runs = 20_000
    steps = np.diff([0, *looks])
    over = np.cumsum(rng.binomial(steps, 0.1, size=(runs, len(looks))), axis=1)
    outcome = np.full(runs, "unsettled", dtype=object)
    for column, n in enumerate(looks):
        undecided = outcome == "unsettled"
        for count in np.unique(over[undecided, column]):
            outcome[undecided & (over[:, column] == count)] = decide(n, int(count), p, confidence)
    for simulated, exact in [
        (np.mean(outcome == "pass"), expected_pass),
        (np.mean(outcome == "fail"), expected_fail),
    ]:
        assert abs(simulated - exact) < 4 * math.sqrt(exact * (1 - exact) / runs) + 1e-3
    with pytest.raises(ValueError, match="increase"):
        boundary_error_rates([10, 10], p, confidence)


# --- two sample sets: Mann-Whitney ------------------------------------------------


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


# --- two sample sets: the tail test and the bootstrap of a change ------------------


def latencies(rng: np.random.Generator, n: int, slowdown: float = 1.0) -> npt.NDArray[np.int64]:
    """n per-call latencies in ns: log-normal around 50 ms, times *slowdown*."""
    return (50e6 * slowdown * rng.lognormal(0.0, 0.2, n)).astype(np.int64)


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


def test_the_tail_test_sees_more_calls_beyond_the_pooled_percentile() -> None:
    old = np.arange(100, dtype=float)
    same = tail_exceedance_greater(old, old, 95)
    heavier = tail_exceedance_greater(np.concatenate([old[:80], old[80:] + 1000]), old, 95)
    assert same == pytest.approx(0.5)
    assert heavier < 0.01


def test_the_pooled_percentile_is_one_threshold_for_both_sets() -> None:
    assert pooled_percentile([1, 2, 3], [6, 5, 4], 50) == 3
    assert pooled_percentile([10.0], [1.0, 2.0, 3.0], 100) == 10.0


def test_consecutive_blocks_keep_the_order() -> None:
    blocks = consecutive_blocks(np.arange(100), blocks=20, min_size=5)
    assert [len(block) for block in blocks] == [5] * 20
    assert np.concatenate(blocks).tolist() == list(range(100))
    fewer = consecutive_blocks(np.arange(60), blocks=20, min_size=5)  # 12 fit, over half
    assert [len(block) for block in fewer] == [5] * 12


def test_too_few_samples_for_half_the_blocks_are_single_blocks() -> None:
    blocks = consecutive_blocks([3.0, 1.0, 2.0] * 10, blocks=20, min_size=5)
    assert [block.tolist() for block in blocks] == [[v] for v in [3.0, 1.0, 2.0] * 10]


# --- paired data: McNemar, the paired bootstrap -------------------------------------


@pytest.mark.parametrize(
    ("regressions", "fixes", "expected"),
    [
        (5, 0, 2 * 0.5**5),
        (0, 5, 2 * 0.5**5),
        (3, 1, 2 * (1 + 4) / 16),
        (2, 2, 1.0),
        (0, 0, 1.0),
        (1, 0, 1.0),
        (10, 2, 2 * (1 + 12 + 66) / 4096),
    ],
)
def test_mcnemar_exact_p(regressions: int, fixes: int, expected: float) -> None:
    assert mcnemar_exact_p(regressions, fixes) == expected


def test_mcnemar_in_log_space_matches_the_exact_sum() -> None:
    regressions, fixes = 10_150, 9_900  # 20 050 pairs: past the exact limit
    total, smaller = regressions + fixes, fixes
    term = count = 1  # binomial coefficients summed in exact integers
    for i in range(smaller):
        term = term * (total - i) // (i + 1)
        count += term
    exact = 2 * count / 2**total
    assert 0.05 < exact < 0.1  # a z of about 1.77
    assert mcnemar_exact_p(regressions, fixes) == pytest.approx(exact, rel=1e-8)


def test_paired_bootstrap_draws_rows_of_indices_in_bounded_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, int]] = []

    def largest_index(indices: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        seen.append(indices.shape)
        return np.asarray(indices.max(axis=1), dtype=np.float64)

    monkeypatch.setattr(stats, "_BOOTSTRAP_CHUNK_ELEMENTS", 40)  # 4 rows of 10 at a time
    values = paired_bootstrap(largest_index, 10, resamples=10, seed=3)
    assert seen == [(4, 10), (4, 10), (2, 10)]
    assert values.shape == (10,) and ((values >= 0) & (values <= 9)).all()
    again = paired_bootstrap(largest_index, 10, resamples=10, seed=3)
    assert again.tolist() == values.tolist()


def test_the_percentile_interval_leaves_undefined_resamples_out() -> None:
    values = np.concatenate([np.arange(101.0), np.full(7, np.nan)])
    low, high = percentile_interval(values, 0.9)
    assert (low, high) == pytest.approx((5.0, 95.0))


# --- trends: Theil-Sen and block medians ------------------------------------------


def test_an_exact_line_gives_its_exact_slope() -> None:
    x = np.arange(10.0)
    fit = theil_sen(x, 2.5 * x - 7.0)
    assert (fit.slope, fit.low, fit.high, fit.n) == (2.5, 2.5, 2.5, 10)


@pytest.mark.parametrize("outlier", [1e6, -1e6])
def test_a_few_huge_outliers_do_not_move_the_slope(outlier: float) -> None:
    x = np.arange(20.0)
    y = 3.0 * x + 1.0
    y[[2, 9, 15]] = outlier
    fit = theil_sen(x, y)
    assert fit.slope == 3.0
    assert fit.low == fit.high == 3.0  # most pairs still lie on the line


def test_the_interval_holds_the_true_slope_of_a_noisy_line() -> None:
    rng = np.random.default_rng(7)
    x = np.arange(50.0)
    fit = theil_sen(x, 2.0 * x + 5.0 + rng.normal(0.0, 1.0, x.size))
    assert fit.low < 2.0 < fit.high
    assert fit.low < fit.slope < fit.high
    assert fit.slope == pytest.approx(2.0, abs=0.1)
    wider = theil_sen(x, 2.0 * x + 5.0 + rng.normal(0.0, 1.0, x.size), confidence=0.99)
    narrower = theil_sen(x, 2.0 * x + 5.0 + rng.normal(0.0, 1.0, x.size), confidence=0.6)
    assert wider.high - wider.low > narrower.high - narrower.low


def test_two_points_have_an_unbounded_interval() -> None:
    fit = theil_sen([0.0, 1.0], [0.0, 4.0])
    assert fit.slope == 4.0
    assert (fit.low, fit.high) == (-math.inf, math.inf)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ([1.0], [1.0], "at least 2 points, got 1"),
        ([], [], "at least 2 points, got 0"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], "differ in length: 3 and 2"),
        ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], "at least two distinct x values"),
    ],
)
def test_theil_sen_refuses_what_has_no_slope(x: list[float], y: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        theil_sen(x, y)


distinct_xs = st.lists(
    st.integers(min_value=-1000, max_value=1000), min_size=2, max_size=30, unique=True
)
moderate = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@given(xs=distinct_xs, a=moderate, b=moderate)
def test_any_line_gives_its_slope_inside_its_interval(xs: list[int], a: float, b: float) -> None:
    x = np.asarray(xs, dtype=np.float64)
    fit = theil_sen(x, a * x + b)
    assert fit.slope == pytest.approx(a, rel=1e-9, abs=1e-6)
    assert fit.low <= fit.slope <= fit.high


@given(
    data=st.lists(st.tuples(st.integers(-1000, 1000), moderate), min_size=2, max_size=30),
    shift=moderate,
)
def test_the_fit_ignores_a_constant_added_to_y(data: list[tuple[int, float]], shift: float) -> None:
    xs = [x for x, _ in data]
    assume(len(set(xs)) >= 2)
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray([v for _, v in data])
    fit, shifted = theil_sen(x, y), theil_sen(x, y + shift)
    assert fit.low <= fit.slope <= fit.high
    # Each pairwise slope moves by rounding only, and so does each order statistic.
    for before, after in [
        (fit.slope, shifted.slope),
        (fit.low, shifted.low),
        (fit.high, shifted.high),
    ]:
        assert before == after or abs(before - after) <= 1e-6


def test_block_medians_summarise_consecutive_runs() -> None:
    t, v = block_medians(np.arange(10.0), np.arange(10.0) * 2, blocks=5)
    assert list(t) == [0.5, 2.5, 4.5, 6.5, 8.5]
    assert list(v) == [1.0, 5.0, 9.0, 13.0, 17.0]
    t, v = block_medians([1.0, 2.0], [3.0, 4.0], blocks=30)  # fewer points than blocks
    assert list(t) == [1.0, 2.0] and list(v) == [3.0, 4.0]
