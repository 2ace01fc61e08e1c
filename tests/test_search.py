"""The search methods on a stand-in surrogate (tests/surrogate_fixtures.py)."""

import numpy as np
import pytest
from surrogate_fixtures import make_stand_in_surrogate

from nascsim.config import SearchConfig
from nascsim.core.engine import make_rng, reference_asng_search, run_asng_search
from nascsim.hw.latency import build_latency_model
from nascsim.methods import run_search
from nascsim.core.objective import LAT_DEVICE, LAT_SPLIT, LOSS_P0, LOSS_SC, Objective, expected_objective
from nascsim.space import get_space


@pytest.fixture(scope="module")
def fbnet():
    s = make_stand_in_surrogate("fbnet", seed=0)
    return {"dropout": s, "no_dropout": s}


@pytest.fixture(scope="module")
def extended():
    s = make_stand_in_surrogate("extended", seed=0)
    return {"dropout": s, "no_dropout": s}


@pytest.mark.parametrize("noise", ["independent", "shared", "none"])
@pytest.mark.parametrize("objective", [
    Objective(30.0, loss_mode=LOSS_SC, latency_mode=LAT_SPLIT),
    Objective(30.0, loss_mode=LOSS_P0, latency_mode=LAT_DEVICE),
    Objective(25.0, eps_lat=0.5, loss_set=(0.0, 0.25, 0.5), loss_mode=LOSS_SC, latency_mode=LAT_SPLIT),
])
def test_numba_search_follows_the_numpy_reference_step_for_step(fbnet, objective, noise):
    sur = fbnet["dropout"]
    lat = build_latency_model("fbnet", classes=sur.classes)
    search_split = objective.latency_mode == LAT_SPLIT
    kw = dict(steps=400, n_ops=9, search_split=search_split, fixed_split=-1 if search_split else 22, noise=noise, minibatch=64)
    fast = run_asng_search(objective, sur, lat, make_rng(5), **kw)
    ref = reference_asng_search(objective, sur, lat, make_rng(5), **kw)
    assert np.abs(fast.theta - ref.theta).max() < 1e-12
    assert fast.Delta == pytest.approx(ref.Delta, rel=1e-12)


def test_engine_hands_the_generator_back_advanced_as_numpy_would(fbnet):
    sur = fbnet["dropout"]
    lat = build_latency_model("fbnet", classes=sur.classes)
    kw = dict(steps=300, n_ops=9, noise="shared")
    rng_fast, rng_ref = make_rng(8), make_rng(8)
    run_asng_search(Objective(30.0), sur, lat, rng_fast, **kw)
    reference_asng_search(Objective(30.0), sur, lat, rng_ref, **kw)
    assert rng_fast.random() == rng_ref.random()


@pytest.mark.parametrize("method", ["nasc", "hwnas", "hwnas-dropout", "random"])
@pytest.mark.parametrize("space", ["fbnet", "extended"])
def test_every_method_runs_in_both_spaces_and_reports_a_full_record(method, space, fbnet, extended):
    sur = fbnet if space == "fbnet" else extended
    rec = run_search(SearchConfig(method=method, space=space, threshold_ms=30, loss=0.2, seed=1, steps=1500), sur)
    sp = get_space(space)
    assert len(rec["arch"]) == 22 and set(rec["arch"]) <= set(sp.op_names)
    assert 0 <= rec["split"] <= 22
    assert rec["T_ms"] == pytest.approx(rec["T_head_ms"] + rec["T_comm_ms"] + rec["T_tail_ms"])
    assert rec["feasible"] == (rec["T_ms"] <= 30)
    assert 0.0 <= rec["accuracy"] <= 1.0
    assert rec["surrogate"] == sur["dropout"].id and rec["seed"] == 1 and rec["method"] == method
    assert rec["source"] == ("measured" if space == "fbnet" else "flops")


