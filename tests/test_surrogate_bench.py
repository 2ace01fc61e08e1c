"""Throughput of numba batch prediction against scikit-learn's ``predict`` on the same rows.

The numba side starts from (arch, split, p) and computes the features itself; scikit-learn gets
the ready feature matrix. The ratio (sklearn time / numba time, both measured in this one run) is
stored in the benchmark's ``extra_info`` and printed; nothing is asserted about time.

    .venv/bin/pytest tests/test_surrogate_bench.py --benchmark-only -s
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from nascsim.surrogate.export import assemble_arrays, export_trees
from nascsim.surrogate.evals import load_evaluations
from nascsim.surrogate.features import feature_columns, feature_matrix, feature_tables
from nascsim.surrogate.fit import FitOptions, fit_target, target_data
from nascsim.surrogate.predict import TARGET_LOSS, predict_batch
from surrogate_fixtures import synthetic_evaluations

N_ROWS = 20_000


@pytest.fixture(scope="module")
def models():
    frame, meta = synthetic_evaluations("fbnet", n_pairs=200, seed=0)
    ev = load_evaluations(frame, meta=meta, id="bench")
    tables = feature_tables(ev.space, ev.classes)
    columns = feature_columns(("split_op", "flops", "depth"))
    X, y, pairs = target_data(ev, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5), tables)["loss"]
    # shipped-default-sized model: ~100 trees of up to 16 leaves
    est, _ = fit_target(X, y, pairs, columns, FitOptions(grid=((16, 5),), max_iter=100, folds=2))
    e = export_trees(est, columns)
    arrays = assemble_arrays(tables, {"loss": e, "acc": e, "lsc": e}, {"p": [0.0], "loss": [0.01], "acc": [0.01], "lsc": 0.01})
    rng = np.random.default_rng(1)
    a = rng.integers(0, 9, (N_ROWS, 22)).astype(np.int64)
    k = rng.integers(0, 23, N_ROWS).astype(np.int64)
    p = rng.choice([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], N_ROWS)
    Xr = feature_matrix(tables, a, k, p)[:, columns]
    out = np.empty(N_ROWS)
    predict_batch(arrays, TARGET_LOSS, a, k, p, out)  # compile
    return est, arrays, a, k, p, Xr


def _best_of(f, reps=5) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


@pytest.mark.benchmark(group="surrogate-predict")
def test_numba_batch_prediction_throughput(benchmark, models):
    est, arrays, a, k, p, Xr = models
    out = np.empty(N_ROWS)
    benchmark(predict_batch, arrays, TARGET_LOSS, a, k, p, out)
    np.testing.assert_allclose(out, est.predict(Xr), rtol=0, atol=1e-9)
    t_numba = _best_of(lambda: predict_batch(arrays, TARGET_LOSS, a, k, p, out))
    t_sklearn = _best_of(lambda: est.predict(Xr))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        t_sklearn1 = _best_of(lambda: est.predict(Xr))
    # the search's case: a few rows per call (lambda = 2 samples per ASNG step)
    out2 = np.empty(2)
    t_numba2 = _best_of(lambda: [predict_batch(arrays, TARGET_LOSS, a[i:i + 2], k[i:i + 2], p[i:i + 2], out2) for i in range(0, 400, 2)]) / 200
    t_sklearn2 = _best_of(lambda: [est.predict(Xr[i:i + 2]) for i in range(0, 400, 2)]) / 200
    benchmark.extra_info.update(
        rows=N_ROWS, numba_s=t_numba, sklearn_s=t_sklearn, sklearn_1thread_s=t_sklearn1, sklearn_over_numba=t_sklearn / t_numba,
        numba_2rows_s=t_numba2, sklearn_2rows_s=t_sklearn2, sklearn_over_numba_2rows=t_sklearn2 / t_numba2,
    )
    print(f"\nsurrogate predict, {N_ROWS} rows, {len(est._predictors)} trees: numba {t_numba * 1e3:.2f} ms (1 thread), "
          f"sklearn {t_sklearn * 1e3:.2f} ms (all cores) / {t_sklearn1 * 1e3:.2f} ms (1 thread): ratio {t_sklearn / t_numba:.1f}x / {t_sklearn1 / t_numba:.1f}x; "
          f"2-row calls: numba {t_numba2 * 1e6:.1f} us, sklearn {t_sklearn2 * 1e6:.1f} us, ratio {t_sklearn2 / t_numba2:.0f}x")


@pytest.mark.benchmark(group="surrogate-predict")
def test_sklearn_batch_prediction_throughput(benchmark, models):
    est, arrays, a, k, p, Xr = models
    y = benchmark(est.predict, Xr)
    assert y.shape == (N_ROWS,)


def concentrating_samples(n: int, seed: int, n_ops: int = 9, start: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(archs, splits) as a search samples them: each layer takes its eventual op with a
    probability rising linearly from ``start`` (default 1/n_ops) to 0.995 over the n samples, else
    a uniform op."""
    rng = np.random.default_rng(seed)
    mode = rng.integers(0, n_ops, 22)
    mode_split = int(rng.integers(0, 23))
    conc = np.linspace(1 / n_ops if start is None else start, 0.995, n)[:, None]
    take = rng.random((n, 22)) < conc
    archs = np.where(take, mode[None, :], rng.integers(0, n_ops, (n, 22))).astype(np.int64)
    splits = np.where(rng.random(n) < conc[:, 0], mode_split, rng.integers(0, 23, n)).astype(np.int64)
    return archs, splits


