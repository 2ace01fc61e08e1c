"""Speed of the search engine and what surrounds it (pytest-benchmark; figures in extra_info).

    python -m pytest benchmarks --benchmark-only -s

Ratios measured in one run are what ``compare.py`` gates (see baseline.json); absolute times are
recorded for the report, on whatever machine runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import speed

from nascsim.hw.latency import build_latency_model, latency_batch


@pytest.fixture(scope="module")
def surrogates():
    return speed.shipped()


def _record(benchmark, **info) -> None:
    benchmark.extra_info.update(info)
    print("\n" + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items()))


def test_engine_vs_numpy_reference_on_identical_work(benchmark, surrogates):
    """The numba engine against ``reference_asng_search`` (ASNG class, batch predict, latency
    reference) on the same objective, surrogate, noise and random stream."""
    out = benchmark.pedantic(speed.engine_vs_reference, args=(surrogates["dropout"],), rounds=1, iterations=1)
    _record(benchmark, engine_vs_reference=out["ratio"], reference_us_per_step=out["reference_s_per_step"] * 1e6,
            engine_us_per_step=out["engine_s_per_step"] * 1e6)
    assert out["ratio"] > 1


def test_asng_kernels_vs_the_numpy_asng(benchmark):
    """Sampling and update alone (λ = 2, 23 variables) on a trivial objective."""
    ref = speed.numpy_asng_step_s()
    fast = benchmark.pedantic(speed.numba_asng_step_s, rounds=1, iterations=1)
    _record(benchmark, asng_vs_numpy=ref / fast, numpy_asng_us_per_step=ref * 1e6, numba_asng_us_per_step=fast * 1e6)


@pytest.mark.parametrize("noise", ["shared-64", "independent-1000"])
def test_default_nasc_search(benchmark, surrogates, noise):
    """One NASC search of the paper's length (35,190 steps) with the shipped surrogate, through
    ``run_search``: the default noise model and the frozen engine's."""
    from nascsim.config import SearchConfig

    mode, mb = noise.split("-")
    cfg = SearchConfig(method="nasc", threshold_ms=30, loss=0.2, seed=0, noise=mode, minibatch=int(mb))
    out = benchmark.pedantic(speed.default_search_s, args=(surrogates, cfg), rounds=1, iterations=1)
    tag = noise.replace("-", "_")
    _record(benchmark, **{f"search_{tag}_cpu_ms": out["search_s"] * 1e3, f"search_{tag}_engine_wall_ms": out["engine_s"] * 1e3})


def test_search_with_a_deep_surrogate(benchmark, surrogates):
    """The same search with an l_SC model of 200 trees of depth 6 (fitted here): walked trees."""
    from nascsim.config import SearchConfig

    deep, n_trees = speed.deep_surrogate()
    sur = {"dropout": deep, "no_dropout": deep}
    cfg = SearchConfig(method="nasc", threshold_ms=30, loss=0.2, seed=0)
    out = benchmark.pedantic(speed.default_search_s, args=(sur, cfg, 3), rounds=1, iterations=1)
    _record(benchmark, deep_trees=n_trees, deep_search_cpu_ms=out["search_s"] * 1e3, deep_engine_wall_ms=out["engine_s"] * 1e3)


def test_latency_batch_evaluations_per_second(benchmark):
    model = build_latency_model("fbnet")
    rng = np.random.default_rng(0)
    archs = rng.integers(0, 9, (100_000, 22))
    splits = rng.integers(0, 23, 100_000)
    latency_batch(model, archs[:10], splits[:10])
    t = speed.best_of(lambda: latency_batch(model, archs, splits))
    benchmark.pedantic(latency_batch, args=(model, archs, splits), rounds=3, iterations=1)
    _record(benchmark, latency_evaluations_per_s=100_000 / t)


