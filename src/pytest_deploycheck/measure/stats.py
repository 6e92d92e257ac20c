"""The package's one statistics module: every percentile, interval and test lives here.

Percentiles and their order-statistic intervals, the binomial early-stopping rule of a
latency budget, the two-sample tests of the regression gates (Mann-Whitney, the tail
test, the bootstrap of a percentile's change), the paired statistics of the accuracy
check (McNemar, the paired bootstrap), the soak's robust slope (Theil-Sen with Sen's
interval) and the drift tests (two-sample Kolmogorov-Smirnov, chi-square on category
counts, PSI, Holm's correction, the Clopper-Pearson interval of an agreement rate).
Everything here is a pure function of a sample set or of counts, so the
statistics can be tested on synthetic data without timing anything, and it imports
nothing else of the package.  The percentile rules follow MLPerf LoadGen:

* the point estimate is the **nearest-rank** percentile (the sample at rank
  ``ceil(p/100 * n)``), never an interpolation between samples, so it is a latency
  that was actually observed, which is the honest choice at small n;
* a budget on the p-th percentile is judged by counting the samples over the budget.
  If the true p-th percentile sat exactly on the budget, each sample would exceed it
  with probability ``q = 1 - p/100`` and the count would be Binomial(n, q).  The
  verdict is **pass** when so few samples exceeded the budget that this is
  implausible at the given confidence (LoadGen counts at least one over-budget
  sample, which fixes the minimum sample count: 64, 130 and 662 samples for p90, p95
  and p99 at confidence 0.99), **fail** when so many exceeded it that it is
  implausible the other way, and **unsettled** otherwise.

A pass or fail from :func:`decide` is always consistent with the point estimate: for
any confidence >= 0.5 it never says pass while the nearest-rank percentile is over
the budget, nor fail while it is at or under it (the binomial median lies between
``floor(nq)`` and ``ceil(nq)``).

The binomial tails start from one term computed in log space with ``math.lgamma``
and sum outwards, away from the mode, by the ratio of neighbouring terms, so they stay
accurate (relative error about 1e-9 at n = 1e6) where a naive sum would overflow,
underflow or cancel.  ``percentile_ci`` picks its order statistics from the same
binomial.  numpy is imported at the top: this module is only imported once a test
measures something.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Decision = Literal["pass", "fail", "unsettled"]
Samples = Sequence[float] | npt.NDArray[np.floating] | npt.NDArray[np.integer]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# A tail term this much smaller than the running sum no longer changes a double.
_NEGLIGIBLE = 1e-18
# Percentile intervals only consider ranks within this many standard deviations (plus
# a margin for skewed, Poisson-like tails) of the expected rank: beyond, the binomial
# mass is far below double precision.
_WINDOW_SD = 12.0
_WINDOW_MARGIN = 40
# The regression gate's bootstrap: enough resamples for a stable 98% interval, and a
# fixed seed, because a gate must give the same answer on the same files.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
# At most this many resampled indices are held at once by the paired bootstrap (16 MB).
_BOOTSTRAP_CHUNK_ELEMENTS = 1 << 21
# McNemar's tail is summed in exact integers up to this many discordant pairs.
_EXACT_MCNEMAR_LIMIT = 20_000


def percentile_nearest_rank(samples: Samples, percentile: float) -> float:
    """The nearest-rank p-th percentile: the sample at rank ``ceil(p/100 * n)`` (1-based).

    Always a value that was observed.  The rank is computed exactly from the decimal
    the caller wrote (``7`` of 100 samples is rank 7; ``np.percentile(...,
    method="inverted_cdf")`` says 8 there because 0.07 * 100 rounds up in binary).
    """
    values = _as_array(samples)
    index = nearest_rank(len(values), percentile) - 1
    return float(np.partition(values, index)[index])


def nearest_rank(n: int, percentile: float) -> int:
    """The 1-based rank of the nearest-rank p-th percentile among n sorted samples."""
    _check_count(n, minimum=1)
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    return max(1, math.ceil(_decimal(percentile) * n / 100))


def binom_cdf(k: int, n: int, q: float) -> float:
    """P(X <= k) for X ~ Binomial(n, q), accurate in both tails for n up to about 1e6."""
    lower, _ = _binom_tails(k, n, q)
    return lower


def binom_sf(k: int, n: int, q: float) -> float:
    """P(X >= k) for X ~ Binomial(n, q) (note: >= k, not > k, as the decision rule uses)."""
    _, upper = _binom_tails(k - 1, n, q)
    return upper


def _binom_tails(k: int, n: int, q: float) -> tuple[float, float]:
    """(P(X <= k), P(X > k)), the smaller of the two summed directly.

    Summing from k away from the mode keeps every term decreasing, so the sum can stop
    as soon as terms are negligible, and the smaller tail never comes from subtracting
    nearly equal numbers.  The side of the mode k lies on usually holds the smaller
    tail; when it does not (k next to the mode), the other tail is summed directly too.
    """
    _check_count(n, minimum=0)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"binomial probability q must be in [0, 1], got {q!r}")
    if k < 0 or q == 1.0:
        return (0.0, 1.0) if k < n else (1.0, 0.0)
    if k >= n or q == 0.0:
        return 1.0, 0.0
    if k < math.floor((n + 1) * q):
        lower = _tail_sum(k, n, q, step=-1)
        upper = 1.0 - lower if lower <= 0.5 else _tail_sum(k + 1, n, q, step=1)
    else:
        upper = _tail_sum(k + 1, n, q, step=1)
        lower = 1.0 - upper if upper <= 0.5 else _tail_sum(k, n, q, step=-1)
    return lower, upper


def _tail_sum(start: int, n: int, q: float, *, step: int) -> float:
    """Sum of the binomial pmf from *start* outwards (step -1: down to 0, +1: up to n)."""
    # pmf(i + step) / pmf(i), from the ratio of neighbouring binomial coefficients.
    odds = q / (1.0 - q)
    relative, term, i = 1.0, 1.0, start
    while 0 <= i + step <= n:
        if step < 0:
            term *= i / (n - i + 1) / odds
        else:
            term *= (n - i) / (i + 1) * odds
        i += step
        relative += term
        if term < relative * _NEGLIGIBLE:
            break
    return min(1.0, math.exp(_log_pmf(start, n, q) + math.log(relative)))


def _log_pmf(k: int, n: int, q: float) -> float:
    log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return log_choose + k * math.log(q) + (n - k) * math.log1p(-q)


def exceed_probability(percentile: float) -> float:
    """q = 1 - p/100: the chance a sample exceeds the true p-th percentile.

    Computed from the decimal the caller wrote, so p95 gives exactly 0.05.
    """
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be strictly between 0 and 100, got {percentile!r}")
    return float((100 - _decimal(percentile)) / 100)


def decide(n: int, over_budget: int, percentile: float, confidence: float) -> Decision:
    """Whether n samples, of which *over_budget* exceeded the budget, settle the verdict.

    ``"pass"``: the p-th percentile is under the budget with the given confidence
    (LoadGen's rule, counting at least one over-budget sample); ``"fail"``: it is over;
    ``"unsettled"``: more samples are needed.  The confidence holds for one look at
    the data; see :mod:`pytest_deploycheck.latency` for what repeated looks cost.
    """
    _check_counts(n, over_budget)
    _check_confidence(confidence)
    q = exceed_probability(percentile)
    alpha = 1.0 - confidence
    if n == 0:
        return "unsettled"
    if binom_cdf(max(over_budget, 1), n, q) < alpha:
        return "pass"
    if binom_sf(over_budget, n, q) < alpha:
        return "fail"
    return "unsettled"


def min_samples_to_pass(percentile: float, confidence: float) -> int:
    """The fewest samples with which a pass can settle at all (none over the budget).

    At confidence 0.99: 64 for p90, 130 for p95, 662 for p99 (as LoadGen).
    """
    return samples_needed_to_pass(0, percentile, confidence)


def samples_needed_to_pass(over_budget: int, percentile: float, confidence: float) -> int:
    """The total sample count at which a pass would settle if no further sample exceeded.

    With *over_budget* samples already over, a pass needs enough under-budget samples
    that so few exceedances are implausible when the percentile sits on the budget.
    """
    _check_count(over_budget, minimum=0)
    _check_confidence(confidence)
    q = exceed_probability(percentile)
    alpha = 1.0 - confidence
    k = max(over_budget, 1)

    def passes(n: int) -> bool:
        return binom_cdf(k, n, q) < alpha

    # binom_cdf(k, n, q) falls as n grows: exponential search, then bisection.
    low, high = max(over_budget, 1), max(over_budget, 1) * 2
    while not passes(high):
        low, high = high, high * 2
    while low < high:
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle + 1
    return high


def percentile_ci(
    samples: Samples, percentile: float, confidence: float = 0.95
) -> tuple[float, float]:
    """A distribution-free confidence interval for the p-th percentile of the population.

    The bounds are order statistics ``(X_(l), X_(u))`` whose binomial coverage is at
    least *confidence* for any distribution (exactly that for continuous ones),
    chosen as narrow in rank and then as balanced in tail mass as possible.  When n is
    too small for an order statistic to bound a side at this confidence, that side is
    infinite: ``(X_(l), inf)`` is typical for a high percentile of few samples, and
    ``(-inf, inf)`` means the samples say nothing yet.
    """
    values = np.sort(_as_array(samples))
    low_rank, high_rank = percentile_ci_ranks(len(values), percentile, confidence)
    low = -math.inf if low_rank == 0 else float(values[low_rank - 1])
    high = math.inf if high_rank == len(values) + 1 else float(values[high_rank - 1])
    return low, high


def percentile_ci_ranks(n: int, percentile: float, confidence: float = 0.95) -> tuple[int, int]:
    """The 1-based ranks (l, u) of :func:`percentile_ci`; 0 means -inf, n + 1 means +inf.

    With B ~ Binomial(n, p/100) the number of samples below the true percentile, the
    interval covers it with probability ``P(l <= B <= u - 1)``.
    """
    _check_count(n, minimum=1)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    p = 1.0 - exceed_probability(percentile)
    ranks, below = _rank_window(n, p)
    finite = _narrowest(ranks, below, confidence, n, lowest=1, highest=n)
    if finite is not None:
        return finite
    # No two order statistics reach the confidence: give up one side, the one the
    # percentile is nearer to (the upper side for p > 50).
    lowest, highest = (0, n) if p < 0.5 else (1, n + 1)
    one_sided = _narrowest(ranks, below, confidence, n, lowest=lowest, highest=highest)
    return one_sided if one_sided is not None else (0, n + 1)


def _rank_window(n: int, p: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Extended ranks r in a window around n*p and F(r) = P(B <= r - 1) for each.

    Rank 0 stands for -inf (F = 0) and rank n + 1 for +inf (F = 1).
    """
    spread = _WINDOW_SD * math.sqrt(n * p * (1.0 - p)) + _WINDOW_MARGIN
    first = max(0, math.floor(n * p - spread))
    last = min(n + 1, math.ceil(n * p + spread) + 1)
    ranks = np.arange(first, last + 1, dtype=np.int64)
    counts = ranks[1:] - 1  # F(r) - F(r - 1) = pmf(r - 1)
    pmf = np.array([math.exp(_log_pmf(int(k), n, p)) for k in counts])
    below = np.concatenate(([binom_cdf(first - 1, n, p)], pmf))
    below = np.minimum(np.cumsum(below), 1.0)
    if last == n + 1:
        below[-1] = 1.0
    return ranks, below


def _narrowest(
    ranks: npt.NDArray[np.int64],
    below: npt.NDArray[np.float64],
    confidence: float,
    n: int,
    *,
    lowest: int,
    highest: int,
) -> tuple[int, int] | None:
    """The pair lowest <= l < u <= highest with F(u) - F(l) >= confidence, narrowest first.

    Among equally narrow pairs the one whose two tails (F(l) below, 1 - F(u) above)
    are closest wins, so the interval is as symmetric as the ranks allow.
    """
    allowed = (ranks >= lowest) & (ranks <= highest)
    candidates = np.flatnonzero(allowed)
    if candidates.size == 0:
        return None
    needed = below[candidates] + confidence
    uppers = np.searchsorted(below, needed, side="left")
    valid = (uppers < len(ranks)) & (uppers > candidates)
    valid[valid] &= ranks[uppers[valid]] <= highest
    if not valid.any():
        return None
    low_idx, up_idx = candidates[valid], uppers[valid]
    width = ranks[up_idx] - ranks[low_idx]
    imbalance = np.abs(below[low_idx] - (1.0 - below[up_idx]))
    best = np.lexsort((imbalance, width))[0]
    return int(ranks[low_idx[best]]), int(ranks[up_idx[best]])


def _as_array(samples: Samples) -> FloatArray | IntArray:
    """The samples as one array; integers stay integers, so a percentile is exact."""
    values = _one_dimensional(np.asarray(samples))
    if values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    return values.astype(np.float64, copy=False)


def _as_floats(samples: Samples) -> FloatArray:
    """The samples as floats, for the tests that average ranks or divide."""
    return _one_dimensional(np.asarray(samples, dtype=np.float64))


def _one_dimensional(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"need a non-empty one-dimensional sample set, got shape {values.shape}")
    return values


def _decimal(number: float) -> Fraction:
    """The decimal a person wrote (95, 99.9) as an exact fraction, not its binary neighbour."""
    return Fraction(repr(float(number)))


def _check_count(n: int, *, minimum: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"sample count must be a whole number >= {minimum}, got {n!r}")


def _check_counts(n: int, over_budget: int) -> None:
    _check_count(n, minimum=0)
    _check_count(over_budget, minimum=0)
    if over_budget > n:
        raise ValueError(f"over_budget ({over_budget}) cannot exceed the sample count ({n})")


def _check_confidence(confidence: float) -> None:
    # Below 0.5 a sample set could be significantly under and over budget at once.
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), e.g. 0.99, got {confidence!r}")


