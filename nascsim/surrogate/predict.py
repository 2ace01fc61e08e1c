"""Numba kernels of the accuracy surrogate: expected loss, accuracy and l_SC (eq. 4) of (a, k, p).

``arrays`` is :attr:`nascsim.surrogate.Surrogate.arrays`, a tuple of flat arrays (index: content):

- 0..5: feature tables of :func:`nascsim.surrogate.features.feature_tables`;
- 6 node_feature int64 (N,): index into the feature vector; 7 node_threshold float64 (N,);
  8 node_left, 9 node_right int64 (N,): global node indices; 10 node_value float64 (N,);
  11 node_flags int64 (N,): 1 = leaf, 2 = categorical split, 4 = missing values go left;
  12 node_bitset int64 (N,): row of 13 for a categorical split;
- 13 cat_bitsets uint32 (B, 8): categories sent left, per categorical split;
- 14 known_bitsets uint32 (K, 8): categories seen in training, per (target, categorical feature);
- 15 f_idx_map int64 (3, N_FEATURES): row of 14 for (target, feature), -1 if not categorical;
- 16 tree_root int64 (T,): first node of each tree; 17 target_trees int64 (3, 2): [first, end) trees
  of each target; 18 baseline float64 (3,): the boosting's initial value per target;
- 19 noise_p float64 (m,): p grid of the noise model; 20 noise_sd float64 (3, m): sd of one minibatch
  observation per target at each grid p (linear in between, constant outside);
- 21 left_mask uint64 (N,): for categorical splits, bit v set when category v (0..63) goes left
  (the rule below folded into one bit per category, built by ``export.categorical_left_masks``).

A tree is walked exactly as scikit-learn's ``_predict_one_from_raw_data`` walks it (numeric
``x <= threshold`` goes left; categorical: left if in the split's bitset, right if a known category,
else the missing-value side), and the prediction is baseline + the leaf values summed in tree
order, so results equal ``HistGradientBoostingRegressor.predict`` bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nascsim._jit import CACHED, FAST, inline, internal
from nascsim.surrogate.features import N_FEATURES, features_into

TARGET_LOSS = 0
TARGET_ACC = 1
TARGET_LSC = 2
TARGETS = {"loss": TARGET_LOSS, "acc": TARGET_ACC, "lsc": TARGET_LSC}
INTERNAL = internal(CACHED)  # called only from compiled code (nascsim._jit)


@njit(**INTERNAL)
def _in_bitset(bitsets, row, value):
    if value > 255:
        return False
    return ((bitsets[row, value // 32] >> np.uint32(value % 32)) & np.uint32(1)) == np.uint32(1)


@njit(**INTERNAL)
def tree_value(arrays, target, root, x):
    """Leaf value of the tree starting at node ``root`` for feature vector ``x``."""
    node_feature = arrays[6]
    node_threshold = arrays[7]
    node_left = arrays[8]
    node_right = arrays[9]
    node_value = arrays[10]
    node_flags = arrays[11]
    node_bitset = arrays[12]
    cat_bitsets = arrays[13]
    known_bitsets = arrays[14]
    f_idx_map = arrays[15]
    left_mask = arrays[21]
    node = root
    while True:
        flags = node_flags[node]
        if flags & 1:
            return node_value[node]
        f = node_feature[node]
        v = x[f]
        go_missing = False
        if flags & 2 and 0.0 <= v < 64.0:  # categorical: one bit per category (see export)
            if (left_mask[node] >> np.uint64(int(v))) & np.uint64(1):
                node = node_left[node]
            else:
                node = node_right[node]
            continue
        if np.isnan(v):
            go_missing = True
        elif flags & 2:
            if v < 0:
                go_missing = True
            else:
                c = int(v)
                if _in_bitset(cat_bitsets, node_bitset[node], c):
                    node = node_left[node]
                    continue
                elif _in_bitset(known_bitsets, f_idx_map[target, f], c):
                    node = node_right[node]
                    continue
                else:
                    go_missing = True
        else:
            if v <= node_threshold[node]:
                node = node_left[node]
            else:
                node = node_right[node]
            continue
        if go_missing:
            if flags & 4:
                node = node_left[node]
            else:
                node = node_right[node]


@njit(**INTERNAL)
def predict_features(arrays, target, x):
    """Prediction of ``target`` from a ready feature vector ``x``."""
    tree_root = arrays[16]
    target_trees = arrays[17]
    s = 0.0
    s += arrays[18][target]
    for t in range(target_trees[target, 0], target_trees[target, 1]):
        s += tree_value(arrays, target, tree_root[t], x)
    return s


@njit(**INTERNAL)
def _features(arrays, target, arch, split, p, x):
    if target == TARGET_LSC:
        p = 0.0
    features_into(arrays[0], arrays[1], arrays[2], arrays[3], arrays[4], arrays[5], arch, split, p, x)


@njit(cache=True, nogil=True)
def predict_one(arrays, target, arch, split, p):
    """Expected loss (target 0), accuracy (1) or l_SC (2, p ignored) of (arch, split, p)."""
    x = np.empty(N_FEATURES, dtype=np.float64)
    _features(arrays, target, arch, split, p, x)
    return predict_features(arrays, target, x)


@njit(cache=True, nogil=True)
def noise_sd_one(arrays, target, arch, split, p):
    """Standard deviation of one minibatch observation of ``target`` at (arch, split, p).

    Piecewise linear in p over the grid ``arrays[19]`` (constant outside it); l_SC uses its first
    entry. ``arch`` and ``split`` are accepted for a stable signature (the fitted models so far do
    not depend on them).
    """
    grid = arrays[19]
    sd = arrays[20]
    m = grid.shape[0]
    if target == TARGET_LSC or m == 1 or p <= grid[0]:
        return sd[target, 0]
    if p >= grid[m - 1]:
        return sd[target, m - 1]
    j = 1
    while grid[j] < p:
        j += 1
    w = (p - grid[j - 1]) / (grid[j] - grid[j - 1])
    return (1.0 - w) * sd[target, j - 1] + w * sd[target, j]


@njit(cache=True, nogil=True)
def predict_batch(arrays, target, archs, splits, ps, out):
    """out[i] = predict_one(arrays, target, archs[i], splits[i], ps[i])."""
    x = np.empty(N_FEATURES, dtype=np.float64)
    for i in range(archs.shape[0]):
        _features(arrays, target, archs[i], splits[i], ps[i], x)
        out[i] = predict_features(arrays, target, x)


@njit(cache=True, nogil=True)
def predict_features_batch(arrays, target, X, out):
    """out[i] = prediction of ``target`` from feature row X[i] (X shape (n, N_FEATURES))."""
    for i in range(X.shape[0]):
        out[i] = predict_features(arrays, target, X[i])


@njit(cache=True, nogil=True)
def noise_sd_batch(arrays, target, archs, splits, ps, out):
    """out[i] = noise_sd_one(arrays, target, archs[i], splits[i], ps[i])."""
    for i in range(archs.shape[0]):
        out[i] = noise_sd_one(arrays, target, archs[i], splits[i], ps[i])


# ---------------------------------------------------------------------------------------------
# Search form (:class:`nascsim.surrogate.export.SearchTrees`): tabulated and walked trees
# ---------------------------------------------------------------------------------------------

# positions in the SearchTrees tuple (export.SearchTrees field order, checked there)
ST_FIELDS = (
    "term_start",
    "baseline",
    "lo",
    "hi",
    "rest_lo",
    "rest_hi",
    "rest_abs",
    "tab_pos",
    "tab_base",
    "tab_feat",
    "tab_map",
    "binmap",
    "leaf",
    "bin_off",
    "bin_thr",
    "used_cat",
    "used_num",
    "walk_pos",
    "walk_root",
    "walk_depth",
    "node_feat",
    "node_thr",
    "node_mask",
    "node_child",
    "node_value",
)
S_TERM_START = 0
S_BASELINE = 1
S_LO = 2
S_HI = 3
S_REST_LO = 4
S_REST_HI = 5
S_REST_ABS = 6
S_TAB_POS = 7
S_TAB_BASE = 8
S_TAB_FEAT = 9
S_TAB_MAP = 10
S_BINMAP = 11
S_LEAF = 12
S_BIN_OFF = 13
S_BIN_THR = 14
S_USED_CAT = 15
S_USED_NUM = 16
S_WALK_POS = 17
S_WALK_ROOT = 18
S_WALK_DEPTH = 19
S_NODE_FEAT = 20
S_NODE_THR = 21
S_NODE_MASK = 22
S_NODE_CHILD = 23
S_NODE_VALUE = 24

SLOTS = 3  # = export.SLOTS
LINEAR_BINS = 16  # up to this many thresholds a feature's bin is counted, beyond it bisected
INLINE = inline(FAST)


@njit(**INLINE)
def sample_features(layer, split_head, split_tail, payload, consts, depth, arch, split, x):
    """The feature vector of (arch, split, p = 0) into ``x``, equal to
    :func:`nascsim.surrogate.features.features_into` bit for bit (the same sums in the same
    order: the head's FLOPs over the layers before the split, then the split layer's head part;
    the tail's from the split layer's tail part on), its loop split at the split point so that no
    branch depends on the layer: the form the search inlines."""
    n_layers = arch.shape[0]
    n_ops = layer.shape[1]
    head = consts[0]
    tail = consts[1]
    head_depth = 0
    tail_depth = 0
    for l in range(n_layers):
        x[l] = arch[l]
    for l in range(split - 1):
        o = arch[l]
        head += layer[l, o]
        head_depth += depth[o]
    if split >= 1:
        o = arch[split - 1]
        head += split_head[split - 1, o]
        tail += split_tail[split - 1, o]
        head_depth += depth[o]
        x[n_layers + 2] = o
        x[n_layers + 6] = payload[split, o]
    else:
        x[n_layers + 2] = n_ops
        x[n_layers + 6] = payload[0, 0]
    for l in range(max(split, 0), n_layers):
        o = arch[l]
        tail += layer[l, o]
        tail_depth += depth[o]
    x[n_layers] = split
    x[n_layers + 1] = 0.0
    x[n_layers + 3] = head
    x[n_layers + 4] = tail
    x[n_layers + 5] = head + tail
    x[n_layers + 7] = head_depth
    x[n_layers + 8] = tail_depth
    x[n_layers + 9] = head_depth + tail_depth


@njit(**INLINE)
def bins_into(st, x, gbin):
    """gbin[f] for every feature the tabulated trees read (:func:`bins_of` on the arrays of
    ``st``)."""
    bins_of(st[S_BIN_OFF], st[S_BIN_THR], st[S_USED_CAT], st[S_USED_NUM], x, gbin)


@njit(**INLINE)
def bins_of(bin_off, bin_thr, used_cat, used_num, x, gbin):
    """gbin[f] for every feature the tabulated trees read: the value of a categorical feature,
    the number of thresholds below x[f] for a numeric one; gbin[N_FEATURES] stays 0."""
    for j in range(used_cat.shape[0]):
        f = used_cat[j]
        gbin[f] = np.uint32(x[f])
    for j in range(used_num.shape[0]):
        f = used_num[j]
        v = x[f]
        a = bin_off[f]
        b = bin_off[f + 1]
        if b - a <= LINEAR_BINS:
            n = 0
            for i in range(a, b):
                n += bin_thr[i] < v
            gbin[f] = n
        else:
            lo, hi = a, b
            while lo < hi:
                mid = (lo + hi) >> 1
                if bin_thr[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            gbin[f] = lo - a


@njit(**INLINE)
def tables_into(st, gbin, vals):
    """vals[t] for the tabulated trees: one lookup each, at the sum of its slots' bin offsets."""
    tab_pos, tab_base, tab_feat, tab_map, binmap, leaf = st[S_TAB_POS], st[S_TAB_BASE], st[S_TAB_FEAT], st[S_TAB_MAP], st[S_BINMAP], st[S_LEAF]
    for j in range(tab_pos.shape[0]):
        idx = tab_base[j]
        for k in range(SLOTS):
            idx += binmap[tab_map[k, j] + gbin[tab_feat[k, j]]]
        vals[tab_pos[j]] = leaf[idx]


