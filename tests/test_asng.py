"""ASNG: numpy reference vs numba engine, convergence, ties, projection, Δ_max."""

import numpy as np
import pytest

from nascsim.asng import ASNG, init_state, ranking_utility, sample_into, update
from nascsim.engine import categories


def run_both(C, steps, lam, seed, losses_fn, Delta_max=np.inf):
    """Feed the same samples and losses to the reference and the numba kernels, step by step."""
    ref = ASNG(C, Delta_max=Delta_max)
    theta, s, scalars = init_state(C)
    params = np.array([1.5, 1.0, Delta_max])
    rng_ref, rng_nb = np.random.default_rng(seed), np.random.default_rng(seed)
    c_nb = np.empty((lam, len(C)), dtype=np.int64)
    worst = 0.0
    for t in range(steps):
        c = ref.sample(rng_ref, lam)
        sample_into(theta, C, rng_nb, c_nb)
        assert np.array_equal(c, c_nb), f"samples differ at step {t}"
        losses = losses_fn(c, t)
        ref.update(c, losses)
        update(theta, C, s, scalars, params, c_nb, losses)
        worst = max(
            worst,
            np.abs(ref.theta - theta).max(),
            np.abs(ref.s - s).max() if len(s) else 0.0,
            abs(ref.gamma - scalars[1]),
            abs(ref.Delta - scalars[0]) / max(1.0, abs(ref.Delta)),
        )
    return ref, theta, s, scalars, worst


def test_numba_engine_matches_the_numpy_reference_over_thousands_of_steps():
    C = categories(9, 22, search_split=True)
    rng = np.random.default_rng(7)
    weights = rng.normal(size=(23, 23))

    def losses(c, t):  # a fixed random linear objective plus noise, no ties
        return np.array([weights[np.arange(23), ci].sum() for ci in c]) + rng.normal(0, 0.5, len(c))

    ref, theta, s, scalars, worst = run_both(C, 3000, 2, 11, losses)
    assert worst < 1e-12
    assert ref.Delta == pytest.approx(scalars[0], rel=1e-12)


def test_reference_and_engine_agree_with_lambda_four_and_ties():
    C = np.array([3, 5, 2, 4, 6])

    def losses(c, t):  # integer losses: many ties
        return (c.sum(axis=1) % 3).astype(float)

    _, _, _, _, worst = run_both(C, 2000, 4, 3, losses)
    assert worst < 1e-12


@pytest.mark.parametrize("engine", ["reference", "numba"])
def test_categorical_one_max_converges_to_the_optimum(engine):
    D, K = 20, 4
    C = np.full(D, K)

    def losses(c):
        return -(c == K - 1).sum(axis=1).astype(float)

    rng = np.random.default_rng(0)
    if engine == "reference":
        asng = ASNG(C)
        for _ in range(1500):
            c = asng.sample(rng, 2)
            asng.update(c, losses(c))
        theta = asng.theta
    else:
        theta, s, scalars = init_state(C)
        params = np.array([1.5, 1.0, np.inf])
        c = np.empty((2, D), dtype=np.int64)
        for _ in range(1500):
            sample_into(theta, C, rng, c)
            update(theta, C, s, scalars, params, c, losses(c))
    theta_min = 1.0 / (D * (K - 1))
    assert np.all(np.argmax(theta, axis=1) == K - 1)
    assert theta[:, K - 1].mean() > 0.9  # most variables already at the projection's bound
    assert theta[:, K - 1].max() == pytest.approx(1.0 - (K - 1) * theta_min)


def test_equal_losses_leave_the_distribution_untouched():
    C = np.array([3, 3, 3])
    asng = ASNG(C)
    theta0 = asng.theta.copy()
    c = np.array([[0, 1, 2], [2, 1, 0]])
    asng.update(c, np.array([0.7, 0.7]))
    assert np.array_equal(asng.theta, theta0) and asng.Delta == 1.0 and asng.gamma == 0.0
    theta, s, scalars = init_state(C)
    assert not update(theta, C, s, scalars, np.array([1.5, 1.0, np.inf]), c, np.array([0.7, 0.7]))
    assert np.array_equal(theta, theta0)


def test_ranking_gives_plus_one_to_the_better_and_minus_one_to_the_worse():
    np.testing.assert_array_equal(ranking_utility(np.array([3.0, 1.0])), [-1.0, 1.0])
    np.testing.assert_array_equal(ranking_utility(np.array([2.0, 2.0])), [0.0, 0.0])
    u = ranking_utility(np.array([0.1, 0.5, 0.5, 0.9]))  # λ=4: μ=1; the middle tie shares 0
    np.testing.assert_array_equal(u, [1.0, 0.0, 0.0, -1.0])


def test_projection_keeps_theta_in_bounds_and_rows_normalised():
    C = np.array([9] * 22 + [23])
    asng = ASNG(C)
    rng = np.random.default_rng(5)
    for _ in range(400):
        c = asng.sample(rng, 2)
        asng.update(c, np.array([-(c[0] == 0).sum(), -(c[1] == 0).sum()], dtype=float) + rng.normal(0, 1e-3, 2))
    D_valid = len(C)
    for d, K in enumerate(C):
        row = asng.theta[d, :K]
        assert row.sum() == pytest.approx(1.0, abs=1e-12)
        assert row.min() >= 1.0 / (D_valid * (K - 1)) - 1e-12


def test_delta_max_caps_the_step_size_adaptation():
    C = np.full(10, 3)
    rng = np.random.default_rng(1)

    def losses(c, t):
        return -(c == 2).sum(axis=1) + rng.normal(0, 1e-6, len(c))

    capped, _, _, scalars, _ = run_both(C, 300, 2, 4, losses, Delta_max=1.2)
    assert max(capped.Delta, scalars[0]) <= 1.2
    free, _, _, _, _ = run_both(C, 300, 2, 4, losses)
    assert free.Delta != capped.Delta
