"""Statistics of the regression benchmark: exact, distribution-free, numpy and the standard library
only (no scipy; the tests check every function against scipy).

Two kinds of comparison:

- **paired**, a method against the reference method on the same seeds (same cell, same random
  stream): the median of the per-seed differences with the sign test's exact confidence interval
  (:func:`sign_ci`), the exact Wilcoxon signed-rank test (:func:`wilcoxon_p`) and, for the
  feasibility indicator, the exact McNemar test (:func:`mcnemar_p`);
- **two-sample**, this run against a saved baseline (other seeds, or the same seeds after a change
  that alters every random stream, e.g. a new noise model): the Hodges-Lehmann shift with the
  exact Mann-Whitney confidence interval (:func:`hodges_lehmann`) for accuracy and latency, and
  the difference of two rates with Fisher's exact test (:func:`fisher_p`) for feasibility.

:func:`verdict` turns a two-sample comparison into the regression verdict: a metric has
*regressed* when it moved to the worse side by more than its tolerance **and** the move is beyond
seed noise (the interval of a shift excludes 0; the exact test of a rate rejects equality).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

INF = float("inf")


def median(x: Sequence[float]) -> float:
    """Median of ``x``; NaN for an empty sample."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.median(x)) if x.size else float("nan")


# -- exact null distributions -----------------------------------------------------------------------

@lru_cache(maxsize=256)
def _binom_half_cdf(n: int) -> tuple[float, ...]:
    """P(B <= k) for k = 0..n, B ~ Binomial(n, 1/2), exactly (integer counts, one division)."""
    total = 2**n
    acc, out = 0, []
    for k in range(n + 1):
        acc += math.comb(n, k)
        out.append(acc / total)
    return tuple(out)


@lru_cache(maxsize=256)
def _mann_whitney_cdf(n: int, m: int) -> tuple[float, ...]:
    """P(U <= u) for u = 0..n*m under H0 (no ties): the coefficients of the Gaussian binomial
    coefficient [n+m choose n]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), in exact integers."""
    size = n * m + 1
    c = [0] * size
    c[0] = 1
    for i in range(1, m + 1):
        a = n + i
        for j in range(size - 1, a - 1, -1):  # times (1 - q^a)
            c[j] -= c[j - a]
        for j in range(i, size):  # divided by (1 - q^i)
            c[j] += c[j - i]
    total = math.comb(n + m, n)
    acc, out = 0, []
    for v in c:
        acc += v
        out.append(acc / total)
    return tuple(out)


def _signed_rank_counts(ranks2: np.ndarray) -> list[int]:
    """The number of subsets of the (doubled, possibly mid-) ranks with each sum t = 0..sum(ranks2)
    (in units of half a rank), in exact integers: the permutation distribution of the Wilcoxon
    statistic T+ is these counts over 2**n."""
    total = int(ranks2.sum())
    # every count is at most 2**n: int64 holds them up to n = 62, Python integers beyond
    counts = np.zeros(total + 1, dtype=np.int64 if len(ranks2) <= 62 else object)
    counts[0] = 1
    top = 0
    for r in ranks2:
        r = int(r)
        shifted = counts[: top + 1].copy()  # the subsets that include rank r: their sums move up by r
        counts[r : r + top + 1] += shifted
        top += r
    return [int(c) for c in counts]


def _midranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_v = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return ranks


# -- paired comparisons -------------------------------------------------------------------------------

