"""The benchmark's exact tests give p-values in [0, 1], exact at the extremes: tails are counted in
integers and divided once (never ``1 - cdf``, which printed -8.9e-16 for a sample whose every
difference had one sign)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nascsim.bench import stats

# differences with ties and zeros (midranks, dropped zeros) and wide magnitudes
diffs = st.lists(st.one_of(st.integers(-5, 5).map(float), st.floats(-1e6, 1e6, allow_nan=False)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(diffs)
def test_the_wilcoxon_p_value_lies_in_0_1_and_is_symmetric_in_the_sign(d):
    p = stats.wilcoxon_p(d)
    assert 0.0 <= p <= 1.0
    assert stats.wilcoxon_p([-x for x in d]) == p


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.integers(0, 200))
def test_the_mcnemar_p_value_lies_in_0_1(b, c):
    assert 0.0 <= stats.mcnemar_p(b, c) <= 1.0


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 80), st.integers(1, 80), st.data())
def test_the_fisher_p_value_lies_in_0_1(n1, n2, data):
    k1, k2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    assert 0.0 <= stats.fisher_p(k1, n1, k2, n2) <= 1.0


def test_every_difference_of_one_sign_gives_the_exact_smallest_wilcoxon_p_value():
    """n differences, all positive (or all negative): T+ is at an end of its range, p = 2 / 2**n,
    exactly, past the 62 differences that fit int64 counts too."""
    for n in (1, 5, 20, 60, 62, 63, 100):
        d = np.arange(1.0, n + 1)
        want = min(1.0, 2.0 / 2**n)
        assert stats.wilcoxon_p(d) == want and stats.wilcoxon_p(-d) == want, n


def test_the_wilcoxon_p_value_is_the_exactly_rounded_permutation_probability():
    """Against brute force over all 2**n sign patterns (n = 12, with ties)."""
    d = np.array([1.0, -2.0, 3.0, 3.0, -4.0, 5.0, 6.0, -6.0, 7.0, 8.0, 9.0, -10.0])
    ranks2 = np.rint(2 * stats._midranks(np.abs(d))).astype(int)
    t_plus = int(ranks2[d > 0].sum())
    n = len(d)
    sums = [sum(int(r) for i, r in enumerate(ranks2) if mask >> i & 1) for mask in range(2**n)]
    lower, upper = sum(s <= t_plus for s in sums), sum(s >= t_plus for s in sums)
    assert stats.wilcoxon_p(d) == float(min(Fraction(1), Fraction(2 * min(lower, upper), 2**n)))


def test_extreme_mcnemar_and_fisher_p_values_are_exact():
    assert stats.mcnemar_p(0, 70) == 2.0 / 2**70
    assert stats.mcnemar_p(35, 35) == 1.0
    # all 30 feasible against none of 30: the two most extreme tables of the margins
    assert stats.fisher_p(30, 30, 0, 30) == 2 / math.comb(60, 30)
    assert stats.fisher_p(0, 30, 30, 30) == 2 / math.comb(60, 30)
