"""nascsim.Problem: NASC's problem as a black box for other optimizers.

Specification: a noise-free evaluation is the objective's own numpy reference (eq. 4 on expected
values) and the latency model's breakdown; a noisy one draws the engine's noise, in the engine's
order (a random search written with ``sample`` and ``evaluate`` chooses what the engine's random
search chooses, seed for seed); the budget counts noisy evaluations only; the record of a choice
is a valid sweep row. All seeds fixed: nothing here can flake.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from surrogate_fixtures import make_stand_in_surrogate

import nascsim
from nascsim.config import SearchConfig
from nascsim.core.engine import make_rng, noise_vector, run_random_search
from nascsim.hw.latency import breakdown
from nascsim.methods.common import latency_model_for, objective_of
from nascsim.core.objective import expected_objective
from nascsim.problem import BudgetExhausted, Problem, ProblemMethod, gpu_seconds_per_evaluation


@pytest.fixture(scope="module")
def sur():
    return make_stand_in_surrogate("fbnet", seed=0)


def problem(sur, **kw):
    kw.setdefault("budget", None)
    return Problem(threshold_ms=kw.pop("threshold_ms", 30.0), loss=kw.pop("loss", 0.2), surrogate=sur, **kw)


def test_module_docstrings_run():
    import nascsim.problem
    import nascsim.results

    for module in (nascsim.problem, nascsim.results, nascsim.space):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_noise_free_evaluation_is_the_objective_reference_for_random_pairs(sur):
    pb = problem(sur, eps_lat=0.7)
    config = SearchConfig(threshold_ms=30.0, loss=0.2, eps_lat=0.7)
    obj, lat = objective_of(config), latency_model_for(config, sur)
    archs, splits = pb.sample(np.random.default_rng(5), 40)
    ref = expected_objective(obj, sur, lat, archs, splits)
    for i in range(40):
        r = pb.evaluate(archs[i], int(splits[i]), noisy=False)
        parts = breakdown(lat, archs[i], int(splits[i]))
        assert r["f"] == r["f_expected"] == ref["f"][i]
        assert r["l_sc"] == ref["loss"][i] == sur.predict("lsc", archs[i:i + 1], splits[i:i + 1], np.zeros(1))[0]
        assert r["accuracy"] == sur.predict("acc", archs[i:i + 1], splits[i:i + 1], np.array([0.2]))[0]
        for key in ("T_ms", "T_head_ms", "T_comm_ms", "T_tail_ms", "payload_bits"):
            assert r[key] == parts[key], key
        assert r["feasible"] == (parts["T_ms"] <= 30.0)
        assert r["penalty"] == 0.7 * max(0.0, parts["T_ms"] - 30.0)
    frame = pb.evaluate(archs, splits, noisy=False)  # many at once: the same values
    assert frame["f"].to_list() == ref["f"].tolist()


def test_a_loss_set_other_than_the_surrogates_averages_its_per_p_losses(sur):
    pb = problem(sur, loss_set=(0.0, 0.3))
    a, k = pb.sample(np.random.default_rng(1))
    expect = np.mean([sur.predict("loss", a[None], np.array([k]), np.array([p]))[0] for p in (0.0, 0.3)])
    assert pb.evaluate(a, k, noisy=False)["l_sc"] == pytest.approx(expect, rel=1e-15)


@pytest.mark.parametrize("noise", ["shared", "independent", "none"])
def test_random_search_through_the_problem_chooses_what_the_engine_chooses(sur, noise):
    # sample(rng) then evaluate(rng=rng) draws the engine's numbers in the engine's order
    for seed in (0, 1, 2):
        pb = problem(sur, noise=noise, budget=60, seed=seed)  # pb.rng: make_rng(seed), as the engine's
        arch, split = pb.run(lambda: pb.sample(pb.rng))
        config = SearchConfig(threshold_ms=30.0, loss=0.2, noise=noise)
        res = run_random_search(objective_of(config), sur, latency_model_for(config, sur), make_rng(seed), budget=60,
                                n_ops=9, n_layers=22, noise=noise, minibatch=64)
        assert arch.tolist() + [split] == res.choice.tolist(), (noise, seed)


def test_a_noisy_evaluation_is_reproducible_by_seed_and_has_the_engines_noise_sd(sur):
    pb = problem(sur)
    _, sd_total, sd_shared, sd_own = noise_vector(pb.objective, sur, "shared", 64)
    assert sd_shared > 0 and sd_own > 0  # both parts present in the stand-in's noise model
    a, k = pb.sample(np.random.default_rng(3))
    exact = pb.evaluate(a, k, noisy=False)["f"]
    assert pb.evaluate(a, k, seed=11) == pb.evaluate(a, k, seed=11)
    assert pb.evaluate(a, k, seed=11)["f"] != pb.evaluate(a, k, seed=12)["f"]
    dev = np.array([pb.evaluate(a, k, seed=s)["f"] - exact for s in range(2000)])
    sd = math.hypot(sd_shared, sd_own)  # one sample on its own minibatch: b + e
    assert abs(dev.mean()) < 4 * sd / math.sqrt(2000)
    assert dev.std(ddof=1) == pytest.approx(sd, rel=0.08)
    # two samples on one minibatch share b: their difference has variance 2 sd_own^2
    diffs = []
    for s in range(1000):
        f = pb.evaluate([a, a], k, seed=s)["f"].to_numpy()
        diffs.append(f[0] - f[1])
    assert np.std(diffs, ddof=1) == pytest.approx(math.sqrt(2) * sd_own, rel=0.08)


def test_the_budget_counts_noisy_evaluations_in_steps_and_simulated_gpu_seconds(sur):
    pb = problem(sur, budget=5, gpu_s_per_evaluation=0.5)
    a, k = pb.sample(np.random.default_rng(0))
    pb.evaluate(a, k, noisy=False)
    pb.evaluate([a, a], k)
    assert (pb.budget.evaluations, pb.budget.expected_queries) == (2, 1)
    assert pb.budget.steps == 1.0 and pb.budget.gpu_s == 1.0 and pb.budget.remaining == 3
    with pytest.raises(BudgetExhausted, match="5 evaluations"):
        pb.evaluate([a] * 4, k)
    assert pb.budget.evaluations == 2  # a refused call costs nothing
    assert problem(sur, steps=40, lam=3, budget="nasc").budget.max_evaluations == 120


def test_simulated_gpu_seconds_come_from_the_surrogates_measured_evaluation_time(sur):
    from nascsim.surrogate import load_surrogate

    gpu = load_surrogate("fbnet-cifar10-drop50-12ep")  # a GPU run's record: evaluation seconds / rows
    card = gpu.card["supernet"]
    per_row = card["eval_s"] / card["rows"]  # one (arch, split, p) on n_images images
    n = gpu.doc["noise"]["n_images"]
    assert gpu_seconds_per_evaluation(gpu, 6, 64) == pytest.approx(per_row * 64 / n * 6)
    # the shipped pair comes from a CPU campaign: its noise set's seconds per 64-image evaluation
    shipped = nascsim.default_surrogates("fbnet")["dropout"]
    rec = shipped.card["supernet"]
    per_eval = rec["wall_s"]["noise_s"] / (rec["plan"]["noise_pairs"] * rec["plan"]["noise_batches"])
    assert rec["eval"]["noise_images"] == 64 and len(rec["eval"]["loss_set"]) == 6
    assert gpu_seconds_per_evaluation(shipped, 6, 64) == pytest.approx(per_eval)
    assert gpu_seconds_per_evaluation(shipped, 3, 128) == pytest.approx(per_eval * 2 / 2)
    pb = Problem(threshold_ms=30.0, loss=0.2, budget=10)
    assert pb.budget.seconds_per_evaluation == pytest.approx(per_eval)
    assert math.isnan(gpu_seconds_per_evaluation(sur, 6, 64))  # synthetic data: no timing


def test_the_record_of_a_choice_is_a_valid_sweep_row(sur):
    from nascsim.sweep.store import check_chunk, make_row, rows_frame

    pb = problem(sur, budget=30, seed=4)
    rng = np.random.default_rng(0)
    rec = pb.optimize(lambda: pb.sample(rng), method="random", seed=4)
    arch, split = pb.incumbent
    assert rec["arch_idx"] == arch.tolist() and rec["split"] == split and rec["evaluations"] == 30
    same = nascsim.search("random", 30.0, 0.2, 4, surrogate=sur, steps=1)  # a record of the same shape
    assert set(same) - {"dropout_distinguished"} <= set(rec)
    frame = rows_frame([make_row(SearchConfig.from_dict({k: rec[k] for k in SearchConfig.__dataclass_fields__}),
                                 rec, rec["wall_s"])])
    assert check_chunk(frame) is None
    assert frame["accuracy"][0] == pb.evaluate(arch, split, noisy=False)["accuracy"]


def test_an_optimizer_on_the_problem_runs_as_a_registered_method_through_search_and_sweep(sur):
    from nascsim.methods.registry import register_method, unregister_method

    register_method("problem-random", ProblemMethod(uniform_search), roles=("dropout",), replace=True)
    try:
        rec = nascsim.search("problem-random", 30.0, 0.2, 3, surrogate=sur, steps=20)
        assert rec["evaluations"] == 40 and rec["method"] == "problem-random"
        frame = nascsim.sweep(thresholds=[30], losses=[0, 0.2], methods=["nasc", "problem-random"], seeds=2,
                              steps=20, surrogate=sur, jobs=1)
        assert frame.height == 8
        res = nascsim.load(frame)
        assert res.compare(baseline="problem-random").height == 2
    finally:
        unregister_method("problem-random")


def uniform_search(problem: Problem, seed: int):
    """A user's optimizer on the problem (module level: sweep workers import it)."""
    rng = np.random.default_rng(seed)
    return problem.run(lambda: problem.sample(rng))


