"""ASNG: numpy reference vs numba engine, convergence, ties, projection, Δ_max."""

import numpy as np
import pytest

from nascsim.core.asng import ASNG, init_state, ranking_utility, sample_into, update
from nascsim.core.engine import categories


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


def _column_run(C, steps, seed, losses_fn):
    """The engine's column form (λ = 2) and the dense numba update, fed the same samples."""
    from nascsim.core._asng_kernels import refresh_T, sample_T, theta_min_of, to_columns, update_lam2_T, update_ws, workspace, workspace_T
    from nascsim.core._rng_kernels import state_from_generator

    C = np.asarray(C, dtype=np.int64)
    n_block = int(np.argmax(C != C[0])) if np.any(C != C[0]) else len(C)
    theta, s, scalars = init_state(C)
    thetaT = to_columns(theta)
    cumT = np.zeros_like(thetaT)
    work_T = workspace_T(C)
    refresh_T(thetaT, C, cumT)
    ref_theta, ref_s, ref_scalars = init_state(C)
    params = np.array([1.5, 1.0, np.inf])
    rng_col, rng_ref = state_from_generator(np.random.default_rng(seed)), np.random.default_rng(seed)
    c = np.empty((2, len(C)), dtype=np.int64)
    c_ref = np.empty((2, len(C)), dtype=np.int64)
    tmin, work = theta_min_of(C), workspace(C, 2)
    moves = 0
    for t in range(steps):
        sample_T(cumT, C, n_block, rng_col, c, work_T)
        sample_into(ref_theta, C, rng_ref, c_ref)
        assert np.array_equal(c, c_ref), f"samples differ at step {t}"
        f = losses_fn(c, t)
        a = update_lam2_T(thetaT, cumT, C, n_block, s, scalars, params, tmin, c, f[0], f[1], work_T)
        b = update_ws(ref_theta, C, ref_s, ref_scalars, params, c_ref, f, work)
        assert a == b
        moves += a
        assert np.array_equal(thetaT[:, : len(C)].T, ref_theta), f"theta differs at step {t}"
        assert np.array_equal(s, ref_s) and np.array_equal(scalars, ref_scalars)
    return moves


@pytest.mark.parametrize("C", [categories(9, 22, True), categories(15, 22, False), np.array([4] * 6 + [7])])
def test_column_form_lambda_two_update_equals_the_dense_update_bit_for_bit(C):
    rng = np.random.default_rng(5)
    weights = rng.normal(size=(len(C), int(np.max(C))))

    def losses(c, t):  # a linear objective plus noise; every 50th step a tie
        if t % 50 == 0:
            return np.array([1.0, 1.0])
        return np.array([weights[np.arange(len(C)), ci].sum() for ci in c]) + rng.normal(0, 0.3, 2)

    moves = _column_run(C, 2500, 11, losses)
    assert 2000 < moves < 2500


def test_column_form_skips_identical_samples_and_concentrates_like_the_dense_update():
    C = np.array([3] * 8)

    def losses(c, t):  # one-max: θ concentrates, so identical samples become common
        return -(c == 2).sum(axis=1).astype(float)

    moves = _column_run(C, 3000, 2, losses)
    assert moves < 2900