def boundary_error_rates(
    looks: Sequence[int], percentile: float, confidence: float
) -> tuple[float, float]:
    """(P(pass), P(fail)) of a sequential test that looks at these sample counts.

    Computed exactly (up to truncation far below double precision) for the worst case,
    a true percentile sitting exactly on the budget, where every settled verdict is an
    error: a pass when the percentile is at or just over the budget, a fail when it is
    at or just under.  Each look alone errs with at most ``1 - confidence`` per side;
    repeated looks add up, but far less than the union bound ``len(looks) * (1 -
    confidence)`` because the looks share their samples.
    """
    q = exceed_probability(percentile)
    _check_confidence(confidence)
    offset, alive = 0, np.ones(1)  # probability of each over-budget count, not yet settled
    previous, passed, failed = 0, 0.0, 0.0
    for n in looks:
        if n <= previous:
            raise ValueError(f"looks must increase, got {list(looks)}")
        step_offset, step_pmf = _binomial_window(n - previous, q)
        offset, alive = offset + step_offset, np.convolve(alive, step_pmf)
        pass_up_to, fail_from = _decision_thresholds(n, percentile, confidence)
        counts = np.arange(offset, offset + len(alive))
        passed += float(alive[counts <= pass_up_to].sum())
        failed += float(alive[counts >= fail_from].sum())
        alive = np.where((counts > pass_up_to) & (counts < fail_from), alive, 0.0)
        offset, alive = _trim(offset, alive)
        previous = n
    return passed, failed