def test_bad_problem_input_names_the_value(sur):
    with pytest.raises(ValueError, match="alpha"):
        Problem(surrogate=sur, alpha=2.0)
    with pytest.raises(ValueError, match="threshold"):
        Problem(threshold_ms=-1.0, surrogate=sur)
    with pytest.raises(ValueError, match="budget"):
        Problem(surrogate=sur, budget=0)
    with pytest.raises(ValueError, match="split 23"):
        problem(sur).evaluate(["skip"] * 22, 23)
    with pytest.raises(ValueError, match="finite budget"):
        problem(sur).run(lambda: None)


def test_space_sample_draws_uniform_ops_as_the_engine_does():
    sp = nascsim.get_space("fbnet")
    a = sp.sample(np.random.default_rng(0), 5000)
    assert a.shape == (5000, 22) and set(np.unique(a)) == set(range(9))
    counts = np.bincount(a.ravel(), minlength=9) / a.size
    assert np.all(np.abs(counts - 1 / 9) < 0.01)
    u = np.random.default_rng(1).random(22)
    assert sp.sample(np.random.default_rng(1)).tolist() == np.floor(u * 9).astype(int).tolist()


def test_a_noisy_query_samples_one_evaluation_around_the_expectation(sur):
    archs = nascsim.get_space("fbnet").sample(np.random.default_rng(2), 400)
    exact = nascsim.query(archs, split=8, p=0.2, surrogate=sur)
    noisy = nascsim.query(archs, split=8, p=0.2, surrogate=sur, noisy=True, seed=7)
    assert noisy.equals(nascsim.query(archs, split=8, p=0.2, surrogate=sur, noisy=True, seed=7))
    assert noisy["T_ms"].to_list() == exact["T_ms"].to_list()
    for key in ("loss", "l_sc"):
        z = ((noisy[key] - exact[key]) / exact[f"{key}_sd"]).to_numpy()
        assert abs(z.mean()) < 4 / math.sqrt(400) and 0.85 < z.std() < 1.15, key
    with pytest.raises(ValueError, match="needs a surrogate"):
        nascsim.query(archs[0], split=8, surrogate=None, noisy=True, seed=1)


def test_query_devices_answers_for_every_device_pair_at_once(sur):
    arch = ["k3_e3"] * 10 + ["skip"] * 12
    frame = nascsim.query_devices(arch, split=6, p=0.2, surrogate=sur)
    devices = nascsim.load_tables().devices
    assert frame.height == len(devices) * (len(devices) - 1)
    for row in frame.iter_rows(named=True):
        one = nascsim.query(arch, split=6, p=0.2, head=row["head"], tail=row["tail"], surrogate=sur)
        assert row["T_ms"] == one["T_ms"] and row["acc"] == one["acc"]
    with pytest.raises(ValueError, match="heads="):
        nascsim.query_devices(arch, split=6, head="raspi4")
