"""Packet loss is monotone (issue 11.3): more loss cannot, in expectation, lower the loss or raise
the accuracy. The loss trees are fitted non-decreasing and the accuracy trees non-increasing in p,
p stays a feature, and the predicted accuracy drop from p = 0 to p = 0.5 is reported."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from nascsim.space import get_space
from nascsim.surrogate import fit_surrogate
from nascsim.surrogate.evals import load_evaluations
from nascsim.surrogate.export import assemble_arrays, export_trees
from nascsim.surrogate.features import feature_columns, feature_matrix, feature_tables
from nascsim.surrogate.fit import FitOptions, fit_target, target_data
from nascsim.surrogate.predict import TARGET_ACC, predict_features_batch
from nascsim.surrogate.report import measured_p_effect, p_effect
from surrogate_fixtures import quick_options, synthetic_evaluations

P_GRID = np.linspace(0.0, 0.99, 34)


@functools.lru_cache(maxsize=None)
def noisy_fit(space: str, monotone: bool):
    """A fit on data where the p effect is small against the noise (so a free fit wiggles in p)."""
    frame, meta = synthetic_evaluations(space, n_pairs=150, seed=8, noise_sd=0.02)
    return fit_surrogate(frame, meta=meta, id="m", options=quick_options(monotone_p=monotone))


def curves(s, space: str, n: int = 400, seed: int = 1):
    rng = np.random.default_rng(seed)
    sp = get_space(space)
    a, k = rng.integers(0, sp.n_ops, (n, sp.n_layers)), rng.integers(0, sp.n_layers + 1, n)
    loss = np.stack([s.predict("loss", a, k, np.full(n, p)) for p in P_GRID])
    acc = np.stack([s.predict("acc", a, k, np.full(n, p)) for p in P_GRID])
    return loss, acc


@pytest.mark.parametrize("space", ["fbnet", "extended"])
def test_predicted_loss_never_falls_and_accuracy_never_rises_with_p_for_random_arch_and_split(space):
    loss, acc = curves(noisy_fit(space, True), space)
    assert (np.diff(loss, axis=0) >= 0).all()
    assert (np.diff(acc, axis=0) <= 0).all()
    # p is still a feature: the predictions do move with p
    assert (loss[-1] - loss[0]).max() > 0 and (acc[0] - acc[-1]).max() > 0


def test_without_the_constraint_the_same_data_give_curves_that_go_the_wrong_way():
    """The check above can fail: an unconstrained fit on the same noisy data is not monotone."""
    loss, acc = curves(noisy_fit("fbnet", False), "fbnet")
    assert (np.diff(loss, axis=0) < 0).any(axis=0).sum() > 10
    assert (np.diff(acc, axis=0) > 0).any(axis=0).sum() > 10


def test_the_card_records_the_direction_of_each_target_in_p():
    chosen = noisy_fit("fbnet", True).card["model"]["chosen"]
    assert (chosen["loss"]["monotone_p"], chosen["acc"]["monotone_p"], chosen["lsc"]["monotone_p"]) == ("non-decreasing", "non-increasing", "free")
    assert noisy_fit("fbnet", True).card["model"]["options"]["monotone_p"] is True
    assert noisy_fit("fbnet", False).card["model"]["chosen"]["acc"]["monotone_p"] == "free"


def test_constrained_trees_exported_to_numba_equal_sklearn_predict():
    frame, meta = synthetic_evaluations("fbnet", n_pairs=80, seed=3)
    ev = load_evaluations(frame, meta=meta, id="t")
    tables = feature_tables(ev.space, ev.classes)
    columns = feature_columns(("split_op", "flops", "depth"))
    X, y, pairs = target_data(ev, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5), tables)["acc"]
    est, info = fit_target(X, y, pairs, columns, FitOptions(grid=((16, 5),), max_iter=30, folds=2), monotone=-1)
    assert info["monotone_p"] == "non-increasing"
    export = export_trees(est, columns)
    noise = {"p": [0.0], "loss": [0.01], "acc": [0.01], "lsc": 0.01, "n_images": 1000, "shared": {"loss": [0.0], "acc": [0.0], "lsc": 0.0}}
    arrays = assemble_arrays(tables, {"loss": export, "acc": export, "lsc": export}, noise)
    rng = np.random.default_rng(7)
    Xr = feature_matrix(tables, rng.integers(0, 9, (2000, 22)), rng.integers(0, 23, 2000), rng.uniform(0, 0.9, 2000))
    ours = np.empty(len(Xr))
    predict_features_batch(arrays, TARGET_ACC, Xr, ours)
    np.testing.assert_allclose(ours, est.predict(Xr[:, columns]), rtol=0, atol=1e-9)


def test_p_effect_reports_the_synthetic_accuracy_drop_and_is_never_negative():
    """Synthetic truth (dropout-trained): acc drop from p=0 to 0.5 = 0.05 (1 - k/22), median 0.025
    over uniform splits."""
    e = p_effect(noisy_fit("fbnet", True), n=2000, seed=0)
    assert e["p"] == [0.0, 0.5] and e["samples"] == 2000
    assert e["acc_drop"]["min"] >= 0 and e["loss_rise"]["min"] >= 0
    assert e["acc_drop"]["median"] == pytest.approx(0.025, rel=0.4)
    assert e["acc_drop"]["max"] >= e["acc_drop"]["median"] >= e["acc_drop"]["min"]
    assert noisy_fit("fbnet", True).card["p_effect"]["acc_drop"] == e["acc_drop"]


def test_measured_p_effect_pairs_the_two_rates_on_the_same_pair_and_batch():
    frame, meta = synthetic_evaluations("fbnet", n_pairs=200, seed=2, noise_sd=0.0001)
    m = measured_p_effect(load_evaluations(frame, meta=meta, id="x").rows)
    assert m["n"] >= 200
    assert m["mean"] == pytest.approx(0.025, rel=0.25)
    assert measured_p_effect(frame.filter(frame["p"] < 0.45)) is None