def _decision_thresholds(n: int, percentile: float, confidence: float) -> tuple[int, int]:
    """(largest count that passes or -1, smallest count that fails or n + 1) at n samples.

    Both exist because a pass only gets harder and a fail only easier as the count grows.
    """
    pass_up_to = _first_count(n, lambda t: decide(n, t, percentile, confidence) != "pass") - 1
    fail_from = _first_count(n, lambda t: decide(n, t, percentile, confidence) == "fail")
    return pass_up_to, fail_from


def _first_count(n: int, holds: Callable[[int], bool]) -> int:
    """The smallest t in 0..n for which the monotone *holds* is true, else n + 1."""
    low, high = 0, n + 1
    while low < high:
        middle = (low + high) // 2
        if holds(middle):
            high = middle
        else:
            low = middle + 1
    return high


def _binomial_window(n: int, q: float) -> tuple[int, npt.NDArray[np.float64]]:
    """The pmf of Binomial(n, q) where it is not negligible, and the count it starts at."""
    spread = _WINDOW_SD * math.sqrt(n * q * (1.0 - q)) + _WINDOW_MARGIN
    first = max(0, math.floor(n * q - spread))
    last = min(n, math.ceil(n * q + spread))
    pmf = np.array([math.exp(_log_pmf(k, n, q)) for k in range(first, last + 1)])
    return first, pmf


