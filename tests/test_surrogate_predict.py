"""The exported trees predict exactly what scikit-learn predicts, features match the FLOP tables,
and the Surrogate object behaves as the search contract says."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from numba import njit

from nascsim.hw.flops import flop_tables
from nascsim.space import get_space
from nascsim.surrogate.features import N_FEATURES, feature_matrix, feature_tables
from nascsim.surrogate.predict import TARGET_ACC, TARGET_LOSS, TARGET_LSC, noise_sd_one, predict_features_batch, predict_one
from surrogate_fixtures import fit_one_target, make_stand_in_surrogate, quick_options, synthetic_evaluations, true_loss


def _random_inputs(space: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    sp = get_space(space)
    return rng.integers(0, sp.n_ops, (n, 22)), rng.integers(0, 23, n), rng.uniform(0, 0.6, n)


@pytest.mark.parametrize("space", ["fbnet", "extended"])
def test_numba_trees_equal_sklearn_predict_on_random_inputs(space):
    # layer 1 never holds op 2 in training: random inputs then hit the unknown-category path too
    fit = fit_one_target(space, "loss", n_pairs=80, seed=3, frame_filter=lambda f: f.filter(f["op00"] != 2))
    tables, columns, est, arrays = fit.tables, fit.columns, fit.est, fit.arrays
    a, k, p = _random_inputs(space, 3000, seed=7)
    Xr = feature_matrix(tables, a, k, p)
    assert (Xr[:, 0] == 2).any()
    ours = np.empty(len(Xr))
    predict_features_batch(arrays, TARGET_LOSS, Xr, ours)
    theirs = est.predict(Xr[:, columns])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    assert np.ptp(theirs) > 0


def test_features_match_flop_tables_and_depth_counts():
    sp = get_space("extended")
    ft = flop_tables(sp, 10)
    tables = feature_tables(sp, 10)
    a, k, p = _random_inputs("extended", 50, seed=1)
    X = feature_matrix(tables, a, k, p)
    for i in range(50):
        arch, split = a[i], int(k[i])
        head = ft.stem + sum(ft.layer[l, arch[l]] for l in range(split - 1))
        tail = ft.header + ft.pool + ft.fc + sum(ft.layer[l, arch[l]] for l in range(split, 22))
        if split >= 1:
            head += ft.split_head[split - 1, arch[split - 1]]
            tail += ft.split_tail[split - 1, arch[split - 1]]
        payload = ft.payload[split, arch[split - 1]] if split else ft.payload[0, 0]
        depth_head = sum(sp.ops[o].kind != "skip" for o in arch[:split])
        depth_tail = sum(sp.ops[o].kind != "skip" for o in arch[split:])
        row = dict(zip(range(N_FEATURES), X[i]))
        assert list(X[i, :22]) == list(arch)
        assert (row[22], row[23]) == (split, p[i])
        assert row[24] == (arch[split - 1] if split else sp.n_ops)
        assert row[25] == pytest.approx(head, rel=1e-12) and row[26] == pytest.approx(tail, rel=1e-12)
        assert row[27] == pytest.approx(head + tail, rel=1e-12)
        assert row[28] == payload
        assert (row[29], row[30], row[31]) == (depth_head, depth_tail, depth_head + depth_tail)


def test_predict_one_is_callable_from_other_njit_code_and_matches_batch():
    s = make_stand_in_surrogate("fbnet")

    @njit
    def lsc_sum(arrays, archs, splits):
        total = 0.0
        for i in range(archs.shape[0]):
            total += predict_one(arrays, TARGET_LSC, archs[i], splits[i], 0.0)
            total += 0.0 * noise_sd_one(arrays, TARGET_LSC, archs[i], splits[i], 0.0)
        return total

    a, k, p = _random_inputs("fbnet", 200, seed=2)
    a = np.ascontiguousarray(a, dtype=np.int64)
    k = k.astype(np.int64)
    assert lsc_sum(s.arrays, a, k) == pytest.approx(s.predict("lsc", a, k, p).sum(), rel=1e-12)
    assert predict_one(s.arrays, TARGET_ACC, a[0], k[0], p[0]) == s.predict("acc", a[:1], k[:1], p[:1])[0]


def test_lsc_prediction_ignores_p_but_loss_prediction_does_not():
    s = make_stand_in_surrogate("fbnet")
    a, k, _ = _random_inputs("fbnet", 100, seed=4)
    k = np.zeros(100, dtype=np.int64)
    np.testing.assert_array_equal(s.predict("lsc", a, k, np.zeros(100)), s.predict("lsc", a, k, np.full(100, 0.5)))
    assert (s.predict("loss", a, k, np.full(100, 0.5)) > s.predict("loss", a, k, np.zeros(100))).mean() > 0.9


def test_stand_in_surrogate_ranks_by_the_known_structure():
    from scipy.stats import kendalltau

    s = make_stand_in_surrogate("fbnet")
    a, k, p = _random_inputs("fbnet", 1000, seed=5)
    p = np.round(p * 10) / 20
    assert kendalltau(s.predict("loss", a, k, p), true_loss("fbnet", a, k, p))[0] > 0.4
    assert kendalltau(s.predict("lsc", a, k, p), true_loss("fbnet", a, k, np.full(1000, 0.25)))[0] > 0.5
    assert kendalltau(s.predict("acc", a, k, p), -true_loss("fbnet", a, k, p))[0] > 0.3


def test_noise_sd_is_positive_and_near_the_synthetic_noise():
    s = make_stand_in_surrogate("fbnet")
    a, k, p = _random_inputs("fbnet", 20, seed=6)
    sd = s.noise_sd("loss", a, k, p)
    # synthetic loss noise: N(0, 0.01) per row plus a batch shift N(0, 0.005)
    assert np.all(sd > 0.006) and np.all(sd < 0.02)
    assert np.all(s.noise_sd("lsc", a, k, p) > 0)


def test_surrogate_pickles_to_the_same_predictions():
    s = make_stand_in_surrogate("extended")
    s2 = pickle.loads(pickle.dumps(s))
    a, k, p = _random_inputs("extended", 50, seed=8)
    np.testing.assert_array_equal(s.predict("loss", a, k, p), s2.predict("loss", a, k, p))
    assert (s2.id, s2.space, s2.loss_set) == (s.id, "extended", s.loss_set)


def test_predict_rejects_op_indices_outside_the_space():
    s = make_stand_in_surrogate("fbnet")
    a = np.zeros((1, 22), dtype=np.int64)
    a[0, 3] = 9
    with pytest.raises(ValueError, match="op index 9"):
        s.predict("loss", a, [0], [0.0])
    with pytest.raises(ValueError, match="unknown target 'los'"):
        s.predict("los", np.zeros((1, 22), dtype=np.int64), [0], [0.0])
    with pytest.raises(ValueError, match="split 23"):
        s.predict("lsc", np.zeros((1, 22), dtype=np.int64), [23], [0.0])


def test_same_seed_gives_the_same_surrogate():
    from nascsim.surrogate import fit_surrogate

    frame, meta = synthetic_evaluations("fbnet", n_pairs=60, seed=9)
    d1 = fit_surrogate(frame, meta=meta, id="x", options=quick_options()).doc
    d2 = fit_surrogate(frame, meta=meta, id="x", options=quick_options()).doc
    assert d1["targets"] == d2["targets"] and d1["noise"] == d2["noise"]


def _search_tree_predictions(s, terms, archs, splits, fixed=None):
    from nascsim.surrogate.export import search_trees
    from nascsim.surrogate.features import N_FEATURES, features_into
    from nascsim.surrogate.predict import bins_into, leaves_into, term_sum

    @njit(error_model="numpy")
    def run(st, ft, archs, splits, out):
        x = np.empty(N_FEATURES)
        gbin = np.zeros(N_FEATURES + 1, dtype=np.uint32)
        xi = np.zeros(N_FEATURES, dtype=np.uint64)
        vals = np.empty(st[2].shape[0])
        for i in range(archs.shape[0]):
            features_into(ft[0], ft[1], ft[2], ft[3], ft[4], ft[5], archs[i], splits[i], 0.0, x)
            bins_into(st, x, gbin)
            leaves_into(st, x, gbin, xi, vals)
            for j in range(out.shape[1]):
                out[i, j] = term_sum(st, j, vals)

    st = search_trees(s.arrays, terms, fixed, n_categories=get_space(s.space).n_ops + 1)
    out = np.empty((len(archs), len(terms)))
    run(st.arrays, s.arrays[:6], np.ascontiguousarray(archs, dtype=np.uint64), np.asarray(splits, dtype=np.int64), out)
    return st, out


@pytest.mark.parametrize("space", ["fbnet", "extended"])
def test_search_trees_equal_predict_one_bit_for_bit(space):
    s = make_stand_in_surrogate(space)
    a, k, _ = _random_inputs(space, 4000, seed=21)
    terms = [(TARGET_LSC, 0.0), (TARGET_LOSS, 0.0), (TARGET_LOSS, 0.25), (TARGET_LOSS, 0.5), (TARGET_ACC, 0.3)]
    st, out = _search_tree_predictions(s, terms, a, k)
    for j, (target, p) in enumerate(terms):
        np.testing.assert_array_equal(out[:, j], s.predict({0: "loss", 1: "acc", 2: "lsc"}[target], a, k, np.full(len(k), p)))
    assert st.n_table > 0


def test_search_trees_with_a_fixed_split_drop_its_nodes_and_still_equal_predict_one():
    from nascsim.surrogate.features import F_SPLIT

    s = make_stand_in_surrogate("fbnet")
    a, _, _ = _random_inputs("fbnet", 2000, seed=22)
    k = np.full(2000, 22)
    st, out = _search_tree_predictions(s, [(TARGET_LOSS, 0.0)], a, k, {F_SPLIT: 22.0})
    np.testing.assert_array_equal(out[:, 0], s.predict("loss", a, k, np.zeros(2000)))


def test_deep_trees_are_walked_and_still_equal_predict_one():
    """Trees that read more features than a table may take fall back to the node walk."""
    e = fit_one_target("fbnet", "lsc", n_pairs=150, seed=4, grid=((32, 2),)).export
    small = make_stand_in_surrogate("fbnet")
    from nascsim.surrogate.model import Surrogate

    doc = dict(small.doc, targets={**small.doc["targets"], "lsc": e})
    deep = Surrogate(doc)
    a, k, _ = _random_inputs("fbnet", 3000, seed=23)
    st, out = _search_tree_predictions(deep, [(TARGET_LSC, 0.0)], a, k)
    assert st.n_table < st.n_trees  # some trees are walked
    np.testing.assert_array_equal(out[:, 0], deep.predict("lsc", a, k, np.zeros(3000)))
