"""Speed of the search and the latency model (pytest-benchmark; ratios measured in one run).

    pytest tests/test_bench_search.py --benchmark-only -s
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from surrogate_fixtures import make_stand_in_surrogate

from nascsim.config import SearchConfig
from nascsim.engine import make_rng, reference_asng_search, run_asng_search
from nascsim.latency import build_latency_model, latency_batch
from nascsim.methods import DEFAULT_STEPS, run_search
from nascsim.objective import Objective


def shipped_or_stand_in():
    try:
        from nascsim.surrogate import default_surrogates

        return default_surrogates(), "shipped default"
    except FileNotFoundError:
        s = make_stand_in_surrogate("fbnet", seed=0)
        return {"dropout": s, "no_dropout": s}, "test stand-in"


def test_bench_latency_batch_evaluations_per_second(benchmark):
    model = build_latency_model("fbnet")
    rng = np.random.default_rng(0)
    archs = rng.integers(0, 9, (100_000, 22))
    splits = rng.integers(0, 23, 100_000)
    latency_batch(model, archs[:10], splits[:10])  # compile / load from cache
    out = benchmark(latency_batch, model, archs, splits)
    assert out.shape == (100_000, 3)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["evaluations_per_s"] = 100_000 / benchmark.stats.stats.mean


def test_bench_numba_engine_is_30x_the_numpy_reference(benchmark):
    sur, which = shipped_or_stand_in()
    s = sur["dropout"]
    lat = build_latency_model("fbnet", classes=s.classes)
    obj = Objective(30.0)
    steps = 300
    kw = dict(steps=steps, n_ops=9, cache_slots=0)
    run_asng_search(obj, s, lat, make_rng(0), **kw)  # compile / load from cache
    t0 = time.perf_counter()
    reference_asng_search(obj, s, lat, make_rng(0), steps=steps, n_ops=9)
    t_ref = time.perf_counter() - t0
    t_numba = []
    for _ in range(5):
        t0 = time.perf_counter()
        run_asng_search(obj, s, lat, make_rng(0), **kw)
        t_numba.append(time.perf_counter() - t0)
    ratio = t_ref / min(t_numba)
    benchmark.pedantic(run_asng_search, args=(obj, s, lat, make_rng(0)), kwargs=kw, rounds=20, iterations=1)
    benchmark.extra_info.update({"surrogate": which, "reference_steps_per_s": steps / t_ref,
                                 "numba_steps_per_s": steps / min(t_numba), "speedup": ratio})
    print(f"\nnumba engine vs numpy reference, {steps} steps, {which}: {ratio:.0f}x")
    assert ratio >= 30


def test_bench_full_default_length_nasc_search(benchmark):
    sur, which = shipped_or_stand_in()
    cfg = SearchConfig(method="nasc", threshold_ms=30, loss=0.2, seed=0)
    run_search(cfg.with_(steps=10), sur)  # compile / load from cache
    rec = benchmark.pedantic(run_search, args=(cfg, sur), rounds=5, iterations=1)
    assert rec["steps"] == DEFAULT_STEPS
    benchmark.extra_info.update({"surrogate": which, "steps": DEFAULT_STEPS, "cache_hit_rate": rec["cache_hit_rate"],
                                 "search_s": rec["search_s"]})
    print(f"\nfull NASC search ({DEFAULT_STEPS} steps, {which}): engine {rec['search_s'] * 1e3:.1f} ms of {rec['wall_s'] * 1e3:.1f} ms")


FIRST_CALL = """
import json, sys, time
sys.path.insert(0, {tests!r})
t0 = time.perf_counter()
from nascsim.config import SearchConfig
from nascsim.methods import run_search
from test_bench_search import shipped_or_stand_in
sur, which = shipped_or_stand_in()
t1 = time.perf_counter()
run_search(SearchConfig(steps=10), sur)
t2 = time.perf_counter()
run_search(SearchConfig(steps=10, seed=1), sur)
t3 = time.perf_counter()
print(json.dumps({{"first_call_s": t2 - t1, "second_call_s": t3 - t2}}))
"""


def test_bench_compile_time_is_paid_once_and_cached(tmp_path, benchmark):
    """First-call time in a fresh process with an empty numba cache, then again with it filled."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    code = FIRST_CALL.format(tests=str(Path(__file__).parent))

    def first_calls():
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        return json.loads(r.stdout.strip().splitlines()[-1])

    cold = first_calls()
    warm = benchmark.pedantic(first_calls, rounds=1, iterations=1)
    benchmark.extra_info.update({"compile_first_call_s": cold["first_call_s"], "cached_first_call_s": warm["first_call_s"]})
    print(f"\nfirst search call: {cold['first_call_s']:.2f} s with an empty numba cache, {warm['first_call_s']:.3f} s from the cache")
    assert warm["first_call_s"] < cold["first_call_s"]