@pytest.mark.benchmark(group="surrogate-cache")
@pytest.mark.parametrize("phase, start", [("whole-search", None), ("late-search", 0.97)])
def test_prediction_cache_saves_repeated_predictions_late_in_a_search(benchmark, models, phase, start):
    """The search engine's (arch, split) cache (nascsim._engine_kernels.cached_loss) on samples
    that concentrate like a converging θ: what it saves late in a search, and over a whole one."""
    from numba import njit

    from nascsim._engine_kernels import cached_loss
    from nascsim.engine import _cache
    from nascsim.objective import Objective
    from nascsim.surrogate.predict import TARGET_LSC

    @njit
    def cached_batch(archs, splits, obj, sur, loss_set, keys, vals, stats, out):
        for i in range(archs.shape[0]):
            out[i] = cached_loss(archs[i], splits[i], obj, sur, loss_set, keys, vals, stats)[0]

    _, arrays, *_ = models
    a, k = concentrating_samples(N_ROWS, seed=3, start=start)
    p = np.zeros(N_ROWS)
    loss_set = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    obj = Objective(30.0, loss_set=loss_set).vector(loss_set, 22)  # the l_SC model: one prediction
    loss_set = np.asarray(loss_set)
    plain, cached = np.empty(N_ROWS), np.empty(N_ROWS)
    predict_batch(arrays, TARGET_LSC, a, k, p, plain)
    cached_batch(a[:2], k[:2], obj, arrays, loss_set, *_cache(64, 23), np.zeros(2, np.int64), cached[:2])  # compile

    def run_cached():
        keys, vals = _cache(8192, 23)
        stats = np.zeros(2, dtype=np.int64)
        cached_batch(a, k, obj, arrays, loss_set, keys, vals, stats, cached)
        return stats

    stats = benchmark(run_cached)
    np.testing.assert_array_equal(cached, plain)
    hits, misses = int(stats[0]), int(stats[1])
    assert hits + misses == N_ROWS and hits > 0, (hits, misses)
    t_plain = _best_of(lambda: predict_batch(arrays, TARGET_LSC, a, k, p, plain))
    t_cached = _best_of(run_cached)
    benchmark.extra_info.update(hit_rate=hits / N_ROWS, plain_s=t_plain, cached_s=t_cached, saving=1 - t_cached / t_plain)
    print(f"\nprediction cache, {phase}, {N_ROWS} concentrating samples: hit rate {hits / N_ROWS:.2f}, "
          f"plain {t_plain * 1e3:.2f} ms, cached {t_cached * 1e3:.2f} ms ({100 * (1 - t_cached / t_plain):.0f}% saved)")