def sign_ci(d: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median of ``d`` (the sign test inverted):
    ``[d_(k), d_(n+1-k)]`` of the sorted sample with the largest k such that
    ``2 P(B <= k-1) <= 1 - confidence``, B ~ Binomial(n, 1/2); its coverage is at least
    ``confidence`` for any continuous distribution. ``(-inf, inf)`` when n is too small for any
    k (n < 6 at 95%)."""
    d = np.sort(np.asarray(d, dtype=np.float64))
    n = d.size
    alpha = 1.0 - confidence
    if n == 0:
        return (-INF, INF)
    cdf = _binom_half_cdf(n)
    k = 0
    while k + 1 <= n // 2 + 1 and 2.0 * cdf[k] <= alpha + 1e-12:  # P(B <= k) for the next k
        k += 1
    if k == 0:
        return (-INF, INF)
    return (float(d[k - 1]), float(d[n - k]))


def _tail_p(count: int, total: int) -> float:
    """``min(1, count / total)`` for integer counts, rounded once: in [0, 1] and exact to the last
    bit however small (no ``1 - cdf`` cancellation, no float sum of many probabilities)."""
    return 1.0 if count >= total else count / total  # int / int: the correctly rounded quotient


def wilcoxon_p(d: Sequence[float]) -> float:
    """Exact two-sided p-value of the Wilcoxon signed-rank test that the paired differences ``d``
    are symmetric about 0 (zeros dropped, Wilcoxon's convention; ties get midranks and the
    permutation distribution is computed over those ranks). 1.0 when no difference is non-zero.
    Both tails are counted in exact integers, so the p-value lies in [0, 1] and is exact at the
    extremes (n all-positive differences: 2 / 2**n)."""
    d = np.asarray(d, dtype=np.float64)
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    ranks2 = np.rint(2.0 * _midranks(np.abs(d))).astype(np.int64)
    t_plus = int(ranks2[d > 0].sum())
    counts = _signed_rank_counts(ranks2)
    lower = sum(counts[: t_plus + 1])  # subsets with T+ <= t_plus
    upper = sum(counts[t_plus:])  # T+ >= t_plus: a sum of its own, not 1 - P(T+ < t_plus)
    return _tail_p(2 * min(lower, upper), 2 ** d.size)


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar test of paired binary outcomes: ``b`` pairs where only the first is
    1, ``c`` where only the second is; the binomial test of b against Binomial(b + c, 1/2)."""
    n = int(b) + int(c)
    if n == 0:
        return 1.0
    return _tail_p(2 * sum(math.comb(n, k) for k in range(min(int(b), int(c)) + 1)), 2**n)


@dataclass(frozen=True)
class Paired:
    """A method against the reference on the same seeds: ``n`` pairs, the median of the per-seed
    differences (method - reference) with its confidence interval, wins/losses/ties and the
    exact test's two-sided p-value."""

    n: int
    median_diff: float
    ci_low: float
    ci_high: float
    wins: int
    losses: int
    ties: int
    p: float

    def to_dict(self) -> dict:
        return asdict(self)


def paired(x: Sequence[float], ref: Sequence[float], confidence: float = 0.95) -> Paired:
    """Paired comparison of ``x`` against ``ref`` (same seeds, same order): the median of
    ``x - ref`` with :func:`sign_ci` and the exact Wilcoxon signed-rank p-value."""
    d = np.asarray(x, dtype=np.float64) - np.asarray(ref, dtype=np.float64)
    lo, hi = sign_ci(d, confidence)
    return Paired(int(d.size), median(d), lo, hi, int((d > 0).sum()), int((d < 0).sum()), int((d == 0).sum()),
                  wilcoxon_p(d))


def paired_rates(x: Sequence[bool], ref: Sequence[bool]) -> Paired:
    """Paired comparison of two binary outcomes (feasibility): the difference of the rates, the
    discordant pairs as wins / losses and the exact McNemar p-value (no interval: the
    difference's exact test is the statement)."""
    x, ref = np.asarray(x, dtype=bool), np.asarray(ref, dtype=bool)
    wins, losses = int((x & ~ref).sum()), int((~x & ref).sum())
    n = int(x.size)
    diff = (float(x.mean()) - float(ref.mean())) if n else float("nan")
    return Paired(n, diff, float("nan"), float("nan"), wins, losses, n - wins - losses, mcnemar_p(wins, losses))


# -- two-sample comparisons ------------------------------------------------------------------------

def hodges_lehmann(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Shift of ``x`` over ``y`` (independent samples): the Hodges-Lehmann estimate (median of
    the n*m differences x_i - y_j) and the exact distribution-free confidence interval from the
    Mann-Whitney null distribution, ``[D_(k), D_(nm+1-k)]`` with the largest k such that
    ``2 P(U <= k-1) <= 1 - confidence`` (Bauer 1972). ``(nan, -inf, inf)`` for an empty sample;
    an unbounded interval when the samples are too small for any k."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        return (float("nan"), -INF, INF)
    diffs = np.sort((x[:, None] - y[None, :]).ravel())
    cdf = _mann_whitney_cdf(int(x.size), int(y.size))
    alpha = 1.0 - confidence
    k = 0
    while k + 1 <= diffs.size // 2 + 1 and 2.0 * cdf[k] <= alpha + 1e-12:
        k += 1
    est = float(np.median(diffs))
    if k == 0:
        return (est, -INF, INF)
    return (est, float(diffs[k - 1]), float(diffs[diffs.size - k]))


@lru_cache(maxsize=1024)
def fisher_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Exact two-sided p-value of Fisher's test that two independent rates k1/n1 and k2/n2 are
    equal: the hypergeometric probability of every table with the same margins that is at most as
    likely as the observed one (the convention of scipy's ``fisher_exact``)."""
    n, k = n1 + n2, k1 + k2
    if n1 == 0 or n2 == 0 or k == 0 or k == n:
        return 1.0
    # tables as integer counts (probability = count / comb(n, n1)); scipy's relative tie
    # tolerance 1e-7, applied exactly: count <= observed * (1 + 1e-7)
    counts = [math.comb(k, x) * math.comb(n - k, n1 - x) for x in range(max(0, n1 - (n - k)), min(k, n1) + 1)]
    observed = math.comb(k, k1) * math.comb(n - k, n1 - k1)
    tail = sum(c for c in counts if c * 10**7 <= observed * (10**7 + 1))
    return _tail_p(tail, math.comb(n, n1))


# -- the regression verdict ------------------------------------------------------------------------

REGRESSED, WORSE_IN_NOISE, IMPROVED, OK, NOT_CHECKED = "regressed", "worse, within noise", "improved", "ok", "n/a"


@dataclass(frozen=True)
class Check:
    """One metric of one method in one cell, this run against the baseline.

    ``move`` is the change (this run - baseline) in the metric's unit: a rate difference, with
    ``p`` the exact Fisher test's p-value and no interval, or a Hodges-Lehmann shift with its
    interval ``ci_low``/``ci_high`` and no p; ``beyond_tolerance``: the move is worse than
    ``-tolerance`` (or better than ``+tolerance``); ``beyond_noise``: the interval excludes 0, or
    p < 1 - confidence; ``status`` one of ``regressed``, ``worse, within noise``, ``improved``,
    ``ok`` and ``n/a`` (no runs to compare). ``against`` is the baseline's method the runs were
    compared with (``method`` unless mapped)."""

    method: str
    against: str
    cell: str
    metric: str
    baseline: float
    current: float
    n_baseline: int
    n_current: int
    move: float
    ci_low: float
    ci_high: float
    p: float
    tolerance: float
    beyond_tolerance: bool
    beyond_noise: bool
    status: str

    def to_dict(self) -> dict:
        return asdict(self)


def verdict(move: float, tolerance: float, higher_is_better: bool, beyond_noise: bool) -> tuple[bool, str]:
    """(beyond_tolerance, status) of a move: *regressed* when it is worse than the tolerance and
    beyond seed noise; *worse, within noise* when only the first holds; *improved* when it is
    better than the tolerance and beyond noise; else *ok*; *n/a* for a NaN move."""
    if math.isnan(move):
        return (False, NOT_CHECKED)
    m = move if higher_is_better else -move
    if m < -tolerance:
        return (True, REGRESSED if beyond_noise else WORSE_IN_NOISE)
    if m > tolerance:
        return (True, IMPROVED if beyond_noise else OK)
    return (False, OK)