@njit(**INLINE)
def small_ints_into(x, xi):
    """xi[f] = min(x[f], 63) as an unsigned integer: the shift of a categorical node's mask test
    (numeric features, whose masks are 0, only need a shift below 64)."""
    for f in range(x.shape[0]):
        v = x[f]
        xi[f] = np.uint64(v) if v < 63.0 else np.uint64(63)


@njit(**INLINE)
def walk_leaf(st, j, x, xi):
    """Leaf value of walked tree j (:func:`walk_leaf_of` on the arrays of ``st``)."""
    return walk_leaf_of(st[S_NODE_FEAT], st[S_NODE_THR], st[S_NODE_MASK], st[S_NODE_CHILD], st[S_WALK_ROOT],
                        st[S_WALK_DEPTH], st[S_NODE_VALUE], j, x, xi)


@njit(**INLINE)
def walk_leaf_of(node_feat, node_thr, node_mask, node_child, walk_root, walk_depth, node_value, j, x, xi):
    """Leaf value of walked tree j: ``walk_depth[j]`` steps, left when the value's bit is set in
    the node's mask (categorical) or x <= threshold (numeric), as scikit-learn's predictor goes."""
    node = np.uint64(walk_root[j])
    for _ in range(walk_depth[j]):
        node = _step(node_feat, node_thr, node_mask, node_child, node, x, xi)
    return node_value[node]


