"""Fitted ``HistGradientBoostingRegressor`` trees -> flat, JSON-able arrays, and those -> numba arrays.

One target's export is a dict of plain lists (no scikit-learn object survives): every tree's nodes
concatenated, child indices made relative to the target's first node, feature indices mapped to
the full feature vector of :mod:`nascsim.surrogate.features`, plus the categorical bitsets. The
layout of the assembled numba tuple is documented in :mod:`nascsim.surrogate.predict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from nascsim.surrogate.features import N_FEATURES
from nascsim.surrogate.predict import ST_FIELDS, TARGETS

LEAF, CATEGORICAL, MISSING_LEFT = 1, 2, 4


def _bitset(values) -> list[int]:
    words = [0] * 8
    for v in values:
        v = int(v)
        words[v // 32] |= 1 << (v % 32)
    return words


def _bits(words) -> list[int]:
    return [32 * w + b for w, word in enumerate(words) for b in range(32) if (int(word) >> b) & 1]


def export_trees(est, columns: np.ndarray) -> dict:
    """Flat lists of a fitted single-output ``HistGradientBoostingRegressor``.

    ``columns[j]`` is the full-feature index of the estimator's input column j. scikit-learn
    (>= 1.4) ordinal-encodes categorical columns and moves them first before growing trees; the
    export undoes both, so nodes refer to full-feature indices and bitsets to raw category values
    (an unseen category is missing, as there).
    """
    columns = np.asarray(columns, dtype=np.int64)
    if getattr(est, "n_trees_per_iteration_", 1) != 1:
        raise ValueError("only single-output regressors can be exported")
    is_cat = np.zeros(len(columns), bool) if est.is_categorical_ is None else np.asarray(est.is_categorical_, bool)
    if getattr(est, "_preprocessor", None) is not None:
        order = np.r_[np.flatnonzero(is_cat), np.flatnonzero(~is_cat)]
        cats = est._preprocessor.named_transformers_["encoder"].categories_
    elif is_cat.any():
        raise ValueError("this scikit-learn does not ordinal-encode categorical features; nascsim needs scikit-learn >= 1.4")
    else:
        order, cats = np.arange(len(columns)), []
    # internal column i -> full feature index; internal categorical column i -> raw categories
    internal_to_full = columns[order]
    raw_cats = {}
    for i, c in enumerate(cats):
        c = np.asarray(c, dtype=np.float64)
        if np.any((c < 0) | (c > 255) | (c != np.round(c))):
            raise ValueError(f"categorical feature {int(internal_to_full[i])} has categories outside the integers 0..255")
        raw_cats[i] = c.astype(np.int64)
    feature, threshold, left, right, value, flags, bitset = [], [], [], [], [], [], []
    tree_start: list[int] = []
    cat_bitsets: list[list[int]] = []
    offset = 0
    for (pred,) in est._predictors:
        nodes = pred.nodes
        tree_start.append(offset)
        base_bitset = len(cat_bitsets)
        for words in np.asarray(pred.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, 8):
            cat_bitsets.append(words.tolist())
        for node in nodes:
            is_leaf = bool(node["is_leaf"])
            is_c = bool(node["is_categorical"]) and not is_leaf
            fi = int(node["feature_idx"])
            feature.append(0 if is_leaf else int(internal_to_full[fi]))
            threshold.append(float(node["num_threshold"]) if (not is_leaf and not is_c) else 0.0)
            left.append(0 if is_leaf else offset + int(node["left"]))
            right.append(0 if is_leaf else offset + int(node["right"]))
            value.append(float(node["value"]))
            flags.append((LEAF if is_leaf else 0) | (CATEGORICAL if is_c else 0) | (MISSING_LEFT if node["missing_go_to_left"] else 0))
            if is_c:
                b = base_bitset + int(node["bitset_idx"])
                codes = [k for k in _bits(cat_bitsets[b]) if k < len(raw_cats[fi])]
                cat_bitsets[b] = _bitset(raw_cats[fi][codes])
                bitset.append(b)
            else:
                bitset.append(0)
        offset += len(nodes)
    known = [_bitset(raw_cats[i]) for i in range(len(raw_cats))]
    fmap = {int(internal_to_full[i]): i for i in range(len(raw_cats))}
    return {
        "baseline": float(np.asarray(est._baseline_prediction).ravel()[0]),
        "tree_start": tree_start,
        "feature": feature,
        "threshold": threshold,
        "left": left,
        "right": right,
        "value": value,
        "flags": flags,
        "bitset": bitset,
        "cat_bitsets": cat_bitsets,
        "known_bitsets": known,
        "f_idx_map": {str(k): v for k, v in fmap.items()},
    }


def assemble_arrays(feature_tables: tuple[np.ndarray, ...], trees: dict[str, dict], noise: dict) -> tuple:
    """The numba tuple of :mod:`nascsim.surrogate.predict` from per-target exports and the noise model.

    ``trees``: {"loss"|"acc"|"lsc": export_trees(...)}; ``noise``: {"p": grid, "loss": sds,
    "acc": sds, "lsc": sd}.
    """
    feat, thr, left, right, val, flags, bits = [], [], [], [], [], [], []
    cat: list[list[int]] = []
    known: list[list[int]] = []
    f_idx_map = np.full((3, N_FEATURES), -1, dtype=np.int64)
    roots: list[int] = []
    target_trees = np.zeros((3, 2), dtype=np.int64)
    baseline = np.zeros(3, dtype=np.float64)
    for name, t in TARGETS.items():
        e = trees[name]
        node_off, cat_off, known_off = len(feat), len(cat), len(known)
        target_trees[t, 0] = len(roots)
        roots.extend(node_off + int(s) for s in e["tree_start"])
        target_trees[t, 1] = len(roots)
        fl = [int(x) for x in e["flags"]]
        feat.extend(int(x) for x in e["feature"])
        thr.extend(float(x) for x in e["threshold"])
        left.extend(node_off + int(x) for x in e["left"])
        right.extend(node_off + int(x) for x in e["right"])
        val.extend(float(x) for x in e["value"])
        flags.extend(fl)
        bits.extend(cat_off + int(b) if f & CATEGORICAL else 0 for b, f in zip(e["bitset"], fl))
        cat.extend(e["cat_bitsets"])
        known.extend(e["known_bitsets"])
        for k, v in e["f_idx_map"].items():
            f_idx_map[t, int(k)] = known_off + int(v)
        baseline[t] = float(e["baseline"])
    cat_arr = np.asarray(cat, dtype=np.uint32).reshape(-1, 8)
    known_arr = np.asarray(known, dtype=np.uint32).reshape(-1, 8)
    left_mask = categorical_left_masks(feat, flags, bits, cat_arr, known_arr, f_idx_map, target_trees, roots)
    grid = np.asarray(noise["p"], dtype=np.float64)
    sd = np.empty((3, grid.shape[0]), dtype=np.float64)
    sd[TARGETS["loss"]] = noise["loss"]
    sd[TARGETS["acc"]] = noise["acc"]
    sd[TARGETS["lsc"]] = float(noise["lsc"])
    return tuple(feature_tables) + (
        np.asarray(feat, dtype=np.int64),
        np.asarray(thr, dtype=np.float64),
        np.asarray(left, dtype=np.int64),
        np.asarray(right, dtype=np.int64),
        np.asarray(val, dtype=np.float64),
        np.asarray(flags, dtype=np.int64),
        np.asarray(bits, dtype=np.int64),
        cat_arr,
        known_arr,
        f_idx_map,
        np.asarray(roots, dtype=np.int64),
        target_trees,
        baseline,
        grid,
        sd,
        left_mask,
    )


def _bit(bitsets: np.ndarray, row: int, value: int) -> bool:
    return bool((int(bitsets[row, value // 32]) >> (value % 32)) & 1)


def categorical_left_masks(feat, flags, bits, cat, known, f_idx_map, target_trees, roots) -> np.ndarray:
    """Per node, a 64-bit mask of the categories 0..63 that go left at a categorical split.

    It folds scikit-learn's three-way rule (in the split's bitset: left; a known category: right;
    unseen: the missing-value side) into one bit per category, so the tree walk needs one shift;
    categories >= 64 (none in these spaces) take the exact bitset path.
    """
    n = len(feat)
    feat = np.asarray(feat, dtype=np.int64)
    flags = np.asarray(flags, dtype=np.int64)
    bits = np.asarray(bits, dtype=np.int64)
    node_target = np.zeros(n, dtype=np.int64)
    for t in range(target_trees.shape[0]):
        first, end = target_trees[t]
        if end > first:
            lo = roots[first]
            hi = roots[end] if end < len(roots) else n
            node_target[lo:hi] = t
    mask = np.zeros(n, dtype=np.uint64)
    idx = np.flatnonzero(flags & CATEGORICAL)
    if len(idx) == 0:
        return mask

    def low64(words: np.ndarray) -> np.ndarray:  # categories 0..63 of (rows, 8) uint32 bitsets
        return words[:, 0].astype(np.uint64) | (words[:, 1].astype(np.uint64) << np.uint64(32))

    in_split = low64(cat[bits[idx]])
    known_row = f_idx_map[node_target[idx], feat[idx]]
    known_bits = np.where(known_row >= 0, low64(known[np.maximum(known_row, 0)]) if len(known) else np.uint64(0), np.uint64(0))
    unseen_left = np.where(flags[idx] & MISSING_LEFT, ~(in_split | known_bits), np.uint64(0))
    mask[idx] = in_split | unseen_left
    return mask


# ---------------------------------------------------------------------------------------------
# Search form: the trees of the loss terms one search observes, specialised and tabulated
# ---------------------------------------------------------------------------------------------

SLOTS = 3  # features a tabulated tree may read
MAX_TABLE = 512  # entries a tabulated tree may have
TABLE, WALK = 0, 1


@dataclass(frozen=True)
class SearchTrees:
    """The trees of one or more loss terms (each a target at a fixed p: l_SC, or the loss at each
    p of a loss set), as the search evaluates them: flat arrays, read by
    :func:`nascsim.surrogate.predict.leaves_into` and :func:`~nascsim.surrogate.predict.term_sum`.

    Specialisation: features whose value is fixed for the whole search (``p`` always, ``split``
    when it is not searched) are decided once, so their nodes disappear. Tabulation: a tree that
    reads at most :data:`SLOTS` features whose bins multiply to at most :data:`MAX_TABLE` entries
    becomes one table lookup: the feature vector is binned once per sample (a categorical
    feature's bin is its value; a numeric feature's bin counts the thresholds of all tabulated
    trees below it), each of the tree's features maps its bin to an offset, and the offsets sum to
    the table entry, which holds the leaf the walk would reach for every input of that cell.
    Deeper trees are walked node by node. Either way each tree gives the leaf of the original
    tree, so baseline + leaves summed in tree order equals
    :func:`~nascsim.surrogate.predict.predict_one` bit for bit.

    Arrays (T trees of all terms in order; index arrays unsigned, so kernels skip negative-index
    handling):

    - ``term_start`` int64 (terms + 1,): first tree of each term; ``baseline`` float64 (terms,);
      ``lo``, ``hi`` float64 (T,): smallest / largest leaf of each tree;
    - ``rest_lo``, ``rest_hi``, ``rest_abs`` float64 (n_tab + n_walk + 1,): in the order the search
      reads trees (tabulated ones, then walked ones), the sum over trees j, j+1, ... of their
      smallest / largest leaves / largest |leaf|: the range the trees not yet read can add (the
      search's early exit);
    - tabulated trees: ``tab_pos`` uint32 (n_tab,): tree index; ``tab_base`` uint32: first entry in
      ``leaf``; ``tab_feat``, ``tab_map`` uint32 (SLOTS, n_tab): feature of each slot (N_FEATURES =
      none: its bin is always 0) and the offset of its bin map in ``binmap`` (uint32, table offset
      per bin); ``leaf`` float64: the tables;
    - binning: ``bin_off`` int64 (N_FEATURES + 2,): the thresholds of numeric feature f are
      ``bin_thr[bin_off[f]:bin_off[f + 1]]`` (sorted); ``used_cat``, ``used_num`` uint32: the
      categorical / numeric features whose bins the tables read;
    - walked trees: ``walk_pos``, ``walk_root``, ``walk_depth`` uint32 (n_walk,); nodes
      ``node_feat`` uint32, ``node_thr`` float64 (-inf at categorical nodes), ``node_mask`` uint64
      (the categories 0..63 sent left at a categorical node, 0 at numeric ones), ``node_child``
      uint32 (2 n,): left and right child (a leaf is its own child), ``node_value`` float64. A
      step goes left when the value's bit is set in the mask or x <= threshold, and a tree is
      walked exactly ``walk_depth`` steps: no branch depends on the data.
    """

    term_start: np.ndarray
    baseline: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    rest_lo: np.ndarray
    rest_hi: np.ndarray
    rest_abs: np.ndarray
    tab_pos: np.ndarray
    tab_base: np.ndarray
    tab_feat: np.ndarray
    tab_map: np.ndarray
    binmap: np.ndarray
    leaf: np.ndarray
    bin_off: np.ndarray
    bin_thr: np.ndarray
    used_cat: np.ndarray
    used_num: np.ndarray
    walk_pos: np.ndarray
    walk_root: np.ndarray
    walk_depth: np.ndarray
    node_feat: np.ndarray
    node_thr: np.ndarray
    node_mask: np.ndarray
    node_child: np.ndarray
    node_value: np.ndarray

    @property
    def arrays(self) -> tuple:
        """The tuple the kernels take (field order)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    @property
    def n_terms(self) -> int:
        return len(self.baseline)

    def __post_init__(self) -> None:
        assert tuple(f.name for f in fields(self)) == ST_FIELDS, "predict.ST_FIELDS must follow SearchTrees"

    @property
    def n_trees(self) -> int:
        return len(self.lo)

    @property
    def n_table(self) -> int:
        return len(self.tab_pos)


@dataclass
class _Tree:
    """A tree in Python form: nodes as (feature, threshold, mask, categorical, left, right, value, leaf)."""

    nodes: list


def _specialised(arrays: tuple, root: int, fixed: dict[int, float]) -> _Tree:
    """The tree at ``root`` with the nodes on fixed features decided (numeric features only)."""
    feat, thr, left, right, value, flags = arrays[6], arrays[7], arrays[8], arrays[9], arrays[10], arrays[11]
    mask = arrays[21]
    nodes: list = []

    def emit(node: int) -> int:
        while not flags[node] & LEAF and int(feat[node]) in fixed:
            if flags[node] & CATEGORICAL:
                raise ValueError("only numeric features can be fixed")
            node = left[node] if fixed[int(feat[node])] <= thr[node] else right[node]
        i = len(nodes)
        if flags[node] & LEAF:
            nodes.append((0, 0.0, 0, 0, -1, -1, float(value[node]), 1))
            return i
        nodes.append(None)
        li = emit(int(left[node]))
        ri = emit(int(right[node]))
        cat = 1 if flags[node] & CATEGORICAL else 0
        nodes[i] = (int(feat[node]), float(thr[node]), int(mask[node]) if cat else 0, cat, li, ri, 0.0, 0)
        return i

    emit(int(root))
    return _Tree(nodes)


def _depth(tree: _Tree, i: int = 0) -> int:
    f, t, m, cat, li, ri, v, leaf = tree.nodes[i]
    return 0 if leaf else 1 + max(_depth(tree, li), _depth(tree, ri))


def _walk(tree: _Tree, x: dict[int, float]) -> float:
    i = 0
    while True:
        f, t, m, cat, li, ri, v, leaf = tree.nodes[i]
        if leaf:
            return v
        if cat:
            i = li if (m >> int(x[f])) & 1 else ri
        else:
            i = li if x[f] <= t else ri


def _local_bins(tree: _Tree, n_categories: int) -> dict[int, list]:
    """Per feature the tree reads: sorted thresholds (numeric) or, per category
    0..n_categories-1, the signature of left/right decisions at the tree's nodes on it
    (categorical)."""
    out: dict[int, list] = {}
    cats = {}
    for f, t, m, cat, li, ri, v, leaf in tree.nodes:
        if leaf:
            continue
        if cat:
            cats.setdefault(f, []).append(m)
        else:
            out.setdefault(f, set()).add(t)
    res: dict[int, list] = {f: sorted(ts) for f, ts in out.items()}
    for f, masks in cats.items():
        res[f] = [tuple((m >> v) & 1 for m in masks) for v in range(n_categories)]
    return res


def _n_bins(cat: bool, spec: list) -> int:
    return len(set(spec)) if cat else len(spec) + 1


def search_trees(arrays: tuple, targets_ps: list[tuple[int, float]], fixed: dict[int, float] | None = None,
                 n_categories: int = 64) -> SearchTrees:
    """The :class:`SearchTrees` of loss terms ``targets_ps`` = [(target index, p), ...] of a
    surrogate's assembled ``arrays``; ``fixed`` = {feature index: value} fixed for the search
    (``p`` of each term is added; l_SC terms take p = 0 as :func:`predict_one` does);
    ``n_categories``: categorical features take values below it (at most 64)."""
    from nascsim.surrogate.features import CATEGORICAL as CAT_FEATURES
    from nascsim.surrogate.features import F_P
    from nascsim.surrogate.predict import TARGET_LSC

    fixed = dict(fixed or {})
    tree_root, target_trees, baseline_arr = arrays[16], arrays[17], arrays[18]
    trees: list[_Tree] = []
    term_start, baseline = [0], []
    for target, p in targets_ps:
        fx = dict(fixed)
        fx[F_P] = 0.0 if target == TARGET_LSC else float(p)
        for t in range(int(target_trees[target, 0]), int(target_trees[target, 1])):
            trees.append(_specialised(arrays, int(tree_root[t]), fx))
        term_start.append(len(trees))
        baseline.append(float(baseline_arr[target]))
    is_cat = np.zeros(N_FEATURES + 1, dtype=np.int64)
    is_cat[list(CAT_FEATURES)] = 1
    if not 1 <= n_categories <= 64:
        raise ValueError(f"n_categories must lie in 1..64, got {n_categories}")
    specs = [_local_bins(tr, n_categories) for tr in trees]
    tabulated = []
    for spec in specs:
        size = 1
        for f, s in spec.items():
            size *= _n_bins(bool(is_cat[f]), s)
        tabulated.append(len(spec) <= SLOTS and size <= MAX_TABLE)
    # global thresholds per numeric feature, over the tabulated trees
    thr: dict[int, set] = {}
    for spec, tab in zip(specs, tabulated):
        if tab:
            for f, s in spec.items():
                if not is_cat[f]:
                    thr.setdefault(f, set()).update(s)
    bin_off = np.zeros(N_FEATURES + 2, dtype=np.int64)
    bin_thr: list[float] = []
    glob: dict[int, list] = {}
    for f in range(N_FEATURES + 1):
        bin_off[f] = len(bin_thr)
        if f in thr:
            glob[f] = sorted(thr[f])
            bin_thr.extend(glob[f])
    bin_off[N_FEATURES + 1] = len(bin_thr)
    used = sorted({f for spec, tab in zip(specs, tabulated) if tab for f in spec})

    T = len(trees)
    lo, hi = np.zeros(T), np.zeros(T)
    tab_pos, tab_base, walk_pos, walk_root, walk_depth = [], [], [], [], []
    tab_feat: list[list[int]] = []
    tab_map: list[list[int]] = []
    binmap: list[int] = [0]  # offset 0: the map of an empty slot (one bin, offset 0)
    leaf: list[float] = []
    nodes: list = []
    for i, (tr, spec, tab) in enumerate(zip(trees, specs, tabulated)):
        values = [v for *_, v, lf in tr.nodes if lf]
        lo[i], hi[i] = min(values), max(values)
        if not tab:
            walk_pos.append(i)
            walk_root.append(len(nodes))
            walk_depth.append(_depth(tr))
            off = len(nodes)
            for j, (f, t, m, cat, li, ri, v, lf) in enumerate(tr.nodes):
                if lf:  # a leaf is its own child
                    nodes.append((0, math.inf, 0, j + off, j + off, v))
                else:
                    nodes.append((f, -math.inf if cat else t, m if cat else 0, li + off, ri + off, 0.0))
            continue
        tab_pos.append(i)
        tab_base.append(len(leaf))
        feats = sorted(spec)
        reps, nb = [], []
        slot_f, slot_m = [N_FEATURES] * SLOTS, [0] * SLOTS
        stride = 1
        for slot, f in enumerate(feats):
            if is_cat[f]:
                sigs = spec[f]
                order = list(dict.fromkeys(sigs))  # distinct signatures in category order
                gmap = [order.index(sig) for sig in sigs]  # category (= its bin) -> local bin
                rep = [sigs.index(sig) for sig in order]  # local bin -> a category
            else:
                loc = spec[f]
                rep = loc + [math.inf]
                g = glob[f]
                gidx = [g.index(t) for t in loc]
                gmap = [sum(1 for j in gidx if j < b) for b in range(len(g) + 1)]
            slot_f[slot] = f
            slot_m[slot] = len(binmap)
            binmap.extend(int(b) * stride for b in gmap)
            reps.append(rep)
            nb.append(len(rep))
            stride *= len(rep)
        tab_feat.append(slot_f)
        tab_map.append(slot_m)
        table = np.empty(stride)
        for idx in range(stride):
            x, r = {}, idx
            for f, rep, n in zip(feats, reps, nb):
                x[f] = rep[r % n]
                r //= n
            table[idx] = _walk(tr, x)
        leaf.extend(table.tolist())
    col = list(zip(*nodes)) if nodes else [()] * 6
    u32 = lambda v: np.asarray(v, dtype=np.uint32)  # noqa: E731
    order = np.asarray(tab_pos + walk_pos, dtype=np.int64)  # the order the search reads trees in
    biggest = np.maximum(np.abs(lo), np.abs(hi))
    rest = lambda v: np.append(np.cumsum(v[order][::-1])[::-1], 0.0)  # noqa: E731
    return SearchTrees(
        term_start=np.asarray(term_start, dtype=np.int64), baseline=np.asarray(baseline, dtype=np.float64), lo=lo, hi=hi,
        rest_lo=rest(lo), rest_hi=rest(hi), rest_abs=rest(biggest),
        tab_pos=u32(tab_pos), tab_base=u32(tab_base),
        tab_feat=np.ascontiguousarray(u32(tab_feat).reshape(-1, SLOTS).T), tab_map=np.ascontiguousarray(u32(tab_map).reshape(-1, SLOTS).T),
        binmap=u32(binmap), leaf=np.asarray(leaf, dtype=np.float64),
        bin_off=bin_off, bin_thr=np.asarray(bin_thr, dtype=np.float64),
        used_cat=u32([f for f in used if is_cat[f]]), used_num=u32([f for f in used if not is_cat[f]]),
        walk_pos=u32(walk_pos), walk_root=u32(walk_root), walk_depth=u32(walk_depth),
        node_feat=u32(col[0]), node_thr=np.asarray(col[1], dtype=np.float64), node_mask=np.asarray(col[2], dtype=np.uint64),
        node_child=u32([c for pair in zip(col[3], col[4]) for c in pair]), node_value=np.asarray(col[5], dtype=np.float64),
    )