def test_surrogate_batch_prediction_vs_scikit_learn(benchmark):
    """Numba batch prediction (from (arch, split, p), features included) against scikit-learn's
    ``predict`` on the ready feature matrix, 20,000 rows, one thread each."""
    from surrogate_fixtures import fit_one_target
    from threadpoolctl import threadpool_limits

    from nascsim.surrogate.features import feature_matrix
    from nascsim.surrogate.predict import TARGET_LOSS, predict_batch

    fit = fit_one_target("fbnet", "loss", n_pairs=200, seed=0, max_iter=100)
    tables, columns, est, arrays = fit.tables, fit.columns, fit.est, fit.arrays
    rng = np.random.default_rng(1)
    n = 20_000
    a, k = rng.integers(0, 9, (n, 22)).astype(np.int64), rng.integers(0, 23, n).astype(np.int64)
    p = rng.choice([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], n)
    Xr = feature_matrix(tables, a, k, p)[:, columns]
    out = np.empty(n)
    predict_batch(arrays, TARGET_LOSS, a, k, p, out)
    np.testing.assert_allclose(out, est.predict(Xr), rtol=0, atol=1e-9)
    t_numba = speed.best_of(lambda: predict_batch(arrays, TARGET_LOSS, a, k, p, out))
    with threadpool_limits(limits=1, user_api="openmp"):
        t_sklearn = speed.best_of(lambda: est.predict(Xr))
    benchmark.pedantic(predict_batch, args=(arrays, TARGET_LOSS, a, k, p, out), rounds=3, iterations=1)
    _record(benchmark, predict_vs_sklearn=t_sklearn / t_numba, numba_predict_ms=t_numba * 1e3, sklearn_predict_ms=t_sklearn * 1e3)


FIRST_CALL = """
import json, sys, time
t0 = time.perf_counter()
from nascsim.config import SearchConfig
from nascsim.methods import run_search
from nascsim.surrogate import default_surrogates
sur = default_surrogates()
t1 = time.perf_counter()
rec = run_search(SearchConfig(steps=10), sur)
t2 = time.perf_counter()
print(json.dumps({"start_s": t1 - t0, "first_search_s": t2 - t1, "engine_s": rec["search_s"]}))
"""


def test_compile_once_then_a_warm_start(benchmark, tmp_path):
    """A fresh process with an empty numba cache (compiles), then one with the cache filled:
    time from interpreter start to the end of a first (10-step) search."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))

    def first_search():
        t = __import__("time").perf_counter()
        r = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, env=env, check=True)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        out["process_s"] = __import__("time").perf_counter() - t
        return out

    cold = first_search()
    warm = benchmark.pedantic(first_search, rounds=1, iterations=1)
    _record(benchmark, cold_process_s=cold["process_s"], cold_first_search_s=cold["first_search_s"],
            warm_process_s=warm["process_s"], warm_start_s=warm["start_s"], warm_first_search_s=warm["first_search_s"])
    assert warm["process_s"] < cold["process_s"]


def test_sweep_throughput_with_one_and_two_workers(benchmark, tmp_path, surrogates):
    """Wall time of a 192-run sweep (64 searches) at the paper's schedule (shipped surrogates) on
    1 and on 2 local workers, worker start-up included; their ratio is the 2-worker speed-up."""
    import time

    from nascsim.sweep.grid import Grid
    from nascsim.sweep.run import execute
    from nascsim.sweep.store import ResultStore, SweepSpec

    grid = Grid.build(threshold_ms="20:35:5", loss="0,0.3", method="nasc,hwnas,hwnas-dropout", seed=range(8))
    sets = {"fbnet": surrogates}
    walls = {}
    for jobs in (1, 2):
        store = ResultStore.create(tmp_path / f"jobs{jobs}", SweepSpec(grid, "bench", "shipped"))
        t = time.perf_counter()
        execute(list(grid.cells()), store, sets, jobs=jobs)
        walls[jobs] = time.perf_counter() - t
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    _record(benchmark, sweep_runs=len(grid), sweep_1_worker_s=walls[1], sweep_2_workers_s=walls[2], sweep_speedup=walls[1] / walls[2])


BASELINE = Path(__file__).with_name("baseline.json")