@njit(**INLINE)
def _step(node_feat, node_thr, node_mask, node_child, node, x, xi):
    f = node_feat[node]
    left = ((node_mask[node] >> xi[f]) & np.uint64(1)) | np.uint64(x[f] <= node_thr[node])
    return np.uint64(node_child[np.uint64(2) * node + np.uint64(1) - left])


@njit(**INLINE)
def walk8_pair_of(node_feat, node_thr, node_mask, node_child, roots, depth, value, j, x0, xi0, x1, xi1, out0, out1):
    """Walked trees j..j+7 for two samples at once (sixteen independent chains of loads):
    out0[i], out1[i] = leaf of tree j + i."""
    a0 = b0 = np.uint64(roots[j])
    a1 = b1 = np.uint64(roots[j + 1])
    a2 = b2 = np.uint64(roots[j + 2])
    a3 = b3 = np.uint64(roots[j + 3])
    a4 = b4 = np.uint64(roots[j + 4])
    a5 = b5 = np.uint64(roots[j + 5])
    a6 = b6 = np.uint64(roots[j + 6])
    a7 = b7 = np.uint64(roots[j + 7])
    steps = max(max(max(depth[j], depth[j + 1]), max(depth[j + 2], depth[j + 3])),
                max(max(depth[j + 4], depth[j + 5]), max(depth[j + 6], depth[j + 7])))
    for _ in range(steps):  # a leaf is its own child: extra steps stay on it
        a0 = _step(node_feat, node_thr, node_mask, node_child, a0, x0, xi0)
        b0 = _step(node_feat, node_thr, node_mask, node_child, b0, x1, xi1)
        a1 = _step(node_feat, node_thr, node_mask, node_child, a1, x0, xi0)
        b1 = _step(node_feat, node_thr, node_mask, node_child, b1, x1, xi1)
        a2 = _step(node_feat, node_thr, node_mask, node_child, a2, x0, xi0)
        b2 = _step(node_feat, node_thr, node_mask, node_child, b2, x1, xi1)
        a3 = _step(node_feat, node_thr, node_mask, node_child, a3, x0, xi0)
        b3 = _step(node_feat, node_thr, node_mask, node_child, b3, x1, xi1)
        a4 = _step(node_feat, node_thr, node_mask, node_child, a4, x0, xi0)
        b4 = _step(node_feat, node_thr, node_mask, node_child, b4, x1, xi1)
        a5 = _step(node_feat, node_thr, node_mask, node_child, a5, x0, xi0)
        b5 = _step(node_feat, node_thr, node_mask, node_child, b5, x1, xi1)
        a6 = _step(node_feat, node_thr, node_mask, node_child, a6, x0, xi0)
        b6 = _step(node_feat, node_thr, node_mask, node_child, b6, x1, xi1)
        a7 = _step(node_feat, node_thr, node_mask, node_child, a7, x0, xi0)
        b7 = _step(node_feat, node_thr, node_mask, node_child, b7, x1, xi1)
    out0[0] = value[a0]
    out0[1] = value[a1]
    out0[2] = value[a2]
    out0[3] = value[a3]
    out0[4] = value[a4]
    out0[5] = value[a5]
    out0[6] = value[a6]
    out0[7] = value[a7]
    out1[0] = value[b0]
    out1[1] = value[b1]
    out1[2] = value[b2]
    out1[3] = value[b3]
    out1[4] = value[b4]
    out1[5] = value[b5]
    out1[6] = value[b6]
    out1[7] = value[b7]