def test_same_seed_same_result_and_other_seeds_explore_differently(fbnet):
    cfg = SearchConfig(method="nasc", threshold_ms=30, seed=3, steps=2000)
    a, b = run_search(cfg, fbnet), run_search(cfg, fbnet)
    assert (a["arch"], a["split"]) == (b["arch"], b["split"])
    others = {tuple(run_search(cfg.with_(seed=s), fbnet)["arch"]) for s in range(4, 8)}
    assert len(others) > 1


def test_nasc_meets_a_reachable_threshold(fbnet):
    for seed in range(3):
        rec = run_search(SearchConfig(method="nasc", threshold_ms=30, seed=seed, steps=6000), fbnet)
        assert rec["feasible"], rec


def test_hwnas_variants_share_the_search_and_say_when_data_cannot_tell_them_apart(fbnet):
    cfg = SearchConfig(method="hwnas", threshold_ms=30, loss=0.3, seed=2, steps=1500)
    a = run_search(cfg, fbnet)
    b = run_search(cfg.with_(method="hwnas-dropout"), fbnet)
    assert a["arch"] == b["arch"]
    assert a["dropout_distinguished"] is False and b["dropout_distinguished"] is False


def test_hwnas_dropout_is_judged_with_the_dropout_supernets_surrogate():
    s_drop = make_stand_in_surrogate("fbnet", seed=0)
    s_plain = make_stand_in_surrogate("fbnet", seed=0, split_dropout_train=0.0)
    sur = {"dropout": s_drop, "no_dropout": s_plain}
    cfg = SearchConfig(method="hwnas", threshold_ms=30, loss=0.5, seed=2, steps=1500)
    a, b = run_search(cfg, sur), run_search(cfg.with_(method="hwnas-dropout"), sur)
    assert a["arch"] == b["arch"]
    assert a["surrogate"] == s_plain.id and b["surrogate"] == s_drop.id
    assert a["dropout_distinguished"] and b["dropout_distinguished"]


def test_hwnas_split_without_noise_minimises_the_expected_objective(fbnet):
    cfg = SearchConfig(method="hwnas", threshold_ms=30, seed=0, steps=1000, noise="none")
    rec = run_search(cfg, fbnet)
    sur = fbnet["no_dropout"]
    lat = build_latency_model("fbnet", classes=sur.classes)
    arch = np.array(rec["arch_idx"])
    f = expected_objective(Objective(30.0), sur, lat, np.repeat(arch[None], 23, 0), np.arange(23))["f"]
    assert rec["split"] == int(np.argmin(f))


def test_hwnas_split_is_judged_on_one_noisy_minibatch_with_the_search_surrogate(fbnet):
    from nascsim.core.engine import make_rng
    from nascsim.methods.hwnas import SPLIT_STREAM, choose_split

    cfg = SearchConfig(method="hwnas-dropout", threshold_ms=30, seed=3, steps=1000)
    rec = run_search(cfg, fbnet)
    sur = fbnet["no_dropout"]
    lat = build_latency_model("fbnet", classes=sur.classes)
    arch = np.array(rec["arch_idx"])
    again = choose_split(Objective(30.0), sur, lat, arch, 23, noise="shared", minibatch=64, rng=make_rng(3, SPLIT_STREAM))
    assert rec["split"] == again
    # the choice sees the noise: on one-image minibatches (sd x sqrt(1000)) it varies with the seed
    splits = {choose_split(Objective(30.0), sur, lat, arch, 23, noise="shared", minibatch=1, rng=make_rng(s, SPLIT_STREAM))
              for s in range(12)}
    assert len(splits) > 1


def test_hwnas_variants_get_the_same_split_for_every_seed():
    s_drop = make_stand_in_surrogate("fbnet", seed=0)
    s_plain = make_stand_in_surrogate("fbnet", seed=0, split_dropout_train=0.0)
    sur = {"dropout": s_drop, "no_dropout": s_plain}
    for seed in range(6):
        cfg = SearchConfig(method="hwnas", threshold_ms=30, loss=0.3, seed=seed, steps=600)
        a, b = run_search(cfg, sur), run_search(cfg.with_(method="hwnas-dropout"), sur)
        assert (a["arch"], a["split"]) == (b["arch"], b["split"])
        assert a["search_surrogate"] == b["search_surrogate"] == s_plain.id
        assert (a["surrogate"], b["surrogate"]) == (s_plain.id, s_drop.id)