def _trim(offset: int, alive: npt.NDArray[np.float64]) -> tuple[int, npt.NDArray[np.float64]]:
    """Drop leading and trailing counts with no probability left, to keep arrays short."""
    kept = np.flatnonzero(alive > 1e-300)
    if kept.size == 0:
        return offset, alive[:1] * 0.0
    return offset + int(kept[0]), alive[kept[0] : kept[-1] + 1]


# --- two sample sets: is the new one slower? ---------------------------------------


def mann_whitney_greater(x: Samples, y: Samples, *, continuity: bool = True) -> float:
    """One-sided Mann-Whitney U p-value that values of *x* tend to be larger than *y*'s.

    Normal approximation with the tie correction of the variance and (by default) the
    continuity correction, as in the textbooks and scipy's ``method="asymptotic"``;
    good to a few percent of the p-value from about 20 values per side.  When every
    value is equal there is no evidence either way: 1.0 (0.5 without continuity).
    """
    first, second = _as_floats(x), _as_floats(y)
    n1, n2 = first.size, second.size
    total = n1 + n2
    _, inverse, counts = np.unique(
        np.concatenate((first, second)), return_inverse=True, return_counts=True
    )
    # Average rank of each distinct value: ties share the mean of the ranks they span.
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    u = float(average_rank[inverse.reshape(-1)[:n1]].sum()) - n1 * (n1 + 1) / 2.0
    tie_term = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    variance = n1 * n2 / 12.0 * ((total + 1) - tie_term / (total * (total - 1)))
    if variance <= 0.0:
        return 1.0 if continuity else 0.5
    z = (u - n1 * n2 / 2.0 - (0.5 if continuity else 0.0)) / math.sqrt(variance)
    return min(1.0, 0.5 * math.erfc(z / math.sqrt(2.0)))