@njit(**INLINE)
def walks_into(st, x, xi, vals):
    """vals[t] for the walked trees (``xi`` from :func:`small_ints_into`)."""
    walk_pos = st[S_WALK_POS]
    for j in range(walk_pos.shape[0]):
        vals[walk_pos[j]] = walk_leaf(st, j, x, xi)


@njit(**INLINE)
def leaves_into(st, x, gbin, xi, vals):
    """vals[t] = the leaf tree t of search trees ``st`` reaches for features ``x`` (binned in
    ``gbin`` by :func:`bins_into`), for every tree of every term (``xi``: work buffer, uint64
    (N_FEATURES,))."""
    tables_into(st, gbin, vals)
    if st[S_WALK_POS].shape[0] > 0:
        small_ints_into(x, xi)
        walks_into(st, x, xi, vals)


@njit(**INLINE)
def term_sum(st, term, vals):
    """Prediction of loss term ``term``: its baseline, then its trees' leaves in tree order."""
    term_start, baseline = st[S_TERM_START], st[S_BASELINE]
    s = 0.0
    s += baseline[term]
    for t in range(term_start[term], term_start[term + 1]):
        s += vals[t]
    return s


@njit(**INLINE)
def term_sum2(st, term, v0, v1):
    """:func:`term_sum` of two samples (:func:`terms_sum2` on the arrays of ``st``)."""
    return terms_sum2(st[S_TERM_START], st[S_BASELINE], term, v0, v1)


@njit(**INLINE)
def terms_sum2(term_start, baseline, term, v0, v1):
    """:func:`term_sum` of two samples (two independent chains of additions): the term's
    baseline, then its trees' leaves in tree order."""
    s0 = 0.0
    s1 = 0.0
    s0 += baseline[term]
    s1 += baseline[term]
    for t in range(term_start[term], term_start[term + 1]):
        s0 += v0[t]
        s1 += v1[t]
    return s0, s1