@pytest.mark.parametrize("method", ["nasc", "hwnas", "random"])
def test_every_asng_record_says_how_concentrated_theta_ended(fbnet, method):
    rec = run_search(SearchConfig(method=method, threshold_ms=30, seed=1, steps=3000), fbnet)
    fields = ("theta_op_confidence", "theta_split_prob", "theta_min_confidence", "theta_decided_share")
    if method == "random":
        assert all(rec[f] is None for f in fields)
        return
    assert 1 / 9 <= rec["theta_min_confidence"] <= rec["theta_op_confidence"] <= 1.0
    assert 0.0 <= rec["theta_decided_share"] <= 1.0
    if method == "nasc":
        assert 1 / 23 <= rec["theta_split_prob"] <= 1.0
    else:
        assert rec["theta_split_prob"] is None  # the split is not a variable of θ


def test_noise_modes_are_ablations_of_one_search(fbnet):
    base = SearchConfig(method="nasc", threshold_ms=30, seed=2, steps=3000)
    recs = {mode: run_search(base.with_(noise=mode), fbnet) for mode in ("shared", "independent", "none")}
    assert recs["shared"]["arch"] != recs["independent"]["arch"] or recs["shared"]["split"] != recs["independent"]["split"] \
        or recs["shared"]["Delta"] != recs["independent"]["Delta"]
    # without noise the seed only drives the sampling; a larger minibatch means less noise
    assert run_search(base.with_(noise="none", minibatch=8), fbnet)["Delta"] == recs["none"]["Delta"]
    assert run_search(base.with_(minibatch=1000), fbnet)["Delta"] != recs["shared"]["Delta"]


def test_no_split_search_keeps_the_given_split(fbnet):
    rec = run_search(SearchConfig(method="nasc", split_search=False, fixed_split=14, seed=0, steps=800), fbnet)
    assert rec["split"] == 14
    with pytest.raises(ValueError, match="needs a fixed split"):
        run_search(SearchConfig(method="nasc", split_search=False), fbnet)


@pytest.mark.parametrize("changes, message", [
    ({"method": "darts"}, "unknown method 'darts'"),
    ({"threshold_ms": 0}, r"threshold_ms must be a number in \(0, "),
    ({"loss": 1.0}, r"loss must be a number in \[0, 1\)"),
    ({"lam": 1}, r"lam must be an integer in \[2, "),
    ({"head": "tpu"}, "unknown device 'tpu'"),
    ({"space": "extended"}, "fitted on the fbnet space"),
    ({"seed": -1}, r"seed must be an integer in \[0, "),
    ({"noise": "loud"}, "unknown noise 'loud'"),
    ({"minibatch": 0}, r"minibatch must be an integer in \[1, 25000\]"),
])
def test_bad_search_options_are_clear_errors(fbnet, changes, message):
    with pytest.raises(ValueError, match=message):
        run_search(SearchConfig(steps=10).with_(**changes), fbnet)


def test_measured_latency_cannot_search_bottleneck_ops(extended):
    with pytest.raises(ValueError, match="no measured latency"):
        run_search(SearchConfig(space="extended", source="measured", steps=200, seed=0), extended)


def test_one_search_judged_at_several_loss_rates_equals_separate_searches(fbnet):
    from nascsim.methods import run_search_losses

    cfg = SearchConfig(method="hwnas-dropout", threshold_ms=30, seed=4, steps=800)
    many = run_search_losses(cfg, [0.0, 0.2, 0.5], fbnet)
    for rec in many:
        alone = run_search(cfg.with_(loss=rec["loss"]), fbnet)
        assert (rec["arch"], rec["split"], rec["accuracy"]) == (alone["arch"], alone["split"], alone["accuracy"])


