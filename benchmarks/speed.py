"""Measurements shared by the benchmark tests, the gate (compare.py) and the speed table of docs/performance.md
(speed_table.py). CPU time of this process (``time.process_time``), best of several rounds: on a
shared machine it is less disturbed by other processes than wall time.
"""

from __future__ import annotations

import time

import numpy as np

from nascsim.core.engine import categories, make_rng, reference_asng_search, run_asng_search
from nascsim.hw.latency import build_latency_model
from nascsim.methods import DEFAULT_STEPS
from nascsim.core.objective import Objective

OLD_NOISE = {"noise": "independent", "minibatch": 1000}  # the engine of 4968e2b observed this way


def best_of(f, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        f()
        best = min(best, time.process_time() - t)
    return best


def shipped():
    from nascsim.surrogate import default_surrogates

    return default_surrogates()


def trivial_losses(C: np.ndarray, seed: int = 0):
    """The ASNG-only rows' objective: a fixed random linear function of the categories plus noise
    (sd 0.3), which keeps θ as spread as a search on the shipped surrogate."""
    W = np.random.default_rng(seed).normal(size=(len(C), int(C.max()))) * 0.1
    return W


def numpy_asng_step_s(steps: int = 300) -> float:
    """nascsim.core.asng.ASNG (numpy) with the trivial objective: seconds per step."""
    from nascsim.core.asng import ASNG

    C = categories(9, 22, True)
    W = trivial_losses(C)
    rng = np.random.default_rng(0)
    idx = np.arange(len(C))

    def run():
        asng = ASNG(C)
        for _ in range(steps):
            c = asng.sample(rng, 2)
            asng.update(c, np.array([W[idx, ci].sum() for ci in c]) + 0.3 * rng.standard_normal(2))

    return best_of(run, 2) / steps


def numba_asng_step_s(steps: int = 35190) -> float:
    """The engine's sampling and λ = 2 update (column form) with the trivial objective: seconds
    per step."""
    from numba import njit

    from nascsim.core._asng_kernels import refresh_T, sample_T, theta_min_of, to_columns, update_lam2_T, workspace_T
    from nascsim.core._rng_kernels import standard_normal, state_from_generator
    from nascsim.core.asng import init_state

    @njit(error_model="numpy")
    def loop(thetaT, cumT, C, s, scalars, params, tmin, rng, steps, c, work_T, W):
        refresh_T(thetaT, C, cumT)
        for _ in range(steps):
            sample_T(cumT, C, 22, rng, c, work_T)
            f0 = 0.0
            f1 = 0.0
            for d in range(c.shape[1]):
                f0 += W[d, c[0, d]]
                f1 += W[d, c[1, d]]
            f0 += 0.3 * standard_normal(rng)
            f1 += 0.3 * standard_normal(rng)
            update_lam2_T(thetaT, cumT, C, 22, s, scalars, params, tmin, c, f0, f1, work_T)

    C = categories(9, 22, True)
    W = trivial_losses(C)
    params = np.array([1.5, 1.0, np.inf])

    def run(n=steps):
        theta, s, scalars = init_state(C)
        thetaT = to_columns(theta)
        loop(thetaT, np.zeros_like(thetaT), C, s, scalars, params, theta_min_of(C), state_from_generator(make_rng(0)), n,
             np.empty((2, len(C)), dtype=np.int64), workspace_T(C), W)

    run(10)
    return best_of(run, 3) / steps


def engine_vs_reference(surrogate, steps_ref: int = 300, steps_engine: int = 35190) -> dict:
    """The numba engine and the numpy reference (``reference_asng_search``: ASNG class, the
    surrogate's batch predict, the latency reference) on identical work: the same objective,
    surrogate, noise model and random stream; per-step seconds of each and their ratio."""
    lat = build_latency_model("fbnet", classes=surrogate.classes)
    obj = Objective(30.0)
    run_asng_search(obj, surrogate, lat, make_rng(0), steps=10, n_ops=9, **OLD_NOISE)
    t_ref = best_of(lambda: reference_asng_search(obj, surrogate, lat, make_rng(0), steps=steps_ref, n_ops=9, **OLD_NOISE), 1) / steps_ref
    t_eng = best_of(lambda: run_asng_search(obj, surrogate, lat, make_rng(0), steps=steps_engine, n_ops=9, **OLD_NOISE), 3) / steps_engine
    return {"reference_s_per_step": t_ref, "engine_s_per_step": t_eng, "ratio": t_ref / t_eng}


def default_search_s(surrogates, config=None, rounds: int = 5) -> dict:
    """One NASC search of the paper's length through ``run_search`` (record included): CPU
    seconds of this process (best of ``rounds``) and the engine's own wall time (best)."""
    from nascsim.config import SearchConfig
    from nascsim.methods import run_search

    cfg = config or SearchConfig(method="nasc", threshold_ms=30, loss=0.2, seed=0)
    run_search(cfg.with_(steps=10), surrogates)
    recs = []
    t = best_of(lambda: recs.append(run_search(cfg, surrogates)), rounds)
    assert recs[-1]["steps"] == DEFAULT_STEPS
    return {"search_s": t, "engine_s": min(r["search_s"] for r in recs), "steps": DEFAULT_STEPS}


def deep_surrogate(n_trees: int = 200, depth: int = 6, seed: int = 0):
    """A surrogate whose l_SC model has ``n_trees`` trees of depth ``depth`` (fitted here on the
    synthetic evaluations of the tests; loss and accuracy from the stand-in)."""
    from surrogate_fixtures import make_stand_in_surrogate, synthetic_evaluations
    from sklearn.ensemble import HistGradientBoostingRegressor

    from nascsim.surrogate.evals import load_evaluations
    from nascsim.surrogate.export import export_trees
    from nascsim.surrogate.features import CATEGORICAL, feature_columns, feature_tables
    from nascsim.surrogate.fit import target_data
    from nascsim.surrogate.model import Surrogate

    frame, meta = synthetic_evaluations("fbnet", n_pairs=1500, seed=seed)
    ev = load_evaluations(frame, meta=meta, id="deep")
    columns = feature_columns(("split_op", "flops", "depth"))
    X, y, _ = target_data(ev, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5), feature_tables(ev.space, ev.classes))["lsc"]
    est = HistGradientBoostingRegressor(max_iter=n_trees, max_depth=depth, max_leaf_nodes=2**depth, min_samples_leaf=5,
                                        learning_rate=0.05, early_stopping=False, categorical_features=np.isin(columns, CATEGORICAL),
                                        random_state=seed).fit(X[:, columns], y)
    base = make_stand_in_surrogate("fbnet")
    doc = dict(base.doc, id=f"synthetic-deep-{n_trees}x{depth}", targets={**base.doc["targets"], "lsc": export_trees(est, columns)})
    return Surrogate(doc), len(est._predictors)