def pooled_percentile(x: Samples, y: Samples, percentile: float) -> float:
    """The nearest-rank percentile of both sample sets together.

    The common threshold of a tail test: a share of calls beyond it can be compared
    between the sets, where each set's own percentile would move with the set.
    """
    both = np.concatenate([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    return percentile_nearest_rank(both, percentile)


def tail_exceedance_greater(x: Samples, y: Samples, percentile: float) -> float:
    """One-sided p-value that more of *x* than of *y* lies beyond the pooled percentile.

    A two-proportion z-test on the counts above the nearest-rank *percentile* of both
    sets pooled: it sees a slowdown of the slowest calls that leaves the bulk (and so
    the rank test) unmoved.
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    threshold = pooled_percentile(a, b, percentile)
    over_a, over_b = int((a > threshold).sum()), int((b > threshold).sum())
    rate = (over_a + over_b) / (len(a) + len(b))
    spread = math.sqrt(rate * (1 - rate) * (1 / len(a) + 1 / len(b)))
    if spread == 0.0:
        return 1.0
    z = (over_a / len(a) - over_b / len(b)) / spread
    return 0.5 * math.erfc(z / math.sqrt(2))


def bootstrap_percentile_change(
    new: Samples,
    old: Samples,
    percentile: float,
    *,
    confidence: float = 0.98,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``new_p / old_p - 1`` for the nearest-rank percentile.

    Each side is resampled independently, *resamples* times, with a fixed *seed* (a
    gate must give the same answer on the same files).  No resample is materialised:
    drawing n indices uniformly and taking the k-th smallest is ``floor(n * U_(k))``
    with ``U_(k)``, the k-th smallest of n uniforms, distributed Beta(k, n - k + 1).  So
    each resample's percentile is one beta draw: exact, and O(resamples) whatever n is.
    A percentile under 1 ns (the clock's resolution) counts as 1 ns.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    rng = np.random.default_rng(seed)
    new_percentiles = _bootstrap_percentiles(np.sort(_as_floats(new)), percentile, resamples, rng)
    old_percentiles = _bootstrap_percentiles(np.sort(_as_floats(old)), percentile, resamples, rng)
    change = new_percentiles / np.maximum(old_percentiles, 1.0) - 1.0
    return percentile_interval(change, confidence)


def _bootstrap_percentiles(
    ordered: FloatArray, percentile: float, resamples: int, rng: np.random.Generator
) -> FloatArray:
    """The nearest-rank percentile of *resamples* bootstrap resamples of sorted values."""
    n = ordered.size
    k = nearest_rank(n, percentile)
    order_statistic = rng.beta(k, n - k + 1, size=resamples)
    index = np.minimum((order_statistic * n).astype(np.int64), n - 1)
    return ordered[index]


def consecutive_blocks(samples: Samples, *, blocks: int, min_size: int = 1) -> list[FloatArray]:
    """The samples in their order, cut into up to *blocks* runs of at least *min_size*.

    Consecutive timings are not independent (slow calls come in bursts, an arena stays
    grown), so tests and fits summarise runs of them.  When not even half the wanted
    runs fit, each sample is its own block: too few to summarise without losing the
    little there is.
    """
    values = np.asarray(samples, dtype=np.float64)
    count = min(blocks, max(values.size // min_size, 1))
    if count < blocks // 2:
        return [values[i : i + 1] for i in range(values.size)]
    return list(np.array_split(values, count))


# --- paired data: two models on the same items -------------------------------------


def mcnemar_exact_p(regressions: int, fixes: int) -> float:
    """McNemar's exact two-sided p-value for the discordant pairs (b, c).

    Under "the models are equally accurate" each discordant item is a fair coin, so
    min(b, c) ~ Binomial(b + c, 1/2); the p-value doubles its lower tail (capped at 1).
    Summed in exact integers for up to 20 000 pairs, in log space beyond.
    """
    total, smaller = regressions + fixes, min(regressions, fixes)
    if total == 0:
        return 1.0
    if total > _EXACT_MCNEMAR_LIMIT:
        return min(1.0, 2.0 * binom_cdf(smaller, total, 0.5))
    term, tail = 1, 1
    for i in range(smaller):
        term = term * (total - i) // (i + 1)
        tail += term
    # Python divides big integers with correct rounding.
    return min(1.0, 2 * tail / (1 << total))


def paired_bootstrap(
    statistic: Callable[[IntArray], FloatArray],
    n: int,
    *,
    resamples: int,
    seed: int | None,
) -> FloatArray:
    """*statistic* on *resamples* index resamples of n paired items.

    Each resample is one row of indices, applied to both models, which is what makes
    it paired.  Rows are drawn in chunks, so memory stays bounded for large sets while
    the statistic stays vectorised over a chunk.
    """
    rng = np.random.default_rng(seed)
    rows_per_chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // n)
    values = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, rows_per_chunk):
        stop = min(resamples, start + rows_per_chunk)
        values[start:stop] = statistic(rng.integers(0, n, size=(stop - start, n)))
    return values


def percentile_interval(values: FloatArray, confidence: float) -> tuple[float, float]:
    """The percentile-method bootstrap interval: the resamples' central *confidence* range.

    NaN resamples (a statistic undefined on that resample, such as a relative drop
    from nothing) are left out rather than poisoning both bounds.
    """
    tail = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


# --- trends: a robust slope ----------------------------------------------------------


@dataclass(frozen=True)
class SlopeFit:
    """A Theil-Sen slope and Sen's confidence interval, in y-units per x-unit."""

    slope: float
    low: float
    high: float
    n: int


def theil_sen(x: Samples, y: Samples, *, confidence: float = 0.95) -> SlopeFit:
    """Median of the pairwise slopes, with the rank interval of Sen (1968).

    One step or one wild sample cannot tip the median of all pairwise slopes, where it
    would tip a least-squares line.  The interval takes the order statistics of the
    pairwise slopes at ``(N -/+ z * sqrt(Var S)) / 2`` where N is the number of pairs
    and Var S the variance of Kendall's S without ties in x; it needs no assumption
    about the noise beyond independence.
    """
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = xs.size
    if n != ys.size:
        raise ValueError(f"x and y differ in length: {n} and {ys.size}")
    if n < 2:
        raise ValueError(f"a slope needs at least 2 points, got {n}")
    slopes = _pairwise_slopes(xs, ys)
    pairs = slopes.size
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    spread = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    lower_rank = math.floor((pairs - spread) / 2.0)
    upper_rank = math.ceil((pairs + spread) / 2.0)
    low = float(slopes[lower_rank]) if lower_rank >= 0 else -math.inf
    high = float(slopes[upper_rank]) if upper_rank < pairs else math.inf
    return SlopeFit(float(np.median(slopes)), low, high, n)


def _pairwise_slopes(xs: FloatArray, ys: FloatArray) -> FloatArray:
    """The sorted slopes of every pair of points with distinct x."""
    i, j = np.triu_indices(xs.size, k=1)
    dx = xs[j] - xs[i]
    usable = dx != 0
    if not usable.any():
        raise ValueError("a slope needs at least two distinct x values")
    return np.sort((ys[j] - ys[i])[usable] / dx[usable])


def block_medians(t: Samples, values: Samples, *, blocks: int) -> tuple[FloatArray, FloatArray]:
    """Medians of *blocks* runs of consecutive points (fewer when there are fewer points).

    Medians of blocks are much closer to independent values than consecutive samples,
    which is what Sen's interval assumes.
    """
    ts, vs = np.asarray(t, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if min(blocks, ts.size) == 0:
        return ts, vs
    return (
        np.array([np.median(part) for part in consecutive_blocks(ts, blocks=blocks)]),
        np.array([np.median(part) for part in consecutive_blocks(vs, blocks=blocks)]),
    )


# --- drift: two samples of one feature, and many features at once -------------------

# The exact two-sample KS distribution costs m * n steps: beyond this the limiting
# (Kolmogorov) distribution is used, which at these sizes differs from it by < 1e-3.
KS_EXACT_LIMIT = 10_000_000
# A share of 0 in a PSI bin is replaced by this, or one empty bin would make PSI infinite.
PSI_FLOOR = 1e-4
PSI_BINS = 10
# Pearson's chi-square is an approximation; below this expected count per cell it is rough.
CHI_SQUARE_MIN_EXPECTED = 5.0
_GAMMA_ITERATIONS = 10_000
_GAMMA_EPS = 1e-15
_CP_BISECTIONS = 100


@dataclass(frozen=True)
class KSResult:
    """A two-sample Kolmogorov-Smirnov test: D, its two-sided p-value and how p was found."""

    statistic: float
    p_value: float
    method: Literal["exact", "asymptotic"]
    n_reference: int
    n_current: int


@dataclass(frozen=True)
class ChiSquareResult:
    """Pearson's chi-square test of homogeneity on a 2 x k table of category counts."""

    statistic: float
    df: int
    p_value: float
    min_expected: float  # the smallest expected cell count (the approximation's health)
    n_reference: int
    n_current: int

    @property
    def cramers_v(self) -> float:
        """The effect size in [0, 1]: sqrt(chi2 / N) for a table with two rows."""
        total = self.n_reference + self.n_current
        return math.sqrt(self.statistic / total) if total and self.df else 0.0


def ks_two_sample(reference: Samples, current: Samples) -> KSResult:
    """Two-sided two-sample KS test: D is the largest gap between the two empirical CDFs.

    D is computed in integer units (``|n * count_ref - m * count_cur|`` at every pooled
    value, ties included), so the exact p-value counts lattice paths without rounding
    trouble.  p is exact up to :data:`KS_EXACT_LIMIT` = m * n, else the limiting
    Kolmogorov distribution.  Both assume continuous data, as scipy's ``ks_2samp``
    does: with ties the p-value is conservative.
    """
    x, y = np.sort(_as_floats(reference)), np.sort(_as_floats(current))
    m, n = x.size, y.size
    pooled = np.concatenate([x, y])
    below_x = np.searchsorted(x, pooled, side="right").astype(np.int64)
    below_y = np.searchsorted(y, pooled, side="right").astype(np.int64)
    gap = int(np.max(np.abs(below_x * n - below_y * m)))
    d = gap / (m * n)
    if m * n <= KS_EXACT_LIMIT:
        return KSResult(d, ks_exact_p(gap, m, n), "exact", m, n)
    return KSResult(d, ks_asymptotic_p(d, m, n), "asymptotic", m, n)


def ks_exact_p(gap: int, m: int, n: int) -> float:
    """P(D >= gap / (m n)) under "same continuous distribution", by counting paths.

    A sample pair is a monotone lattice path from (0, 0) to (m, n); D < gap / (m n)
    exactly when the path keeps ``|i n - j m| < gap``.  Each row of the count is
    scaled by C(i + n, n) (the recurrence of R's ``psmirnov``), so it stays in [0, 1];
    within a row the allowed j form one run, summed with one cumulative sum.
    """
    if gap <= 0:
        return 1.0
    if m > n:
        m, n = n, m
    limit = gap - 1  # inside: |i n - j m| <= limit
    u = np.zeros(n + 1, dtype=np.float64)
    u[: min(n, limit // m) + 1] = 1.0
    for i in range(1, m + 1):
        low = max(0, -((limit - i * n) // m))  # ceil((i n - limit) / m)
        high = min(n, (i * n + limit) // m)
        row = np.zeros(n + 1, dtype=np.float64)
        if low <= high:
            row[low : high + 1] = np.cumsum(u[low : high + 1] * (i / (i + n)))
        u = row
    return float(min(1.0, max(0.0, 1.0 - u[n])))


def ks_asymptotic_p(d: float, m: int, n: int) -> float:
    """Kolmogorov's limiting two-sided p-value at lambda = D * sqrt(m n / (m + n))."""
    return kolmogorov_sf(d * math.sqrt(m * n / (m + n)))


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution, by whichever series converges fast.

    ``2 sum (-1)^(k-1) exp(-2 k^2 lam^2)`` for lam >= 1; below, the theta-function
    form ``1 - sqrt(2 pi) / lam * sum exp(-(2k-1)^2 pi^2 / (8 lam^2))``.
    """
    if lam <= 0:
        return 1.0
    if lam < 1.0:
        terms = (math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * lam * lam)) for k in range(1, 8))
        return min(1.0, max(0.0, 1.0 - math.sqrt(2 * math.pi) / lam * sum(terms)))
    total = math.fsum((-1.0) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return min(1.0, max(0.0, 2.0 * total))


def ks_critical_d(m: int, n: int, alpha: float) -> float:
    """The smallest D a KS test on samples of m and n would call significant at *alpha*.

    ``lambda_alpha * sqrt((m + n) / (m n))`` where the Kolmogorov tail at lambda_alpha is
    alpha (1.358 at 0.05; about ``sqrt(-ln(alpha / 2) / 2)``): two distributions whose
    CDFs are nowhere further apart than this (at most this share of the items on the
    other side of any threshold) are not told apart.  Asymptotic, as a planning figure.
    """
    _check_count(m, minimum=1)
    _check_count(n, minimum=1)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    low, high = 0.0, 10.0  # the tail at 10 is below 1e-86
    for _ in range(_CP_BISECTIONS):
        mid = (low + high) / 2.0
        if kolmogorov_sf(mid) > alpha:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0 * math.sqrt((m + n) / (m * n))


def normal_shift_for_ks(d: float) -> float:
    """The mean shift, in standard deviations, that gives a normal feature KS gap *d*.

    Two normals delta sd apart have CDFs at most ``2 Phi(delta / 2) - 1`` apart (at the
    midpoint), so delta = 2 Phi^-1((1 + d) / 2): it turns a critical D into a shift.
    """
    if d >= 1.0:
        return math.inf
    return 2.0 * NormalDist().inv_cdf((1.0 + max(d, 0.0)) / 2.0)


def chi_square_homogeneity(reference_counts: Samples, current_counts: Samples) -> ChiSquareResult:
    """Pearson's chi-square test that two samples share the category shares.

    The counts are per category, in the same order on both sides; categories empty on
    both sides are left out (they hold no information).  With one category left there is
    nothing to test: chi2 = 0, df = 0, p = 1.  No continuity correction.
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1 or np.any(ref < 0) or np.any(cur < 0):
        raise ValueError("category counts must be two non-negative 1-D arrays of one length")
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if ref.size < 2 or n_ref == 0 or n_cur == 0:
        return ChiSquareResult(0.0, 0, 1.0, math.inf, n_ref, n_cur)
    totals = ref + cur
    grand = float(n_ref + n_cur)
    expected = np.stack([totals * n_ref / grand, totals * n_cur / grand])
    observed = np.stack([ref, cur])
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    df = ref.size - 1
    return ChiSquareResult(
        statistic, df, chi2_sf(statistic, df), float(expected.min()), n_ref, n_cur
    )


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X ~ chi-square(df): the regularized upper incomplete gamma Q(df/2, x/2)."""
    if df <= 0:
        return 1.0
    if x <= 0:
        return 1.0
    return gamma_q(df / 2.0, x / 2.0)


def gamma_q(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): the series for P below a + 1, else Lentz's fraction."""
    if x <= 0.0:
        return 1.0
    if x < a + 1.0:
        return max(0.0, 1.0 - _gamma_p_series(a, x))
    return min(1.0, _gamma_q_fraction(a, x))


def _gamma_p_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    denominator = a
    for _ in range(_GAMMA_ITERATIONS):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _GAMMA_EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_q_fraction(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, _GAMMA_ITERATIONS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < _GAMMA_EPS:
            break
    return h * math.exp(-x + a * math.log(x) - math.lgamma(a))


def psi(reference_shares: Samples, current_shares: Samples, *, floor: float = PSI_FLOOR) -> float:
    """Population stability index ``sum (cur - ref) ln(cur / ref)`` over bins or categories.

    Shares of 0 become *floor*.  By convention below 0.1 is stable, 0.1 to 0.25 a
    moderate shift, above 0.25 a major one; it has no p-value and depends on the bins,
    so it is reported beside the tests, never judged.
    """
    ref = np.maximum(np.asarray(reference_shares, dtype=np.float64), floor)
    cur = np.maximum(np.asarray(current_shares, dtype=np.float64), floor)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_continuous(reference: Samples, current: Samples, *, bins: int = PSI_BINS) -> float:
    """PSI over the reference's quantile bins (fewer where quantiles coincide)."""
    ref, cur = _as_floats(reference), _as_floats(current)
    inner = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    ref_bins = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=inner.size + 1)
    cur_bins = np.bincount(np.searchsorted(inner, cur, side="right"), minlength=inner.size + 1)
    return psi(ref_bins / ref.size, cur_bins / cur.size)


def holm(p_values: Samples) -> FloatArray:
    """Holm's step-down adjusted p-values, in the input order.

    Sorted ascending, the i-th (from 0) of k is multiplied by k - i, then made
    non-decreasing and capped at 1; a hypothesis is rejected at family-wise level alpha
    when its adjusted p is below alpha.  It controls the chance of any false alarm
    under any dependence between the features, as Bonferroni does, and rejects
    everything Bonferroni rejects and more.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p-values must be one-dimensional, got shape {p.shape}")
    if p.size == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * np.arange(p.size, 0, -1, dtype=np.float64)
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    result = np.empty_like(adjusted)
    result[order] = adjusted
    return result


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval of a binomial proportion.

    Each bound is the q at which the observed count sits in a tail of (1 - confidence)/2:
    its coverage is at least *confidence* for every true proportion (conservative), which
    suits a gate.  Found by bisection on this module's binomial tails.
    """
    _check_count(n, minimum=1)
    _check_count(successes, minimum=0)
    if successes > n:
        raise ValueError(f"successes ({successes}) cannot exceed n ({n})")
    _check_confidence(confidence)
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if successes == 0 else _bisect(lambda q: binom_sf(successes, n, q) - tail)
    high = 1.0 if successes == n else _bisect(lambda q: tail - binom_cdf(successes, n, q))
    return low, high


def _bisect(increasing: Callable[[float], float]) -> float:
    """The root in (0, 1) of a function increasing in q."""
    low, high = 0.0, 1.0
    for _ in range(_CP_BISECTIONS):
        mid = (low + high) / 2.0
        if increasing(mid) < 0:
            low = mid
        else:
            high = mid
        if high - low < 1e-15:
            break
    return (low + high) / 2.0


def items_to_clear(rate: float, floor: float, confidence: float, n: int) -> int | None:
    """About how many items put a rate's two-sided interval bound past *floor* (normal).

    None when the rate is not past the floor: no sample size would clear it.  The
    variance is kept at least 1/n, so a rate of exactly 1 still asks for a finite count.
    """
    gap = abs(rate - floor)
    if gap == 0:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    variance = max(rate * (1.0 - rate), 1.0 / max(n, 1))
    return math.ceil(variance * (z / gap) ** 2)