def test_no_architecture_and_split_is_faster_than_the_latency_floor():
    from nascsim.hw.latency import latency_batch
    from nascsim.methods.common import latency_floor

    sur = make_stand_in_surrogate("fbnet", seed=0)
    sets = {"dropout": sur, "no_dropout": sur}
    lat = build_latency_model("fbnet", classes=sur.classes)
    rng = np.random.default_rng(0)
    archs = rng.integers(0, 9, (50_000, 22))
    archs[:20_000] = np.where(rng.random((20_000, 22)) < 0.9, 8, archs[:20_000])  # near the all-skip corner
    splits = rng.integers(0, 23, 50_000)
    T = latency_batch(lat, archs, splits).sum(axis=1)
    floor = latency_floor(SearchConfig(method="nasc"), sets)
    assert T.min() > floor and T.min() - floor < 0.5  # a lower bound, and a tight one
    device = np.array([lat.consts[0] + lat.layer_head[np.arange(22), a].sum() + lat.consts[1] for a in archs])
    assert min(device.min(), T.min()) > latency_floor(SearchConfig(method="hwnas"), sets)


def test_runs_that_cannot_change_the_search_share_its_key(fbnet):
    from nascsim.methods import shared_search
    from nascsim.methods.common import latency_floor

    base = SearchConfig(method="nasc", threshold_ms=30, loss=0.3, seed=4)
    assert shared_search(base, fbnet) == base.with_(loss=0.0)
    assert shared_search(base.with_(method="hwnas-dropout"), fbnet) == shared_search(base.with_(method="hwnas"), fbnet)
    floor = latency_floor(base, fbnet)
    low = [shared_search(base.with_(threshold_ms=t), fbnet) for t in (1.0, 10.0, floor * 0.999)]
    assert all(k.threshold_ms == floor for k in low) and len(set(low)) == 1
    assert shared_search(base.with_(threshold_ms=floor + 0.1), fbnet).threshold_ms == floor + 0.1
    assert shared_search(base.with_(method="random", threshold_ms=5.0), fbnet).threshold_ms == 5.0


def test_thresholds_below_the_floor_give_the_same_search_as_each_other(fbnet):
    recs = [run_search(SearchConfig(method="nasc", threshold_ms=t, seed=3, steps=3000), fbnet) for t in (5.0, 12.0)]
    assert (recs[0]["arch"], recs[0]["split"], recs[0]["Delta"]) == (recs[1]["arch"], recs[1]["split"], recs[1]["Delta"])
    assert recs[0]["threshold_ms"] == 5.0 and recs[1]["threshold_ms"] == 12.0 and not recs[0]["feasible"]


def test_early_exit_and_identical_samples_change_nothing_but_the_work(fbnet):
    """With a trace every step reads every tree; without one most steps stop early: same θ."""
    sur = fbnet["dropout"]
    lat = build_latency_model("fbnet", classes=sur.classes)
    for noise in ("shared", "none"):
        quick = run_asng_search(Objective(25.0), sur, lat, make_rng(6), steps=5000, n_ops=9, noise=noise)
        full = run_asng_search(Objective(25.0), sur, lat, make_rng(6), steps=5000, n_ops=9, noise=noise, trace=True)
        np.testing.assert_array_equal(quick.theta, full.theta)
        assert quick.Delta == full.Delta and quick.early_exits > 1000 and full.early_exits == 0


def test_the_compile_notice_names_the_one_time_cost(monkeypatch, tmp_path):
    import subprocess
    import sys

    from click.testing import CliRunner

    import nascsim.core.engine
    from nascsim.cli.search_cmd import compile_notice

    fresh = subprocess.run([sys.executable, "-c", "from nascsim.core.engine import kernels_ready; print(kernels_ready())"],
                           capture_output=True, text=True, env={**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path)})
    assert fresh.stdout.strip() == "False"
    monkeypatch.setattr(nascsim.core.engine, "kernels_ready", lambda lam=2: False)
    import click

    @click.command()
    def probe():
        compile_notice(2)

    out = CliRunner().invoke(probe)
    assert "compiling the search kernels (once" in out.output
